/**
 * {@linkcode DistributedPool}: the pool API of `ThreadPool` and `Pool`, with the work done by
 * worker nodes (`multiproc worker`) on other machines, through a BullMQ queue on Redis. Client
 * side.
 *
 * Rules this file keeps:
 * - Every future settles exactly once: a result that arrives twice (a task run again after its node
 *   stalled) is dropped, and a future that settled by cancellation ignores its late result.
 * - Results come on a stream of this client's own, read from its start; BullMQ's events are not
 *   used for them, since a listener misses what came before it and the events stream is trimmed.
 * - Many tasks travel in one job: the tasks submitted in one turn of the event loop are packed into
 *   a few jobs.
 * - When Redis goes away, pending futures reject at once (the connection closed) or within
 *   {@linkcode REDIS_SILENCE_MS} (no answer), never hang.
 * - bullmq and ioredis are imported here and by the node side only: the local pools never load
 *   them.
 *
 * @module
 */
// ioredis before bullmq: Deno 2.9 fails to load bullmq from a dynamic import otherwise.
import { Redis, type RedisOptions } from "npm:ioredis@^6.0.0";
import { Queue } from "npm:bullmq@^6.7.0";
import { relative, sep } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { TaskMode } from "../_protocol.ts";
import { type PoolStats, Samples, type TargetEntry, targetEntry } from "../_pool_engine.ts";
import { checkIterable, isAsyncIterable } from "../_iterables.ts";
import { type ChunkHooks, eagerMap, lazyMap } from "../_chunked_map.ts";
import {
  checkInteger,
  checkModule,
  checkOptions,
  checkPositiveInteger,
  checkSignal,
  checkString,
  checkTimeoutMs,
  describeValue,
  type LongTimeout,
  setLongTimeout,
} from "../_checks.ts";
import { BrokenPoolError, CancelledError, QueueFullError, TimeoutError } from "../errors.ts";
import { Future, type FutureTask, type FutureWaitOptions } from "../future.ts";
import type { ImapOptions, MapOptions, TaskOptions } from "../pool.ts";
import { decode, encode, UnsendableValueError } from "./_codec.ts";
import { moduleHash } from "./_module_hash.ts";
import {
  checkQueueName,
  clientKeys,
  describeConnection,
  type JobData,
  KEY_TTL_S,
  Outcome,
  OUTCOMES_FIELD,
  parseConnection,
  type RedisTarget,
  type WireOutcome,
  type WireTarget,
  type WireTask,
} from "./_wire.ts";
import { WorkerLostError } from "./worker_lost_error.ts";

export type { Future, FutureWaitOptions, ImapOptions, MapOptions, PoolStats, TaskOptions };

/** Options for {@linkcode DistributedPool}. */
export interface DistributedPoolOptions {
  /**
   * Where Redis is: a URL (`redis://[:password@]host:port/db`, `rediss://` for TLS) or the path of a
   * Redis Unix socket.
   */
  connection: string;
  /** The BullMQ queue that the worker nodes serve (`multiproc worker --queue`); `"multiproc"`. */
  queue?: string;
  /** A name for messages; defaults to `DistributedPool-1`, `DistributedPool-2`, … */
  name?: string;
  /**
   * How many tasks may be pending at once. Past it, `submit()` and `apply()` reject at once with a
   * `QueueFullError`, as the local pools' do; a producer that would rather wait awaits
   * `waitForRoom()` first. `map`/`imap` pull their input only while there is room.
   */
  maxQueue?: number;
  /**
   * How many times a task runs again on another node when its node died, was cut off or stalled
   * past its lease; then it rejects with a `WorkerLostError`. `0` means at most once. Default 1.
   */
  retries?: number;
  /**
   * The directory that task modules are named relative to, matching the nodes' `--root`; defaults
   * to the working directory.
   */
  root?: string;
}

const POOL_OPTION_NAMES = [
  "connection",
  "queue",
  "name",
  "maxQueue",
  "retries",
  "root",
] as const satisfies readonly (keyof DistributedPoolOptions)[];
const TASK_OPTION_NAMES = ["signal", "timeoutMs", "module"] as const;
const MAP_OPTION_NAMES = ["chunksize", "module", "timeoutMs"] as const;
const IMAP_OPTION_NAMES = [...MAP_OPTION_NAMES, "buffersize"] as const;

/** The longest that pending futures wait on a Redis that does not answer. */
export const REDIS_SILENCE_MS = 6000;
const READ_BLOCK_MS = 1000;
/** A job carries at most this many tasks, and at most this many items of map chunks. */
const MAX_JOB_TASKS = 512;
const MAX_JOB_ITEMS = 4096;
/** Tasks of one flush are spread over at least this many jobs, so that several nodes share them. */
const SPREAD_JOBS = 16;
/** `map()` cuts its input into this many chunks at least (Python's `4 * size`, for 16 workers). */
const MAP_CHUNKS = 64;
const MAX_AUTO_CHUNK = 4096;
/** `imap()` grows its chunks until one takes about this long on a node. */
const CHUNK_TARGET_MS = 5;
const DEFAULT_BUFFER = 64;

const PENDING = 0;
const SENT = 1;
const SETTLED = 2;
const CANCELLED = 3;

