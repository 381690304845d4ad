/**
 * {@linkcode Future}, {@linkcode asCompleted} and {@linkcode wait}, as in Python's
 * `concurrent.futures`.
 *
 * Rules this file keeps:
 * - A future is handed out itself, never unwrapped: `asCompleted()` is a hand-written async
 *   iterator, because an async generator (and any promise resolution) replaces a thenable with
 *   its value.
 * - Waiting never rejects because of a future's outcome; only a timeout ends a wait early.
 * - `timeoutMs` is any non-negative number, `Infinity` meaning no limit, however large.
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

/** Options for {@linkcode Future.result} and {@linkcode Future.exception}. */
export interface FutureWaitOptions {
  /**
   * The longest wait, in milliseconds; then the call rejects with a `TimeoutError` and the future
   * goes on. `Infinity` (or leaving it out) waits without limit.
   */
  timeoutMs?: number;
}

const TIMEOUT_HINT = "pass { timeoutMs: 1000 } for a wait of at most a second";

/** Settles with the outcome of `promise`, or rejects with a `TimeoutError` after `timeoutMs`. */
function within<T>(promise: Promise<T>, timeoutMs: number | undefined, what: string): Promise<T> {
  if (timeoutMs === undefined || timeoutMs === Infinity) return promise;
  return new Promise<T>((resolve, reject) => {
    const timer = setLongTimeout(
      () => reject(new TimeoutError(`${what} did not finish within ${timeoutMs} ms`)),
      timeoutMs,
    );
    promise.then(
      (value) => {
        timer.clear();
        resolve(value);
      },
      (error) => {
        timer.clear();
        reject(error);
      },
    );
  });
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
  // Closures rather than the callbacks themselves, so that the type stays covariant in T.
  #callbacks: (() => void)[] | undefined;

  /**
   * Wraps a task; pools make futures, callers do not.
   *
   * @param task The task's promise, state and cancellation.
   * @throws {TypeError} When `task` is not one, as for `new Future()` written as in Python.
   */
  constructor(task: FutureTask<T>) {
    if (
      typeof task !== "object" || task === null || !(task.promise instanceof Promise) ||
      typeof task.state !== "function" || typeof task.cancel !== "function"
    ) {
      throw new TypeError(
        `Future is made by a pool's submit(), not by new Future(): received ${
          describeValue(task)
        }; call pool.submit(fn, args), or use a Promise for a value settled by hand`,
      );
    }
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
   * The task's result, as Python's `Future.result(timeout)`: waits for the task, at most
   * `timeoutMs`.
   *
   * @param options `timeoutMs`: the longest wait; no limit when left out or `Infinity`.
   * @returns A promise of the result.
   * @throws {TimeoutError} (as a rejection) When the task has not finished within `timeoutMs`;
   * the task goes on.
   * @throws {CancelledError} (as a rejection) When the task was cancelled (or the cancellation's
   * own reason: an abort signal's, a task timeout's `TimeoutError`).
   * @throws {Error} (as a rejection) The task's own error, when it failed.
   * @throws {TypeError} When `options` is not an object, or has an unknown key.
   * @throws {RangeError} When `timeoutMs` is negative or NaN.
   * @example Wait at most a second
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * await using pool = new ThreadPool({ size: 1 });
   * const future = pool.submit((x: number) => x + 1, [41]);
   * console.log(await future.result({ timeoutMs: 10_000 })); // 42
   * ```
   */
  result(options?: FutureWaitOptions): Promise<T> {
    const timeoutMs = checkTimeoutMs(
      checkOptions(options, "Future.result()", ["timeoutMs"], TIMEOUT_HINT).timeoutMs,
      "Future.result()",
    );
    return within(this.#task.promise, timeoutMs, "The future");
  }

  /**
   * The task's error, as Python's `Future.exception(timeout)`: waits for the task, at most
   * `timeoutMs`, and gives what it threw, or `undefined` when it succeeded.
   *
   * @param options `timeoutMs`: the longest wait; no limit when left out or `Infinity`.
   * @returns A promise of the task's error, or of `undefined` after a result.
   * @throws {TimeoutError} (as a rejection) When the task has not finished within `timeoutMs`.
   * @throws {CancelledError} (as a rejection) When the task was cancelled (or the cancellation's
   * own reason).
   * @throws {TypeError} When `options` is not an object, or has an unknown key.
   * @throws {RangeError} When `timeoutMs` is negative or NaN.
   * @example Look at a failure without try/catch
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * await using pool = new ThreadPool({ size: 1 });
   * const future = pool.submit((text: string) => JSON.parse(text), ["{"]);
   * const error = await future.exception();
   * console.log(error instanceof SyntaxError); // true
   * ```
   */
  exception(options?: FutureWaitOptions): Promise<unknown> {
    const timeoutMs = checkTimeoutMs(
      checkOptions(options, "Future.exception()", ["timeoutMs"], TIMEOUT_HINT).timeoutMs,
      "Future.exception()",
    );
    const outcome = this.#task.promise.then(
      () => undefined,
      (error) => {
        if (this.cancelled()) throw error;
        return error;
      },
    );
    return within(outcome, timeoutMs, "The future");
  }

  /**
   * Calls `fn(future)` once the future has settled, as Python's `add_done_callback()`: at once if
   * it already has, else when it settles, in the order added. A callback that throws is reported
   * on stderr and does not stop the others.
   *
   * @param fn Called with this future.
   * @throws {TypeError} When `fn` is not a function.
   * @example
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * await using pool = new ThreadPool({ size: 1 });
   * const future = pool.submit(() => "ready");
   * const seen = new Promise((resolve) => future.addDoneCallback((f) => resolve(f.done())));
   * console.log(await seen); // true
   * ```
   */
  addDoneCallback(fn: (future: Future<T>) => void): void {
    if (typeof fn !== "function") {
      throw new TypeError(
        `Future.addDoneCallback() 'fn' must be a function: received ${describeValue(fn)}`,
      );
    }
    if (this.done()) return this.#call(fn);
    if (this.#callbacks === undefined) {
      const callbacks: (() => void)[] = this.#callbacks = [];
      const run = () => {
        this.#callbacks = undefined;
        for (const callback of callbacks) callback();
      };
      this.#task.promise.then(run, run);
    }
    this.#callbacks.push(() => this.#call(fn));
  }

  #call(fn: (future: Future<T>) => void): void {
    try {
      fn(this);
    } catch (error) {
      // As Python logs it: a callback's failure is the callback's, not the future's.
      console.error("Exception in a done callback of a Future:", error);
    }
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
  /**
   * The longest wait for all of them, in milliseconds from the call; then the iteration throws a
   * `TimeoutError`, after the futures that settled in time. `Infinity` waits without limit.
   */
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

/** Whether `future` is known to have settled already, without waiting for a callback. */
function settledNow(future: unknown): boolean {
  return future instanceof Future && future.done();
}

/**
 * The iterator of {@linkcode asCompleted}. Written by hand rather than as an async generator:
 * a generator's `yield` would await each future and hand out its value instead of the future.
 */
class AsCompletedIterator<F extends PromiseLike<unknown>> implements AsyncIterableIterator<F> {
  #total: number;
  #timeoutMs: number;
  /** The futures that settled in time, in the order they settled. */
  #settled: F[] = [];
  #next = 0;
  #finished = false;
  #timedOut = false;
  #wake: (() => void) | undefined;
  #timer: LongTimeout | undefined;

  constructor(list: F[], timeoutMs: number) {
    this.#total = list.length;
    this.#timeoutMs = timeoutMs;
    for (const future of list) {
      // Those settled before the call come first, as in Python.
      if (settledNow(future)) this.#settled.push(future);
    }
    for (const future of list) {
      if (settledNow(future)) continue;
      const done = () => {
        // One that settles after the deadline is not yielded: the iteration has timed out.
        if (this.#timedOut || this.#finished) return;
        this.#settled.push(future);
        this.#wake?.();
      };
      future.then(done, done);
    }
    // Armed now, as the deadline counts from the call. Promises that had settled before it
    // report in microtasks, which run before any timer: they count as in time, even for 0 ms.
    if (this.#settled.length < this.#total) {
      this.#timer = setLongTimeout(() => {
        this.#timer = undefined;
        this.#timedOut = true;
        this.#wake?.();
      }, timeoutMs);
    }
  }

  async next(): Promise<IteratorResult<F, undefined>> {
    while (!this.#finished) {
      if (this.#next < this.#settled.length) {
        const future = this.#settled[this.#next];
        this.#settled[this.#next++] = undefined as unknown as F;
        if (this.#next === this.#total) this.#finish();
        return { value: future, done: false };
      }
      if (this.#timedOut) {
        this.#finish();
        throw new TimeoutError(
          `${
            this.#total - this.#next
          } of ${this.#total} futures did not finish within ${this.#timeoutMs} ms`,
        );
      }
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
    return { value: undefined, done: true };
  }

  return(): Promise<IteratorResult<F, undefined>> {
    this.#finish();
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  #finish(): void {
    this.#finished = true;
    this.#timer?.clear();
    this.#timer = undefined;
    this.#settled = [];
    this.#wake?.();
  }
}

/**
 * Yields the futures (or promises) themselves as they settle, first settled first, as Python's
 * `as_completed()`: the same objects that were passed in, each once, with those that had settled
 * before the call first. A future that failed or was cancelled is yielded like any other; `await`
 * it, or call `result()` or `exception()`, for its outcome. Only a timeout ends the iteration
 * early.
 *
 * @param futures The futures or promises to watch; each counts once.
 * @param options `timeoutMs`: the longest wait for all of them, from this call.
 * @returns An async iterator of the same futures, in the order they settle. TypeScript types the
 * variable of `for await` as each one's awaited value; it holds the future itself, so `await`
 * gives the result, and `f as unknown as Future<T>` reaches the future's methods.
 * @throws {TimeoutError} (from the iteration) When some are still pending after `timeoutMs`, once
 * those that settled in time have been yielded.
 * @throws {TypeError} When `futures` is not an iterable of futures or promises, or `options` is
 * not an object or has an unknown key.
 * @throws {RangeError} When `timeoutMs` is negative or NaN.
 * @example Handle each outcome as it comes
 * ```ts
 * import { asCompleted, ThreadPool } from "@multiproc/multiproc";
 *
 * await using pool = new ThreadPool({ size: 2 });
 * const sleep = async (ms: number) => {
 *   await new Promise((resolve) => setTimeout(resolve, ms));
 *   if (ms > 100) throw new Error(`${ms} ms is too long`);
 *   return ms;
 * };
 * const futures = [200, 10].map((ms) => pool.submit(sleep, [ms]));
 * for await (const future of asCompleted(futures)) {
 *   try {
 *     console.log(await future); // 10
 *   } catch (error) {
 *     console.log((error as Error).message); // "200 ms is too long"
 *   }
 * }
 * ```
 */
export function asCompleted<F extends PromiseLike<unknown>>(
  futures: Iterable<F>,
  options?: AsCompletedOptions,
): AsyncIterableIterator<F> {
  const list = toList(futures, "asCompleted()");
  const timeoutMs = checkTimeoutMs(
    checkOptions(options, "asCompleted()", ["timeoutMs"], TIMEOUT_HINT).timeoutMs,
    "asCompleted()",
  );
  return new AsCompletedIterator(list, timeoutMs ?? Infinity);
}

/** When {@linkcode wait} returns, as in Python. */
export type ReturnWhen = "FIRST_COMPLETED" | "FIRST_EXCEPTION" | "ALL_COMPLETED";

/** Options for {@linkcode wait}. */
export interface WaitOptions {
  /**
   * The longest wait, in milliseconds; then `wait` returns what has settled so far. `Infinity`
   * waits without limit.
   */
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
 * because of a future: it sorts them into those that settled and those that did not. Every future
 * that has settled when it returns is in `done`, whatever `returnWhen` says: with futures that
 * had all settled before the call, `"FIRST_COMPLETED"` reports them all.
 *
 * @param futures The futures or promises to wait for; each counts once.
 * @param options `returnWhen` and `timeoutMs`.
 * @returns The sets `done` and `notDone`.
 * @throws {TypeError} When `futures` is not an iterable of futures or promises, or `returnWhen` is
 * not one of the three names, or `options` is not an object or has an unknown key.
 * @throws {RangeError} When `timeoutMs` is negative or NaN.
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
  options?: WaitOptions,
): Promise<WaitResult<F>> {
  let list: F[];
  let timeoutMs: number | undefined;
  let returnWhen: ReturnWhen;
  try {
    list = toList(futures, "wait()");
    const checked = checkOptions(options, "wait()", ["timeoutMs", "returnWhen"], TIMEOUT_HINT);
    timeoutMs = checkTimeoutMs(checked.timeoutMs, "wait()");
    returnWhen = checkOneOf(checked.returnWhen, "returnWhen", returnWhens, "wait()") ??
      "ALL_COMPLETED";
  } catch (error) {
    return Promise.reject(error);
  }
  return new Promise((resolve) => {
    const done = new Set<F>();
    let failed = false;
    let timer: LongTimeout | undefined;
    let finished = false;
    const finish = () => {
      if (finished) return;
      finished = true;
      timer?.clear();
      resolve({ done: new Set(done), notDone: new Set(list.filter((f) => !done.has(f))) });
    };
    const check = () => {
      scheduled = false;
      if (
        done.size === list.length || (returnWhen === "FIRST_COMPLETED" && done.size > 0) ||
        (returnWhen === "FIRST_EXCEPTION" && failed)
      ) finish();
    };
    // Outcomes are gathered for one microtask before the conditions are checked, so that futures
    // that settle together (all those settled before the call, for one) are all in `done`.
    let scheduled = false;
    const schedule = () => {
      if (scheduled || finished) return;
      scheduled = true;
      queueMicrotask(check);
    };
    for (const future of list) {
      if (settledNow(future)) done.add(future);
      future.then(
        () => {
          done.add(future);
          schedule();
        },
        () => {
          done.add(future);
          if (!(future instanceof Future && future.cancelled())) failed = true;
          schedule();
        },
      );
    }
    schedule();
    if (timeoutMs !== undefined) timer = setLongTimeout(finish, timeoutMs);
  });
}
