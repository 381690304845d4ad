/**
 * {@linkcode ThreadPool} and {@linkcode Pool}: pools of worker threads and of child processes, with
 * the surface of Python's `multiprocessing.Pool` and `concurrent.futures` executors.
 *
 * @module
 */
import { TaskMode } from "./_protocol.ts";
import { PoolEngine, type PoolStats, targetEntry, type Task } from "./_pool_engine.ts";
import {
  availableCpus,
  checkChildCommand,
  threadHeapLimits,
  threadPermissions,
} from "./_platform.deno.ts";
import { checkEnv, checkPermissions } from "./_permissions.ts";
import {
  checkArray,
  checkBoolean,
  checkInteger,
  checkMaxHeapMb,
  checkMilliseconds,
  checkModule,
  checkOneOf,
  checkOptions,
  checkPositiveInteger,
  checkSignal,
  checkString,
  checkTimeoutMs,
  describeValue,
} from "./_checks.ts";
import { checkNotImportingMain } from "./_process_context.ts";
import { checkSendable, processKind, threadKind, type WorkerKind } from "./_worker_parent.ts";
import type { PermissionsOption } from "./permissions.ts";
import { checkStartMethod, defaultStartMethod, type StartMethod } from "./_start_methods.ts";

export type { PoolStats };
import { Future } from "./future.ts";
import { checkIterable, isAsyncIterable } from "./_iterables.ts";
import { type ChunkHooks, eagerMap, lazyMap } from "./_chunked_map.ts";

/** Options for {@linkcode ThreadPool}; {@linkcode PoolOptions} adds the start method. */
export interface ThreadPoolOptions {
  /** How many workers at most; defaults to `cpuCount()`. Workers start as tasks need them. */
  size?: number;
  /**
   * A function that each worker runs once, before its first task, with `initArgs` (for example to
   * open a connection that its tasks share through globals). It follows the rules of a task's
   * function. If it throws, the pool breaks: pending tasks reject with a `BrokenPoolError`.
   */
  // deno-lint-ignore no-explicit-any
  initializer?: (...args: any[]) => unknown;
  /** Arguments for `initializer`. */
  initArgs?: unknown[];
  /**
   * A module URL or path that exports the initializer and the tasks' functions, where they are not
   * exported from the main module; a call's own `module` option takes precedence.
   */
  module?: string | URL;
  /** After this many tasks a worker is replaced by a fresh one, as Python's `maxtasksperchild`. */
  maxTasksPerChild?: number;
  /**
   * How many tasks may wait (submitted and not begun, those handed ahead to a worker included).
   * Past it, `submit()` and `apply()` reject at once with a `QueueFullError`, as piscina's and
   * workerpool's; a producer that would rather wait awaits `waitForRoom()` first. `map`/`imap`
   * pull their input only while there is room.
   */
  maxQueue?: number;
  /**
   * Which waiting task runs next: `"fifo"` (the default), the oldest; `"lifo"`, the most recently
   * submitted, as workerpool's `queueStrategy`.
   */
  queueStrategy?: "fifo" | "lifo";
  /**
   * Workers started at construction and kept, so that the first tasks do not wait for start-up
   * (piscina's `minThreads`; Python's `multiprocessing.Pool(n)` starts its n processes at once).
   * Defaults to 0: workers start as tasks need them. At most `size`.
   */
  minWorkers?: number;
  /**
   * How many tasks one worker runs at once while they await (I/O-bound targets, such as a fetch):
   * a task that awaits lets the worker begin the next meanwhile. Defaults to 1. Synchronous work
   * still runs one task at a time.
   */
  concurrentTasksPerWorker?: number;
  /** Stop a worker that has been idle for this long; the pool starts a new one when needed. */
  idleTimeoutMs?: number;
  /**
   * What a crashed worker does to the pool: `"respawn"` (the default) rejects only the task it was
   * running and replaces it; `"break"` rejects every pending task with a `BrokenPoolError`, as
   * Python's `BrokenProcessPool`, and refuses new ones.
   */
  onCrash?: "respawn" | "break";
  /** A name for messages; defaults to `ThreadPool-1`, `Pool-2`, … */
  name?: string;
  /**
   * What each worker may do, as `Process`'s and `Thread`'s `permissions`: `"inherit"` (the
   * default), `"none"`, or grants kind by kind, never more than the parent holds. For a
   * `ThreadPool`, Deno only and under `--unstable-worker-options`; such workers are Web Workers,
   * which hold the program open, so idle ones stop after `idleTimeoutMs` (1000 by default) for a
   * pool that is never closed to let the program end.
   */
  permissions?: PermissionsOption;
  /**
   * A limit on each worker's heap, in megabytes. A task whose worker dies of it rejects with an
   * `OutOfMemoryError`, and the worker is replaced. A `ThreadPool` takes it on Node only, as
   * `Thread` does.
   */
  maxHeapMb?: number;
}

