/**
 * The messages between a parent and its workers and child processes, and how errors cross them.
 *
 * Errors are sent as plain records rather than through structured clone, because structured clone
 * keeps only the built-in error classes, drops `cause` on some runtimes and loses extra fields.
 *
 * @module
 */

import {
  BrokenPoolError,
  CancelledError,
  OutOfMemoryError,
  QueueEmptyError,
  QueueFullError,
  TimeoutError,
  WorkerCrashedError,
} from "./errors.ts";
import { runtimeErrorClasses } from "./_runtime_errors.deno.ts";
import { describeValue } from "./_checks.ts";

export { describeValue };

/**
 * Objects moved rather than copied to a worker (array buffers, message ports). The runtime's own
 * type differs between Deno and Node, so the seam files narrow it.
 */
export type TransferList = readonly object[];

/** The argument that tells the child entry that it runs in a child process, not a worker. */
export const CHILD_PROCESS_FLAG = "--multiproc-child-process";

/** How a target function travels: by module and export name, or by source text. */
export interface TargetSpec {
  /** URL of the module that exports the function, when known. */
  module?: string;
  /** When true, failing to import `module` is an error; otherwise the source text is tried. */
  importRequired?: boolean;
  /** The function's own name (`fn.name`); it is tried first as the export name. */
  name: string;
  /** The function's source text, used to confirm an export and to rebuild a self-contained function. */
  source: string;
  /** An expression that evaluates to the function, or undefined when it uses outside names. */
  evalText?: string;
}

/** Parent to child: run a target once. */
export interface RunMessage {
  type: "run";
  target: TargetSpec;
  args: unknown[];
  /** The Thread or Process name, for error reports. */
  name: string;
  /** What the child prints on stderr before the target's uncaught error. */
  header: string;
}

/** Parent to a forkserver spare: import these modules before any target. */
export interface PreloadMessage {
  type: "preload";
  /** Modules to import, in order; a failure fails the child's target. */
  modules: string[];
  /** Modules to import afterwards whose failure is ignored: the main module, as Python does. */
  optional: string[];
}

/** Parent to a new pool worker: become a pool worker, run the initializer, then wait for tasks. */
export interface PoolStartMessage {
  type: "pool";
  /** The worker's name, for error reports. */
  name: string;
  initializer?: TargetSpec;
  initArgs: unknown[];
  /**
   * A thread worker's slot (an `Int32Array` over shared memory) where it keeps the id of the task
   * that it runs, so that the parent can tell which task a dying worker was running.
   */
  runningSlot?: Int32Array;
  /** Whether results are sent in batches (threads) or one by one (processes). */
  batchResults: boolean;
}

/** Parent to pool worker: the target that tasks with this id run. Sent once per worker. */
export interface PoolTargetMessage {
  type: "target";
  id: number;
  target: TargetSpec;
}

/**
 * How a pool task calls its target: `Apply`, with `payload` as the argument list; `Map`, with a
 * chunk of items, giving the list of `target(item)`; `Starmap`, with a chunk of argument lists,
 * giving the list of `target(...args)`.
 */
export const TaskMode = { Apply: 0, Map: 1, Starmap: 2 } as const;

/** One of the {@linkcode TaskMode} values. */
export type TaskMode = typeof TaskMode[keyof typeof TaskMode];

/**
 * Parent to pool worker: tasks to run in order, flattened as `[taskId, targetId, mode, payload,
 * …]` so that a batch costs one array.
 */
export interface PoolTasksMessage {
  type: "tasks";
  tasks: unknown[];
}

/**
 * Parent to pool worker: tasks that were sent ahead but are cancelled; the worker skips them and
 * reports nothing for them.
 */
export interface PoolSkipMessage {
  type: "skip";
  ids: number[];
}

/** Every message that a parent sends to a child. */
export type ParentMessage =
  | RunMessage
  | PreloadMessage
  | PoolStartMessage
  | PoolTargetMessage
  | PoolTasksMessage
  | PoolSkipMessage;

/** Child to parent: a forkserver spare has imported its preload modules and waits for work. */
export interface ReadyMessage {
  type: "ready";
}

/** Child to parent: the child called `Deno.exit()` / `process.exit()` itself. */
export interface ExitMessage {
  type: "exit";
  code: number;
}

/**
 * Worker to parent (a one-shot run's worker too): finished tasks, in the order they ran, flattened as `[taskId, ok, value,
 * …]` where `ok` is 1 for a result and 0 for a {@linkcode SerializedError}.
 */
export interface PoolDoneMessage {
  type: "done";
  results: unknown[];
}

/** Pool worker to parent: the pool's initializer threw; the worker exits. */
export interface PoolInitFailedMessage {
  type: "init-failed";
  error: SerializedError;
}

/**
 * Pool worker to parent: a task that the parent asked it to skip has already started; only
 * stopping the worker stops it.
 */
export interface PoolSkipFailedMessage {
  type: "skip-failed";
  id: number;
}

/** Every message that a child sends to its parent. */
export type ChildMessage =
  | ExitMessage
  | ReadyMessage
  | PoolDoneMessage
  | PoolInitFailedMessage
  | PoolSkipFailedMessage;

/** An error as plain data. */
export interface SerializedError {
  /** Marks the record, so that a thrown plain object is not mistaken for it. */
  multiprocError: true;
  name: string;
  message: string;
  stack?: string;
  cause?: SerializedError | { value: unknown };
  /** Own enumerable fields of the error (for example `code`), when they can be cloned. */
  fields?: Record<string, unknown>;
  /**
   * Set when the thrown value was not an Error at all: the value itself when structured clone
   * takes it (`cloned`), else its text.
   */
  thrown?: { value: unknown; cloned?: boolean };
}