const noop = () => {};
let poolCount = 0;

/** One task of a distributed pool. */
class RemoteTask<T = unknown> implements FutureTask<T> {
  readonly promise: Promise<T>;
  // deno-lint-ignore no-explicit-any
  resolve!: (value: any) => void;
  reject!: (reason: unknown) => void;
  status: number = PENDING;
  quiet: boolean = false;
  timer: LongTimeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  submittedAt: number = performance.now();

  constructor(
    readonly settle: (task: RemoteTask, ok: boolean, value: unknown, cancelled: boolean) => boolean,
    readonly id: number,
    readonly target: WireTarget,
    readonly mode: TaskMode,
    readonly args: string,
    readonly items: number,
  ) {
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve as (value: unknown) => void;
      this.reject = reject;
    });
  }

  state(): "pending" | "running" | "finished" | "cancelled" {
    return this.status === CANCELLED
      ? "cancelled"
      : this.status === SETTLED
      ? "finished"
      : "pending";
  }

  cancel(reason?: unknown): boolean {
    return this.settle(this, false, reason ?? new CancelledError("The task was cancelled"), true);
  }
}

/** Lets a connection hold the program open, or not, as a timer's `ref()`/`unref()`. */
function holdProgram(redis: Redis, holding: boolean): void {
  const stream = (redis as unknown as { stream?: { ref?(): void; unref?(): void } }).stream;
  if (holding) stream?.ref?.();
  else stream?.unref?.();
}

/**
 * A pool whose workers are other machines: the API of `ThreadPool` and `Pool` (`submit`, `apply`,
 * `map`, `starmap`, `imap`, `imapUnordered`, `close`, `join`, `terminate`, `waitForRoom`, `stats`,
 * `await using`), with the tasks carried by a BullMQ queue on Redis to worker nodes started with
 * `multiproc worker`. Its futures are the library's `Future`s: `asCompleted()` and `wait()` take
 * them.
 *
 * A task's function is found on the node as in a local pool: by its module (a path relative to
 * `root`, checked by content hash against the node's `--root`) or, on nodes started with
 * `--allow-source`, by its source. Arguments and results keep what structured clone keeps.
 *
 * Guarantees: every future settles exactly once; a task that throws rejects and is not run again;
 * a task whose node dies, is cut off or stalls past its lease runs again up to `retries` times,
 * then rejects with a `WorkerLostError`; when Redis restarts or stops answering, pending futures
 * reject with a `WorkerLostError` within {@linkcode REDIS_SILENCE_MS}.
 *
 * Nothing connects before the first task; `close()` + `join()` (or `await using`) ends the
 * connections.
 *
 * @example Check the options; no Redis is needed until the first task
 * ```ts
 * import { DistributedPool } from "@multiproc/multiproc/distributed";
 *
 * await using pool = new DistributedPool({ connection: "redis://localhost:6379", queue: "jobs" });
 * console.log(pool.name.startsWith("DistributedPool-"), pool.stats().queueLength); // true 0
 * ```
 * @example Square numbers on the nodes of queue "jobs"
 * ```ts ignore
 * import { DistributedPool } from "@multiproc/multiproc/distributed";
 * import { square } from "./tasks.ts";
 *
 * await using pool = new DistributedPool({ connection: "redis://localhost:6379", queue: "jobs" });
 * console.log(await pool.map(square, [1, 2, 3])); // [1, 4, 9]
 * ```
 */
export class DistributedPool {
  readonly #name: string;
  readonly #target: RedisTarget;
  readonly #queueName: string;
  readonly #maxQueue: number | undefined;
  readonly #retries: number;
  readonly #root: string;
  readonly #clientId = crypto.randomUUID();
  readonly #keys: { stream: string; cancelled: string };
  #state: "open" | "closed" | "terminated" = "open";
  #queue: Queue | undefined;
  #commands: Redis | undefined;
  #reader: Redis | undefined;
  #reading = false;
  #holding = false;
  #lastId = "0-0";
  #taskIds = 0;
  /** Tasks sent or waiting to be sent, by id, until they settle. */
  #pending = new Map<number, RemoteTask>();
  /** Tasks waiting for room under `maxQueue`, in order. */
  #held: RemoteTask[] = [];
  #heldHead = 0;
  /** Tasks on the queue (sent, not settled). */
  #onQueue = 0;
  /** Tasks to send at the end of this turn. */
  #batch: RemoteTask[] = [];
  #flushScheduled = false;
  #roomWaiters: (() => void)[] = [];
  #idleWaiters: (() => void)[] = [];
  #wireTargets = new WeakMap<TargetEntry, WireTarget>();
  #joined: Promise<void> | undefined;
  #itemMs = -1;
  #completed = 0;
  #failed = 0;
  #cancelled = 0;
  #runTimes = new Samples();
  #roundTrips = new Samples();
  #settleBound = (task: RemoteTask, ok: boolean, value: unknown, cancelled: boolean): boolean =>
    this.#settle(task, ok, value, cancelled);

