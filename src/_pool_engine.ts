/**
 * The engine behind `ThreadPool` and `Pool`: a queue of tasks, workers that each hold a few of them
 * ahead, and the bookkeeping that settles every task exactly once whatever happens to its worker.
 *
 * How a task travels: its target is described once per function (and cached) and sent once per
 * worker under a numeric id; tasks go out in batches, one message per worker per dispatch, and
 * each worker runs them in the order sent (up to `concurrentTasksPerWorker` at once when they
 * await). A worker with room to start a task gets one first; only then do workers get tasks ahead
 * of time, as many as hide the messaging behind about `HAND_AHEAD_MS` of measured work, and none
 * while their own task runs past its expected time.
 *
 * A task handed ahead can always be taken back until it begins, so that a cancelled task never
 * starts and a worker that falls idle takes work from one that is stuck on a long task. A thread
 * shares a claim word per task with the parent (see `PoolStartMessage.claims`): the first to swap
 * it decides, the worker to begin the task or the parent to take it back. A process announces each
 * task as it begins it, and gives back those that it has not begun when asked.
 *
 * A crash rejects the tasks that the worker had begun and sends the others back to the queue.
 *
 * @module
 */
import { encodeArgs } from "./_revive.ts";
import { Deque } from "./_deque.ts";
import { type ChildMessage, type SerializedError, type TargetSpec, TaskMode } from "./_protocol.ts";
import { deserializeThrown } from "./_error_records.ts";
import { findUncloneableArgument } from "./_clone_check.ts";
import { describeTarget } from "./_target.ts";
import { unrefTimer } from "./_platform.deno.ts";
import { type LongTimeout, setLongTimeout } from "./_checks.ts";
import { BrokenPoolError, CancelledError, QueueFullError, TimeoutError } from "./errors.ts";
import { checkSendable, ChildWorker, type WorkerKind } from "./_worker_parent.ts";
import type { FutureTask } from "./future.ts";
import { isTransfer } from "./_transfer_marker.ts";

/** A described target and the id under which workers know it. */
export interface TargetEntry {
  id: number;
  spec: TargetSpec;
}

let targetIds = 0;
const targetsByFunction = new WeakMap<object, Map<string, TargetEntry>>();
// New closures with the same source (an inline arrow in a loop) share one entry.
const targetsBySource = new Map<string, TargetEntry>();
const MAX_SOURCES = 1000;

/**
 * The cached description of `fn` for tasks. Describing parses the source and may read the module
 * file, so it happens once per function (and per source text).
 *
 * @throws {TypeError} As {@linkcode describeTarget} does.
 */
export function targetEntry(
  fn: unknown,
  module: string | URL | undefined,
  what: string,
): TargetEntry {
  const key = module === undefined ? "" : String(module);
  if (typeof fn === "function") {
    const cached = targetsByFunction.get(fn)?.get(key);
    if (cached) return cached;
  }
  const spec = describeTarget(fn, { module }, what);
  const sourceKey = `${key}\n${spec.module}\n${spec.name}\n${spec.source}`;
  let entry = targetsBySource.get(sourceKey);
  if (!entry) {
    if (targetsBySource.size >= MAX_SOURCES) targetsBySource.clear();
    entry = { id: ++targetIds, spec };
    targetsBySource.set(sourceKey, entry);
  }
  let byModule = targetsByFunction.get(fn as object);
  if (!byModule) targetsByFunction.set(fn as object, byModule = new Map());
  byModule.set(key, entry);
  return entry;
}

/** How a pool starts its workers and what it tells them. */
export interface EngineOptions {
  /** The pool's name, the prefix of its workers' names. */
  name: string;
  size: number;
  /** What its workers are; they start as daemons, held only while they have tasks. */
  kind: WorkerKind;
  initializer?: TargetSpec;
  initArgs: unknown[];
  maxTasksPerChild?: number;
  maxQueue?: number;
  idleTimeoutMs?: number;
  onCrash: "respawn" | "break";
  /** Workers kept started, from construction on. */
  minWorkers?: number;
  /** Tasks that await which one worker runs at once. */
  concurrentTasksPerWorker?: number;
  /** Which waiting task runs next: the oldest (`"fifo"`) or the newest (`"lifo"`). */
  queueStrategy?: "fifo" | "lifo";
}

/**
 * Where a pool task is, local or remote: waiting to be sent (to a worker, or to Redis), sent, or
 * settled by its outcome or by cancellation.
 */
export const QUEUED = 0;
export const SENT = 1;
export const SETTLED = 2;
export const CANCELLED = 3;

/** One task: its promise, where it is, and what to send. */
export class Task<T = unknown> implements FutureTask<T> {
  readonly promise: Promise<T>;
  // deno-lint-ignore no-explicit-any
  resolve!: (value: any) => void;
  reject!: (reason: unknown) => void;
  id: number;
  target: TargetEntry;
  mode: TaskMode;
  payload: unknown;
  transfers: object[] | undefined;
  status = QUEUED;
  worker: PoolWorker | undefined = undefined;
  submittedAt: number;
  sentAt = 0;
  /** When it began, in this process's `performance.now()`; 0 while it has not (as far as known). */
  startedAt = 0;
  /** Its claim word in its worker's claims, for a thread; -1 otherwise. */
  claim = -1;
  /** True while a process worker is asked to give it back. */
  revoking = false;
  /** The number of items, for map chunks; 1 otherwise. */
  items: number;
  timer: LongTimeout | undefined = undefined;
  timeoutMs = Infinity;
  signal: AbortSignal | undefined = undefined;
  onAbort: (() => void) | undefined = undefined;
  engine: PoolEngine;
  /** Set by a Future: an unobserved rejection is no error (see FutureTask.quiet). */
  quiet = false;

