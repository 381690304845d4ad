/**
 * {@linkcode BasePool}: the pool API written once (`submit`, `apply`, `map`, `starmap`, `imap`,
 * `imapUnordered`, `close`, `shutdown`, `terminate`, `join`, `waitForRoom`, `stats`), with its
 * argument checks and its documentation, over a {@linkcode PoolBackend}: the local engine of
 * `ThreadPool` and `Pool`, or the remote one of `DistributedPool`.
 *
 * Rules this file keeps:
 * - Every argument is checked here, before a backend sees it; a backend runs what it is given.
 * - The backend stays out of the public types: a pool class gets its own through
 *   {@linkcode attachBackend}, which no public file exports.
 * - Nothing here knows where the workers are; what differs by backend (the defaults of chunks and
 *   buffers, how a task is found, sent and cancelled) is asked of it.
 *
 * @module
 */
import { TaskMode } from "./_protocol.ts";
import type { PoolStats, TargetEntry } from "./_pool_engine.ts";
import {
  checkArray,
  checkBoolean,
  checkModule,
  checkOptions,
  checkPositiveInteger,
  checkSignal,
  checkTimeoutMs,
} from "./_checks.ts";
import { Future, type FutureTask } from "./future.ts";
import { checkIterable, isAsyncIterable } from "./_iterables.ts";
import { type ChunkHooks, eagerMap, lazyMap } from "./_chunked_map.ts";

/** Options for one task: {@linkcode BasePool.apply} and {@linkcode BasePool.submit}. */
export interface TaskOptions {
  /** Cancels the task when aborted; the task rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Cancels the task when it has run for this many milliseconds, counted from when a worker
   * begins it (time spent waiting does not count); it rejects with a `TimeoutError` and its worker
   * is replaced. `Infinity` sets no limit.
   */
  timeoutMs?: number;
  /** A module URL or path that exports `fn`; defaults to the pool's `module`, then the main one. */
  module?: string | URL;
}

/** Options for {@linkcode BasePool.map} and {@linkcode BasePool.starmap}. */
export interface MapOptions {
  /**
   * How many items each task carries. By default, as Python: `ceil(length / (4 * size))` for input
   * of known length; for `imap` and input of unknown length, it grows with the measured speed of
   * the items, so that one task takes about a millisecond.
   */
  chunksize?: number;
  /** A module URL or path that exports `fn`; defaults to the pool's `module`, then the main one. */
  module?: string | URL;
  /**
   * The longest wait for the whole call, in milliseconds from the call, as Python's
   * `Executor.map(timeout=)`: `map` and `starmap` reject with a `TimeoutError`; `imap` and
   * `imapUnordered` yield the results that are ready, then throw one. Tasks still queued are
   * cancelled; running ones finish. `Infinity`, or leaving it out, waits without limit.
   */
  timeoutMs?: number;
}

/** Options for {@linkcode BasePool.close}. */
export interface CloseOptions {
  /**
   * Cancel every task that no worker has started, as Python's `shutdown(cancel_futures=True)`:
   * their futures reject with a `CancelledError`. Running tasks finish.
   */
  cancelFutures?: boolean;
}

/** Options for {@linkcode BasePool.shutdown}, as Python's `Executor.shutdown()`. */
export interface ShutdownOptions extends CloseOptions {
  /** Wait until the pending tasks have run and the workers are gone; true by default. */
  wait?: boolean;
}

/** Options for {@linkcode BasePool.imap} and {@linkcode BasePool.imapUnordered}. */
export interface ImapOptions extends MapOptions {
  /**
   * How many tasks (chunks) may be submitted and not yet consumed: how far the pool runs ahead of a
   * slow consumer. Defaults to `8 * size`.
   */
  buffersize?: number;
}

const TASK_OPTION_NAMES = ["signal", "timeoutMs", "module"] as const;
const MAP_OPTION_NAMES = ["chunksize", "module", "timeoutMs"] as const;
const IMAP_OPTION_NAMES = [...MAP_OPTION_NAMES, "buffersize"] as const;

/**
 * What a {@linkcode BasePool} runs on. Two implement it: the local engine of `ThreadPool` and `Pool`
 * (workers of this machine) and the remote one of `DistributedPool` (nodes reached through Redis).
 * Arguments come checked; what a backend still refuses, it throws.
 */