  /**
   * Checks the options; nothing connects before the first task.
   *
   * @param options `connection` (required), `queue`, `name`, `maxQueue`, `retries`, `root`.
   * @throws {TypeError} When an option has the wrong type or is unknown, or `connection` is neither
   * a Redis URL nor a socket path.
   * @throws {RangeError} When `maxQueue` is not a positive integer or `retries` is negative.
   */
  constructor(options: DistributedPoolOptions) {
    const what = "DistributedPool";
    const o: Partial<DistributedPoolOptions> = checkOptions(
      options,
      what,
      POOL_OPTION_NAMES,
      'pass { connection: "redis://localhost:6379" }',
    );
    this.#target = parseConnection(o.connection, what);
    this.#queueName = checkQueueName(o.queue, what);
    this.#maxQueue = checkPositiveInteger(o.maxQueue, "maxQueue", what);
    this.#retries = checkInteger(o.retries, "retries", { min: 0, what }) ?? 1;
    this.#name = checkString(o.name, "name", what) ?? `DistributedPool-${++poolCount}`;
    this.#root = checkString(o.root, "root", what) ?? process.cwd();
    this.#keys = clientKeys(this.#queueName, this.#clientId);
  }

  /** The pool's name, for messages. */
  get name(): string {
    return this.#name;
  }

  /** The queue that the pool's nodes serve. */
  get queue(): string {
    return this.#queueName;
  }