  constructor(
    engine: PoolEngine,
    id: number,
    target: TargetEntry,
    mode: TaskMode,
    payload: unknown,
    items: number,
  ) {
    this.engine = engine;
    this.id = id;
    this.target = target;
    this.mode = mode;
    this.payload = payload;
    this.items = items;
    this.submittedAt = performance.now();
    this.promise = new Promise<T>((resolve, reject) => {
      this.resolve = resolve as (value: unknown) => void;
      this.reject = reject;
    });
  }

  state(): "pending" | "running" | "finished" | "cancelled" {
    if (this.status === CANCELLED) return "cancelled";
    if (this.status === SETTLED) return "finished";
    if (this.status === SENT && this.worker?.hasBegun(this)) return "running";
    return "pending";
  }

  cancel(reason?: unknown): boolean {
    return this.engine.cancel(this, reason ?? new CancelledError("The task was cancelled"));
  }
}

// Enough claim words for every task that a worker may hold (MAX_DEPTH and then some).
const CLAIM_WORDS = 1024;

/** A worker as the engine sees it: a `ChildWorker` and the tasks that it holds. */
export class PoolWorker extends ChildWorker {
  /** Tasks sent to it without an outcome yet, in the order sent (the order it begins them). */
  readonly inflight = new Deque<Task>();
  /** Ids of the targets that it has been sent. */
  readonly targets = new Set<number>();
  /** How many tasks it has been given, for `maxTasksPerChild`. */
  assigned = 0;
  /** False once it is being stopped or has exited: it takes no more tasks. */
  accepting = true;
  /** True once the pool has let go of it: stopped on purpose, or its exit handled. */
  retired = false;
  /** Whether it has finished its start-up (its initializer). */
  ready = false;
  /** When its current task began, as far as the parent can tell; for "is it overdue". */
  lastResultAt = 0;
  idleSince: number;
  /** A thread's claim words (see `PoolStartMessage.claims`) and the free ones among them. */
  readonly claims: Int32Array | undefined;
  readonly startTimes: Float64Array | undefined;
  readonly freeClaims: number[] = [];

  constructor(kind: WorkerKind, name: string) {
    super(kind, name);
    this.idleSince = performance.now();
    if (kind.destination === "thread") {
      this.claims = new Int32Array(new SharedArrayBuffer(CLAIM_WORDS * 4));
      this.startTimes = new Float64Array(new SharedArrayBuffer(CLAIM_WORDS * 8));
      for (let i = CLAIM_WORDS - 1; i >= 0; i--) this.freeClaims.push(i);
    }
  }

  /** Whether `task`, which it holds, has begun (it may have ended since, unreported). */
  hasBegun(task: Task): boolean {
    if (task.startedAt > 0) return true;
    if (this.claims === undefined || task.claim < 0) return false;
    if (Atomics.load(this.claims, task.claim) !== -task.id) return false;
    task.startedAt = this.startTimes![task.claim] - performance.timeOrigin;
    return true;
  }

  /**
   * How many of its tasks have not begun. Tasks begin in the order sent, so the begun ones come
   * first: a binary search finds where they end.
   */
  notBegun(): number {
    const inflight = this.inflight;
    let low = 0;
    let high = inflight.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (this.hasBegun(inflight.at(mid)!)) low = mid + 1;
      else high = mid;
    }
    return inflight.length - low;
  }

  /**
   * Takes `task` back, if it has not begun: after this it never will. A process cannot be asked
   * without a round trip, so for one this only answers whether the task has surely not begun.
   */
  takeBack(task: Task): boolean {
    if (this.claims === undefined || task.claim < 0) return !this.hasBegun(task);
    if (Atomics.compareExchange(this.claims, task.claim, task.id, 0) !== task.id) {
      this.hasBegun(task);
      return false;
    }
    this.releaseClaim(task);
    return true;
  }

  releaseClaim(task: Task): void {
    if (task.claim < 0) return;
    this.freeClaims.push(task.claim);
    task.claim = -1;
  }
}

/** What `stats()` of a pool reports. */
export interface PoolStats {
  /** The pool's size. */
  size: number;
  /** Workers alive now. */
  workers: number;
  /** Workers running a task now. */
  busyWorkers: number;
  /** Tasks waiting for a worker. */
  queueLength: number;
  /** Tasks (or map chunks) that resolved. */
  tasksCompleted: number;
  /** Tasks that rejected, crashes included, cancellations not. */
  tasksFailed: number;
  /** Tasks cancelled: by `cancel()`, an abort signal or a timeout. */
  tasksCancelled: number;
  /** The share of the workers' time spent on tasks since the first worker started, 0 to 1. */
  utilization: number;
  /** Time that a worker spends on a task (messaging included), over the last 1024 tasks. */
  runTimeMs: { p50: number; p99: number };
  /** Time from submission until a worker takes the task, over the last 1024 tasks. */
  waitTimeMs: { p50: number; p99: number };
}

/** The last samples of a measure, for percentiles. */
export class Samples {
  #values = new Float64Array(1024);
  #count = 0;

  add(value: number): void {
    this.#values[this.#count++ & 1023] = value;
  }