export interface PoolBackend<T extends FutureTask<unknown> = FutureTask<unknown>> {
  /** The pool class, for messages: `"ThreadPool"`, `"Pool"` or `"DistributedPool"`. */
  readonly kind: string;
  /** The pool's name, for messages. */
  readonly name: string;
  /** The largest number of workers; 0 where the workers are not the pool's own. */
  readonly size: number;
  /** Where functions are exported when a call does not say: the pool's `module` option. */
  readonly module: string | URL | undefined;
  /** `imap`'s `buffersize` when the call gives none. */
  readonly imapBuffer: number;
  /** How many chunks `map` over an async iterable keeps ahead. */
  readonly asyncMapBuffer: number;
  /** Throws why the pool takes no task now (closed, terminated, broken, or not allowed here). */
  admit(): void;
  /** Describes `fn` as a task's target; throws when its workers could not find it. */
  target(fn: unknown, module: string | URL | undefined, what: string): TargetEntry;
  /** Queues `fn(...args)`; throws a `QueueFullError` past `maxQueue`, or for an unsendable value. */
  submit(target: TargetEntry, args: unknown[], what: string): T;
  /** Cancels `task` when `signal` aborts or when it has run for `timeoutMs`. */
  watch(task: T, signal: AbortSignal | undefined, timeoutMs: number | undefined): void;
  /** The chunk size of `map` over `length` items when the call gives none. */
  mapChunk(length: number): number;
  /** How the map drivers submit and take back this backend's chunks. */
  chunkHooks(target: TargetEntry, mode: TaskMode, what: string): ChunkHooks<T>;
  /** Cancels every task that no worker has started. */
  cancelPending(): void;
  /** Takes no more tasks; those queued still run. */
  close(): void;
  /** Stops at once; resolves when nothing is left running. */
  terminate(): Promise<void>;
  /** Resolves once the pool is closed or terminated and done; rejects while it is open. */
  join(): Promise<void>;
  /** Resolves when there is room for a task under `maxQueue`, or when the pool takes no more. */
  room(): Promise<void>;
  /** Counts and timings. */
  stats(): PoolStats;
}

let attach: (pool: BasePool, backend: PoolBackend) => void;

/**
 * Gives `pool` its backend, once, from its constructor. Not a constructor parameter, so that the
 * backend's type stays out of the public API.
 */
export function attachBackend<T extends FutureTask<unknown>>(
  pool: BasePool,
  backend: PoolBackend<T>,
): void {
  attach(pool, backend as unknown as PoolBackend);
}

/**
 * What {@linkcode ThreadPool}, {@linkcode Pool} and `DistributedPool` share: the whole API. A pool
 * starts its workers as tasks need them, up to `size`, keeps several tasks in flight per worker,
 * and settles every task exactly once: resolved, rejected or cancelled.
 *
 * Idle workers do not keep the program alive, so a pool that is forgotten does not hold it open;
 * `close()` + `join()` (or `await using`) waits for the queued work, `terminate()` stops at once.
 */
export abstract class BasePool {
  #backend!: PoolBackend;

  static {
    attach = (pool, backend) => {
      if (pool.#backend !== undefined) throw new Error("Internal error: a pool's backend is set");
      pool.#backend = backend;
    };
  }

  /** The pool's name, for messages. */
  get name(): string {
    return this.#backend.name;
  }

  /**
   * The largest number of workers; for a `DistributedPool`, the sum of its queue's nodes' sizes as
   * they last reported them (0 before its first task connects it).
   */
  get size(): number {
    return this.#backend.size;
  }

  #task(
    fn: unknown,
    args: unknown,
    options: TaskOptions | undefined,
    what: string,
  ): FutureTask<unknown> {
    const backend = this.#backend;
    backend.admit();
    let module = backend.module;
    let signal: AbortSignal | undefined;
    let timeoutMs: number | undefined;
    if (options !== undefined) {
      checkOptions(options, what, TASK_OPTION_NAMES, "pass { timeoutMs, signal, module }");
      if (options.module !== undefined) module = checkModule(options.module);
      signal = checkSignal(options.signal);
      timeoutMs = checkTimeoutMs(options.timeoutMs);
    }
    const target = backend.target(fn, module, what);
    args = checkArray(args, "args", what) ?? [];
    const task = backend.submit(target, args as unknown[], what);
    if (signal !== undefined || timeoutMs !== undefined) backend.watch(task, signal, timeoutMs);
    return task;
  }

