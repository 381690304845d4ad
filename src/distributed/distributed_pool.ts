/**
 * {@linkcode DistributedPool}: the pool API of `ThreadPool` and `Pool`, with the work done by
 * worker nodes (`multiproc worker`) on other machines, through a BullMQ queue on Redis. Client
 * side: the remote backend of {@linkcode BasePool}, which holds the API, its checks and its docs.
 *
 * Rules this file keeps:
 * - Every future settles exactly once: a result that arrives twice (a task run again after its node
 *   stalled) is dropped, and a future that settled by cancellation ignores its late result.
 * - A task runs from when its node marks its start on the stream until its outcome: `running()` is
 *   true then, and `cancel()` is false as Python's (`timeoutMs` and `signal` still reject it).
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
import {
  CANCELLED,
  type PoolStats,
  QUEUED,
  Samples,
  SENT,
  SETTLED,
  type TargetEntry,
  targetEntry,
} from "../_pool_engine.ts";
import { chunkForSpeed, type ChunkHooks, MAX_AUTO_CHUNK } from "../_chunked_map.ts";
import {
  checkInteger,
  checkModule,
  checkOptions,
  checkPositiveInteger,
  checkString,
  type LongTimeout,
  setLongTimeout,
} from "../_checks.ts";
import { BrokenPoolError, CancelledError, QueueFullError, TimeoutError } from "../errors.ts";
import type { Future, FutureTask, FutureWaitOptions } from "../future.ts";
import {
  attachBackend,
  BasePool,
  type CloseOptions,
  type ImapOptions,
  type MapOptions,
  type PoolBackend,
  type ShutdownOptions,
  type TaskOptions,
} from "../_pool_facade.ts";
import { decode, encode, UnsendableValueError } from "./_codec.ts";
import { moduleHash } from "./_module_hash.ts";
import {
  checkQueueName,
  clientKeys,
  describeConnection,
  HEARTBEAT_MS,
  type JobData,
  KEY_TTL_S,
  nodeKey,
  type NodeReport,
  nodesKey,
  Outcome,
  OUTCOMES_FIELD,
  parseConnection,
  parseWireJson,
  type RedisTarget,
  STARTED_FIELD,
  type WireOutcome,
  type WireTarget,
  type WireTask,
} from "./_wire.ts";
import { WorkerLostError } from "./worker_lost_error.ts";

export { BasePool };
export type {
  CloseOptions,
  Future,
  FutureWaitOptions,
  ImapOptions,
  MapOptions,
  PoolStats,
  ShutdownOptions,
  TaskOptions,
};

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
  /**
   * A module URL or path, under `root`, that exports the tasks' functions where a call does not
   * say (a call's own `module` option takes precedence), as the local pools' `module`.
   */
  module?: string | URL;
}

const POOL_OPTION_NAMES = [
  "connection",
  "queue",
  "name",
  "maxQueue",
  "retries",
  "root",
  "module",
] as const satisfies readonly (keyof DistributedPoolOptions)[];

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
/** `imap()` grows its chunks until one takes about this long on a node. */
const CHUNK_TARGET_MS = 5;
const DEFAULT_BUFFER = 64;

const noop = () => {};
let poolCount = 0;

/** One task of a distributed pool. */
class RemoteTask<T = unknown> implements FutureTask<T> {
  readonly promise: Promise<T>;
  // deno-lint-ignore no-explicit-any
  resolve!: (value: any) => void;
  reject!: (reason: unknown) => void;
  status: number = QUEUED;
  quiet: boolean = false;
  timer: LongTimeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  submittedAt: number = performance.now();
  /** Its node has handed it to a local worker: it runs (while `SENT`). */
  started = false;

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
      : this.status === SENT && this.started
      ? "running"
      : "pending";
  }

  /** On the queue: sent, and not settled. */
  sent(): boolean {
    return this.status === SENT;
  }

  /** As Python's `Future.cancel()`: false once the task runs on its node, or has settled. */
  cancel(reason?: unknown): boolean {
    if (this.started) return false;
    return this.abandon(reason ?? new CancelledError("The task was cancelled"));
  }

  /**
   * Rejects the future with `reason` even when the task runs (its timeout, its signal): a task that
   * runs goes on, and its outcome is dropped.
   */
  abandon(reason: unknown): boolean {
    return this.settle(this, false, reason, true);
  }
}

/** Lets a connection hold the program open, or not, as a timer's `ref()`/`unref()`. */
function holdProgram(redis: Redis, holding: boolean): void {
  const stream = (redis as unknown as { stream?: { ref?(): void; unref?(): void } }).stream;
  if (holding) stream?.ref?.();
  else stream?.unref?.();
}