  #terminated(): boolean {
    return this.#state === "terminated";
  }

  #refusal(): Error | undefined {
    if (this.#state === "closed") return new Error(`Cannot submit to ${this.#name}: it is closed`);
    if (this.#state === "terminated") {
      return new Error(`Cannot submit to ${this.#name}: it was terminated`);
    }
    return undefined;
  }

  #redisOptions(role: "commands" | "reader"): RedisOptions {
    const base: RedisOptions = {
      ...("path" in this.#target ? { path: this.#target.path } : {}),
      lazyConnect: true,
      connectTimeout: REDIS_SILENCE_MS,
      // A command waits through at most one reconnection, then fails, so that no task hangs.
      maxRetriesPerRequest: 1,
      retryStrategy: (times) => Math.min(times * 100, 1000),
    };
    if (role === "reader") {
      // A read left over from before a restart would wait on a stream that is gone.
      base.autoResendUnfulfilledCommands = false;
      // Each read blocks for READ_BLOCK_MS at most, well within this: a read still unanswered
      // after it means that Redis went silent no earlier than when the read was sent.
      base.commandTimeout = REDIS_SILENCE_MS;
    }
    return base;
  }

  #connect(): void {
    if (this.#queue) return;
    const make = (role: "commands" | "reader") =>
      "url" in this.#target
        ? new Redis(this.#target.url, this.#redisOptions(role))
        : new Redis(this.#redisOptions(role));
    this.#commands = make("commands");
    this.#reader = make("reader");
    // A new socket after a reconnection holds the program as the old one did.
    for (const redis of [this.#commands, this.#reader]) {
      redis.on("connect", () => holdProgram(redis, this.#holding));
    }
    // ioredis reports failures as events too; the commands' rejections say the same.
    this.#commands.on("error", noop);
    this.#reader.on("error", noop);
    this.#reader.on("close", () => {
      if (this.#pending.size > 0 && this.#onQueue > 0) {
        this.#loseAll(new Error(`The connection to Redis at '${this.#where()}' closed`));
      }
    });
    this.#queue = new Queue(this.#queueName, { connection: this.#commands });
    this.#queue.on("error", noop);
  }

  #where(): string {
    return describeConnection(this.#target);
  }

  /** Rejects every task on the queue with a `WorkerLostError`: Redis is gone, and so are they. */
  #loseAll(cause: unknown): void {
    for (const task of [...this.#pending.values()]) {
      if (task.status !== SENT) continue;
      this.#settle(
        task,
        false,
        new WorkerLostError(
          `${this.#name} lost its connection to Redis at '${this.#where()}' while the task was pending; it may have partly run`,
          { cause },
        ),
        false,
      );
    }
  }

  #wire(entry: TargetEntry, what: string): WireTarget {
    const cached = this.#wireTargets.get(entry);
    if (cached) return cached;
    const spec = entry.spec;
    const wire: WireTarget = {
      name: spec.name,
      source: spec.source,
      evalText: spec.evalText,
      importRequired: spec.importRequired ?? true,
    };
    if (spec.module !== undefined) {
      let path: string | undefined;
      if (spec.module.startsWith("file:")) {
        const file = fileURLToPath(spec.module);
        const rel = relative(this.#root, file);
        if (rel !== "" && !rel.startsWith("..") && !/^[a-z]:/i.test(rel) && !rel.startsWith(sep)) {
          path = rel.split(sep).join("/");
          wire.hash = moduleHash(file);
        }
      }
      if (path === undefined && (spec.importRequired || spec.evalText === undefined)) {
        throw new TypeError(
          `${what} target '${
            spec.name || "(anonymous)"
          }' comes from '${spec.module}', which is not a file under the pool's root '${this.#root}': nodes find modules by their path under their --root; pass 'root' (the directory that holds the module, as the nodes' --root) or make the function self-contained`,
        );
      }
      wire.path = path;
      if (path === undefined) wire.importRequired = false;
    }
    this.#wireTargets.set(entry, wire);
    return wire;
  }

  #encodeArgs(args: unknown[], what: string): string {
    try {
      return encode(args);
    } catch (error) {
      if (!(error instanceof UnsendableValueError)) throw error;
      const match = /^\[(\d+)\](.*)$/.exec(error.path);
      const where = match
        ? `argument ${match[1]}${match[2] ? ` (at ${match[2]})` : ""}`
        : "an argument";
      throw new TypeError(`${what} ${where} cannot be sent: ${error.message}`);
    }
  }

  #newTask(
    entry: TargetEntry,
    mode: TaskMode,
    args: unknown[],
    items: number,
    what: string,
  ): RemoteTask {
    const target = this.#wire(entry, what);
    const text = mode === TaskMode.Apply
      ? this.#encodeArgs(args, what)
      : this.#encodeItems(args, mode, what);
    this.#taskIds = this.#taskIds >= Number.MAX_SAFE_INTEGER ? 1 : this.#taskIds + 1;
    const task = new RemoteTask(this.#settleBound, this.#taskIds, target, mode, text, items);
    this.#pending.set(task.id, task);
    if (
      this.#maxQueue !== undefined &&
      (this.#onQueue >= this.#maxQueue || this.#heldHead < this.#held.length)
    ) {
      this.#held.push(task);
    } else {
      this.#enqueue(task);
    }
    return task;
  }

  #encodeItems(items: unknown[], mode: TaskMode, what: string): string {
    try {
      return encode(items);
    } catch (error) {
      if (!(error instanceof UnsendableValueError)) throw error;
      const match = /^\[(\d+)\](?:\[(\d+)\])?(.*)$/.exec(error.path);
      const where = !match
        ? "an item"
        : mode === TaskMode.Starmap && match[2] !== undefined
        ? `argument ${match[2]} of an item${match[3] ? ` (at ${match[3]})` : ""}`
        : `an item${match[2] !== undefined ? ` (at [${match[2]}]${match[3]})` : ""}`;
      throw new TypeError(`${what} ${where} cannot be sent: ${error.message}`);
    }
  }

  #enqueue(task: RemoteTask): void {
    task.status = SENT;
    this.#onQueue++;
    this.#batch.push(task);
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const tasks = this.#batch.filter((task) => task.status === SENT);
    this.#batch = [];
    if (tasks.length === 0 || this.#state === "terminated") return;
    this.#connect();
    const totalItems = tasks.reduce((sum, task) => sum + task.items, 0);
    const perJobItems = Math.min(MAX_JOB_ITEMS, Math.max(1, Math.ceil(totalItems / SPREAD_JOBS)));
    const jobs: { name: string; data: JobData; opts: object }[] = [];
    const jobTasks: RemoteTask[][] = [];
    let current: RemoteTask[] = [];
    let items = 0;
    const close = () => {
      if (current.length === 0) return;
      const targets: WireTarget[] = [];
      const index = new Map<WireTarget, number>();
      const wireTasks: WireTask[] = current.map((task) => {
        let t = index.get(task.target);
        if (t === undefined) {
          index.set(task.target, t = targets.length);
          targets.push(task.target);
        }
        return [task.id, t, task.mode, task.args, task.items];
      });
      jobs.push({
        name: "tasks",
        data: {
          stream: this.#keys.stream,
          cancelled: this.#keys.cancelled,
          retries: this.#retries,
          targets,
          tasks: wireTasks,
        },
        opts: { removeOnComplete: true, removeOnFail: true },
      });
      jobTasks.push(current);
      current = [];
      items = 0;
    };
    for (const task of tasks) {
      if (
        current.length > 0 && (items + task.items > perJobItems || current.length >= MAX_JOB_TASKS)
      ) {
        close();
      }
      current.push(task);
      items += task.items;
    }
    close();
    this.#startReading();
    this.#queue!.addBulk(jobs).catch((error) => {
      for (const group of jobTasks) {
        for (const task of group) {
          this.#settle(
            task,
            false,
            new WorkerLostError(
              `${this.#name} could not put the task on queue '${this.#queueName}' at '${this.#where()}'; it did not run`,
              { cause: error },
            ),
            false,
          );
        }
      }
    });
  }

  #startReading(): void {
    this.#hold(true);
    if (this.#reading) return;
    this.#reading = true;
    this.#read().finally(() => {
      this.#reading = false;
      // Nothing on the queue: as the local pools' idle workers, the connections let the program
      // end. A later task holds it again.
      if (this.#onQueue === 0) this.#hold(false);
    });
  }

  #hold(holding: boolean): void {
    this.#holding = holding;
    if (this.#commands) holdProgram(this.#commands, holding);
    if (this.#reader) holdProgram(this.#reader, holding);
  }

  async #read(): Promise<void> {
    const reader = this.#reader!;
    const commands = this.#commands!;
    while (this.#onQueue > 0 && this.#reader === reader) {
      let reply: [string, [string, string[]][]][] | null;
      try {
        reply = await reader.xread(
          "COUNT",
          1000,
          "BLOCK",
          READ_BLOCK_MS,
          "STREAMS",
          this.#keys.stream,
          this.#lastId,
        ) as [string, [string, string[]][]][] | null;
      } catch (error) {
        if (this.#terminated()) return;
        this.#loseAll(error);
        continue;
      }
      if (reply === null) continue;
      for (const [, entries] of reply) {
        for (const [id, fields] of entries) {
          this.#lastId = id;
          for (let i = 0; i + 1 < fields.length; i += 2) {
            if (fields[i] === OUTCOMES_FIELD) this.#receive(fields[i + 1]);
          }
        }
      }
      // What was read is not needed again: the stream keeps only the last entry.
      commands.xtrim(this.#keys.stream, "MINID", this.#lastId).catch(noop);
    }
  }

  #receive(text: string): void {
    let outcomes: WireOutcome[];
    try {
      outcomes = JSON.parse(text);
    } catch {
      return;
    }
    for (const [id, kind, payload, runMs] of outcomes) {
      const task = this.#pending.get(id);
      if (task === undefined || task.status !== SENT) continue;
      this.#runTimes.add(runMs);
      if (task.items > 0 && task.mode !== TaskMode.Apply) {
        const perItem = runMs / task.items;
        this.#itemMs = this.#itemMs < 0 ? perItem : 0.8 * this.#itemMs + 0.2 * perItem;
      }
      if (kind === Outcome.Lost) {
        this.#settle(task, false, new WorkerLostError(payload), false);
        continue;
      }
      let value: unknown;
      try {
        value = decode(payload);
      } catch (error) {
        this.#settle(
          task,
          false,
          new TypeError(`${this.#name} could not read the outcome of a task`, { cause: error }),
          false,
        );
        continue;
      }
      this.#settle(task, kind === Outcome.Value, value, false);
    }
  }

  /** Settles `task` once; false when it had settled already. */
  #settle(task: RemoteTask, ok: boolean, value: unknown, cancelled: boolean): boolean {
    if (task.status === SETTLED || task.status === CANCELLED) return false;
    const wasSent = task.status === SENT;
    task.status = cancelled ? CANCELLED : SETTLED;
    this.#pending.delete(task.id);
    if (task.timer) task.timer.clear();
    if (task.onAbort) task.signal!.removeEventListener("abort", task.onAbort);
    if (cancelled) {
      this.#cancelled++;
      if (wasSent && this.#commands) {
        // The node skips a cancelled task that it has not started.
        this.#commands.multi()
          .sadd(this.#keys.cancelled, task.id)
          .expire(this.#keys.cancelled, KEY_TTL_S)
          .exec()
          .catch(noop);
      }
    } else if (ok) {
      this.#completed++;
      this.#roundTrips.add(performance.now() - task.submittedAt);
    } else this.#failed++;
    if (ok) task.resolve(value);
    else {
      if (task.quiet) task.promise.catch(noop);
      task.reject(value);
    }
    if (wasSent) {
      this.#onQueue--;
      this.#admitHeld();
    }
    this.#wake();
    return true;
  }

  #admitHeld(): void {
    while (
      this.#heldHead < this.#held.length &&
      (this.#maxQueue === undefined || this.#onQueue < this.#maxQueue)
    ) {
      const task = this.#held[this.#heldHead++];
      if (task.status === PENDING) this.#enqueue(task);
    }
    if (this.#heldHead > 1024 && this.#heldHead * 2 > this.#held.length) {
      this.#held.splice(0, this.#heldHead);
      this.#heldHead = 0;
    }
  }

  #hasRoom(): boolean {
    return this.#maxQueue === undefined || this.#pending.size < this.#maxQueue;
  }

  #wake(): void {
    if (this.#roomWaiters.length > 0 && (this.#hasRoom() || this.#state !== "open")) {
      const waiters = this.#roomWaiters;
      this.#roomWaiters = [];
      for (const wake of waiters) wake();
    }
    if (this.#pending.size === 0 && this.#idleWaiters.length > 0) {
      const waiters = this.#idleWaiters;
      this.#idleWaiters = [];
      for (const wake of waiters) wake();
    }
  }

  #task(fn: unknown, args: unknown, options: TaskOptions | undefined, what: string): RemoteTask {
    const refusal = this.#refusal();
    if (refusal) throw refusal;
    let module: string | URL | undefined;
    let signal: AbortSignal | undefined;
    let timeoutMs: number | undefined;
    if (options !== undefined) {
      checkOptions(options, what, TASK_OPTION_NAMES, "pass { timeoutMs, signal, module }");
      module = checkModule(options.module);
      signal = checkSignal(options.signal);
      timeoutMs = checkTimeoutMs(options.timeoutMs);
    }
    const entry = targetEntry(fn, module, what);
    if (!this.#hasRoom()) {
      throw new QueueFullError(
        `${this.#name} has ${this.#maxQueue} tasks pending, its 'maxQueue': await waitForRoom() before submitting to wait for room instead`,
      );
    }
    if (args !== undefined && !Array.isArray(args)) {
      throw new TypeError(`${what} 'args' must be an array: received ${describeValue(args)}`);
    }
    const task = this.#newTask(entry, TaskMode.Apply, (args ?? []) as unknown[], 1, what);
    if (signal) {
      if (signal.aborted) task.cancel(signal.reason);
      else {
        task.signal = signal;
        task.onAbort = () => task.cancel(signal.reason);
        signal.addEventListener("abort", task.onAbort, { once: true });
      }
    }
    if (timeoutMs !== undefined && timeoutMs !== Infinity && task.status !== CANCELLED) {
      task.timer = setLongTimeout(
        () => task.cancel(new TimeoutError(`The task did not finish within ${timeoutMs} ms`)),
        timeoutMs,
      );
    }
    return task;
  }

  /**
   * Runs `fn(...args)` on a node, as `Pool.apply()`.
   *
   * @param fn The function: exported from a module under `root`, or self-contained (for nodes
   * started with `--allow-source`).
   * @param args Its arguments; they keep what structured clone keeps.
   * @param options `signal` and `timeoutMs` cancel it; `module` says where `fn` is exported.
   * @returns A promise of the result. It rejects with the task's error (class, message, stack,
   * fields and `cause` kept), a `WorkerLostError`, `signal.reason` or a `TimeoutError`.
   * @throws {TypeError} (as a rejection) When `fn` cannot be found on a node, when an argument
   * cannot be sent (the message names which), or when an option has the wrong type.
   * @throws {Error} (as a rejection) When the pool is closed or terminated.
   * @example
   * ```ts ignore
   * import { DistributedPool } from "@multiproc/multiproc/distributed";
   *
   * await using pool = new DistributedPool({ connection: "redis://localhost:6379" });
   * console.log(await pool.apply((a: number, b: number) => a + b, [2, 3])); // 5
   * ```
   */
  apply<Args extends unknown[], R>(
    fn: (...args: Args) => R,
    args?: Args,
    options?: TaskOptions,
  ): Promise<Awaited<R>> {
    try {
      return this.#task(fn, args, options, "DistributedPool.apply()").promise as Promise<
        Awaited<R>
      >;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Submits `fn(...args)` and returns its {@linkcode Future} at once, as `Pool.submit()`.
   * Cancelling a task that a node has not started keeps it from running; one that has started
   * runs on, and its result is dropped.
   *
   * @param fn The function, as for {@linkcode DistributedPool.apply}.
   * @param args Its arguments.
   * @param options `signal`, `timeoutMs` and `module`.
   * @returns A future.
   * @throws {TypeError} When `fn` cannot be found on a node, an argument cannot be sent, or an
   * option has the wrong type.
   * @throws {Error} When the pool is closed or terminated.
   * @example
   * ```ts ignore
   * import { DistributedPool } from "@multiproc/multiproc/distributed";
   *
   * await using pool = new DistributedPool({ connection: "redis://localhost:6379" });
   * const futures = [1, 2, 3].map((n) => pool.submit((x: number) => x * x, [n]));
   * console.log(await Promise.all(futures)); // [1, 4, 9]
   * ```
   */
  submit<Args extends unknown[], R>(
    fn: (...args: Args) => R,
    args?: Args,
    options?: TaskOptions,
  ): Future<Awaited<R>> {
    const task = this.#task(fn, args, options, "DistributedPool.submit()");
    return new Future(task as RemoteTask<Awaited<R>>);
  }

  #chunkOptions(
    fn: unknown,
    iterable: unknown,
    options: ImapOptions | undefined,
    what: string,
    known: readonly (keyof ImapOptions)[],
  ): { entry: TargetEntry; chunksize?: number; buffersize: number; timeoutMs?: number } {
    const refusal = this.#refusal();
    if (refusal) throw refusal;
    checkOptions(
      options,
      what,
      known,
      "pass { chunksize: 8 } where Python passes the chunk size by position",
    );
    const module = options?.module === undefined ? undefined : checkModule(options.module);
    const entry = targetEntry(fn, module, what);
    this.#wire(entry, what);
    checkIterable(iterable, what);
    const chunksize = checkPositiveInteger(options?.chunksize, "chunksize");
    const buffersize = checkPositiveInteger(options?.buffersize, "buffersize") ?? DEFAULT_BUFFER;
    const timeoutMs = checkTimeoutMs(options?.timeoutMs, what);
    return { entry, chunksize, buffersize, timeoutMs };
  }

  /**
   * Runs `fn` on every item on the nodes and returns the results in input order, as `Pool.map()`.
   * The items travel in chunks, at least 64 of them by default; the first error rejects the map.
   *
   * @param fn The function, as for {@linkcode DistributedPool.apply}; it takes one item.
   * @param iterable The items: an iterable or async iterable.
   * @param options `chunksize` (automatic when unset) and `module`.
   * @returns A promise of the results, in input order.
   * @throws {TypeError} (as a rejection) When `iterable` is not iterable, for a bad `fn`, or when
   * an item cannot be sent.
   * @throws {RangeError} (as a rejection) When `chunksize` is not a positive integer.
   * @example
   * ```ts ignore
   * import { DistributedPool } from "@multiproc/multiproc/distributed";
   *
   * await using pool = new DistributedPool({ connection: "redis://localhost:6379" });
   * console.log(await pool.map((n: number) => n * 2, [1, 2, 3])); // [2, 4, 6]
   * ```
   */
  map<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    options?: MapOptions,
  ): Promise<Awaited<R>[]> {
    return this.#map(fn, iterable, options, TaskMode.Map, "DistributedPool.map()") as Promise<
      Awaited<R>[]
    >;
  }

  /**
   * As {@linkcode DistributedPool.map}, with each item an array of arguments, as
   * `Pool.starmap()`.
   *
   * @param fn The function, as for {@linkcode DistributedPool.apply}.
   * @param iterable Arrays of arguments.
   * @param options `chunksize` and `module`.
   * @returns A promise of the results, in input order.
   * @throws {TypeError} (as a rejection) When an item is not an array, or as `map()` does.
   * @example
   * ```ts ignore
   * import { DistributedPool } from "@multiproc/multiproc/distributed";
   *
   * await using pool = new DistributedPool({ connection: "redis://localhost:6379" });
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
      "DistributedPool.starmap()",
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
    const { entry, chunksize, timeoutMs } = this.#chunkOptions(
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
          entry,
          iterable,
          chunksize,
          DEFAULT_BUFFER,
          mode,
          true,
          what,
          timeoutMs,
        )
      ) results.push(value);
      return results;
    }
    const items = Array.isArray(iterable) ? iterable : Array.from(iterable as Iterable<unknown>);
    const size = chunksize ??
      Math.min(MAX_AUTO_CHUNK, Math.max(1, Math.ceil(items.length / MAP_CHUNKS)));
    return await eagerMap(items, size, this.#chunkHooks(entry, mode, what), {
      mode,
      what,
      timeoutMs,
    });
  }

  /** How the shared map drivers submit and take back this pool's chunks. */
  #chunkHooks(entry: TargetEntry, mode: TaskMode, what: string): ChunkHooks<RemoteTask> {
    // Until the first chunk's speed is known, chunks double from 1: each chunk costs a job.
    let grow = 1;
    return {
      room: () => this.waitForRoom(),
      refusal: () => this.#refusal(),
      chunkSize: () => {
        const size = Math.max(this.#adaptiveChunk(), this.#itemMs < 0 ? grow : 1);
        grow = Math.min(MAX_AUTO_CHUNK, grow * 2);
        return size;
      },
      submit: (chunk) => this.#newTask(entry, mode, chunk, chunk.length, what),
      drop: (task) => task.cancel(),
      dropUnstarted: (task) => task.cancel(),
      eagerRoom: this.#maxQueue !== undefined,
    };
  }

  /**
   * Runs `fn` on every item, lazily, and yields the results in input order, as `Pool.imap()`: the
   * input is pulled only as far as `buffersize` chunks ahead of the consumer. Leaving the loop
   * early cancels the chunks not yet started.
   *
   * @param fn The function; it takes one item.
   * @param iterable The items: an iterable or async iterable, possibly infinite.
   * @param options `chunksize` (by default it grows until a chunk takes about 5 ms on a node),
   * `buffersize` (64 chunks by default), `module`.
   * @returns An async iterable of the results, in input order.
   * @throws {TypeError} When `iterable` is not iterable, or for a bad `fn`.
   * @throws {RangeError} When `chunksize` or `buffersize` is not a positive integer.
   * @example
   * ```ts ignore
   * import { DistributedPool } from "@multiproc/multiproc/distributed";
   *
   * await using pool = new DistributedPool({ connection: "redis://localhost:6379" });
   * for await (const square of pool.imap((n: number) => n * n, [1, 2, 3])) console.log(square);
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
   * As {@linkcode DistributedPool.imap}, but yields each result as soon as it is ready, as
   * `Pool.imapUnordered()`.
   *
   * @param fn The function; it takes one item.
   * @param iterable The items: an iterable or async iterable, possibly infinite.
   * @param options `chunksize` (automatic when unset), `buffersize`, `module`.
   * @returns An async iterable of the results, in completion order.
   * @throws {TypeError} When `iterable` is not iterable, or for a bad `fn`.
   * @throws {RangeError} When `chunksize` or `buffersize` is not a positive integer.
   * @example
   * ```ts ignore
   * import { DistributedPool } from "@multiproc/multiproc/distributed";
   *
   * await using pool = new DistributedPool({ connection: "redis://localhost:6379" });
   * for await (const n of pool.imapUnordered((x: number) => x + 1, [1, 2, 3])) console.log(n);
   * ```
   */
  imapUnordered<T, R>(
    fn: (item: T) => R,
    iterable: Iterable<T> | AsyncIterable<T>,
    options?: ImapOptions,
  ): AsyncGenerator<Awaited<R>, void, undefined> {
    return this.#lazyMap<R>(fn, iterable, options, false);
  }

  #lazyMap<R>(
    fn: unknown,
    iterable: unknown,
    options: ImapOptions | undefined,
    ordered: boolean,
  ): AsyncGenerator<Awaited<R>, void, undefined> {
    const what = `DistributedPool.${ordered ? "imap" : "imapUnordered"}()`;
    const { entry, chunksize, buffersize, timeoutMs } = this.#chunkOptions(
      fn,
      iterable,
      options,
      what,
      IMAP_OPTION_NAMES,
    );
    return this.#imap(
      entry,
      iterable,
      chunksize,
      buffersize,
      TaskMode.Map,
      ordered,
      what,
      timeoutMs,
    ) as AsyncGenerator<Awaited<R>, void, undefined>;
  }

  /** The chunk size for lazy input: about {@linkcode CHUNK_TARGET_MS} of measured work. */
  #adaptiveChunk(): number {
    if (this.#itemMs < 0) return 1;
    if (this.#itemMs === 0) return MAX_AUTO_CHUNK;
    return Math.max(1, Math.min(MAX_AUTO_CHUNK, Math.floor(CHUNK_TARGET_MS / this.#itemMs)));
  }

  #imap(
    entry: TargetEntry,
    iterable: unknown,
    chunksize: number | undefined,
    buffersize: number,
    mode: TaskMode,
    ordered: boolean,
    what: string,
    timeoutMs: number | undefined,
  ): AsyncGenerator<unknown, void, undefined> {
    return lazyMap(iterable, chunksize, buffersize, ordered, this.#chunkHooks(entry, mode, what), {
      mode,
      what,
      timeoutMs,
    });
  }

  /**
   * Accepts no more tasks; those submitted still run. Wait for them with
   * {@linkcode DistributedPool.join}.
   *
   * @example
   * ```ts
   * import { DistributedPool } from "@multiproc/multiproc/distributed";
   *
   * const pool = new DistributedPool({ connection: "/run/redis/redis.sock" });
   * pool.close();
   * await pool.join();
   * ```
   */
  close(): void {
    if (this.#state === "open") this.#state = "closed";
    this.#wake();
  }

  /**
   * Stops at once: pending tasks reject with a `BrokenPoolError` (those not started on a node are
   * skipped there), and the connections to Redis close. Nodes are not stopped: they serve the
   * queue, not the pool.
   *
   * @returns A promise that resolves once the connections are closed.
   * @example
   * ```ts
   * import { DistributedPool } from "@multiproc/multiproc/distributed";
   *
   * const pool = new DistributedPool({ connection: "/run/redis/redis.sock" });
   * await pool.terminate();
   * ```
   */
  async terminate(): Promise<void> {
    if (this.#state !== "terminated") {
      this.#state = "terminated";
      const error = new BrokenPoolError(`${this.#name} was terminated`);
      for (const task of [...this.#pending.values()]) this.#settle(task, false, error, true);
    }
    this.#wake();
    await this.#disconnect();
  }

  async #disconnect(): Promise<void> {
    const queue = this.#queue;
    const commands = this.#commands;
    const reader = this.#reader;
    this.#queue = this.#commands = this.#reader = undefined;
    if (!queue) return;
    await queue.close().catch(noop);
    reader!.disconnect();
    // Commands in flight (a cancellation) go out before the connection ends.
    await commands!.quit().catch(() => commands!.disconnect());
    while (this.#reading) await new Promise((resolve) => setTimeout(resolve, 1));
  }

  /**
   * Waits until the pool is closed and every task has settled, then ends the connections.
   *
   * @returns A promise that resolves when the pool is done.
   * @throws {Error} (as a rejection) When the pool is still open.
   * @example
   * ```ts
   * import { DistributedPool } from "@multiproc/multiproc/distributed";
   *
   * const pool = new DistributedPool({ connection: "/run/redis/redis.sock" });
   * pool.close();
   * await pool.join();
   * ```
   */
  join(): Promise<void> {
    if (this.#state === "open") {
      return Promise.reject(
        new Error(`Cannot join ${this.#name}: call close() or terminate() first`),
      );
    }
    return this.#joined ??= (async () => {
      while (this.#pending.size > 0) {
        await new Promise<void>((resolve) => this.#idleWaiters.push(resolve));
      }
      await this.#disconnect();
    })();
  }

  /**
   * `close()` then `join()`, for `await using pool = new DistributedPool(…)`.
   *
   * @returns A promise that resolves when every task has settled and the connections are closed.
   */
  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.join();
  }

  /**
   * Waits until fewer than `maxQueue` tasks are pending. `submit()` and `apply()` never wait: past
   * `maxQueue` they reject with a `QueueFullError`. A producer that awaits this before each of them
   * never meets it.
   *
   * @returns A promise that resolves when there is room (at once without `maxQueue`), or when the
   * pool no longer takes tasks.
   * @example
   * ```ts
   * import { DistributedPool } from "@multiproc/multiproc/distributed";
   *
   * await using pool = new DistributedPool({ connection: "/run/redis/redis.sock", maxQueue: 4 });
   * await pool.waitForRoom(); // at once: nothing is pending
   * ```
   */
  waitForRoom(): Promise<void> {
    if (this.#hasRoom() || this.#state !== "open") return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  /**
   * Counts and timings, for monitoring. `size`, `workers` and `busyWorkers` are 0: the nodes are
   * not the pool's own. `runTimeMs` is a task's time on its node; `waitTimeMs` is the round trip
   * of a task from `submit()` to its result.
   *
   * @returns Tasks completed, failed and cancelled, tasks pending, and timings.
   * @example
   * ```ts
   * import { DistributedPool } from "@multiproc/multiproc/distributed";
   *
   * await using pool = new DistributedPool({ connection: "/run/redis/redis.sock" });
   * console.log(pool.stats().tasksCompleted); // 0
   * ```
   */
  stats(): PoolStats {
    return {
      size: 0,
      workers: 0,
      busyWorkers: 0,
      queueLength: this.#pending.size,
      tasksCompleted: this.#completed,
      tasksFailed: this.#failed,
      tasksCancelled: this.#cancelled,
      utilization: 0,
      runTimeMs: this.#runTimes.percentiles(),
      waitTimeMs: this.#roundTrips.percentiles(),
    };
  }
}