  /**
   * Runs `fn(...args)` in a worker, as Python's `apply_async().get()`.
   *
   * @param fn The function: exported from its module (the main module unless `module` says
   * otherwise), or self-contained, as a `Thread`'s target.
   * @param args Its arguments; each must be cloneable, or wrapped with `transfer()`.
   * @param options `signal` and `timeoutMs` cancel it; `module` says where `fn` is exported.
   * @returns A promise of the result. It rejects with the task's error (its class, message, remote
   * stack and `cause` kept), with a `WorkerCrashedError` when the worker died while running it (a
   * `WorkerLostError` when a `DistributedPool`'s node was lost), with `signal.reason`, a
   * `TimeoutError`, or a `BrokenPoolError`.
   * @throws {TypeError} (as a rejection) When `fn` is neither exported nor self-contained, when an
   * argument cannot be cloned (the message names which), or when an option has the wrong type.
   * @throws {Error} (as a rejection) When the pool is closed or terminated.
   * @example
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * await using pool = new ThreadPool({ size: 2 });
   * console.log(await pool.apply((a: number, b: number) => a + b, [2, 3])); // 5
   * ```
   */
  apply<Args extends unknown[], R>(
    fn: (...args: Args) => R,
    args?: Args,
    options?: TaskOptions,
  ): Promise<Awaited<R>> {
    try {
      return this.#task(fn, args, options, `${this.#backend.kind}.apply()`).promise as Promise<
        Awaited<R>
      >;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Submits `fn(...args)` and returns its {@linkcode Future} at once, as Python's
   * `Executor.submit()`.
   *
   * @param fn The function, as for {@linkcode BasePool.apply}.
   * @param args Its arguments.
   * @param options `signal`, `timeoutMs` and `module`, as for {@linkcode BasePool.apply}.
   * @returns A future: `await` it for the result; `cancel()`, `done()`, `running()`,
   * `cancelled()`.
   * @throws {TypeError} When `fn` is neither exported nor self-contained, when an argument cannot be
   * cloned (the message names which), or when an option has the wrong type.
   * @throws {Error} When the pool is closed or terminated; a `BrokenPoolError` when it is broken.
   * @example
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * await using pool = new ThreadPool({ size: 2 });
   * const futures = [1, 2, 3].map((n) => pool.submit((x: number) => x * x, [n]));
   * console.log(await Promise.all(futures)); // [1, 4, 9]
   * ```
   */
  submit<Args extends unknown[], R>(
    fn: (...args: Args) => R,
    args?: Args,
    options?: TaskOptions,
  ): Future<Awaited<R>> {
    const task = this.#task(fn, args, options, `${this.#backend.kind}.submit()`);
    return new Future(task as FutureTask<Awaited<R>>);
  }

  #chunkOptions(
    fn: unknown,
    iterable: unknown,
    options: ImapOptions | undefined,
    what: string,
    known: readonly (keyof ImapOptions)[],
  ): { target: TargetEntry; chunksize?: number; buffersize: number; timeoutMs?: number } {
    const backend = this.#backend;
    backend.admit();
    checkOptions(
      options,
      what,
      known,
      "pass { chunksize: 8 } where Python passes the chunk size by position",
    );
    const module = options?.module === undefined ? backend.module : checkModule(options.module);
    const target = backend.target(fn, module, what);
    checkIterable(iterable, what);
    const chunksize = checkPositiveInteger(options?.chunksize, "chunksize");
    const buffersize = checkPositiveInteger(options?.buffersize, "buffersize") ??
      backend.imapBuffer;
    const timeoutMs = checkTimeoutMs(options?.timeoutMs, what);
    return { target, chunksize, buffersize, timeoutMs };
  }

  /**
   * Runs `fn` on every item and returns the results in input order, as Python's `Pool.map()`. The
   * items travel in chunks (see `chunksize`); the first error rejects the whole map, and chunks
   * still queued are cancelled.
   *
   * @param fn The function, as for {@linkcode BasePool.apply}; it takes one item.
   * @param iterable The items: an iterable, or an async iterable.
   * @param options `chunksize`: items per task (automatic when unset); `module`; `timeoutMs`: the
   * longest wait for all of them.
   * @returns A promise of the results, in input order.
   * @throws {TypeError} (as a rejection) When `iterable` is not iterable, when an item cannot be
   * cloned, or for a bad `fn`.
   * @throws {RangeError} (as a rejection) When `chunksize` is not a positive integer, or
   * `timeoutMs` is negative.
   * @throws {TimeoutError} (as a rejection) When the results are not all in after `timeoutMs`.
   * @example
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * await using pool = new ThreadPool({ size: 2 });
   * console.log(await pool.map((x: number) => x * 2, [1, 2, 3])); // [2, 4, 6]
   * ```
   */
  map<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]> {
    return this.#map(fn, iterable, options, TaskMode.Map, `${this.#backend.kind}.map()`) as Promise<
      Awaited<R>[]
    >;
  }