  percentiles(): { p50: number; p99: number } {
    const n = Math.min(this.#count, 1024);
    if (n === 0) return { p50: 0, p99: 0 };
    const sorted = this.#values.slice(0, n).sort();
    const at = (q: number) => sorted[Math.min(n - 1, Math.floor(q * n))];
    return { p50: at(0.5), p99: at(0.99) };
  }
}

// A worker holds enough short tasks for about this long, so messaging hides behind work.
const HAND_AHEAD_MS = 2;
const MAX_DEPTH = 256;
// A task running for longer than this many times the measured service time (and at least
// OVERDUE_MIN_MS) is taken to be a long one: its worker gets no more tasks ahead meanwhile.
const OVERDUE_FACTOR = 4;
const OVERDUE_MIN_MS = 1;

const noop = () => {};

function isCloneError(error: unknown): boolean {
  const { name, message } = (error ?? {}) as { name?: unknown; message?: unknown };
  return name === "DataCloneError" ||
    (typeof message === "string" && /clone|serializ/i.test(message));
}

/** The pool engine; `ThreadPool` and `Pool` wrap one each. */
export class PoolEngine {
  readonly options: EngineOptions;
  #queue = new Deque<Task>();
  /** Tasks in `#queue` that are not cancelled. */
  #queued = 0;
  /** Tasks waiting for room in the queue, under `maxQueue` (those of map and imap). */
  #overflow = new Deque<Task>();
  #workers: PoolWorker[] = [];
  #workerCount = 0;
  #taskIds = 0;
  #dispatchScheduled = false;
  #dispatchBound = () => this.#dispatch();
  #state: "open" | "closed" | "terminated" | "broken" = "open";
  #brokenBy: Error | undefined;
  #joined: Promise<void> | undefined;
  #markJoined: (() => void) | undefined;
  #roomWaiters: (() => void)[] = [];
  #idleTimer: ReturnType<typeof setInterval> | undefined;
  /** Workers told to stop whose exit has not been seen yet: `join()` waits for them. */
  #stopping = new Set<PoolWorker>();
  #concurrency: number;
  #lifo: boolean;
  // Measured service time per task (ms): how long a worker spends on one, messaging included.
  #serviceMs = -1;
  #itemMs = -1;
  #busyMs = 0;
  #startedAt = -1;
  #completed = 0;
  #failed = 0;
  #cancelled = 0;
  #runTimes = new Samples();
  #waitTimes = new Samples();

  constructor(options: EngineOptions) {
    this.options = options;
    this.#concurrency = options.concurrentTasksPerWorker ?? 1;
    this.#lifo = options.queueStrategy === "lifo";
  }

