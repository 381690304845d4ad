/**
 * The engine behind `ThreadPool` and `Pool`: a queue of tasks, workers that each hold a few of them
 * ahead, and the bookkeeping that settles every task exactly once whatever happens to its worker.
 *
 * How a task travels: its target is described once per function (and cached) and sent once per
 * worker under a numeric id; tasks go out in batches, one message per worker per dispatch, and
 * each worker runs them one at a time in the order sent. A worker holds at most `depth` tasks,
 * where `depth` grows as tasks prove short (many in flight hide the messaging) and stays at 2 for
 * long ones (so that the next task is always at hand, and a free worker is not starved).
 *
 * A crash rejects the task that the worker was running and sends the ones it held ahead back to the
 * front of the queue. A thread keeps the id of its running task in shared memory, so that the
 * parent knows it exactly; a process sends each result on its own, so that its running task is the
 * first one sent to it without an outcome.
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
import { describeValue, type LongTimeout, setLongTimeout } from "./_checks.ts";
import { BrokenPoolError, CancelledError, TimeoutError } from "./errors.ts";
import { ChildWorker, type WorkerKind } from "./_worker_parent.ts";
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
}

const QUEUED = 0;
const SENT = 1;
const SETTLED = 2;
const CANCELLED = 3;

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
  /** The number of items, for map chunks; 1 otherwise. */
  items: number;
  timer: LongTimeout | undefined = undefined;
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
    if (this.status === SENT && this.worker?.runningTask() === this) return "running";
    return "pending";
  }

  cancel(reason?: unknown): boolean {
    return this.engine.cancel(this, reason ?? new CancelledError("The task was cancelled"));
  }
}

/** A worker as the engine sees it: a `ChildWorker` and the tasks that it holds. */
export class PoolWorker extends ChildWorker {
  /** Tasks sent to it without an outcome yet, in the order sent (the order it runs them). */
  readonly inflight = new Deque<Task>();
  /** Ids of the targets that it has been sent. */
  readonly targets = new Set<number>();
  /** How many tasks it has been given, for `maxTasksPerChild`. */
  assigned = 0;
  /** False once it is being stopped or has exited: it takes no more tasks. */
  accepting = true;
  /** True once the pool has let go of it: stopped on purpose, or its exit handled. */
  retired = false;
  lastResultAt = 0;
  /** Whether it has reported any outcome. */
  reported = false;
  idleSince: number;
  slot: Int32Array | undefined;

  constructor(kind: WorkerKind, name: string) {
    super(kind, name);
    this.idleSince = performance.now();
    // Where a thread keeps the id of the task that it runs (see _worker_child.ts).
    this.slot = kind.destination === "thread"
      ? new Int32Array(new SharedArrayBuffer(4))
      : undefined;
  }

