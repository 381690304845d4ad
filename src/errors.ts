/**
 * The errors that callers of multiproc catch: a crashed worker, a broken pool, a timeout, a
 * cancelled future, a full or empty queue. Everything else is a `TypeError` or `RangeError`.
 *
 * Rules this file keeps:
 * - Each class here comes back from a worker or child process as itself: the list at the end
 *   registers them with `_error_records.ts` when this module loads.
 *
 * @module
 */
import { describeValue } from "./_checks.ts";
import { registerErrorClassByName } from "./_error_records.ts";

/** Options for {@linkcode WorkerCrashedError}. */
export interface WorkerCrashedErrorOptions {
  /** The worker's exit code, or minus the signal number (as `Process.exitCode`). */
  exitCode?: number | null;
  /** The name of the signal that ended the worker, if one did. */
  signal?: string | null;
  /** The last lines that the worker wrote to stderr, if they were kept. */
  stderrTail?: string;
  /** What was known of the crash, such as an uncaught error in the worker. */
  cause?: unknown;
}

/**
 * A worker thread or child process died while it ran a task: an uncaught error outside the task,
 * `Deno.exit()` / `process.exit()`, a signal from outside, or running out of memory. Only the task
 * that it was running rejects with this error.
 *
 * @example Tell a crash from a task's own error
 * ```ts
 * import { WorkerCrashedError } from "@multiproc/multiproc";
 *
 * const error = new WorkerCrashedError("Worker 'Pool-1-worker-2' crashed", { exitCode: -9, signal: "SIGKILL" });
 * console.log(error instanceof WorkerCrashedError, error.exitCode); // true -9
 * ```
 */
export class WorkerCrashedError extends Error {
  /** Always `"WorkerCrashedError"`, also after the error crossed from a worker. */
  override name = "WorkerCrashedError";
  /** The worker's exit code, or minus the signal number; null when unknown. */
  readonly exitCode: number | null;
  /** The name of the signal that ended the worker, or null. */
  readonly signal: string | null;
  /** The last lines of the worker's stderr, or an empty string when none were kept. */
  readonly stderrTail: string;

  /**
   * Creates the error.
   *
   * @param message What crashed, in a sentence.
   * @param options The exit code, signal, stderr tail and cause.
   */
  constructor(message: string, options: WorkerCrashedErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.exitCode = options.exitCode ?? null;
    this.signal = options.signal ?? null;
    this.stderrTail = options.stderrTail ?? "";
  }
}

/**
 * A worker thread or child process ran out of memory under its `maxHeapMb` limit. It is a
 * {@linkcode WorkerCrashedError}, so code that handles crashes handles this one too.
 *
 * @example
 * ```ts
 * import { OutOfMemoryError, WorkerCrashedError } from "@multiproc/multiproc";
 *
 * const error = new OutOfMemoryError("Process-1 ran out of memory under 'maxHeapMb' 64", { exitCode: -5 });
 * console.log(error instanceof WorkerCrashedError); // true
 * ```
 */
export class OutOfMemoryError extends WorkerCrashedError {
  /** Always `"OutOfMemoryError"`, also after the error crossed from a worker. */
  override name = "OutOfMemoryError";
}

/**
 * A pool can no longer run tasks: a worker crashed under `onCrash: "break"`, or the pool was
 * terminated. Every pending task rejects with it, as with Python's `BrokenProcessPool`.
 *
 * @example
 * ```ts
 * import { BrokenPoolError } from "@multiproc/multiproc";
 *
 * const error = new BrokenPoolError("The pool was terminated");
 * console.log(error.name); // "BrokenPoolError"
 * ```
 */
export class BrokenPoolError extends Error {
  /** Always `"BrokenPoolError"`, also after the error crossed from a worker. */
  override name = "BrokenPoolError";
}

/**
 * A wait ran past its `timeoutMs`: a task, a future, a queue operation or a lock acquisition.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "@multiproc/multiproc";
 *
 * const error = new TimeoutError("The task did not finish within 100 ms");
 * console.log(error instanceof Error); // true
 * ```
 */
export class TimeoutError extends Error {
  /** Always `"TimeoutError"`, also after the error crossed from a worker. */
  override name = "TimeoutError";
}

/**
 * A future was cancelled before it could settle, as Python's `concurrent.futures.CancelledError`.
 *
 * @example
 * ```ts
 * import { CancelledError } from "@multiproc/multiproc";
 *
 * console.log(new CancelledError("The task was cancelled").name); // "CancelledError"
 * ```
 */
export class CancelledError extends Error {
  /** Always `"CancelledError"`, also after the error crossed from a worker. */
  override name = "CancelledError";
}

/**
 * `putNowait()` on a queue that is full, as Python's `queue.Full`.
 *
 * @example
 * ```ts
 * import { QueueFullError } from "@multiproc/multiproc";
 *
 * console.log(new QueueFullError("The queue is full: maxsize 1").name); // "QueueFullError"
 * ```
 */
export class QueueFullError extends Error {
  /** Always `"QueueFullError"`, also after the error crossed from a worker. */
  override name = "QueueFullError";
}

/**
 * `getNowait()` on a queue that is empty, as Python's `queue.Empty`.
 *
 * @example
 * ```ts
 * import { QueueEmptyError } from "@multiproc/multiproc";
 *
 * console.log(new QueueEmptyError("The queue is empty").name); // "QueueEmptyError"
 * ```
 */
