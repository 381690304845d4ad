/**
 * {@linkcode ThreadPool} and {@linkcode Pool}: pools of worker threads and of child processes, with
 * the surface of Python's `multiprocessing.Pool` and `concurrent.futures` executors.
 *
 * @module
 */
import { TaskMode } from "./_protocol.ts";
import {
  PoolEngine,
  type PoolStats,
  type TargetEntry,
  targetEntry,
  type Task,
} from "./_pool_engine.ts";
import {
  availableCpus,
  checkChildCommand,
  threadHeapLimits,
  threadPermissions,
} from "./_platform.deno.ts";
import { checkEnv, checkPermissions } from "./_permissions.ts";
import {
  checkArray,
  checkInteger,
  checkMaxHeapMb,
  checkMilliseconds,
  checkModule,
  checkOneOf,
  checkOptions,
  checkPositiveInteger,
  checkString,
  describeValue,
} from "./_checks.ts";
import { checkNotImportingMain } from "./_process_context.ts";
import { checkSendable, processKind, threadKind, type WorkerKind } from "./_worker_parent.ts";
import type { PermissionsOption } from "./permissions.ts";
import { checkStartMethod, defaultStartMethod, type StartMethod } from "./_start_methods.ts";
import { chunkForSpeed, type ChunkHooks } from "./_chunked_map.ts";
import { attachBackend, BasePool, type PoolBackend } from "./_pool_facade.ts";

export { BasePool };
export type {
  CloseOptions,
  ImapOptions,
  MapOptions,
  ShutdownOptions,
  TaskOptions,
} from "./_pool_facade.ts";
export type { PoolStats };

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

/** `initArgs` go to every worker: one that cannot is refused now, not at the first task. */
function checkInitArgs(initArgs: unknown[], kind: string, workerKind: WorkerKind): void {
  checkSendable(initArgs, workerKind, `${kind} 'initArgs' argument`);
}

/** Lazy chunks grow until one takes about this long on a worker. */
const CHUNK_TARGET_MS = 1;

/** The local backend of a pool: a {@linkcode PoolEngine} of this machine's threads or processes. */
class LocalBackend implements PoolBackend<Task> {
  readonly kind: "ThreadPool" | "Pool";
  readonly module: string | URL | undefined;
  readonly #engine: PoolEngine;

  /**
   * Checks the options and prepares the engine; no worker starts before the first task.
   *
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
    this.kind = kind;
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
    this.module = checkModule(o.module);
    const initializer = o.initializer === undefined
      ? undefined
      : targetEntry(o.initializer, this.module, `${kind} 'initializer'`).spec;
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

  get name(): string {
    return this.#engine.options.name;
  }

  get size(): number {
    return this.#engine.options.size;
  }

  get imapBuffer(): number {
    return 8 * this.size;
  }

  get asyncMapBuffer(): number {
    return Math.max(8 * this.size, 64);
  }

  admit(): void {
    // A pool may be made anywhere; running a task while a child imports the main module would
    // be the main module's code run again.
    checkNotImportingMain(`a task on ${this.kind} '${this.name}'`);
    const refusal = this.#engine.refusal();
    if (refusal) throw refusal;
  }

  target(fn: unknown, module: string | URL | undefined, what: string): TargetEntry {
    return targetEntry(fn, module, what);
  }

  submit(target: TargetEntry, args: unknown[], what: string): Task {
    return this.#engine.submit(target, TaskMode.Apply, args, 1, what);
  }

  watch(task: Task, signal: AbortSignal | undefined, timeoutMs: number | undefined): void {
    this.#engine.watch(task, signal, timeoutMs);
  }

  mapChunk(length: number): number {
    // As Python's Pool.map.
    return Math.max(1, Math.ceil(length / (4 * this.size)));
  }

  chunkHooks(target: TargetEntry, mode: TaskMode, what: string): ChunkHooks<Task> {
    const engine = this.#engine;
    return {
      room: () => engine.room(),
      refusal: () => engine.refusal(),
      chunkSize: () => chunkForSpeed(engine.itemMs, CHUNK_TARGET_MS),
      submit: (chunk) => engine.submit(target, mode, chunk, chunk.length, what, true),
      drop: (task) => engine.cancelQueued(task),
      dropUnstarted: cancelUnstarted,
    };
  }

  cancelPending(): void {
    this.#engine.cancelPending();
  }

  close(): void {
    this.#engine.close();
  }

  terminate(): Promise<void> {
    this.#engine.terminate();
    return this.#engine.join();
  }

  join(): Promise<void> {
    return this.#engine.join();
  }

  room(): Promise<void> {
    return this.#engine.room();
  }

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
    super();
    attachBackend(this, new LocalBackend("ThreadPool", options));
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
    super();
    attachBackend(this, new LocalBackend("Pool", options));
  }
}