  /** Starts `minWorkers` workers, so that the first tasks do not wait for start-up. */
  startMinWorkers(): void {
    const min = Math.min(this.options.minWorkers ?? 0, this.options.size);
    while (this.#workers.length < min) if (!this.#startWorker()) return;
  }

  /** Why the pool refuses tasks, or undefined when it takes them. */
  refusal(): Error | undefined {
    switch (this.#state) {
      case "open":
        return undefined;
      case "closed":
        return new Error(`Cannot submit to ${this.options.name}: it is closed`);
      case "terminated":
        return new Error(`Cannot submit to ${this.options.name}: it was terminated`);
      case "broken":
        return this.#brokenBy!;
    }
  }

  /** The measured time per item of work in ms, or -1 before any task finished. */
  get itemMs(): number {
    return this.#itemMs;
  }

  /**
   * Makes a task and queues it. `args` are checked here, so that a value that cannot be sent fails
   * its own task, clearly, instead of the batch that carries it.
   *
   * @param wait For map and imap: past `maxQueue` the task waits outside the queue instead of
   * being refused.
   * @throws {TypeError} When an argument cannot be cloned; the message names its index.
   * @throws {QueueFullError} Past `maxQueue`, unless `wait`.
   */
  submit<T>(
    target: TargetEntry,
    mode: TaskMode,
    payload: unknown[],
    items: number,
    what: string,
    wait = false,
  ): Task<T> {
    let transfers: object[] | undefined;
    const shares = this.options.kind.destination === "thread";
    for (let i = 0; i < payload.length; i++) {
      const arg = payload[i];
      if (typeof arg !== "object" || arg === null) {
        if (typeof arg === "function" || typeof arg === "symbol") this.#refuseArgs(payload, what);
        continue;
      }
      let moved: readonly object[] | undefined;
      if (mode === TaskMode.Apply && isTransfer(arg)) {
        if (transfers === undefined) {
          transfers = [];
          payload = [...payload];
        }
        payload[i] = arg.value;
        moved = arg.list;
        for (const item of arg.list) transfers.push(item);
      }
      // The walk is needed only where a value can hide a function; primitives skip it. What moves
      // (a MessagePort) is not walked into: it crosses whole.
      if (findUncloneableArgument([payload[i]], { transferred: moved, sharedMemory: shares })) {
        this.#refuseArgs(payload, what, transfers);
      }
    }
    if (!wait && this.options.maxQueue !== undefined && !this.hasRoom()) {
      throw new QueueFullError(
        `${this.options.name} has ${this.options.maxQueue} tasks waiting, its 'maxQueue': await waitForRoom() before submitting to wait for room instead`,
      );
    }
    this.#taskIds = this.#taskIds >= 0x7fffffff ? 1 : this.#taskIds + 1;
    const task = new Task<T>(this, this.#taskIds, target, mode, payload, items);
    task.transfers = transfers;
    if (this.options.maxQueue !== undefined && this.#queued >= this.options.maxQueue) {
      this.#overflow.push(task as Task);
    } else {
      this.#queue.push(task as Task);
      this.#queued++;
      this.#scheduleDispatch();
    }
    return task;
  }

  #refuseArgs(payload: unknown[], what: string, transferred?: readonly object[]): never {
    checkSendable(payload, this.options.kind, `${what} argument`, transferred);
    throw new Error(`Internal error: ${what} arguments were refused without a culprit`);
  }

  /**
   * Cancels `task` when `signal` aborts, or once it has run for `timeoutMs` (counted from when it
   * begins, not from submission).
   */
  watch(task: Task, signal: AbortSignal | undefined, timeoutMs: number | undefined): void {
    if (signal) {
      if (signal.aborted) {
        this.cancel(task, signal.reason);
        return;
      }
      task.signal = signal;
      task.onAbort = () => this.cancel(task, signal.reason);
      signal.addEventListener("abort", task.onAbort, { once: true });
    }
    if (timeoutMs !== undefined && timeoutMs !== Infinity) {
      task.timeoutMs = timeoutMs;
      // It cannot run out before it has run for timeoutMs; then see how long it has.
      task.timer = setLongTimeout(() => this.#checkTimeout(task), timeoutMs);
    }
  }

  #checkTimeout(task: Task): void {
    if (task.status === SETTLED || task.status === CANCELLED) return;
    const begun = task.status === SENT && task.worker!.hasBegun(task);
    const left = begun ? task.timeoutMs - (performance.now() - task.startedAt) : task.timeoutMs;
    if (begun && left <= 0.5) {
      this.cancel(task, new TimeoutError(`The task did not finish within ${task.timeoutMs} ms`));
      return;
    }
    task.timer = setLongTimeout(() => this.#checkTimeout(task), Math.max(1, left));
  }

  /** How many tasks wait: queued, waiting for room, or handed to a worker and not begun. */
  #waiting(): number {
    let waiting = this.#queued + this.#overflow.length;
    for (const worker of this.#workers) waiting += worker.notBegun();
    return waiting;
  }

  /** Whether the queue has room under `maxQueue`. */
  hasRoom(): boolean {
    return this.options.maxQueue === undefined || this.#waiting() < this.options.maxQueue;
  }

  /** Resolves once the queue has room (at once when it has). */
  room(): Promise<void> {
    if (this.hasRoom() || this.#state !== "open") return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  #wakeRoomWaiters(): void {
    if (this.#roomWaiters.length > 0 && this.hasRoom()) {
      for (const wake of this.#roomWaiters.splice(0)) wake();
    }
  }

  #scheduleDispatch(): void {
    if (this.#dispatchScheduled) return;
    this.#dispatchScheduled = true;
    queueMicrotask(this.#dispatchBound);
  }

  /** How many tasks a worker may hold: those it may run at once, and some ahead. */
  #depth(): number {
    const n = this.#concurrency;
    if (this.#serviceMs < 0) {
      // Before any measure, a thread holds one ahead (it can always be taken back); a process,
      // which gives one back only between tasks, none.
      return this.options.kind.destination === "thread" ? n + 1 : n;
    }
    const ahead = Math.ceil(HAND_AHEAD_MS / Math.max(this.#serviceMs, 1e-4));
    if (ahead <= 1 && this.options.kind.destination !== "thread") return n;
    return n + Math.min(Math.max(ahead, 1), MAX_DEPTH);
  }

  /** Whether the task that `worker` runs has run for much longer than tasks take. */
  #overdue(worker: PoolWorker, now: number): boolean {
    if (worker.inflight.length === 0) return false;
    const expected = Math.max(OVERDUE_MIN_MS, OVERDUE_FACTOR * Math.max(this.#serviceMs, 0));
    return now - worker.lastResultAt > expected;
  }

  /** Sends queued tasks to workers, starting workers where the queue needs them. */
  #dispatch(): void {
    this.#dispatchScheduled = false;
    if (this.#state === "terminated" || this.#state === "broken") return;
    this.#admitOverflow();
    const n = this.#concurrency;
    if (this.#queued > 0 || this.#state === "open") {
      let room = 0;
      for (const worker of this.#workers) {
        if (worker.accepting) room += Math.max(0, n - worker.inflight.length);
      }
      const min = this.#state === "open"
        ? Math.min(this.options.minWorkers ?? 0, this.options.size)
        : 0;
      while (
        this.#workers.length < this.options.size &&
        (room < this.#queued || this.#workers.length < min)
      ) {
        if (!this.#startWorker()) return;
        room += n;
      }
    }
    const now = performance.now();
    for (let round = 0; round < 2; round++) {
      if (this.#queued > 0) this.#handOut(now);
      // A worker with room and nothing queued takes what another holds and has not begun.
      if (this.#queued > 0 || !this.#steal(now)) break;
    }
    this.#admitOverflow();
    // After close(), a worker left without a task (started for one that a busy worker then took
    // ahead) would wait for ever, and join() with it.
    if (this.#state === "closed" && this.#queued === 0) {
      for (const worker of [...this.#workers]) {
        if (worker.inflight.length === 0) this.#retire(worker);
      }
    }
    this.#maybeFinish();
  }

  /**
   * Gives queued tasks to workers: first to each worker with room to begin one now, then ahead of
   * time to workers that are not stuck on a long task, a fair share each, topped up only once
   * they have run down to half their depth, so that a message carries many tasks.
   */
  #handOut(now: number): void {
    const n = this.#concurrency;
    const depth = this.#depth();
    const workers = this.#workers;
    const give = new Array<number>(workers.length).fill(0);
    let left = this.#queued;
    const cap = (w: number, count: number) => {
      const max = this.options.maxTasksPerChild;
      return max === undefined ? count : Math.min(count, max - workers[w].assigned - give[w]);
    };
    for (let w = 0; w < workers.length && left > 0; w++) {
      const worker = workers[w];
      if (!worker.accepting) continue;
      const count = cap(w, Math.min(left, n - worker.inflight.length));
      if (count > 0) {
        give[w] = count;
        left -= count;
      }
    }
    // A process gives back a task handed ahead only between its own tasks, so it gets some only
    // for a backlog, where a short wait behind its current task costs little.
    const ahead = this.options.kind.destination === "thread" || left > workers.length;
    if (left > 0 && depth > n && ahead) {
      let open = 0;
      const eligible = workers.map((worker, w) => {
        const ok = worker.accepting && worker.inflight.length + give[w] < depth &&
          (worker.inflight.length <= depth >> 1 || give[w] > 0) && !this.#overdue(worker, now);
        if (ok) open++;
        return ok;
      });
      for (let w = 0; w < workers.length && left > 0; w++) {
        if (!eligible[w]) continue;
        const worker = workers[w];
        const share = Math.ceil(left / Math.max(1, open--));
        const count = cap(w, Math.min(share, depth - worker.inflight.length - give[w]));
        if (count > 0) {
          give[w] += count;
          left -= count;
        }
      }
    }
    for (let w = 0; w < workers.length; w++) if (give[w] > 0) this.#sendTasks(workers[w], give[w]);
  }

  /**
   * Takes tasks that workers hold and have not begun back to the queue, for a worker that has
   * room and nothing to do: all of them from a worker stuck on a long task, half from others.
   *
   * @returns Whether any came back to the queue now.
   */
  #steal(now: number): boolean {
    const n = this.#concurrency;
    if (!this.#workers.some((w) => w.ready && w.accepting && w.inflight.length < n)) return false;
    let stolen = false;
    for (const victim of this.#workers) {
      // Only tasks that wait behind others: the victim keeps what it can run at once.
      const all = victim.notBegun();
      let notBegun = all - Math.max(0, n - (victim.inflight.length - all));
      notBegun -= this.#revoking(victim);
      if (notBegun <= 0) continue;
      // A task waiting behind a busy worker's while another worker could begin it now moves.
      const count = this.#overdue(victim, now) ? notBegun : Math.max(1, notBegun >> 1);
      const taken: Task[] = [];
      const asked: number[] = [];
      for (let i = victim.inflight.length - 1; i >= 0 && taken.length + asked.length < count; i--) {
        const task = victim.inflight.at(i)!;
        if (task.revoking) continue;
        if (victim.claims !== undefined) {
          if (!victim.takeBack(task)) break;
          taken.push(task);
        } else if (!victim.hasBegun(task)) {
          // A process gives them back between its tasks (see "skipped").
          task.revoking = true;
          asked.push(task.id);
        }
      }
      if (asked.length > 0) victim.trySend({ type: "skip", ids: asked, reply: true });
      if (taken.length > 0) {
        for (const task of taken) victim.inflight.remove(task);
        victim.assigned -= taken.length;
        this.#requeue(taken.reverse());
        stolen = true;
      }
    }
    return stolen;
  }

  #revoking(worker: PoolWorker): number {
    if (worker.claims !== undefined) return 0;
    let count = 0;
    for (let i = 0; i < worker.inflight.length; i++) if (worker.inflight.at(i)!.revoking) count++;
    return count;
  }

  #admitOverflow(): void {
    const max = this.options.maxQueue;
    if (max === undefined) return;
    while (this.#overflow.length > 0 && this.#queued < max) {
      const task = this.#overflow.shift()!;
      if (task.status !== QUEUED) continue;
      this.#queue.push(task);
      this.#queued++;
      this.#dispatchScheduled || this.#scheduleDispatch();
    }
    this.#wakeRoomWaiters();
  }

  #takeQueued(): Task | undefined {
    return this.#lifo ? this.#queue.pop() : this.#queue.shift();
  }

  #sendTasks(worker: PoolWorker, count: number): void {
    const batch: unknown[] = [];
    const sent: Task[] = [];
    let transfers: object[] | undefined;
    const now = performance.now();
    const destination = this.options.kind.destination;
    while (sent.length < count) {
      const task = this.#takeQueued();
      if (!task) break;
      if (task.status !== QUEUED) continue;
      this.#queued--;
      if (!worker.targets.has(task.target.id)) {
        worker.targets.add(task.target.id);
        // Messages arrive in order, so the target is known before the tasks that need it.
        const message = { type: "target", id: task.target.id, target: task.target.spec };
        if (!this.#trySend(worker, message)) {
          // Gone: nothing of this batch reached it.
          task.status = SENT;
          for (const other of sent) worker.releaseClaim(other);
          this.#requeue([...sent, task]);
          return;
        }
      }
      task.status = SENT;
      task.worker = worker;
      task.sentAt = now;
      task.startedAt = 0;
      if (worker.claims !== undefined) {
        task.claim = worker.freeClaims.pop()!;
        // Offered: the worker begins it only by swapping this word.
        Atomics.store(worker.claims, task.claim, task.id);
      }
      this.#waitTimes.add(now - task.submittedAt);
      // Shared objects (locks, queues, values) among a task's arguments cross as descriptors for
      // this worker, whose owner id they carry.
      const payload = task.mode === TaskMode.Apply
        ? encodeArgs(task.payload as unknown[], { destination, ownerId: worker.ownerId })
        : task.payload;
      batch.push(task.id, task.target.id, task.mode, payload, task.claim);
      if (task.transfers) (transfers ??= []).push(...task.transfers);
      sent.push(task);
    }
    if (sent.length === 0) return;
    if (worker.inflight.length === 0) worker.lastResultAt = now;
    for (const task of sent) worker.inflight.push(task);
    worker.assigned += sent.length;
    if (this.options.maxTasksPerChild !== undefined) {
      if (worker.assigned >= this.options.maxTasksPerChild) worker.accepting = false;
    }
    worker.setRef(true);
    try {
      worker.send({ type: "tasks", tasks: batch }, transfers);
    } catch (error) {
      for (const task of sent) worker.inflight.remove(task);
      if (!isCloneError(error) || worker.exited) {
        // The worker is gone (killed from outside): these tasks never reached it.
        this.#takeBackAll(worker, sent);
        return;
      }
      // A value that the walk let through (a host object): send one by one to find it.
      for (const task of sent) {
        try {
          worker.inflight.push(task);
          worker.send(
            {
              type: "tasks",
              tasks: [task.id, task.target.id, task.mode, task.payload, task.claim],
            },
            task.transfers,
          );
        } catch {
          worker.inflight.remove(task);
          worker.releaseClaim(task);
          this.#settle(
            task,
            false,
            new TypeError(
              `The task's arguments cannot be sent: ${
                error instanceof Error ? error.message : String(error)
              }; pass data that structured clone accepts`,
              { cause: error },
            ),
          );
        }
      }
    }
  }

  /** Sends to a worker; false when it is gone, which is then let go (its tasks return). */
  #trySend(worker: PoolWorker, message: unknown): boolean {
    try {
      worker.send(message);
      return true;
    } catch (error) {
      if (isCloneError(error) && !worker.exited) throw error;
      this.#takeBackAll(worker, []);
      return false;
    }
  }

  /** A worker that cannot be reached: `tasks` (never delivered) and all it holds go back. */
  #takeBackAll(worker: PoolWorker, tasks: Task[]): void {
    for (const task of tasks) worker.releaseClaim(task);
    worker.assigned -= tasks.length;
    this.#requeue(tasks);
    this.#stopWorker(worker, "SIGKILL");
  }

  #startWorker(): boolean {
    const worker = new PoolWorker(
      this.options.kind,
      `${this.options.name}-worker-${++this.#workerCount}`,
    );
    if (this.#startedAt < 0) this.#startedAt = performance.now();
    try {
      worker.start(true, {
        message: (message) => this.#onMessage(worker, message),
        exit: (exitCode) => this.#onExit(worker, exitCode),
      });
      worker.send({
        type: "pool",
        name: worker.name,
        initializer: this.options.initializer,
        initArgs: this.options.initArgs,
        claims: worker.claims,
        startTimes: worker.startTimes,
        // Threads batch their results; a process sends each, so that a kill loses none.
        batchResults: worker.claims !== undefined,
        concurrency: this.#concurrency,
      });
    } catch (error) {
      this.#break(
        new BrokenPoolError(`${this.options.name} cannot start a worker`, { cause: error }),
      );
      return false;
    }
    this.#workers.push(worker);
    return true;
  }

  #onMessage(worker: PoolWorker, message: ChildMessage): void {
    if (worker.retired) return;
    switch (message.type) {
      case "done":
        this.#onResults(worker, message.results);
        if (message.began !== undefined) this.#onBegan(worker, message.began);
        this.#afterProgress(worker);
        break;
      case "began":
        this.#onBegan(worker, message.id);
        break;
      case "skipped":
        this.#onSkipped(worker, message.ids, message.asked);
        break;
      case "skip-failed":
        // A cancelled task had started after all: its worker is the only way to stop it.
        this.#stopWorker(worker, "SIGKILL");
        break;
      case "ready":
        worker.ready = true;
        worker.lastResultAt = performance.now();
        // It may take what others hold and have not begun.
        if (this.#anyNotBegun()) this.#scheduleDispatch();
        break;
      case "init-failed": {
        const cause = deserializeThrown(message.error);
        this.#break(
          new BrokenPoolError(
            `The initializer of ${this.options.name} failed in ${worker.name}: ${message.error.message}`,
            { cause },
          ),
        );
        break;
      }
    }
  }

  /** A process worker begins a task. One that is no longer its (cancelled) must not run. */
  #onBegan(worker: PoolWorker, id: number): void {
    const now = performance.now();
    for (let i = 0; i < worker.inflight.length; i++) {
      const task = worker.inflight.at(i)!;
      if (task.id !== id) continue;
      task.startedAt = now;
      task.revoking = false;
      worker.lastResultAt = now;
      return;
    }
    // Cancelled while its skip was on the way: only stopping the worker stops it.
    this.#stopWorker(worker, "SIGKILL");
  }

  /** A process worker gave back tasks that it had not begun: they run elsewhere. */
  #onSkipped(worker: PoolWorker, ids: number[], asked: number[]): void {
    const back: Task[] = [];
    const given = new Set(ids);
    const wanted = new Set(asked);
    for (let i = 0; i < worker.inflight.length; i++) {
      const task = worker.inflight.at(i)!;
      if (!task.revoking || !wanted.has(task.id)) continue;
      task.revoking = false;
      if (given.has(task.id)) back.push(task);
    }
    for (const task of back) worker.inflight.remove(task);
    worker.assigned -= back.length;
    this.#requeue(back);
    this.#afterProgress(worker);
  }