export class QueueEmptyError extends Error {
  /** Always `"QueueEmptyError"`, also after the error crossed from a worker. */
  override name = "QueueEmptyError";
}

/**
 * A lock's owner (a thread or process) ended while it held the lock. The lock was released for it;
 * the first acquisition after that fails with this error, once, to say that whatever the lock
 * guarded may be half-updated. Acquire again to go on. This follows Win32's abandoned mutexes.
 *
 * @example
 * ```ts
 * import { AbandonedLockError } from "@multiproc/multiproc";
 *
 * const error = new AbandonedLockError("The lock's owner ended", { ownerId: 3 });
 * console.log(error.name, error.ownerId); // "AbandonedLockError" 3
 * ```
 */
export class AbandonedLockError extends Error {
  /** Always `"AbandonedLockError"`, also after the error crossed from a worker. */
  override name = "AbandonedLockError";
  /** The owner id of the thread or process that ended while holding the lock. */
  readonly ownerId: number;

  /**
   * Creates the error.
   *
   * @param message What happened, in a sentence.
   * @param options The owner id of the thread or process that ended.
   */
  constructor(message: string, options: { ownerId: number }) {
    super(message);
    this.ownerId = options.ownerId;
  }
}

/**
 * A {@linkcode Barrier} was broken: a party timed out, or it was aborted or reset while parties
 * waited, as Python's `threading.BrokenBarrierError`.
 *
 * @example
 * ```ts
 * import { BrokenBarrierError } from "@multiproc/multiproc";
 *
 * console.log(new BrokenBarrierError("The barrier is broken").name); // "BrokenBarrierError"
 * ```
 */
export class BrokenBarrierError extends Error {
  /** Always `"BrokenBarrierError"`, also after the error crossed from a worker. */
  override name = "BrokenBarrierError";
}

/**
 * A put or get on a queue that was shut down, as Python 3.13's `queue.ShutDown`: every put after
 * `shutdown()`, and every get once the queue is empty (at once after `shutdown({ immediate: true })`).
 *
 * @example
 * ```ts
 * import { Queue, ShutDown } from "@multiproc/multiproc";
 *
 * const q = new Queue<number>();
 * q.shutdown();
 * try {
 *   await q.put(1);
 * } catch (error) {
 *   console.log(error instanceof ShutDown); // true
 * }
 * ```
 */
export class ShutDown extends Error {
  /** Always `"ShutDown"`, also after the error crossed from a worker. */
  override name = "ShutDown";
}

/**
 * `recv()` on a pipe's end whose other end was closed, or ended with the thread or process that
 * held it, once no message is left, as Python's `EOFError`.
 *
 * @example
 * ```ts
 * import { EOFError, Pipe } from "@multiproc/multiproc";
 *
 * const [a, b] = Pipe();
 * b.close();
 * try {
 *   await a.recv();
 * } catch (error) {
 *   console.log(error instanceof EOFError); // true
 * }
 * ```
 */
export class EOFError extends Error {
  /** Always `"EOFError"`, also after the error crossed from a worker. */
  override name = "EOFError";
}

/**
 * Makes errors of a custom class come back from workers and child processes as instances of that
 * class, found by its name. Errors are rebuilt without calling the constructor: their message,
 * stack, `cause` and own fields are restored as they were thrown. Built-in errors and multiproc's
 * own need no registration. Register in the process that receives the error, usually the parent.
 *
 * @param ctor The error class; its `name` is the key, so two classes of the same name collide.
 * @throws {TypeError} When `ctor` is not a class whose instances are errors.
 * @example Catch a task's own error class
 * ```ts
 * import { registerErrorClass, ThreadPool } from "@multiproc/multiproc";
 *
 * class NotFoundError extends Error {
 *   override name = "NotFoundError";
 * }
 * registerErrorClass(NotFoundError);
 *
 * await using pool = new ThreadPool({ size: 1 });
 * const lookup = (key: string) => {
 *   class NotFoundError extends Error {
 *     override name = "NotFoundError";
 *   }
 *   throw new NotFoundError(`No entry for '${key}'`);
 * };
 * try {
 *   await pool.apply(lookup, ["x"]);
 * } catch (error) {
 *   console.log(error instanceof NotFoundError); // true
 * }
 * ```
 */
export function registerErrorClass(ctor: new (...args: never[]) => Error): void {
  if (
    typeof ctor !== "function" || typeof ctor.prototype !== "object" ||
    !(ctor.prototype instanceof Error || ctor === Error)
  ) {
    throw new TypeError(
      `'ctor' must be a class that extends Error: received ${describeValue(ctor)}`,
    );
  }
  registerErrorClassByName(ctor);
}

// Registered on load rather than listed in _error_records.ts, so that the import runs one way.
const ownClasses = [
  WorkerCrashedError,
  OutOfMemoryError,
  BrokenPoolError,
  TimeoutError,
  CancelledError,
  QueueFullError,
  QueueEmptyError,
  AbandonedLockError,
  BrokenBarrierError,
  ShutDown,
  EOFError,
];
for (const ctor of ownClasses) registerErrorClassByName(ctor);