/** The remote backend of a {@linkcode DistributedPool}: BullMQ jobs on Redis, and a result stream. */
class RemoteBackend implements PoolBackend<RemoteTask> {
  readonly kind = "DistributedPool";
  readonly module: string | URL | undefined;
  readonly imapBuffer = DEFAULT_BUFFER;
  readonly asyncMapBuffer = DEFAULT_BUFFER;
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
  /** The sums of the nodes' last reports. */
  #nodes = { size: 0, workers: 0, busy: 0 };
  #nodesReadAt = -Infinity;
  #readingNodes = false;
  #settleBound = (task: RemoteTask, ok: boolean, value: unknown, cancelled: boolean): boolean =>
    this.#settle(task, ok, value, cancelled);

  /** Checks the options; nothing connects before the first task. */
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
    this.module = checkModule(o.module, what);
    this.#keys = clientKeys(this.#queueName, this.#clientId);
  }

  get name(): string {
    return this.#name;
  }

  /** The workers of the queue's nodes, as they last reported them. */
  get size(): number {
    this.#readNodes();
    return this.#nodes.size;
  }

  /**
   * Reads the nodes' reports in the background, at most once per {@linkcode HEARTBEAT_MS}, while
   * connected; reports of nodes gone (their key expired) are dropped from the set.
   */
  #readNodes(): void {
    const commands = this.#commands;
    if (
      commands === undefined || this.#readingNodes ||
      performance.now() - this.#nodesReadAt < HEARTBEAT_MS
    ) return;
    this.#readingNodes = true;
    const set = nodesKey(this.#queueName);
    (async () => {
      const ids = await commands.smembers(set);
      const texts = ids.length === 0
        ? []
        : await commands.mget(...ids.map((id) => nodeKey(this.#queueName, id)));
      const sum = { size: 0, workers: 0, busy: 0 };
      const gone: string[] = [];
      texts.forEach((text, i) => {
        if (text === null) gone.push(ids[i]);
        else {
          // A text that is not a report of this version is not counted.
          const report = parseWireJson<NodeReport>(text);
          if (report === undefined) return;
          sum.size += report.size;
          sum.workers += report.workers;
          sum.busy += report.busy;
        }
      });
      if (gone.length > 0) commands.srem(set, ...gone).catch(noop);
      this.#nodes = sum;
    })().catch(noop).finally(() => {
      this.#readingNodes = false;
      this.#nodesReadAt = performance.now();
    });
  }

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
      if (!task.sent()) continue;
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
      this.#readNodes();
      if (reply === null) continue;
      for (const [, entries] of reply) {
        for (const [id, fields] of entries) {
          this.#lastId = id;
          for (let i = 0; i + 1 < fields.length; i += 2) {
            if (fields[i] === OUTCOMES_FIELD) this.#receive(fields[i + 1]);
            else if (fields[i] === STARTED_FIELD) this.#started(fields[i + 1]);
          }
        }
      }
      // What was read is not needed again: the stream keeps only the last entry.
      commands.xtrim(this.#keys.stream, "MINID", this.#lastId).catch(noop);
    }
  }

  /** Marks the tasks that a node has handed to a local worker as running. */
  #started(text: string): void {
    for (const id of parseWireJson<number[]>(text) ?? []) {
      const task = this.#pending.get(id);
      if (task?.status === SENT) task.started = true;
    }
  }

  #receive(text: string): void {
    for (const [id, kind, payload, runMs] of parseWireJson<WireOutcome[]>(text) ?? []) {
      const task = this.#pending.get(id);
      if (task === undefined || !task.sent()) continue;
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
    const wasSent = task.sent();
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
      if (task.status === QUEUED) this.#enqueue(task);
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

  admit(): void {
    const refusal = this.#refusal();
    if (refusal) throw refusal;
  }

  target(fn: unknown, module: string | URL | undefined, what: string): TargetEntry {
    const entry = targetEntry(fn, module, what);
    // A module that the nodes cannot find is refused now, not when the task is sent.
    this.#wire(entry, what);
    return entry;
  }

  submit(target: TargetEntry, args: unknown[], what: string): RemoteTask {
    if (!this.#hasRoom()) {
      throw new QueueFullError(
        `${this.#name} has ${this.#maxQueue} tasks pending, its 'maxQueue': await waitForRoom() before submitting to wait for room instead`,
      );
    }
    return this.#newTask(target, TaskMode.Apply, args, 1, what);
  }

  watch(task: RemoteTask, signal: AbortSignal | undefined, timeoutMs: number | undefined): void {
    if (signal) {
      if (signal.aborted) task.cancel(signal.reason);
      else {
        task.signal = signal;
        task.onAbort = () => task.abandon(signal.reason);
        signal.addEventListener("abort", task.onAbort, { once: true });
      }
    }
    if (timeoutMs !== undefined && timeoutMs !== Infinity && task.status !== CANCELLED) {
      task.timer = setLongTimeout(
        () => task.abandon(new TimeoutError(`The task did not finish within ${timeoutMs} ms`)),
        timeoutMs,
      );
    }
  }

  mapChunk(length: number): number {
    return Math.min(MAX_AUTO_CHUNK, Math.max(1, Math.ceil(length / MAP_CHUNKS)));
  }

  chunkHooks(entry: TargetEntry, mode: TaskMode, what: string): ChunkHooks<RemoteTask> {
    // Until the first chunk's speed is known, chunks double from 1: each chunk costs a job.
    let grow = 1;
    return {
      room: () => this.room(),
      refusal: () => this.#refusal(),
      chunkSize: () => {
        const size = Math.max(
          chunkForSpeed(this.#itemMs, CHUNK_TARGET_MS),
          this.#itemMs < 0 ? grow : 1,
        );
        grow = Math.min(MAX_AUTO_CHUNK, grow * 2);
        return size;
      },
      submit: (chunk) => this.#newTask(entry, mode, chunk, chunk.length, what),
      drop: (task) => task.cancel(),
      dropUnstarted: (task) => task.cancel(),
      eagerRoom: this.#maxQueue !== undefined,
    };
  }

  /** Cancels every task whose future is pending, as its `cancel()` would; running ones go on. */
  cancelPending(): void {
    for (const task of [...this.#pending.values()]) if (task.state() === "pending") task.cancel();
  }

  close(): void {
    if (this.#state === "open") this.#state = "closed";
    this.#wake();
  }

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

  room(): Promise<void> {
    if (this.#hasRoom() || this.#state !== "open") return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  stats(): PoolStats {
    this.#readNodes();
    const { size, workers, busy } = this.#nodes;
    return {
      size,
      workers,
      busyWorkers: busy,
      queueLength: this.#pending.size,
      tasksCompleted: this.#completed,
      tasksFailed: this.#failed,
      tasksCancelled: this.#cancelled,
      utilization: size === 0 ? 0 : busy / size,
      runTimeMs: this.#runTimes.percentiles(),
      waitTimeMs: this.#roundTrips.percentiles(),
    };
  }
}

/**
 * A pool whose workers are other machines: the API of `ThreadPool` and `Pool`
 * ({@linkcode BasePool}: `submit`, `apply`, `map`, `starmap`, `imap`, `imapUnordered`, `close`,
 * `shutdown`, `join`, `terminate`, `waitForRoom`, `stats`, `await using`), with the tasks carried by
 * a BullMQ queue on Redis to worker nodes started with `multiproc worker`. Its futures are the
 * library's `Future`s: `asCompleted()` and `wait()` take them.
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
 * Where it differs from the local pools:
 * - A task is running (`future.running()`) from when its node hands it to a local worker, with
 *   the tasks of its group, which run there one after another, until its outcome arrives. As in
 *   Python, `cancel()` of a running task returns false and changes nothing; a task that has not
 *   started is cancelled and its node skips it. `timeoutMs` and `signal` reject the future even
 *   while the task runs: the task runs on, on its node, and its outcome is dropped.
 *   `close({ cancelFutures: true })` cancels every task that no node has started, as the future's
 *   `cancel()` would. (A node may start a task just as
 *   it is cancelled, before the client hears of the start: that task runs, and its outcome is
 *   dropped.)
 * - `map()` cuts its input into at least 64 chunks by default; `imap()`'s chunks grow until one
 *   takes about 5 ms on a node, and `buffersize` is 64 chunks by default.
 * - `terminate()` rejects the pending tasks and closes the connections to Redis; the nodes go on,
 *   since they serve the queue, not the pool. `join()` ends the connections once every task has
 *   settled.
 * - `size`, and `stats()`'s `size`, `workers`, `busyWorkers` and `utilization`, sum what the
 *   queue's nodes report in their heartbeats (every second, dropped by Redis 3 s after a node's
 *   last one): they count the nodes of the queue, which other clients may share, and are read in
 *   the background while the pool is connected, so they lag by a second or two, and are 0 before
 *   the first task connects the pool. `runTimeMs` is a task's time on its node; `waitTimeMs` the
 *   round trip of a task from `submit()` to its result.
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
export class DistributedPool extends BasePool {
  readonly #backend: RemoteBackend;

  /**
   * Checks the options; nothing connects before the first task.
   *
   * @param options `connection` (required), `queue`, `name`, `maxQueue`, `retries`, `root`,
   * `module`.
   * @throws {TypeError} When an option has the wrong type or is unknown, or `connection` is neither
   * a Redis URL nor a socket path.
   * @throws {RangeError} When `maxQueue` is not a positive integer or `retries` is negative.
   */
  constructor(options: DistributedPoolOptions) {
    super();
    this.#backend = new RemoteBackend(options);
    attachBackend(this, this.#backend);
  }

  /** The queue that the pool's nodes serve. */
  get queue(): string {
    return this.#backend.queue;
  }
}