// Only the prototype is used: errors are rebuilt without calling their constructors. Built on first
// use, so that errors.ts may import this module without a cycle that reads its classes too early.
let knownErrors: Record<string, { prototype: Error }> | undefined;
const builtInErrors = (): Record<string, { prototype: Error }> => ({
  ...runtimeErrorClasses(),
  Error,
  TypeError,
  RangeError,
  SyntaxError,
  ReferenceError,
  EvalError,
  URIError,
  WorkerCrashedError,
  OutOfMemoryError,
  BrokenPoolError,
  TimeoutError,
  CancelledError,
  QueueFullError,
  QueueEmptyError,
});

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

function cloneable(value: unknown): boolean {
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}

/** Turns anything that was thrown into a record that crosses any channel. */
export function serializeError(error: unknown, depth = 0): SerializedError {
  if (!(error instanceof Error)) {
    const cloned = cloneable(error);
    const text = safeString(error);
    return {
      multiprocError: true,
      name: "Error",
      message: `Non-error value thrown: ${typeof error === "string" ? error : text}`,
      thrown: cloned ? { value: error, cloned } : { value: text },
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
      ? serializeError(error.cause, depth + 1)
      : { value: cloneable(error.cause) ? error.cause : safeString(error.cause) };
  }
  const fields: Record<string, unknown> = {};
  for (const key of Object.keys(error)) {
    if (key === "cause" || key === "stack" || key === "message" || key === "name") continue;
    const value = (error as unknown as Record<string, unknown>)[key];
    if (cloneable(value)) fields[key] = value;
  }
  if (Object.keys(fields).length > 0) record.fields = fields;
  return record;
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
  knownErrors ??= builtInErrors();
  const Ctor = registeredErrors.get(record.name) ??
    (Object.hasOwn(knownErrors, record.name) ? knownErrors[record.name] : Error);
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

/**
 * Finds the first argument that structured clone would refuse, without cloning anything: a walk
 * over the values that stops at leaves such as typed arrays, so a large buffer costs nothing.
 *
 * @returns The argument's index and where inside it the culprit sits, or undefined when all clone.
 */
export function findUncloneableArgument(
  args: readonly unknown[],
): { index: number; path: string; culprit: unknown } | undefined {
  const seen = new Set<object>();
  for (let index = 0; index < args.length; index++) {
    const found = findUncloneable(args[index], "", seen);
    if (found) return { index, ...found };
  }
  return undefined;
}

const refusedTypes = [WeakMap, WeakSet, WeakRef, Promise] as const;

function findUncloneable(
  value: unknown,
  path: string,
  seen: Set<object>,
): { path: string; culprit: unknown } | undefined {
  if (typeof value === "function" || typeof value === "symbol") return { path, culprit: value };
  if (typeof value !== "object" || value === null || seen.has(value)) return undefined;
  seen.add(value);
  if (
    ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date ||
    value instanceof RegExp || value instanceof Error
  ) return undefined;
  if (refusedTypes.some((type) => value instanceof type)) return { path, culprit: value };
  if (value instanceof Map) {
    for (const [key, entry] of value) {
      const found = findUncloneable(key, `${path}.keys()`, seen) ??
        findUncloneable(entry, `${path}.get(${describeValue(key)})`, seen);
      if (found) return found;
    }
    return undefined;
  }
  if (value instanceof Set) {
    for (const entry of value) {
      const found = findUncloneable(entry, `${path}.values()`, seen);
      if (found) return found;
    }
    return undefined;
  }
  if (Array.isArray(value)) {
    // By index: Object.keys() would make a string per element of a long array.
    for (let i = 0; i < value.length; i++) {
      const entry = value[i];
      if (typeof entry !== "object" && typeof entry !== "function" && typeof entry !== "symbol") {
        continue;
      }
      const found = findUncloneable(entry, `${path}[${i}]`, seen);
      if (found) return found;
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    const found = findUncloneable((value as Record<string, unknown>)[key], `${path}.${key}`, seen);
    if (found) return found;
  }
  return undefined;
}

/** What the parent learns from a worker thread or child process. */
export interface ChildListeners {
  /** A message from the child entry. */
  message(message: ChildMessage): void;
  /** An error outside any task, for example in the child's own start-up. */
  error(error: Error): void;
  /**
   * The child is gone, reported exactly once: its exit code, or minus the number of the signal
   * that ended it (a stopped worker thread reports `-15` or `-9` as if it had been signalled).
   */
  exit(exitCode: number): void;
}

/** The parent's hold on a worker thread or child process. */
export interface ChildHandle {
  /** The process id; undefined for a worker thread. */
  readonly pid?: number;
  /** Sends a message; throws when it cannot be cloned. */
  send(message: unknown, transfer?: TransferList): void;
  /** Stops the child; `exit` follows. */
  stop(signal: "SIGTERM" | "SIGKILL"): void;
  /**
   * Whether the child keeps the parent's event loop alive; absent where it always does (a Web
   * Worker).
   */
  setRef?(ref: boolean): void;
  /** The last lines that a child process wrote to stderr, where they are kept. */
  stderrTail?(): string;
}

/** Exit codes that a stopped worker thread reports, as for a process ended by these signals. */
export const SIGNAL_EXIT_CODES = { SIGTERM: -15, SIGKILL: -9 } as const;

/** A child's line to its parent, whatever carries it. */
export interface ParentLink {
  /** Whether the child is a worker thread or a child process. */
  kind: "thread" | "process";
  /** Calls `listener` with each message from the parent. */
  onMessage(listener: (message: unknown) => void): void;
  /** Sends a message; rejects (or throws) when it cannot be cloned or sent. */
  send(message: unknown, transfer?: TransferList): Promise<void>;
  /** Ends the child with `code` once its outcome has been sent. */
  finish(code: number): void;
}