  /**
   * Runs `fn(...args)` for every argument list and returns the results in input order, as Python's
   * `Pool.starmap()`.
   *
   * @param fn The function, as for {@linkcode BasePool.apply}.
   * @param iterable The argument lists: an iterable, or an async iterable, of arrays.
   * @param options `chunksize`: argument lists per task (automatic when unset); `module`;
   * `timeoutMs`: the longest wait for all of them.
   * @returns A promise of the results, in input order.
   * @throws {TypeError} (as a rejection) When `iterable` is not iterable, when an argument cannot be
   * cloned, or for a bad `fn`.
   * @throws {RangeError} (as a rejection) When `chunksize` is not a positive integer.
   * @example
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * await using pool = new ThreadPool({ size: 2 });
   * console.log(await pool.starmap((a: number, b: number) => a * b, [[1, 2], [3, 4]])); // [2, 12]
   * ```
   */
  starmap<Args extends unknown[], R>(
    fn: (...args: Args) => R,
    iterable: Iterable<Args> | AsyncIterable<Args>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]> {
    return this.#map(
      fn,
      iterable,
      options,
      TaskMode.Starmap,
      `${this.#backend.kind}.starmap()`,
    ) as Promise<
      Awaited<R>[]
    >;
  }

  async #map(
    fn: unknown,
    iterable: unknown,
    options: MapOptions | undefined,
    mode: TaskMode,
    what: string,
  ): Promise<unknown[]> {
    const { target, chunksize, timeoutMs } = this.#chunkOptions(
      fn,
      iterable,
      options,
      what,
      MAP_OPTION_NAMES,
    );
    if (isAsyncIterable(iterable) && !Array.isArray(iterable)) {
      const results: unknown[] = [];
      for await (
        const value of this.#imap(
          target,
          iterable,
          chunksize,
          this.#backend.asyncMapBuffer,
          mode,
          true,
          what,
          timeoutMs,
        )
      ) results.push(value);
      return results;
    }
    const items = Array.isArray(iterable) ? iterable : Array.from(iterable as Iterable<unknown>);
    const size = chunksize ?? this.#backend.mapChunk(items.length);
    return await eagerMap(items, size, this.#backend.chunkHooks(target, mode, what), {
      mode,
      what,
      timeoutMs,
    });
  }

  /**
   * Runs `fn` on every item, lazily, and yields the results in input order, as Python's
   * `Pool.imap()`. It pulls the input only as far as `buffersize` allows, so an infinite or async
   * input works, and a slow consumer holds the pool back instead of filling memory. Leaving the
   * loop early cancels the queued tasks.
   *
   * @param fn The function, as for {@linkcode BasePool.apply}; it takes one item.
   * @param iterable The items: an iterable or async iterable, possibly infinite.
   * @param options `chunksize` (automatic when unset), `buffersize`, `module`; `timeoutMs`: the
   * longest wait for all of them.
   * @returns An async iterable of the results, in input order; it throws the first error there.
   * When the input itself throws, the results of the items before are yielded first, then its
   * error is thrown, as in Python.
   * @throws {TypeError} When `iterable` is not iterable, or for a bad `fn`.
   * @throws {RangeError} When `chunksize` or `buffersize` is not a positive integer, or
   * `timeoutMs` is negative.
   * @throws {TimeoutError} (from the iteration) When the next result is not ready `timeoutMs`
   * after the call; the results that were ready have been yielded.
   * @example
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * await using pool = new ThreadPool({ size: 2 });
   * function* naturals() {
   *   for (let n = 1;; n++) yield n;
   * }
   * for await (const square of pool.imap((n: number) => n * n, naturals())) {
   *   if (square > 50) break;
   *   console.log(square); // 1, 4, 9, 16, 25, 36, 49
   * }
   * ```
   */
  imap<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    options?: ImapOptions,
  ): AsyncGenerator<Awaited<R>, void, undefined> {
    return this.#lazyMap<R>(fn, iterable, options, true);
  }

  /**
   * As {@linkcode BasePool.imap}, but yields each result as soon as it is ready, in completion
   * order, as Python's `Pool.imap_unordered()`.
   *
   * @param fn The function, as for {@linkcode BasePool.apply}; it takes one item.
   * @param iterable The items: an iterable or async iterable, possibly infinite.
   * @param options `chunksize` (automatic when unset), `buffersize`, `module`; `timeoutMs`: the
   * longest wait for all of them.
   * @returns An async iterable of the results, in completion order; an error of the input itself
   * comes after the results of the items before it.
   * @throws {TypeError} When `iterable` is not iterable, or for a bad `fn`.
   * @throws {RangeError} When `chunksize` or `buffersize` is not a positive integer, or
   * `timeoutMs` is negative.
   * @throws {TimeoutError} (from the iteration) When no further result is ready `timeoutMs` after
   * the call.
   * @example
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * await using pool = new ThreadPool({ size: 2 });
   * const results = [];
   * for await (const n of pool.imapUnordered((x: number) => x + 1, [1, 2, 3])) results.push(n);
   * console.log(results.sort()); // [2, 3, 4]
   * ```
   */
  imapUnordered<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    options?: ImapOptions,
  ): AsyncGenerator<Awaited<R>, void, undefined> {
    return this.#lazyMap<R>(fn, iterable, options, false);
  }

  /** What `imap()` and `imapUnordered()` share: their checks, then the lazy run. */
  #lazyMap<R>(
    fn: unknown,
    iterable: unknown,
    options: ImapOptions | undefined,
    ordered: boolean,
  ): AsyncGenerator<Awaited<R>, void, undefined> {
    const what = `${this.#backend.kind}.${ordered ? "imap" : "imapUnordered"}()`;
    const { target, chunksize, buffersize, timeoutMs } = this.#chunkOptions(
      fn,
      iterable,
      options,
      what,
      IMAP_OPTION_NAMES,
    );
    return this.#imap(
      target,
      iterable,
      chunksize,
      buffersize,
      TaskMode.Map,
      ordered,
      what,
      timeoutMs,
    ) as AsyncGenerator<Awaited<R>, void, undefined>;
  }

  #imap(
    target: TargetEntry,
    iterable: unknown,
    chunksize: number | undefined,
    buffersize: number,
    mode: TaskMode,
    ordered: boolean,
    what: string,
    timeoutMs?: number,
  ): AsyncGenerator<unknown, void, undefined> {
    return lazyMap(
      iterable,
      chunksize,
      buffersize,
      ordered,
      this.#backend.chunkHooks(target, mode, what),
      {
        mode,
        what,
        timeoutMs,
      },
    );
  }

  /**
   * Accepts no more tasks; the queued ones still run, then the workers stop. Wait for that with
   * {@linkcode BasePool.join}. With `cancelFutures: true`, the tasks that no worker has started are
   * cancelled instead, as Python's `shutdown(cancel_futures=True)`; running ones finish.
   *
   * @param options `cancelFutures`: cancel the tasks not started yet.
   * @throws {TypeError} When `options` is not an object, has an unknown key, or `cancelFutures` is
   * not a boolean.
   * @example
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * const pool = new ThreadPool({ size: 1 });
   * const result = pool.apply((x: number) => x + 1, [1]);
   * pool.close();
   * await pool.join();
   * console.log(await result); // 2
   * ```
   */
  close(options?: CloseOptions): void {
    const { cancelFutures } = checkOptions(
      options,
      `${this.#backend.kind}.close()`,
      ["cancelFutures"],
      "pass { cancelFutures: true } to cancel the tasks not started yet",
    );
    if (checkBoolean(cancelFutures, "cancelFutures", `${this.#backend.kind}.close()`)) {
      this.#backend.cancelPending();
    }
    this.#backend.close();
  }

  /**
   * Python's `Executor.shutdown(wait, cancel_futures)`: {@linkcode BasePool.close}, then, unless
   * `wait` is false, {@linkcode BasePool.join}.
   *
   * @param options `wait` (true by default) and `cancelFutures` (false by default).
   * @returns A promise that resolves once the workers are gone, or at once with `wait: false`.
   * @throws {TypeError} When `options` is not an object, has an unknown key, or a value is not a
   * boolean.
   * @example Cancel what has not started, let the rest finish
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * const pool = new ThreadPool({ size: 1 });
   * const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms, ms));
   * const running = pool.submit(sleep, [100]);
   * const queued = [1, 2, 3].map(() => pool.submit(sleep, [100]));
   * while (!running.running()) await new Promise((resolve) => setTimeout(resolve, 10));
   * await pool.shutdown({ cancelFutures: true });
   * console.log(await running, queued.map((f) => f.cancelled())); // 100 [true, true, true]
   * ```
   */
  shutdown(options?: ShutdownOptions): Promise<void> {
    let wait: boolean | undefined;
    try {
      const checked = checkOptions(
        options,
        `${this.#backend.kind}.shutdown()`,
        ["wait", "cancelFutures"],
        "pass { wait: false } or { cancelFutures: true }",
      );
      wait = checkBoolean(checked.wait, "wait", `${this.#backend.kind}.shutdown()`);
      checkBoolean(checked.cancelFutures, "cancelFutures", `${this.#backend.kind}.shutdown()`);
      this.close(
        checked.cancelFutures === undefined ? undefined : {
          cancelFutures: checked.cancelFutures,
        },
      );
    } catch (error) {
      return Promise.reject(error);
    }
    return wait === false ? Promise.resolve() : this.join();
  }

  /**
   * Stops every worker at once. Pending tasks reject with a `BrokenPoolError`; no worker thread or
   * process is left behind. A `DistributedPool` closes its connections to Redis; its nodes go on.
   *
   * @returns A promise that resolves once every worker has exited.
   * @example
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * const pool = new ThreadPool({ size: 1 });
   * const task = pool.apply(() => new Promise(() => {})); // never ends
   * await pool.terminate();
   * await task.catch((error) => console.log(error.name)); // "BrokenPoolError"
   * ```
   */
  terminate(): Promise<void> {
    return this.#backend.terminate();
  }

  /**
   * Waits until every worker has exited, after {@linkcode BasePool.close} (once the queued tasks
   * are done) or {@linkcode BasePool.terminate}.
   *
   * @returns A promise that resolves when the workers are gone.
   * @throws {Error} (as a rejection) When the pool is still open.
   * @example
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * const pool = new ThreadPool({ size: 1 });
   * pool.close();
   * await pool.join();
   * ```
   */
  join(): Promise<void> {
    return this.#backend.join();
  }

  /**
   * `close()` then `join()`, for `await using pool = new ThreadPool()`: leaving the block waits
   * for the queued tasks, as Python's `with ProcessPoolExecutor()`, and leaves no worker behind.
   *
   * @returns A promise that resolves when the workers are gone.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.join();
  }

  /**
   * Waits until the queue has room for another task under `maxQueue`. `submit()` and `apply()`
   * never wait: past `maxQueue` they reject with a `QueueFullError`. A producer
   * that awaits this before each of them keeps memory bounded, as `map` and `imap` do by
   * themselves.
   *
   * @returns A promise that resolves when there is room (at once without `maxQueue`), or when the
   * pool no longer takes tasks; the next `submit()` then throws and says why.
   * @example Feed a pool no faster than it works
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * await using pool = new ThreadPool({ size: 2, maxQueue: 4 });
   * const futures = [];
   * for (let i = 0; i < 20; i++) {
   *   await pool.waitForRoom();
   *   futures.push(pool.submit((n: number) => n * n, [i]));
   *   console.assert(pool.stats().queueLength <= 4);
   * }
   * const squares = await Promise.all(futures);
   * console.log(squares.at(-1)); // 361
   * ```
   */
  waitForRoom(): Promise<void> {
    return this.#backend.room();
  }

  /**
   * Counts and timings, for monitoring.
   *
   * @returns Tasks completed, failed and cancelled, queue length, busy workers, utilization, and
   * p50/p99 of run and wait time.
   * @example
   * ```ts
   * import { ThreadPool } from "@multiproc/multiproc";
   *
   * await using pool = new ThreadPool({ size: 1 });
   * await pool.map((x: number) => x, [1, 2, 3], { chunksize: 1 });
   * console.log(pool.stats().tasksCompleted); // 3
   * ```
   */
  stats(): PoolStats {
    return this.#backend.stats();
  }
}