/** Options for {@linkcode Pool}. */
export interface PoolOptions extends ThreadPoolOptions {
  /**
   * How the worker processes start: `"spawn"` or `"forkserver"`. Defaults to the context's method
   * (`getContext("forkserver").Pool`), else the start method in force when the pool is created.
   */
  startMethod?: StartMethod;
  /**
   * Each worker's whole environment, such as `{ LANG: "C" }`: workers see these variables and no
   * other of the parent's (on Deno, their env grant is narrowed to them too). Defaults to the
   * parent's environment.
   */
  env?: Record<string, string>;
}

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

let threadPoolCount = 0;
let processPoolCount = 0;

const THREAD_POOL_OPTION_NAMES = [
  "size",
  "initializer",
  "initArgs",
  "module",
  "maxTasksPerChild",
  "maxQueue",
  "queueStrategy",
  "minWorkers",
  "concurrentTasksPerWorker",
  "idleTimeoutMs",
  "onCrash",
  "name",
  "permissions",
  "maxHeapMb",
] as const satisfies readonly (keyof ThreadPoolOptions)[];
const POOL_OPTION_NAMES = [...THREAD_POOL_OPTION_NAMES, "startMethod", "env"] as const;
const TASK_OPTION_NAMES = ["signal", "timeoutMs", "module"] as const;
const MAP_OPTION_NAMES = ["chunksize", "module", "timeoutMs"] as const;
const IMAP_OPTION_NAMES = [...MAP_OPTION_NAMES, "buffersize"] as const;

/** `initArgs` go to every worker: one that cannot is refused now, not at the first task. */
function checkInitArgs(initArgs: unknown[], kind: string, workerKind: WorkerKind): void {
  checkSendable(initArgs, workerKind, `${kind} 'initArgs' argument`);
}

const CHUNK_TARGET_MS = 1;
const MAX_AUTO_CHUNK = 4096;

/**
 * What {@linkcode ThreadPool} and {@linkcode Pool} share: the whole API. A pool starts its workers
 * as tasks need them, up to `size`, keeps several tasks in flight per worker, and settles every task
 * exactly once: resolved, rejected or cancelled.
 *
 * Idle workers do not keep the program alive, so a pool that is forgotten does not hold it open;
 * `close()` + `join()` (or `await using`) waits for the queued work, `terminate()` stops at once.
 */
export abstract class BasePool {
  #engine: PoolEngine;
  #kind: string;
  #module: string | URL | undefined;

