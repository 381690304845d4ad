/**
 * {@linkcode Thread}: run a function on a worker thread, as Python's `threading.Thread`.
 *
 * @module
 */
import { Runner } from "./_runner.ts";
import { threadHeapLimits, threadPermissions } from "./_platform.deno.ts";
import { checkPermissions } from "./_permissions.ts";
import { checkMaxHeapMb, checkOptions, checkString, describeValue } from "./_checks.ts";
import { threadKind } from "./_worker_parent.ts";
import { checkNotImportingMain, registerNonDaemon } from "./_process_context.ts";
import type { PermissionsOption } from "./permissions.ts";

const THREAD_OPTION_NAMES = [
  "target",
  "args",
  "name",
  "module",
  "daemon",
  "permissions",
  "maxHeapMb",
] as const;

/** Options for {@linkcode Thread}. */
export interface ThreadOptions<Args extends unknown[] = unknown[], Result = unknown> {
  /**
   * The function to run. An exported function is found again in the worker by importing its module
   * (the main module unless `module` says otherwise); a function that is not exported must be
   * self-contained, using only its parameters and globals, and is sent as source text.
   */
  target: (...args: Args) => Result;
  /**
   * Arguments for `target`; each must be cloneable with structured clone. Wrap one with
   * `transfer()` to move its buffers to the worker instead of copying them.
   */
  args?: Args;
  /** A name for messages and error reports; defaults to `Thread-1`, `Thread-2`, … */
  name?: string;
  /** A module URL or path that exports `target`; defaults to the main module. */
  module?: string | URL;
  /** A daemon thread does not keep the parent alive and is stopped when the parent exits. */
  daemon?: boolean;
  /**
   * A limit on the worker's heap, in megabytes. Past it the worker stops, and `error` is an
   * `OutOfMemoryError`. Node only: Deno's workers enforce no heap limit, and a `Thread` with this
   * option throws there (use a `Process` with `maxHeapMb`).
   */
  maxHeapMb?: number;
  /**
   * What the worker may do: `"inherit"` (the default) gives it what the parent holds, `"none"`
   * nothing beyond reading the modules that it imports, and an object grants kinds one by one,
   * never more than the parent holds. Deno only, and only when Deno runs with
   * `--unstable-worker-options` (a thread with its own permissions is a Web Worker, which keeps the
   * program alive until it ends, even as a daemon). Node's permission model covers whole processes:
   * use a `Process` there.
   */
  permissions?: PermissionsOption;
}

let threadCount = 0;

/**
 * A function running on its own worker thread (a Web Worker on Deno, a `worker_threads` Worker on
 * Node). Unlike CPython's threads, these run JavaScript in parallel: each worker is its own isolate,
 * and they share memory only on purpose.
 *
 * @typeParam Args The target's parameter types.
 * @typeParam Result The target's return type; `result` holds it, awaited, after `join()`.
 * @example Five threads, as in the notebook
 * ```ts
 * import { Thread } from "@multiproc/multiproc";
 *
 * const threads = [0, 1, 2].map((i) =>
 *   new Thread({
 *     target: async (n: number) => {
 *       console.log(`Working ${n} ...`);
 *       await new Promise((resolve) => setTimeout(resolve, 50));
 *       return n * n;
 *     },
 *     args: [i],
 *   })
 * );
 * for (const t of threads) t.start();
 * for (const t of threads) await t.join();
 * console.log(threads.map((t) => t.result)); // [0, 1, 4]
 * ```
 */
export class Thread<Args extends unknown[] = unknown[], Result = unknown> {
  #runner: Runner;

  /**
   * Prepares a thread; nothing runs until {@linkcode Thread.prototype.start}.
   *
   * @param options The target, its arguments, and how to run it.
   * @throws {TypeError} When `target` is not a function, when it is neither exported nor
   * self-contained, when `module` does not exist or does not export it, or when an option has the
   * wrong type.
   * @throws {TypeError} When `maxHeapMb` is given on a runtime whose workers take no heap limit.
   * @throws {TypeError} When `permissions` is malformed, asks for more than the parent holds, or
   * cannot be granted to a thread here (Node, or Deno without `--unstable-worker-options`).
   * @throws {RangeError} When `maxHeapMb` is not a positive integer of at most 4 TiB in megabytes.
   * @throws {TypeError} When an option is unknown or the options are not an object.
   */
  constructor(options: ThreadOptions<Args, Result>) {
    options = checkOptions(
      options,
      "Thread",
      THREAD_OPTION_NAMES,
      "pass { target, args }",
    ) as typeof options;
    if (options.maxHeapMb !== undefined && !threadHeapLimits) {
      throw new TypeError(
        `Thread 'maxHeapMb' is not supported on this runtime: its workers do not enforce a heap limit; run the target in a Process with 'maxHeapMb' instead (received ${
          describeValue(options.maxHeapMb)
        })`,
      );
    }
    const permissions = threadPermissions(
      checkPermissions(options.permissions, "Thread"),
      "Thread",
    );
    const maxHeapMb = checkMaxHeapMb(options.maxHeapMb, "Thread");
    this.#runner = new Runner(
      threadKind({ maxHeapMb, permissions }),
      options,
      `Thread-${++threadCount}`,
    );
  }

  /** The thread's name, for messages and error reports. */
  get name(): string {
    return this.#runner.name;
  }

  set name(value: string) {
    this.#runner.name = checkString(value, "name", undefined, false)!;
  }

  /**
   * Whether this is a daemon thread; can be set only before `start()`.
   *
   * @throws {TypeError} When set after `start()`, or to a value that is not a boolean.
   */
  get daemon(): boolean {
    return this.#runner.daemon;
  }

  set daemon(value: boolean) {
    this.#runner.daemon = value;
  }

  /** The target's return value, awaited, once the thread has finished; undefined before. */
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
   * `null` while running, `0` after the target returned, `1` after it threw, the code given to
   * `Deno.exit()` / `process.exit()`, or `-15` after {@linkcode Thread.prototype.terminate}.
   */
  get exitCode(): number | null {
    return this.#runner.exitCode;
  }

  /**
   * Starts the thread. It can be started once.
   *
   * @throws {TypeError} When the thread was already started.
   * @throws {TypeError} When an argument cannot be cloned; the message names its index.
   */
  start(): void {
    checkNotImportingMain("a Thread");
    this.#runner.start();
    // A child process waits for its non-daemon threads before it exits.
    if (!this.#runner.daemon) registerNonDaemon(this.#runner.finished);
  }

  /**
   * Waits for the thread to finish, or until `timeoutMs` has passed, as Python's `join(timeout)`:
   * after a timeout, check {@linkcode Thread.prototype.isAlive}.
   *
   * @param timeoutMs The longest wait in milliseconds; no limit when omitted.
   * @returns A promise that resolves when the thread finished or the time ran out. It never
   * rejects because of the target: read `error` and `exitCode`.
   * @throws {TypeError} (as a rejection) When the thread was not started.
   * @throws {RangeError} (as a rejection) When `timeoutMs` is negative or NaN; `Infinity` waits
   * without limit.
   * @throws {TypeError} (as a rejection) When `timeoutMs` is not a number.
   */
  join(timeoutMs?: number): Promise<void> {
    return this.#runner.join(timeoutMs);
  }

  /**
   * Whether the thread has started and not yet finished.
   *
   * @returns True while the target runs.
   */
  isAlive(): boolean {
    return this.#runner.isAlive();
  }

  /** Stops the worker at once, wherever the target is; `exitCode` becomes `-15`. */
  terminate(): void {
    this.#runner.stop("SIGTERM");
  }
}
