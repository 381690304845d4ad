/**
 * {@linkcode Future}, {@linkcode asCompleted} and {@linkcode wait}, as in Python's
 * `concurrent.futures`.
 *
 * @module
 */
import {
  checkOneOf,
  checkOptions,
  checkTimeoutMs,
  describeValue,
  type LongTimeout,
  setLongTimeout,
} from "./_checks.ts";
import { TimeoutError } from "./errors.ts";

/** What a {@linkcode Future} reads and controls of the task behind it. */
export interface FutureTask<T> {
  /** Settles once: resolved, rejected, or rejected because cancelled. */
  readonly promise: Promise<T>;
  /** The task's state now. */
  state(): "pending" | "running" | "finished" | "cancelled";
  /** Cancels the task; false when it had already settled. */
  cancel(reason?: unknown): boolean;
  /**
   * Where present, the future sets it instead of attaching a handler to `promise` up front: the
   * task then marks its promise handled only when it rejects, which spares a promise per task.
   */
  quiet?: boolean;
}

/**
 * The eventual outcome of a task submitted to a pool, as Python's `concurrent.futures.Future`. It
 * is a promise-like object: `await future` gives the result or throws the task's error. Unlike a
 * bare promise, a future that rejects and is never awaited raises no unhandled rejection.
 *
 * @typeParam T The task's result.
 * @example Submit, cancel, await
 * ```ts
 * import { ThreadPool } from "@multiproc/multiproc";
 *
 * await using pool = new ThreadPool({ size: 1 });
 * const future = pool.submit((x: number) => x * 2, [21]);
 * console.log(await future, future.done()); // 42 true
 * ```
 */
export class Future<T = unknown> implements PromiseLike<T> {
  #task: FutureTask<T>;

  /**
   * Wraps a task; pools make futures, callers do not.
   *
   * @param task The task's promise, state and cancellation.
   */
  constructor(task: FutureTask<T>) {
    this.#task = task;
    // Python's futures hold their exception until asked; so does this one.
    if ("quiet" in task) task.quiet = true;
    else task.promise.catch(() => {});
  }

  /**
   * Attaches callbacks for the result and the error, as `Promise.prototype.then`.
   *
   * @param onFulfilled Called with the result.
   * @param onRejected Called with the task's error, a `CancelledError`, a `TimeoutError` or the
   * abort signal's reason.
   * @returns A promise of what the callback returns.
   */
  then<R1 = T, R2 = never>(
    onFulfilled?: ((value: T) => R1 | PromiseLike<R1>) | null,
    onRejected?: ((reason: unknown) => R2 | PromiseLike<R2>) | null,
  ): Promise<R1 | R2> {
    return this.#task.promise.then(onFulfilled, onRejected);
  }

  /**
   * Attaches a callback for the error, as `Promise.prototype.catch`.
   *
   * @param onRejected Called with the error.
   * @returns A promise of the result or of what the callback returns.
   */
  catch<R = never>(onRejected?: ((reason: unknown) => R | PromiseLike<R>) | null): Promise<T | R> {
    return this.#task.promise.catch(onRejected);
  }

  /**
   * Attaches a callback for either outcome, as `Promise.prototype.finally`.
   *
   * @param onFinally Called once the future has settled.
   * @returns A promise that settles as the future does.
   */
  finally(onFinally?: (() => void) | null): Promise<T> {
    return this.#task.promise.finally(onFinally);
  }

  /**
   * Cancels the task: a queued task leaves the queue, and a running one has its worker stopped
   * (and replaced). The future rejects with `reason`, a `CancelledError` by default.
   *
   * @param reason What the future rejects with.
   * @returns True when the task was cancelled, false when it had already settled.
   */
  cancel(reason?: unknown): boolean {
    return this.#task.cancel(reason);
  }

  /**
   * Whether the future has settled: resolved, rejected or cancelled.
   *
   * @returns True once settled.
   */
  done(): boolean {
    const state = this.#task.state();
    return state === "finished" || state === "cancelled";
  }