  /**
   * Checks the options and prepares the pool; no worker starts before the first task.
   *
   * @param kind `"ThreadPool"` or `"Pool"`.
   * @param options The pool's options.
   * @throws {TypeError} When an option has the wrong type, or the initializer is neither exported
   * nor self-contained.
   * @throws {RangeError} When `size`, `maxTasksPerChild` or `maxQueue` is not a positive integer,
   * or `idleTimeoutMs` is negative.
   */
  constructor(kind: "ThreadPool" | "Pool", options: PoolOptions | undefined) {
    const o: PoolOptions = checkOptions(
      options,
      kind,
      kind === "Pool" ? POOL_OPTION_NAMES : THREAD_POOL_OPTION_NAMES,
      "pass { size: 4 } where Python passes the number of workers by position",
    );
    this.#kind = kind;
    const size = checkPositiveInteger(o.size, "size") ?? availableCpus();
    const maxTasksPerChild = checkPositiveInteger(o.maxTasksPerChild, "maxTasksPerChild");
    const maxQueue = checkPositiveInteger(o.maxQueue, "maxQueue");
    const queueStrategy = checkOneOf(o.queueStrategy, "queueStrategy", ["fifo", "lifo"]);
    const minWorkers = checkInteger(o.minWorkers, "minWorkers", { max: size });
    const concurrentTasksPerWorker = checkPositiveInteger(
      o.concurrentTasksPerWorker,
      "concurrentTasksPerWorker",
    );
    const idleTimeoutMs = checkMilliseconds(o.idleTimeoutMs, "idleTimeoutMs");
    const onCrash = checkOneOf(o.onCrash, "onCrash", ["respawn", "break"]) ?? "respawn";
    checkArray(o.initArgs, "initArgs");
    const initArgs = [...(o.initArgs ?? [])];
    checkString(o.name, "name");
    this.#module = checkModule(o.module);
    const initializer = o.initializer === undefined
      ? undefined
      : targetEntry(o.initializer, this.#module, `${kind} 'initializer'`).spec;
    const permissionsOption = checkPermissions(o.permissions, kind);
    const maxHeapMb = checkMaxHeapMb(o.maxHeapMb, kind);
    let workerKind;
    let name;
    let idleTimeout = idleTimeoutMs;
    if (kind === "ThreadPool") {
      if (maxHeapMb !== undefined && !threadHeapLimits) {
        throw new TypeError(
          `ThreadPool 'maxHeapMb' is not supported on this runtime: its workers do not enforce a heap limit; use a Pool with 'maxHeapMb' instead (received ${
            describeValue(maxHeapMb)
          })`,
        );
      }
      const permissions = threadPermissions(permissionsOption, kind);
      // Workers with permissions of their own cannot let go of the event loop.
      if (permissions !== undefined) idleTimeout ??= 1000;
      name = o.name ?? `ThreadPool-${++threadPoolCount}`;
      workerKind = threadKind({ maxHeapMb, permissions });
    } else {
      name = o.name ?? `Pool-${++processPoolCount}`;
      const method = o.startMethod === undefined
        ? defaultStartMethod()
        : checkStartMethod(o.startMethod, "Pool 'startMethod'");
      const command = {
        permissions: permissionsOption,
        maxHeapMb,
        env: checkEnv((o as PoolOptions).env, kind),
      };
      // Asking for more than the parent holds is an error now rather than at the first task.
      checkChildCommand(command, "Pool");
      workerKind = processKind(method, command, { keepStderrTail: true });
    }
    checkInitArgs(initArgs, kind, workerKind);
    this.#engine = new PoolEngine({
      name,
      size,
      kind: workerKind,
      initializer,
      initArgs,
      maxTasksPerChild,
      maxQueue,
      queueStrategy,
      minWorkers,
      concurrentTasksPerWorker,
      idleTimeoutMs: idleTimeout,
      onCrash,
    });
    this.#engine.startMinWorkers();
    this.#engine.startIdleSweep();
  }

  /** The pool's name, for messages. */
  get name(): string {
    return this.#engine.options.name;
  }

  /** The largest number of workers. */
  get size(): number {
    return this.#engine.options.size;
  }

  #task(fn: unknown, args: unknown, options: TaskOptions | undefined, what: string): Task {
    // A pool may be made anywhere; running a task while a child imports the main module would
    // be the main module's code run again.
    checkNotImportingMain(`a task on ${this.#kind} '${this.name}'`);
    const refusal = this.#engine.refusal();
    if (refusal) throw refusal;
    let module = this.#module;
    let signal: AbortSignal | undefined;
    let timeoutMs: number | undefined;
    if (options !== undefined) {
      checkOptions(options, what, TASK_OPTION_NAMES, "pass { timeoutMs, signal, module }");
      if (options.module !== undefined) module = checkModule(options.module);
      signal = checkSignal(options.signal);
      timeoutMs = checkTimeoutMs(options.timeoutMs);
    }
    const target = targetEntry(fn, module, what);
    args = checkArray(args, "args", what) ?? [];
    const task = this.#engine.submit(target, TaskMode.Apply, args as unknown[], 1, what);
    if (signal !== undefined || timeoutMs !== undefined) {
      this.#engine.watch(task, signal, timeoutMs);
    }
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
   * stack and `cause` kept), with a `WorkerCrashedError` when the worker died while running it,
   * with `signal.reason`, a `TimeoutError`, or a `BrokenPoolError`.
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
      return this.#task(fn, args, options, `${this.#kind}.apply()`).promise as Promise<Awaited<R>>;
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
    const task = this.#task(fn, args, options, `${this.#kind}.submit()`);
    return new Future(task as Task<Awaited<R>>);
  }

  #chunkOptions(
    fn: unknown,
    iterable: unknown,
    options: ImapOptions | undefined,
    what: string,
    known: readonly (keyof ImapOptions)[],
  ): {
    target: ReturnType<typeof targetEntry>;
    chunksize?: number;
    buffersize: number;
    timeoutMs?: number;
  } {
    checkNotImportingMain(`a task on ${this.#kind} '${this.name}'`);
    const refusal = this.#engine.refusal();
    if (refusal) throw refusal;
    checkOptions(
      options,
      what,
      known,
      "pass { chunksize: 8 } where Python passes the chunk size by position",
    );
    const module = options?.module === undefined ? this.#module : checkModule(options.module);
    const target = targetEntry(fn, module, what);
    checkIterable(iterable, what);
    const chunksize = checkPositiveInteger(options?.chunksize, "chunksize");
    const buffersize = checkPositiveInteger(options?.buffersize, "buffersize") ?? 8 * this.size;
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
    return this.#map(fn, iterable, options, TaskMode.Map, `${this.#kind}.map()`) as Promise<
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
    return this.#map(fn, iterable, options, TaskMode.Starmap, `${this.#kind}.starmap()`) as Promise<
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
          Math.max(8 * this.size, 64),
          mode,
          true,
          what,
          timeoutMs,
        )
      ) results.push(value);
      return results;
    }
    const items = Array.isArray(iterable) ? iterable : Array.from(iterable as Iterable<unknown>);
    const size = chunksize ?? Math.max(1, Math.ceil(items.length / (4 * this.size)));
    return await eagerMap(items, size, this.#chunkHooks(target, mode, what), {
      mode,
      what,
      timeoutMs,
    });
  }

  /** How the shared map drivers submit and take back this pool's chunks. */
  #chunkHooks(
    target: ReturnType<typeof targetEntry>,
    mode: TaskMode,
    what: string,
  ): ChunkHooks<Task> {
    return {
      room: () => this.#engine.room(),
      refusal: () => this.#engine.refusal(),
      chunkSize: () => this.#adaptiveChunk(),
      submit: (chunk) => this.#engine.submit(target, mode, chunk, chunk.length, what, true),
      drop: (task) => this.#engine.cancelQueued(task),
      dropUnstarted: cancelUnstarted,
    };
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
    const what = `${this.#kind}.${ordered ? "imap" : "imapUnordered"}()`;
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

  /** The chunk size for lazy input: about a millisecond of measured work, at least 1. */
  #adaptiveChunk(): number {
    const itemMs = this.#engine.itemMs;
    if (itemMs <= 0) return 1;
    return Math.max(1, Math.min(MAX_AUTO_CHUNK, Math.floor(CHUNK_TARGET_MS / itemMs)));
  }

  #imap(
    target: ReturnType<typeof targetEntry>,
    iterable: unknown,
    chunksize: number | undefined,
    buffersize: number,
    mode: TaskMode,
    ordered: boolean,
    what: string,
    timeoutMs?: number,
  ): AsyncGenerator<unknown, void, undefined> {
    return lazyMap(iterable, chunksize, buffersize, ordered, this.#chunkHooks(target, mode, what), {
      mode,
      what,
      timeoutMs,
    });
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
      `${this.#kind}.close()`,
      ["cancelFutures"],
      "pass { cancelFutures: true } to cancel the tasks not started yet",
    );
    if (checkBoolean(cancelFutures, "cancelFutures", `${this.#kind}.close()`)) {
      this.#engine.cancelPending();
    }
    this.#engine.close();
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
        `${this.#kind}.shutdown()`,
        ["wait", "cancelFutures"],
        "pass { wait: false } or { cancelFutures: true }",
      );
      wait = checkBoolean(checked.wait, "wait", `${this.#kind}.shutdown()`);
      checkBoolean(checked.cancelFutures, "cancelFutures", `${this.#kind}.shutdown()`);
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
   * process is left behind.
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
    this.#engine.terminate();
    return this.#engine.join();
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
    return this.#engine.join();
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
    return this.#engine.room();
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
    return this.#engine.stats();
  }
}