  #onResults(worker: PoolWorker, results: unknown[]): void {
    const now = performance.now();
    const count = results.length / 3;
    const first = worker.inflight.at(0);
    // Tasks run one after another, so the time since the later of "the first was sent" and "the
    // last result came" was spent on this batch.
    const elapsed = first ? now - Math.max(first.sentAt, worker.lastResultAt) : 0;
    worker.lastResultAt = now;
    const perTask = elapsed / count;
    let items = 0;
    for (let i = 0; i < results.length; i += 3) {
      const id = results[i] as number;
      let task = worker.inflight.at(0);
      if (task !== undefined && task.id === id) {
        worker.inflight.shift();
      } else {
        // Out of order when tasks await side by side, or one was cancelled or sent back.
        task = undefined;
        for (let j = 0; j < worker.inflight.length; j++) {
          if (worker.inflight.at(j)!.id === id) {
            task = worker.inflight.at(j);
            worker.inflight.remove(task!);
            break;
          }
        }
        if (task === undefined) continue;
      }
      worker.releaseClaim(task);
      items += task.items;
      this.#runTimes.add(perTask);
      if (results[i + 1] === 1) {
        this.#settle(task, true, results[i + 2]);
      } else {
        this.#settle(task, false, deserializeThrown(results[i + 2] as SerializedError));
      }
    }
    if (count > 0 && elapsed > 0) {
      this.#busyMs += elapsed;
      const service = elapsed / count;
      this.#serviceMs = this.#serviceMs < 0 ? service : 0.8 * this.#serviceMs + 0.2 * service;
      if (items > 0) {
        const perItem = elapsed / items;
        this.#itemMs = this.#itemMs < 0 ? perItem : 0.8 * this.#itemMs + 0.2 * perItem;
      }
    }
  }