  /**
   * Whether the task runs in a worker now.
   *
   * @returns True from the moment a worker takes the task until it settles.
   */
  running(): boolean {
    return this.#task.state() === "running";
  }

  /**
   * Whether the future was cancelled, by `cancel()`, an abort signal or a timeout.
   *
   * @returns True once cancelled.
   */
  cancelled(): boolean {
    return this.#task.state() === "cancelled";
  }

  /** `"Future"`, for `Object.prototype.toString`. */
  get [Symbol.toStringTag](): string {
    return "Future";
  }
}

/** Options for {@linkcode asCompleted}. */
export interface AsCompletedOptions {
  /** The longest wait for all of them, in milliseconds; then a `TimeoutError` is thrown. */
  timeoutMs?: number;
}

function toList<F>(futures: Iterable<F>, what: string): F[] {
  if (
    futures === null || typeof futures !== "object" ||
    typeof (futures as Iterable<F>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(
      `${what} 'futures' must be an iterable of futures or promises: received ${
        describeValue(futures)
      }`,
    );
  }
  // A future given twice counts once, as in Python, where futures are collected in a set.
  const list = [...new Set(futures)];
  for (const [index, future] of list.entries()) {
    if (typeof (future as PromiseLike<unknown>)?.then !== "function") {
      throw new TypeError(
        `${what} 'futures' must hold futures or promises: item ${index} is ${
          describeValue(future)
        }`,
      );
    }
  }
  return list;
}

/**
 * Yields the futures (or promises) as they settle, first settled first, as Python's
 * `as_completed()`. Each is yielded itself, settled: `await` it for its result or error.
 *
 * @param futures The futures or promises to watch; each counts once.
 * @param options `timeoutMs`: the longest wait for all of them.
 * @returns An async iterable of the same futures, in the order they settle.
 * @throws {TimeoutError} (from the iteration) When some are still pending after `timeoutMs`.
 * @throws {TypeError} When `futures` is not an iterable of futures or promises.
 * @throws {RangeError} When `timeoutMs` is negative or NaN; `Infinity` waits without limit.
 * @throws {TypeError} When `timeoutMs` is not a number, or an option is unknown.
 * @example Handle results as they come
 * ```ts
 * import { asCompleted, ThreadPool } from "@multiproc/multiproc";
 *
 * await using pool = new ThreadPool({ size: 2 });
 * const sleep = async (ms: number) => {
 *   await new Promise((resolve) => setTimeout(resolve, ms));
 *   return ms;
 * };
 * const futures = [200, 10].map((ms) => pool.submit(sleep, [ms]));
 * for await (const future of asCompleted(futures)) console.log(await future); // 10, then 200
 * ```
 */
export function asCompleted<F extends PromiseLike<unknown>>(
  futures: Iterable<F>,
  options: AsCompletedOptions = {},
): AsyncIterable<F> {
  const list = toList(futures, "asCompleted()");
  const timeoutMs = checkTimeoutMs(
    checkOptions(options, "asCompleted()", ["timeoutMs"]).timeoutMs,
    "asCompleted()",
  );
  return {
    async *[Symbol.asyncIterator]() {
      const settled: F[] = [];
      let wake: (() => void) | undefined;
      for (const future of list) {
        const done = () => {
          settled.push(future);
          wake?.();
        };
        future.then(done, done);
      }
      let timer: LongTimeout | undefined;
      let timedOut = false;
      if (timeoutMs !== undefined) {
        timer = setLongTimeout(() => {
          timedOut = true;
          wake?.();
        }, timeoutMs);
      }
      try {
        for (let yielded = 0; yielded < list.length;) {
          if (settled.length > yielded) {
            yield settled[yielded++];
            continue;
          }
          if (timedOut) {
            throw new TimeoutError(
              `${
                list.length - yielded
              } of ${list.length} futures did not finish within ${timeoutMs} ms`,
            );
          }
          await new Promise<void>((resolve) => wake = resolve);
          wake = undefined;
        }
      } finally {
        timer?.clear();
      }
    },
  };
}

/** When {@linkcode wait} returns, as in Python. */
export type ReturnWhen = "FIRST_COMPLETED" | "FIRST_EXCEPTION" | "ALL_COMPLETED";

/** Options for {@linkcode wait}. */
export interface WaitOptions {
  /** The longest wait, in milliseconds; then `wait` returns what has settled so far. */
  timeoutMs?: number;
  /**
   * `"ALL_COMPLETED"` (the default): when all have settled; `"FIRST_COMPLETED"`: when any has;
   * `"FIRST_EXCEPTION"`: when any rejects (a cancelled future does not count), else when all have
   * settled.
   */
  returnWhen?: ReturnWhen;
}

/** What {@linkcode wait} returns: the futures that settled and those that did not. */
export interface WaitResult<F> {
  /** The futures that settled. */
  done: Set<F>;
  /** The futures that are still pending. */
  notDone: Set<F>;
}

const returnWhens: readonly ReturnWhen[] = ["FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"];

/**
 * Waits for futures (or promises), as Python's `concurrent.futures.wait()`. It never rejects
 * because of a future: it sorts them into those that settled and those that did not.
 *
 * @param futures The futures or promises to wait for; each counts once.
 * @param options `returnWhen` and `timeoutMs`.
 * @returns The sets `done` and `notDone`.
 * @throws {TypeError} When `futures` is not an iterable of futures or promises, or `returnWhen` is
 * not one of the three names.
 * @throws {RangeError} When `timeoutMs` is negative or NaN; `Infinity` waits without limit.
 * @throws {TypeError} When `timeoutMs` is not a number, or an option is unknown.
 * @example Wait for the first one
 * ```ts
 * import { ThreadPool, wait } from "@multiproc/multiproc";
 *
 * await using pool = new ThreadPool({ size: 2 });
 * const sleep = async (ms: number) => {
 *   await new Promise((resolve) => setTimeout(resolve, ms));
 *   return ms;
 * };
 * const futures = [300, 10].map((ms) => pool.submit(sleep, [ms]));
 * const { done, notDone } = await wait(futures, { returnWhen: "FIRST_COMPLETED" });
 * console.log(done.size, notDone.size); // 1 1
 * ```
 */
export function wait<F extends PromiseLike<unknown>>(
  futures: Iterable<F>,
  options: WaitOptions = {},
): Promise<WaitResult<F>> {
  let list: F[];
  let timeoutMs: number | undefined;
  let returnWhen: ReturnWhen;
  try {
    list = toList(futures, "wait()");
    const checked = checkOptions(options, "wait()", ["timeoutMs", "returnWhen"]);
    timeoutMs = checkTimeoutMs(checked.timeoutMs, "wait()");
    returnWhen = checkOneOf(checked.returnWhen, "returnWhen", returnWhens, "wait()") ??
      "ALL_COMPLETED";
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise((resolve) => {
    const done = new Set<F>();
    let timer: LongTimeout | undefined;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      timer?.clear();
      resolve({ done: new Set(done), notDone: new Set(list.filter((f) => !done.has(f))) });
    };
    if (list.length === 0) return finish();
    for (const future of list) {
      future.then(
        () => {
          done.add(future);
          if (returnWhen === "FIRST_COMPLETED" || done.size === list.length) finish();
        },
        () => {
          done.add(future);
          const cancelled = future instanceof Future && future.cancelled();
          if (
            returnWhen === "FIRST_COMPLETED" || (returnWhen === "FIRST_EXCEPTION" && !cancelled) ||
            done.size === list.length
          ) finish();
        },
      );
    }
    if (timeoutMs !== undefined) timer = setLongTimeout(finish, timeoutMs);
  });
}
