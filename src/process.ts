/**
 * {@linkcode Process}: run a function in a child process, as Python's `multiprocessing.Process`.
 *
 * @module
 */
import { Runner } from "./_runner.ts";
import { checkEnv, checkPermissions } from "./_permissions.ts";
import { checkMaxHeapMb, checkOptions, checkString } from "./_checks.ts";
import { checkChildCommand } from "./_platform.deno.ts";
import type { PermissionsOption } from "./permissions.ts";
import { checkStartMethod, defaultStartMethod, type StartMethod } from "./_start_methods.ts";
import { processKind } from "./_worker_parent.ts";
import {
  checkNotImportingMain,
  nextIdentity,
  registerChild,
  registerNonDaemon,
} from "./_process_context.ts";

const PROCESS_OPTION_NAMES = [
  "target",
  "args",
  "name",
  "module",
  "daemon",
  "startMethod",
  "permissions",
  "maxHeapMb",
  "env",
] as const;

/** Options for {@linkcode Process}. */
export interface ProcessOptions<Args extends unknown[] = unknown[], Result = unknown> {
  /**
   * The function to run. An exported function is found again in the child by importing its module
   * (the main module unless `module` says otherwise), as Python's spawn re-imports `__main__`; a
   * function that is not exported must be self-contained and is sent as source text.
   */
  target: (...args: Args) => Result;
  /** Arguments for `target`; each must be cloneable with structured clone. */
  args?: Args;
  /**
   * A name for messages and error reports; defaults to `Process-1`, `Process-2`, … and, in a child
   * process, to that process's own counts and the next: `Process-2:1` for the first process that
   * `Process-2` makes, as in Python.
   */
  name?: string;
  /** A module URL or path that exports `target`; defaults to the main module. */
  module?: string | URL;
  /** A daemon process does not keep the parent alive and is stopped when the parent exits. */
  daemon?: boolean;
  /**
   * How the child starts: `"spawn"` or `"forkserver"`. Defaults to the start method in force when
   * `start()` is called (see `setStartMethod()`).
   */
  startMethod?: StartMethod;
  /**
   * What the child may do (Deno's `--allow-*` flags): `"inherit"` (the default) gives exactly the
   * permissions that the parent holds in full, `"none"` gives nothing beyond reading the modules
   * that the child imports, and an object grants kinds one by one. Never more than the parent
   * holds. See `ChildPermissions` for what Node 20 enforces.
   */
  permissions?: PermissionsOption;
  /**
   * The child's whole environment, such as `{ LANG: "C" }`: the child sees these variables and no
   * other of the parent's (on Deno, its env grant is narrowed to them too). Defaults to the
   * parent's environment.
   */
  env?: Record<string, string>;
  /**
   * A limit on the child's heap, in megabytes (V8's `--max-old-space-size`). A child that dies of
   * it leaves an `OutOfMemoryError` in `error`.
   */
  maxHeapMb?: number;
}

/**
 * A function running in its own child process: a fresh Deno or Node runtime that imports the
 * target's module, as Python's `spawn` start method does. The child's stdout and stderr are the
 * parent's, byte for byte; results and errors travel on a separate channel. A child never outlives
 * its parent.
 *
 * @typeParam Args The target's parameter types.
 * @typeParam Result The target's return type; `result` holds it, awaited, after `join()`.
 * @example Run a function in a child process
 * ```ts
 * import { Process } from "@multiproc/multiproc";
 *
 * const p = new Process({ target: (a: number, b: number) => a + b, args: [2, 3] });
 * p.start();
 * await p.join();
 * console.log(p.exitCode, p.result); // 0 5
 * ```
 */
export class Process<Args extends unknown[] = unknown[], Result = unknown> {
  #runner: Runner;
  #closed = false;