  /** After a worker finished tasks: retire it, idle it, or give it more. */
  #afterProgress(worker: PoolWorker): void {
    if (worker.inflight.length === 0 && !worker.retired) {
      worker.idleSince = performance.now();
      if (!worker.accepting || (this.#state === "closed" && this.#queued === 0)) {
        this.#retire(worker);
      } else if (this.#queued === 0) {
        worker.setRef(false);
      }
    }
    this.#wakeRoomWaiters();
    if (this.#queued > 0 || this.#overflow.length > 0) this.#scheduleDispatch();
    else if (worker.inflight.length < this.#concurrency && this.#anyNotBegun()) {
      this.#scheduleDispatch();
    } else this.#maybeFinish();
  }

  #anyNotBegun(): boolean {
    for (const worker of this.#workers) {
      if (worker.inflight.length > this.#concurrency && worker.notBegun() > 0) return true;
    }
    return false;
  }

  #settle(task: Task, ok: boolean, value: unknown, cancelled = false): void {
    if (task.status === SETTLED || task.status === CANCELLED) return;
    task.status = cancelled ? CANCELLED : SETTLED;
    task.worker = undefined;
    task.timer?.clear();
    if (task.onAbort) task.signal!.removeEventListener("abort", task.onAbort);
    if (cancelled) this.#cancelled++;
    else if (ok) this.#completed++;
    else this.#failed++;
    if (ok) task.resolve(value);
    else {
      if (task.quiet) task.promise.catch(noop);
      task.reject(value);
    }
  }

