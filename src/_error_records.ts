/**
 * How an error crosses between a child and its parent: as a plain record rather than through
 * structured clone, because structured clone keeps only the built-in error classes, drops `cause`
 * on some runtimes and loses extra fields. The record is rebuilt with the error's class where that
 * class is known here.
 *
 * Rules this file keeps:
 * - A thrown value that is no Error comes back as itself, where structured clone takes it.
 * - Serialising never throws, whatever was thrown.
 * - It imports no public module: `errors.ts` registers its classes here, not the other way.
 *
 * @module
 */
import type { SerializedError } from "./_protocol.ts";
import { runtimeErrorClasses } from "./_runtime_errors.deno.ts";
import { describeValue } from "./_checks.ts";
import { findUncloneableArgument, isCloneable } from "./_clone_check.ts";

// Only the prototype is used: errors are rebuilt without calling their constructors.
const builtInErrors: Record<string, { prototype: Error }> = {
  ...runtimeErrorClasses(),
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
};

// multiproc's own classes register themselves when errors.ts loads; callers' classes through
// registerErrorClass(). A class that was never loaded in this realm cannot be caught by instanceof
// here either, so registering on load loses nothing.
const registeredErrors = new Map<string, { prototype: Error }>();

/**
 * Makes errors named `ctor.name` come back as instances of `ctor`. Classes must be registered in
 * the process that rebuilds the error, usually the parent.
 */
export function registerErrorClassByName(
  ctor: { name: string; prototype: Error },
): void {
  registeredErrors.set(ctor.name, ctor);
}

/** Turns anything that was thrown into a record that crosses any channel; never throws. */
export function serializeError(error: unknown, depth = 0): SerializedError {
  try {
    return toRecord(error, depth);
  } catch {
    // A value whose getters or proxy traps throw: what can be said of it is that it was thrown.
    return {
      multiprocError: true,
      name: "Error",
      message: "The thrown value could not be read: its properties throw when read",
    };
  }
}

function toRecord(error: unknown, depth: number): SerializedError {
  if (!(error instanceof Error)) {
    if (crossesAnyChannel(error)) {
      return {
        multiprocError: true,
        name: "Error",
        message: `Non-error value thrown: ${safeString(error)}`,
        thrown: { value: error, cloned: true },
      };
    }
    // "[object Object]" says nothing: name the kind of value and its keys instead.
    let text = safeString(error);
    if (/^\[object \w*\]$/.test(text)) {
      text = `${describeValue(error)} with keys ${
        Object.keys(error as object).map((key) => `'${key}'`).join(", ") || "(none)"
      }`;
    }
    return {
      multiprocError: true,
      name: "Error",
      message: `Non-error value thrown, which cannot be sent: ${text}`,
      thrown: { value: text },
    };
  }
  const record: SerializedError = {
    multiprocError: true,
    name: error.name,
    message: error.message,
    stack: error.stack,
  };
  if ("cause" in error && depth < 16) {
    record.cause = error.cause instanceof Error
      ? toRecord(error.cause, depth + 1)
      : { value: crossesAnyChannel(error.cause) ? error.cause : safeString(error.cause) };
  }
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(error)) {
    if (key === "cause" || key === "stack" || key === "message" || key === "name") continue;
    const value = (error as unknown as Record<string, unknown>)[key];
    if (crossesAnyChannel(value)) fields[key] = value;
  }
  if (Object.keys(fields).length > 0) record.fields = fields;
  return record;
}

/**
 * Whether a value in a record crosses every channel, a child process's included: structured clone
 * takes a `SharedArrayBuffer`, but a process's channel cannot, and a record that fails to send would
 * lose the error (or the task's outcome) altogether.
 */
function crossesAnyChannel(value: unknown): boolean {
  return isCloneable(value) &&
    findUncloneableArgument([value], { sharedMemory: false }) === undefined;
}

function safeString(value: unknown): string {
  try {
    return String(value);
  } catch {
    return describeValue(value);
  }
}

/**
 * Rebuilds what was thrown from its record: the value itself when it was no Error and could be
 * cloned (a string, a number, a plain object), else the error, as {@linkcode deserializeError}.
 */
export function deserializeThrown(record: SerializedError): unknown {
  if (record.thrown?.cloned) return record.thrown.value;
  return deserializeError(record);
}

/** Rebuilds an error from its record, with its class where that class is known. */
export function deserializeError(record: SerializedError): Error {
  const Ctor = registeredErrors.get(record.name) ??
    (Object.hasOwn(builtInErrors, record.name) ? builtInErrors[record.name] : Error);
  const error = Object.create(Ctor.prototype) as Error;
  Object.defineProperty(error, "message", {
    value: record.message,
    writable: true,
    configurable: true,
  });
  if (error.name !== record.name) {
    Object.defineProperty(error, "name", {
      value: record.name,
      writable: true,
      configurable: true,
    });
  }
  Object.defineProperty(error, "stack", {
    value: record.stack ?? `${record.name}: ${record.message}`,
    writable: true,
    configurable: true,
  });
  if (record.cause !== undefined) {
    const cause = "multiprocError" in record.cause
      ? deserializeError(record.cause)
      : record.cause.value;
    Object.defineProperty(error, "cause", { value: cause, writable: true, configurable: true });
  }
  if (record.fields) Object.assign(error, record.fields);
  return error;
}