/**
 * Cancels a task that no worker has started, queued or sent ahead, as Python's `Executor.map`
 * does on a timeout; a running one finishes.
 */
function cancelUnstarted(task: Task): void {
  if (task.state() === "pending") task.cancel();
}

/**
 * A pool of worker threads (Web-standard workers: `node:worker_threads` on both runtimes, so that
 * idle workers can let the program exit), as Python's `multiprocessing.pool.ThreadPool` and
 * `ThreadPoolExecutor` — except that these threads run JavaScript in parallel. Arguments and results
 * are copied by structured clone; wrap `ArrayBuffer`s with `transfer()` to move them instead.
 *
 * @example Square numbers on all cores
 * ```ts
 * import { ThreadPool } from "@multiproc/multiproc";
 *
 * await using pool = new ThreadPool();
 * const squares = await pool.map((n: number) => n * n, [1, 2, 3, 4]);
 * console.log(squares); // [1, 4, 9, 16]
 * ```
 */
export class ThreadPool extends BasePool {
  /**
   * Creates a pool; workers start with the first tasks.
   *
   * @param options Size, initializer, limits and crash policy.
   * @throws {TypeError} When an option has the wrong type.
   * @throws {RangeError} When `size`, `maxTasksPerChild` or `maxQueue` is not a positive integer,
   * or `idleTimeoutMs` is negative.
   */
  constructor(options?: ThreadPoolOptions) {
    super("ThreadPool", options);
  }
}

/**
 * A pool of child processes, as Python's `multiprocessing.Pool` and `ProcessPoolExecutor`: each
 * worker is its own Deno or Node runtime, started with the pool's start method (`"spawn"` or
 * `"forkserver"`). Workers' stdout and stderr are the parent's; a crashed worker's last stderr
 * lines are kept in its `WorkerCrashedError`.
 *
 * @example Run a function in worker processes
 * ```ts
 * import { Pool } from "@multiproc/multiproc";
 *
 * await using pool = new Pool({ size: 2 });
 * console.log(await pool.map((n: number) => n + 1, [1, 2, 3])); // [2, 3, 4]
 * ```
 */
export class Pool extends BasePool {
  /**
   * Creates a pool; workers start with the first tasks.
   *
   * @param options Size, start method, initializer, limits and crash policy.
   * @throws {TypeError} When an option has the wrong type, or `startMethod` is not a start method.
   * @throws {RangeError} When `size`, `maxTasksPerChild` or `maxQueue` is not a positive integer,
   * or `idleTimeoutMs` is negative.
   */
  constructor(options?: PoolOptions) {
    super("Pool", options);
  }
}