  /**
   * Prepares a process; nothing runs until {@linkcode Process.prototype.start}.
   *
   * @param options The target, its arguments, and how to run it.
   * @throws {TypeError} When `target` is not a function, when it is neither exported nor
   * self-contained, when `module` does not exist or does not export it, when `startMethod` is not a
   * start method (`"fork"` included), when `permissions` asks for more than this process holds, or
   * when an option has the wrong type.
   * @throws {RangeError} When `maxHeapMb` is not a positive integer of at most 4 TiB in megabytes.
   * @throws {TypeError} When an option is unknown or the options are not an object.
   */
  constructor(options: ProcessOptions<Args, Result>) {
    options = checkOptions(
      options,
      "Process",
      PROCESS_OPTION_NAMES,
      "pass { target, args }",
    ) as typeof options;
    const startMethod = options.startMethod === undefined
      ? undefined
      : checkStartMethod(options.startMethod, "Process 'startMethod'");
    const command = {
      permissions: checkPermissions(options.permissions, "Process"),
      maxHeapMb: checkMaxHeapMb(options.maxHeapMb, "Process"),
      env: checkEnv(options.env, "Process"),
    };
    // Asking for more than the parent holds is an error now rather than at start().
    checkChildCommand(command, "Process");
    // Counted when made, as in Python: the first process that `Process-2` makes is `Process-2:1`.
    const identity = nextIdentity();
    this.#runner = new Runner(
      // The child's stderr passes through this process, byte for byte: what it prints reaches
      // the same place, and reaches it through this process's own stderr stream.
      processKind(startMethod ?? defaultStartMethod, command, { keepStderrTail: true }),
      options,
      `Process-${identity.join(":")}`,
      identity,
    );
  }

  /** The process's name, for messages and error reports. */
  get name(): string {
    return this.#runner.name;
  }

  set name(value: string) {
    this.#runner.name = checkString(value, "name", undefined, false)!;
  }

  /**
   * Whether this is a daemon process; can be set only before `start()`.
   *
   * @throws {TypeError} When set after `start()`, or to a value that is not a boolean.
   */
  get daemon(): boolean {
    return this.#runner.daemon;
  }

  set daemon(value: boolean) {
    this.#runner.daemon = value;
  }

  /**
   * The child's process id once started; undefined before.
   *
   * @throws {TypeError} After {@linkcode Process.prototype.close}.
   */
  get pid(): number | undefined {
    this.#checkOpen();
    return this.#runner.pid;
  }

  /** The target's return value, awaited, once the process has finished; undefined before. */
  get result(): Awaited<Result> | undefined {
    return this.#runner.result as Awaited<Result> | undefined;
  }

  /**
   * What the target threw, undefined if nothing: an Error rebuilt with its class, message, stack and
   * `cause`, or the thrown value itself when the target threw something else (a string, a number,
   * a plain object), as `catch` would receive it. Typed `any` for that reason, as a `catch`
   * variable once was.
   */
  // deno-lint-ignore no-explicit-any
  get error(): any {
    return this.#runner.error;
  }

  /**
   * `null` while running, then the child's exit code: `0` after the target returned, `1` after it
   * threw, the code it passed to `Deno.exit()` / `process.exit()`, or minus the signal number when a
   * signal ended it (`-15` after `terminate()`, `-9` after `kill()`), as in Python.
   */
  get exitCode(): number | null {
    return this.#runner.exitCode;
  }

  /**
   * Starts the child process. It can be started once.
   *
   * @throws {TypeError} When the process was already started or closed.
   * @throws {Error} When the runtime could not be started.
   * @throws {TypeError} When an argument cannot be cloned; the message names its index.
   */
  start(): void {
    this.#checkOpen();
    checkNotImportingMain("a Process");
    this.#runner.start();
    // A child process waits for its non-daemon children before it exits.
    if (!this.#runner.daemon) registerNonDaemon(this.#runner.finished);
    // Among activeChildren() until it has exited.
    registerChild(this, this.#runner.finished);
  }

  /**
   * Waits for the process to finish, or until `timeoutMs` has passed, as Python's `join(timeout)`:
   * after a timeout, check {@linkcode Process.prototype.isAlive}.
   *
   * @param timeoutMs The longest wait in milliseconds; no limit when omitted.
   * @returns A promise that resolves when the process finished or the time ran out. It never
   * rejects because of the target: read `error` and `exitCode`.
   * @throws {TypeError} (as a rejection) When the process was not started, or was closed.
   * @throws {RangeError} (as a rejection) When `timeoutMs` is negative or NaN; `Infinity` waits
   * without limit.
   * @throws {TypeError} (as a rejection) When `timeoutMs` is not a number.
   */
  join(timeoutMs?: number): Promise<void> {
    try {
      this.#checkOpen();
    } catch (error) {
      return Promise.reject(error);
    }
    return this.#runner.join(timeoutMs);
  }

  /**
   * Whether the process has started and not yet exited.
   *
   * @returns True until the child has exited.
   * @throws {TypeError} After {@linkcode Process.prototype.close}.
   */
  isAlive(): boolean {
    this.#checkOpen();
    return this.#runner.isAlive();
  }

  /**
   * Sends SIGTERM to the child; `exitCode` becomes `-15` once it has gone.
   *
   * @throws {TypeError} After {@linkcode Process.prototype.close}.
   */
  terminate(): void {
    this.#checkOpen();
    this.#runner.stop("SIGTERM");
  }

  /**
   * Sends SIGKILL to the child; `exitCode` becomes `-9` once it has gone.
   *
   * @throws {TypeError} After {@linkcode Process.prototype.close}.
   */
  kill(): void {
    this.#checkOpen();
    this.#runner.stop("SIGKILL");
  }

  /**
   * Releases the process object, as Python's `Process.close()`: afterwards `start()`, `join()`,
   * `isAlive()`, `terminate()`, `kill()` and `pid` throw, while `name`, `exitCode`, `result` and
   * `error` stay readable. Closing twice, or closing a process never started, is allowed.
   *
   * @throws {TypeError} When the process is still running: `join()` or `terminate()` it first.
   * @example
   * ```ts
   * import { Process } from "@multiproc/multiproc";
   *
   * const p = new Process({ target: () => 1 });
   * p.start();
   * await p.join();
   * p.close();
   * console.log(p.exitCode); // 0
   * ```
   */
  close(): void {
    if (this.#closed) return;
    if (this.#runner.isAlive()) {
      // Python's ValueError; here the state refuses the call, which is a TypeError in JavaScript
      // (Node's ERR_INVALID_STATE is one).
      throw new TypeError(
        `Cannot close Process '${this.name}' while it is still running: join() or terminate() it first`,
      );
    }
    this.#closed = true;
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new TypeError(
        `Process '${this.name}' is closed: close() released it; make a new Process to run again`,
      );
    }
  }
}
