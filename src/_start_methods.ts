/**
 * Start methods: which one is in force, how each starts a child process, and the error that
 * explains why there is no `fork`.
 *
 * @module
 */
import { spawnChildProcess } from "./_process_parent.ts";
import { takeForkserverChild } from "./_forkserver.ts";
import type { ChildHandle, ChildListeners } from "./_channel.ts";
import { inheritedMethod } from "./_process_context.ts";
import { describeValue } from "./_checks.ts";
import type { ChildCommandOptions } from "./_permissions.ts";

/**
 * How a child process starts:
 * - `"spawn"`: a fresh runtime that imports the target's module, as Python's spawn;
 * - `"forkserver"`: a warm runtime, already booted with the preload modules imported, handed the
 *   target on `start()`, as Python's forkserver.
 */
export type StartMethod = "spawn" | "forkserver";

/** The start methods that this runtime offers, the default first. */
export const START_METHODS: readonly StartMethod[] = ["spawn", "forkserver"];

const list = START_METHODS.map((method) => `'${method}'`).join(", ");

/**
 * Checks a start method name given by the caller.
 *
 * @param value What the caller passed.
 * @param what The option or function that took it, for the message.
 * @throws {TypeError} For `"fork"` (with the reason and the alternative), and for any other name
 * that is not a start method (with the list of valid ones).
 */
export function checkStartMethod(value: unknown, what: string): StartMethod {
  if (value === "fork") {
    throw new TypeError(
      `${what} cannot be 'fork': a JavaScript runtime cannot copy its heap into a new process, so there is no honest fork. Use 'forkserver' with setForkserverPreload() for fast starts with modules already imported, or 'spawn'; valid start methods are ${list}`,
    );
  }
  if (!START_METHODS.includes(value as StartMethod)) {
    throw new TypeError(
      `${what} must be one of ${list}: received ${describeValue(value)}`,
    );
  }
  return value as StartMethod;
}

let chosenMethod: StartMethod | undefined;

/** The start method set with `setStartMethod()`, if any. */
export function chosenStartMethod(): StartMethod | undefined {
  return chosenMethod;
}

/** Records the global start method; `undefined` forgets it. */
export function chooseStartMethod(method: StartMethod | undefined): void {
  chosenMethod = method;
}

/** The start method in force: the one set, else the one inherited, else the default `"spawn"`. */
export function defaultStartMethod(): StartMethod {
  return chosenMethod ?? inheritedMethod() ?? "spawn";
}

/** The start method that children inherit: the one set here or inherited, if any. */
export function inheritableStartMethod(): StartMethod | undefined {
  return chosenMethod ?? inheritedMethod();
}

/**
 * Starts a child process with `method`. `keepStderrTail` asks for the last lines of its stderr to
 * be kept for crash reports; forkserver spares always keep them.
 */
export function launchProcess(
  method: StartMethod,
  options: { daemon: boolean; command?: ChildCommandOptions; keepStderrTail?: boolean },
  listeners: ChildListeners,
): ChildHandle {
  return method === "forkserver" ? takeForkserverChild(options, listeners) : spawnChildProcess(
    { ref: !options.daemon, command: options.command, keepStderrTail: options.keepStderrTail },
    listeners,
  );
}