  /** Cancels a task wherever it is; false when it had already settled. */
  cancel(task: Task, reason: unknown): boolean {
    if (task.status === SETTLED || task.status === CANCELLED) return false;
    if (task.status === QUEUED) {
      // Left in the queue and skipped there: removal from the middle would cost O(n).
      if (!this.#overflow.remove(task)) this.#queued--;
      this.#settle(task, false, reason, true);
      this.#admitOverflow();
      this.#maybeFinish();
      return true;
    }
    const worker = task.worker!;
    if (worker.takeBack(task)) {
      // It has not begun, and now never will: a thread's claim is taken back; a process skips it
      // (and should it have begun meanwhile, its announcement stops the worker).
      worker.inflight.remove(task);
      worker.assigned--;
      this.#settle(task, false, reason, true);
      if (worker.claims === undefined) worker.trySend({ type: "skip", ids: [task.id] });
      this.#afterProgress(worker);
    } else {
      // A running task can only be stopped with its worker.
      this.#settle(task, false, reason, true);
      this.#stopWorker(worker, "SIGKILL");
    }
    return true;
  }

  /**
   * Cancels every task that no worker has started: those queued, waiting for room, or sent ahead
   * to a worker, as Python's `shutdown(cancel_futures=True)`. Running tasks go on.
   */
  cancelPending(): void {
    const reason = () => new CancelledError("The task was cancelled before it started");
    // Those waiting for room first, so that cancelling queued ones admits none of them.
    for (const task of this.#overflow.drain()) this.#settle(task, false, reason(), true);
    const pending: Task[] = [];
    for (let i = 0; i < this.#queue.length; i++) {
      const task = this.#queue.at(i)!;
      if (task.status === QUEUED) pending.push(task);
    }
    for (const worker of this.#workers) {
      for (let i = 0; i < worker.inflight.length; i++) {
        const task = worker.inflight.at(i)!;
        if (task.state() === "pending") pending.push(task);
      }
    }
    for (const task of pending) this.cancel(task, reason());
  }

  /** Cancels `task` if it is still queued: for work that is no longer wanted, not a cancel. */
  cancelQueued(task: Task): void {
    if (task.status === QUEUED) this.cancel(task, new CancelledError("The task was cancelled"));
  }

  /** Stops a worker on purpose; the tasks it held go back to the front of the queue. */
  #stopWorker(worker: PoolWorker, signal: "SIGTERM" | "SIGKILL"): void {
    if (worker.retired) return;
    worker.retired = true;
    worker.accepting = false;
    this.#requeue(worker.inflight.drain());
    this.#stopping.add(worker);
    this.#removeWorker(worker);
    // Held until its exit is seen, which join() waits for.
    worker.setRef(true);
    worker.stop(signal);
  }

  #retire(worker: PoolWorker): void {
    this.#stopWorker(worker, "SIGTERM");
    if (this.#queued > 0 || this.#state === "open") this.#scheduleDispatch();
  }

  /** Puts tasks back where they are taken next, in their order. */
  #requeue(tasks: Task[]): void {
    const back = tasks.filter((task) => task.status === SENT);
    for (const task of back) {
      task.status = QUEUED;
      task.worker = undefined;
      task.startedAt = 0;
      task.revoking = false;
      task.claim = -1;
    }
    if (this.#lifo) { for (let i = back.length - 1; i >= 0; i--) this.#queue.push(back[i]); }
    else for (let i = back.length - 1; i >= 0; i--) this.#queue.unshift(back[i]);
    this.#queued += back.length;
    if (this.#queued > 0) this.#scheduleDispatch();
  }

  #removeWorker(worker: PoolWorker, finish = true): void {
    const index = this.#workers.indexOf(worker);
    if (index >= 0) this.#workers.splice(index, 1);
    if (finish) this.#maybeFinish();
  }

  #onExit(worker: PoolWorker, exitCode: number): void {
    if (this.#stopping.delete(worker)) this.#maybeFinish();
    if (worker.retired) return;
    worker.retired = true;
    worker.accepting = false;
    // join() is told only once the worker's tasks are settled or back in the queue: after
    // close(), no worker and an empty queue in between would let it resolve with tasks pending.
    this.#removeWorker(worker, false);
    const tasks = worker.inflight.drain();
    // The tasks that it had begun die with it; the others never started and run elsewhere. A
    // worker that died before it was ready may be unable to start at all: its first task takes
    // the blame, so that tasks fail instead of respawning workers for ever.
    let begun = tasks.filter((task) => worker.hasBegun(task));
    if (begun.length === 0 && !worker.ready && tasks.length > 0) begun = [tasks[0]];
    if (this.#state === "terminated" || this.#state === "broken") {
      this.#maybeFinish();
      return;
    }
    const crash = worker.crashError(
      exitCode,
      `Worker '${worker.name}' of ${this.options.name}`,
      begun.length > 0 ? " while it ran a task" : "",
    );
    if (this.options.onCrash === "break") {
      const broken = new BrokenPoolError(
        `${this.options.name} is broken: ${crash.message}; every pending task is rejected`,
        { cause: crash },
      );
      for (const task of tasks) this.#settle(task, false, broken);
      this.#break(broken);
      return;
    }
    for (const task of begun) this.#settle(task, false, crash);
    this.#requeue(tasks.filter((task) => !begun.includes(task)));
    // Keeps minWorkers.
    if (this.#state === "open") this.#scheduleDispatch();
    this.#maybeFinish();
  }

  /** Every pending task rejects with `error`, every worker stops, and no task is taken again. */
  #break(error: Error, state: "broken" | "terminated" = "broken"): void {
    if (this.#state === "broken" || this.#state === "terminated") return;
    this.#state = state;
    this.#brokenBy = error;
    for (const worker of [...this.#workers]) {
      worker.retired = true;
      worker.accepting = false;
      for (const task of worker.inflight.drain()) this.#settle(task, false, error);
      this.#stopping.add(worker);
      this.#removeWorker(worker);
      worker.setRef(true);
      worker.stop("SIGKILL");
    }
    for (const task of this.#queue.drain()) this.#settle(task, false, error);
    for (const task of this.#overflow.drain()) this.#settle(task, false, error);
    this.#queued = 0;
    for (const wake of this.#roomWaiters.splice(0)) wake();
    this.#maybeFinish();
  }

  /** `close()`: no new tasks; workers stop once the queue is done. */
  close(): void {
    if (this.#state !== "open") return;
    this.#state = "closed";
    for (const wake of this.#roomWaiters.splice(0)) wake();
    for (const worker of [...this.#workers]) {
      if (worker.inflight.length === 0 && this.#queued === 0) this.#retire(worker);
    }
    this.#maybeFinish();
  }

  /** `terminate()`: every pending task rejects, every worker is killed. */
  terminate(): void {
    this.#break(new BrokenPoolError(`${this.options.name} was terminated`), "terminated");
  }

  /** Resolves once the pool is closed (or terminated) and every worker has exited. */
  join(): Promise<void> {
    if (this.#state === "open") {
      return Promise.reject(
        new Error(
          `Cannot join ${this.options.name} while it is open: call close() or terminate() first`,
        ),
      );
    }
    this.#joined ??= new Promise((resolve) => this.#markJoined = resolve);
    this.#maybeFinish();
    return this.#joined;
  }

  #maybeFinish(): void {
    if (!this.#markJoined || this.#state === "open") return;
    if (this.#workers.length > 0 || this.#queued > 0 || this.#overflow.length > 0) return;
    if (this.#stopping.size > 0) return;
    this.#markJoined();
    this.#markJoined = undefined;
    if (this.#idleTimer !== undefined) clearInterval(this.#idleTimer);
  }

  /** Starts the sweep that stops workers idle for longer than `idleTimeoutMs`. */
  startIdleSweep(): void {
    const timeout = this.options.idleTimeoutMs;
    if (timeout === undefined || timeout === Infinity) return;
    const min = this.options.minWorkers ?? 0;
    this.#idleTimer = setInterval(() => {
      const now = performance.now();
      let spare = this.#workers.length - min;
      for (const worker of [...this.#workers]) {
        if (spare <= 0) break;
        if (worker.inflight.length === 0 && now - worker.idleSince >= timeout) {
          spare--;
          this.#retire(worker);
        }
      }
    }, Math.max(10, timeout / 2));
    unrefTimer(this.#idleTimer);
  }

  stats(): PoolStats {
    let busy = 0;
    for (const worker of this.#workers) {
      if (worker.inflight.length > worker.notBegun()) busy++;
    }
    const elapsed = this.#startedAt < 0 ? 0 : performance.now() - this.#startedAt;
    return {
      size: this.options.size,
      tasksCompleted: this.#completed,
      tasksFailed: this.#failed,
      tasksCancelled: this.#cancelled,
      queueLength: this.#waiting(),
      busyWorkers: busy,
      workers: this.#workers.length,
      utilization: elapsed > 0 ? Math.min(1, this.#busyMs / (this.options.size * elapsed)) : 0,
      runTimeMs: this.#runTimes.percentiles(),
      waitTimeMs: this.#waitTimes.percentiles(),
    };
  }
}