  /** The task that it runs now: the one named in its slot, else the first without an outcome. */
  runningTask(): Task | undefined {
    if (this.slot) {
      const id = Atomics.load(this.slot, 0);
      if (id === 0) return undefined;
      for (let i = 0; i < this.inflight.length; i++) {
        const task = this.inflight.at(i)!;
        if (task.id === id) return task;
      }
      return undefined;
    }
    return this.inflight.at(0);
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
class Samples {
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
const PREFETCH_MS = 2;
const MAX_DEPTH = 256;

const noop = () => {};

/** The pool engine; `ThreadPool` and `Pool` wrap one each. */
export class PoolEngine {
  readonly options: EngineOptions;
  #queue = new Deque<Task>();
  /** Tasks in `#queue` that are not cancelled. */
  #queued = 0;
  /** Tasks waiting for room in the queue, under `maxQueue`. */
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
   * @throws {TypeError} When an argument cannot be cloned; the message names its index.
   */
  submit<T>(
    target: TargetEntry,
    mode: TaskMode,
    payload: unknown[],
    items: number,
    what: string,
  ): Task<T> {
    let transfers: object[] | undefined;
    for (let i = 0; i < payload.length; i++) {
      const arg = payload[i];
      if (typeof arg !== "object" || arg === null) {
        if (typeof arg === "function" || typeof arg === "symbol") this.#refuseArgs(payload, what);
        continue;
      }
      if (mode === TaskMode.Apply && isTransfer(arg)) {
        if (transfers === undefined) {
          transfers = [];
          payload = [...payload];
        }
        payload[i] = arg.value;
        for (const item of arg.list) transfers.push(item);
      }
      // The walk is needed only where a value can hide a function; primitives skip it.
      if (findUncloneableArgument([payload[i]])) this.#refuseArgs(payload, what);
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

  #refuseArgs(payload: unknown[], what: string): never {
    const bad = findUncloneableArgument(payload)!;
    const noun = this.options.kind.noun;
    throw new TypeError(
      `${what} argument ${bad.index}${
        bad.path ? ` (at ${bad.path})` : ""
      } cannot be sent to the ${noun}: ${
        describeValue(bad.culprit)
      } is not cloneable; pass data that structured clone accepts`,
    );
  }

  /** Cancels `task` after `timeoutMs`, or when `signal` aborts. */
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
    if (timeoutMs !== undefined) {
      task.timer = setLongTimeout(
        () =>
          this.cancel(
            task,
            new TimeoutError(`The task did not finish within ${timeoutMs} ms`),
          ),
        timeoutMs,
      );
    }
  }

  /** Whether the queue has room under `maxQueue`. */
  hasRoom(): boolean {
    return this.options.maxQueue === undefined ||
      this.#queued + this.#overflow.length < this.options.maxQueue;
  }

  /** Resolves once the queue has room (at once when it has). */
  room(): Promise<void> {
    if (this.hasRoom() || this.#state !== "open") return Promise.resolve();
    return new Promise((resolve) => this.#roomWaiters.push(resolve));
  }

  #scheduleDispatch(): void {
    if (this.#dispatchScheduled) return;
    this.#dispatchScheduled = true;
    queueMicrotask(this.#dispatchBound);
  }

  #depth(): number {
    if (this.#serviceMs < 0) return 2;
    const depth = Math.ceil(PREFETCH_MS / Math.max(this.#serviceMs, 1e-4));
    return depth < 2 ? 2 : depth > MAX_DEPTH ? MAX_DEPTH : depth;
  }

  /** Sends queued tasks to workers, starting workers where the queue needs them. */
  #dispatch(): void {
    this.#dispatchScheduled = false;
    if (this.#state === "terminated" || this.#state === "broken") return;
    this.#admitOverflow();
    if (this.#queued > 0) {
      let idle = 0;
      for (const worker of this.#workers) {
        if (worker.accepting && worker.inflight.length === 0) idle++;
      }
      while (idle < this.#queued && this.#workers.length < this.options.size) {
        if (!this.#startWorker()) return;
        idle++;
      }
    }
    const depth = this.#depth();
    // Each worker takes a fair share, topped up only once it has run down to half its depth, so
    // that a message carries many tasks.
    let open = 0;
    for (const worker of this.#workers) {
      if (worker.accepting && worker.inflight.length <= depth >> 1) open++;
    }
    for (const worker of this.#workers) {
      if (this.#queued === 0) break;
      if (!worker.accepting || worker.inflight.length > depth >> 1) continue;
      const share = Math.ceil(this.#queued / Math.max(1, open--));
      let room = Math.min(share, depth - worker.inflight.length);
      if (this.options.maxTasksPerChild !== undefined) {
        room = Math.min(room, this.options.maxTasksPerChild - worker.assigned);
      }
      if (room > 0) this.#sendTasks(worker, room);
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
    if (this.#roomWaiters.length > 0 && this.hasRoom()) {
      for (const wake of this.#roomWaiters.splice(0)) wake();
    }
  }

  #sendTasks(worker: PoolWorker, count: number): void {
    const batch: unknown[] = [];
    const sent: Task[] = [];
    let transfers: object[] | undefined;
    const now = performance.now();
    while (sent.length < count) {
      const task = this.#queue.shift();
      if (!task) break;
      if (task.status !== QUEUED) continue;
      this.#queued--;
      if (!worker.targets.has(task.target.id)) {
        worker.targets.add(task.target.id);
        // Messages arrive in order, so the target is known before the tasks that need it.
        worker.send({ type: "target", id: task.target.id, target: task.target.spec });
      }
      task.status = SENT;
      task.worker = worker;
      task.sentAt = now;
      this.#waitTimes.add(now - task.submittedAt);
      // Shared objects (locks, queues, values) among a task's arguments cross as descriptors for
      // this worker, whose owner id they carry.
      const payload = task.mode === TaskMode.Apply
        ? encodeArgs(task.payload as unknown[], {
          destination: this.options.kind.destination,
          ownerId: worker.ownerId,
        })
        : task.payload;
      batch.push(task.id, task.target.id, task.mode, payload);
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
      // A value that the walk let through (a host object): send one by one to find it.
      for (const task of sent) worker.inflight.remove(task);
      for (const task of sent) {
        try {
          worker.inflight.push(task);
          worker.send(
            { type: "tasks", tasks: [task.id, task.target.id, task.mode, task.payload] },
            task.transfers,
          );
        } catch {
          worker.inflight.remove(task);
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
        runningSlot: worker.slot,
        // Threads batch their results; a process sends each, so that a kill loses none.
        batchResults: worker.slot !== undefined,
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
    if (message.type === "done") {
      this.#onResults(worker, message.results);
    } else if (message.type === "skip-failed") {
      // A cancelled task had started after all: its worker is the only way to stop it.
      this.#stopWorker(worker, "SIGKILL");
    } else if (message.type === "ready") {
      worker.lastResultAt = performance.now();
    } else if (message.type === "init-failed") {
      const cause = deserializeThrown(message.error);
      this.#break(
        new BrokenPoolError(
          `The initializer of ${this.options.name} failed in ${worker.name}: ${message.error.message}`,
          { cause },
        ),
      );
    }
  }

  #onResults(worker: PoolWorker, results: unknown[]): void {
    const now = performance.now();
    worker.reported = true;
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
        // Out of order only when the task was cancelled or sent back meanwhile.
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
    this.#afterProgress(worker);
  }

  /** After a worker finished tasks: retire it, idle it, or give it more. */
  #afterProgress(worker: PoolWorker): void {
    if (worker.inflight.length === 0) {
      worker.idleSince = performance.now();
      if (!worker.accepting || (this.#state === "closed" && this.#queued === 0)) {
        this.#retire(worker);
      } else if (this.#queued === 0) {
        worker.setRef(false);
      }
    }
    if (this.#queued > 0 || this.#overflow.length > 0) this.#scheduleDispatch();
    else this.#maybeFinish();
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
    if (worker.runningTask() === task || (!worker.slot && worker.inflight.at(0) === task)) {
      // A running task can only be stopped with its worker.
      this.#settle(task, false, reason, true);
      this.#stopWorker(worker, "SIGKILL");
    } else {
      worker.inflight.remove(task);
      this.#settle(task, false, reason, true);
      // A worker that is gone sends the others back at its exit.
      worker.trySend({ type: "skip", ids: [task.id] });
      this.#afterProgress(worker);
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

  /** Stops a worker on purpose; the tasks it held ahead go back to the front of the queue. */
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
    if (this.#queued > 0) this.#scheduleDispatch();
  }

  #requeue(tasks: Task[]): void {
    for (let i = tasks.length - 1; i >= 0; i--) {
      const task = tasks[i];
      if (task.status !== SENT) continue;
      task.status = QUEUED;
      task.worker = undefined;
      this.#queue.unshift(task);
      this.#queued++;
    }
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
    // A worker that never finished a task may have died starting up: its first task takes the
    // blame, so that a worker that cannot start at all fails tasks instead of respawning forever.
    const running = worker.runningTask() ??
      (worker.reported ? undefined : worker.inflight.at(0));
    const tasks = worker.inflight.drain();
    if (this.#state === "terminated" || this.#state === "broken") {
      this.#maybeFinish();
      return;
    }
    const crash = worker.crashError(
      exitCode,
      `Worker '${worker.name}' of ${this.options.name}`,
      running ? " while it ran a task" : "",
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
    if (running) this.#settle(running, false, crash);
    this.#requeue(tasks.filter((task) => task !== running));
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
    this.#idleTimer = setInterval(() => {
      const now = performance.now();
      for (const worker of [...this.#workers]) {
        if (worker.inflight.length === 0 && now - worker.idleSince >= timeout) this.#retire(worker);
      }
    }, Math.min(2 ** 31 - 1, Math.max(10, timeout / 2)));
    unrefTimer(this.#idleTimer);
  }

  stats(): PoolStats {
    let busy = 0;
    for (const worker of this.#workers) if (worker.inflight.length > 0) busy++;
    const elapsed = this.#startedAt < 0 ? 0 : performance.now() - this.#startedAt;
    return {
      size: this.options.size,
      tasksCompleted: this.#completed,
      tasksFailed: this.#failed,
      tasksCancelled: this.#cancelled,
      queueLength: this.#queued + this.#overflow.length,
      busyWorkers: busy,
      workers: this.#workers.length,
      utilization: elapsed > 0 ? Math.min(1, this.#busyMs / (this.options.size * elapsed)) : 0,
      runTimeMs: this.#runTimes.percentiles(),
      waitTimeMs: this.#waitTimes.percentiles(),
    };
  }
}
