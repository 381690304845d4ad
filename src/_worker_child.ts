/**
 * The child side of a worker's life, for every kind of worker: it runs tasks that the parent
 * sends, one at a time and in the order sent, checks each outcome before it crosses back, and
 * reports it. A `Thread` or `Process` is a worker with one task (`once`): it prints the target's
 * uncaught error as Python does and ends after that task. A pool worker runs its initializer, then
 * as many tasks as the parent sends ahead. The parent side is `_worker_parent.ts`.
 *
 * One at a time is what makes a crash attributable: the task that a dying worker was running is
 * the first of its tasks without an outcome (a thread also writes the running task's id into a
 * shared slot). Results go back in batches on threads, flushed before the worker waits for anything
 * and at least every millisecond; processes send each result on its own, so that one killed from
 * outside loses no finished result.
 *
 * @module
 */
import { decodeArgs, settleTask } from "./_revive.ts";
import { loadSharedClasses } from "./_shared_classes.ts";
import { describeValue } from "./_checks.ts";
import { findUncloneableArgument, isSharedMemory } from "./_clone_check.ts";
import type { ParentLink } from "./_channel.ts";
import { type PoolTargetMessage, type TargetSpec, TaskMode } from "./_protocol.ts";
import { serializeError } from "./_error_records.ts";
import { resolveTarget } from "./_target_resolve.ts";
import { nonDaemonChildrenDone } from "./_process_context.ts";
import { isTransfer } from "./_transfer_marker.ts";

type AnyFunction = (...args: unknown[]) => unknown;

const FLUSH_AFTER_MS = 1;
const FLUSH_AFTER_RESULTS = 1024;
// Results of tasks shorter than this wait for others, to share a message; longer ones go at once.
const BATCH_BELOW_MS = 0.05;

/** How a worker's task loop runs. */
export interface TaskLoopOptions {
  initializer?: TargetSpec;
  initArgs?: unknown[];
  /** A thread's claim words and start times (see `PoolStartMessage`). */
  claims?: Int32Array;
  startTimes?: Float64Array;
  /** Whether results are sent in batches (threads) or one by one (processes). */
  batchResults: boolean;
  /** How many tasks that await may run at once. */
  concurrency?: number;
  /**
   * For a one-shot `Thread` or `Process`: the line printed on stderr before the target's uncaught
   * error. After its one task the child ends, with code 0 or 1.
   */
  once?: { header: string };
}

interface QueuedTask {
  id: number;
  targetId: number;
  mode: TaskMode;
  payload: unknown;
  claim: number;
}

/** Lets the event loop read what has arrived (a `skip`) before the next task starts. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A worker's task loop; the child entry hands it the parent's messages. */
export class TaskLoop {
  #link: ParentLink;
  #ready: Promise<void>;
  #claims?: Int32Array;
  #startTimes?: Float64Array;
  #batchResults: boolean;
  #concurrency: number;
  #once?: { header: string };
  // A process announces each task that it begins; a thread's claims show it.
  #announce: boolean;
  #specs = new Map<number, TargetSpec>();
  #targets = new Map<number, AnyFunction>();
  #batches: unknown[][] = [];
  #batchIndex = 0;
  #position = 0;
  #running = false;
  #results: unknown[] = [];
  #transfers: object[] = [];
  #firstResultAt = 0;
  #skipped = new Set<number>();
  /** The ids of the tasks that run now. */
  #active = new Set<number>();
  #slotFreed: (() => void) | undefined;
  /** Whether the task that `#run` ran threw. */
  #threw = false;
  /** When the last task ended (or the loop resumed), in `performance.now()`. */
  #lastEnd = 0;

  constructor(link: ParentLink, options: TaskLoopOptions, preloaded: Promise<void>) {
    this.#link = link;
    this.#claims = options.claims;
    this.#startTimes = options.startTimes;
    this.#batchResults = options.batchResults;
    this.#concurrency = options.concurrency ?? 1;
    this.#once = options.once;
    this.#announce = !this.#once && !this.#claims;
    this.#ready = this.#initialize(options, preloaded);
    if (!this.#once) {
      // The parent times tasks from here, not from the worker's start.
      this.#ready.then(() => link.send({ type: "ready" })).catch(() => {});
      this.#ready.catch(async (error) => {
        await link.send({ type: "init-failed", error: serializeError(error) }).catch(() => {});
        link.finish(1);
      });
      this.#flushBeforeExit();
    } else {
      // A one-shot run reports a failed preload as its target's error. It holds no results to
      // flush, and leaving `process` alone spares a Web Worker Node's globals.
      this.#ready.catch(() => {});
    }
  }

  /** Records the target that tasks with `message.id` run. */
  addTarget(message: Pick<PoolTargetMessage, "id" | "target">): void {
    this.#specs.set(message.id, message.target);
  }

  /**
   * Marks tasks that were sent ahead as not wanted here: they are skipped. With `reply`, the
   * parent learns which ones will be (those not begun), to run them elsewhere. Without it, a task
   * that runs already (it waits on something, or this message would not have been read) is
   * reported, so that the parent stops this worker rather than leave it running a task that
   * nobody wants.
   */
  skip(ids: number[], reply = false): void {
    const taken: number[] = [];
    for (const id of ids) {
      if (this.#active.has(id)) {
        if (!reply) this.#link.send({ type: "skip-failed", id }).catch(() => {});
      } else if (!reply || this.#isQueued(id)) {
        this.#skipped.add(id);
        taken.push(id);
      }
    }
    if (reply) this.#link.send({ type: "skipped", ids: taken, asked: ids }).catch(() => {});
  }

  #isQueued(id: number): boolean {
    let position = this.#position;
    for (let b = this.#batchIndex; b < this.#batches.length; b++) {
      const batch = this.#batches[b];
      for (let at = position; at < batch.length; at += 5) if (batch[at] === id) return true;
      position = 0;
    }
    return false;
  }

  /** Queues a batch of tasks, flattened as `[id, targetId, mode, payload, claim, …]`. */
  addTasks(tasks: unknown[]): void {
    this.#batches.push(tasks);
    if (!this.#running) void this.#drain();
  }

  async #initialize(options: TaskLoopOptions, preloaded: Promise<void>): Promise<void> {
    await preloaded;
    if (!options.initializer) return;
    const initializer = await resolveTarget(options.initializer);
    await initializer(...(options.initArgs ?? []));
  }

  /** `Deno.exit()` and `process.exit()` in a task still deliver the results before it. */
  #flushBeforeExit(): void {
    const flush = () => this.#flush();
    const deno = (globalThis as { Deno?: { exit: (code?: number) => never } }).Deno;
    if (deno) {
      const exit = deno.exit;
      Object.defineProperty(deno, "exit", {
        configurable: true,
        writable: true,
        value: (code?: number): never => {
          flush();
          return exit(code);
        },
      });
    }
    const process = (globalThis as { process?: { exit: (code?: number) => never } }).process;
    if (process && typeof process.exit === "function") {
      const exit = process.exit.bind(process);
      process.exit = (code?: number): never => {
        flush();
        return exit(code);
      };
    }
  }

  #next(): QueuedTask | undefined {
    while (this.#batchIndex < this.#batches.length) {
      const batch = this.#batches[this.#batchIndex];
      if (this.#position < batch.length) {
        const at = this.#position;
        this.#position += 5;
        return {
          id: batch[at] as number,
          targetId: batch[at + 1] as number,
          mode: batch[at + 2] as TaskMode,
          payload: batch[at + 3],
          claim: batch[at + 4] as number,
        };
      }
      this.#batchIndex++;
      this.#position = 0;
    }
    // Every batch is done: drop them all at once rather than shifting one by one.
    this.#batches = [];
    this.#batchIndex = 0;
    return undefined;
  }

  /** Whether the task may begin: not skipped, and (on a thread) its claim is still offered. */
  #take(task: QueuedTask): boolean {
    if (this.#skipped.size > 0 && this.#skipped.delete(task.id)) return false;
    if (this.#claims && task.claim >= 0) {
      // The parent may have taken the task back; whoever swaps the word first decides.
      if (Atomics.compareExchange(this.#claims, task.claim, task.id, -task.id) !== task.id) {
        return false;
      }
      this.#startTimes![task.claim] = performance.timeOrigin + this.#lastEnd;
    }
    return true;
  }

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      await this.#ready;
    } catch (error) {
      // A pool worker's parent is told by the constructor, and the worker exits.
      const task = this.#once ? this.#next() : undefined;
      if (task) await this.#endOnce(task.id, false, error);
      return;
    }
    this.#lastEnd = performance.now();
    for (;;) {
      if (this.#active.size >= this.#concurrency) {
        this.#flush();
        await new Promise<void>((resolve) => this.#slotFreed = resolve);
        this.#lastEnd = performance.now();
        continue;
      }
      // A process reads the parent's skips before each task; a thread sees them in its claims.
      if (this.#announce && (this.#results.length > 0 || this.#active.size > 0)) {
        await yieldToEventLoop();
        this.#lastEnd = performance.now();
      }
      const task = this.#next();
      if (!task) break;
      let target = this.#targets.get(task.targetId);
      if (!target) {
        this.#flush();
        try {
          target = await this.#resolve(task.targetId);
          this.#lastEnd = performance.now();
        } catch (error) {
          if (this.#once) return await this.#endOnce(task.id, false, error);
          if (this.#take(task)) {
            if (this.#announce) await this.#began(task.id);
            this.#results.push(task.id, 0, serializeError(error));
            this.#flush();
          }
          continue;
        }
      }
      if (!this.#take(task)) continue;
      if (this.#announce) {
        await this.#began(task.id);
        this.#lastEnd = performance.now();
      }
      if (this.#once) {
        const outcome = this.#run(task, target);
        const { ok, value } = outcome instanceof Waiting
          ? await outcome.promise
          : { ok: !this.#threw, value: outcome };
        await this.#endOnce(task.id, ok, value);
        return;
      }
      // Back to back, a task begins when the one before it ended: one clock read per task.
      const started = this.#lastEnd;
      this.#active.add(task.id);
      const outcome = this.#run(task, target);
      if (outcome instanceof Waiting) {
        // The task waits: its results so far go out now, not after it.
        this.#flush();
        if (this.#concurrency > 1) {
          // Others may run meanwhile; this one reports when it ends.
          outcome.promise.then(({ ok, value }) => {
            this.#finishTask(task.id, ok, value, Infinity);
            this.#flush();
          });
          continue;
        }
        const { ok, value } = await outcome.promise;
        this.#lastEnd = performance.now();
        this.#finishTask(task.id, ok, value, Infinity);
        continue;
      }
      const threw = this.#threw;
      this.#lastEnd = performance.now();
      this.#finishTask(task.id, !threw, outcome, this.#lastEnd - started);
    }
    this.#flush();
    this.#running = false;
  }

  /**
   * Runs one task: its value (with `#threw` set when it threw), or, when the task waits, a
   * {@linkcode Waiting} for its outcome.
   */
  #run(task: QueuedTask, target: AnyFunction): unknown {
    this.#threw = false;
    try {
      let args = task.payload as unknown[];
      // Shared objects among the arguments come back to life here; plain data passes as is.
      const decoded = task.mode === TaskMode.Apply
        ? decodeArgs(args, this.#link, loadSharedClasses)
        : args;
      if (decoded !== args || this.#once) {
        // Locks that the task took through the broker are settled before its outcome.
        return new Waiting(
          (async () => {
            args = await decoded;
            let value = task.mode === TaskMode.Apply
              ? target.apply(undefined, args)
              : await this.#runChunk(target, task.mode, args);
            if (isThenable(value)) value = await value;
            await settleTask();
            return { ok: true, value };
          })().catch((error) => ({ ok: false, value: error })),
        );
      }
      const value = task.mode === TaskMode.Apply
        ? target.apply(undefined, args)
        : this.#runChunk(target, task.mode, args);
      if (isThenable(value)) {
        return new Waiting(
          Promise.resolve(value).then(
            (value) => ({ ok: true, value }),
            (error) => ({ ok: false, value: error }),
          ),
        );
      }
      return value;
    } catch (error) {
      this.#threw = true;
      return error;
    }
  }

  /** Records a task's outcome, and sends what is due. */
  #finishTask(id: number, ok: boolean, value: unknown, tookMs: number): void {
    this.#active.delete(id);
    if (ok) this.#addResult(id, value);
    else this.#results.push(id, 0, serializeError(value));
    if (this.#results.length === 3) this.#firstResultAt = this.#lastEnd;
    // A process sends it with the news of its next task, or once it has none (see #drain).
    if (
      !this.#announce && (!this.#batchResults || tookMs >= BATCH_BELOW_MS ||
        this.#results.length >= 3 * FLUSH_AFTER_RESULTS ||
        this.#lastEnd - this.#firstResultAt >= FLUSH_AFTER_MS)
    ) this.#flush();
    const wake = this.#slotFreed;
    this.#slotFreed = undefined;
    wake?.();
  }

  /**
   * Tells the parent that the task `id` begins, with the results before it, and waits until the
   * message is out: a task that ends its process at once has still been announced.
   */
  async #began(id: number): Promise<void> {
    const results = this.#results;
    const transfers = this.#transfers;
    this.#results = [];
    this.#transfers = [];
    const message = results.length > 0
      ? { type: "done", results, began: id }
      : { type: "began", id };
    try {
      await this.#link.send(message, transfers);
    } catch (error) {
      if (results.length === 0) return;
      this.#resendOneByOne(results, error);
      await this.#link.send({ type: "began", id }).catch(() => {});
    }
  }

  /** Reports the outcome of a one-shot run, and ends the child as Python's `Process` does. */
  async #endOnce(id: number, ok: boolean, value: unknown): Promise<void> {
    if (ok) {
      const checked = this.#check(value);
      if (checked instanceof TypeError) {
        ok = false;
        value = checked;
      } else {
        try {
          await this.#link.send({ type: "done", results: [id, 1, checked.value] }, checked.list);
        } catch (error) {
          ok = false;
          value = this.#unsendable(error);
        }
      }
    }
    if (!ok) {
      // Like Python's traceback on stderr for an uncaught exception in a process; a thread's is
      // printed by the parent, whose stderr it shares (see `_runner.ts`).
      if (this.#link.kind === "process") {
        console.error(this.#once!.header);
        console.error(value);
      }
      await this.#link.send({ type: "done", results: [id, 0, serializeError(value)] });
    }
    // A process ends once its non-daemon threads and processes have, as Python's does.
    if (this.#link.kind === "process") await nonDaemonChildrenDone();
    this.#link.finish(ok ? 0 : 1);
  }

  async #resolve(targetId: number): Promise<AnyFunction> {
    const spec = this.#specs.get(targetId);
    if (!spec) throw new Error(`Internal error: no target with id ${targetId}`);
    const target = await resolveTarget(spec);
    this.#targets.set(targetId, target);
    return target;
  }

  /**
   * Runs a map or starmap chunk: the list of results, or a promise of it once an item waits (the
   * items after it then run one after another as each ends).
   */
  #runChunk(
    target: AnyFunction,
    mode: TaskMode,
    items: unknown[],
  ): unknown[] | Promise<unknown[]> {
    const values = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
      const value = mode === TaskMode.Map
        ? target(items[i])
        : target.apply(undefined, items[i] as unknown[]);
      if (isThenable(value)) return this.#finishChunk(target, mode, items, values, i, value);
      values[i] = value;
    }
    return values;
  }

  async #finishChunk(
    target: AnyFunction,
    mode: TaskMode,
    items: unknown[],
    values: unknown[],
    from: number,
    pending: PromiseLike<unknown>,
  ): Promise<unknown[]> {
    this.#flush();
    values[from] = await pending;
    for (let i = from + 1; i < items.length; i++) {
      let value = mode === TaskMode.Map
        ? target(items[i])
        : target.apply(undefined, items[i] as unknown[]);
      if (isThenable(value)) {
        this.#flush();
        value = await value;
      }
      values[i] = value;
    }
    return values;
  }

  get #what(): string {
    return this.#once ? "target" : "task";
  }

  /** The error for an outcome that cannot cross to the parent. */
  #unsendable(error: unknown, where = ""): TypeError {
    return new TypeError(
      `The return value of the ${this.#what} cannot be sent to the parent${where}: ${
        error instanceof Error ? error.message : String(error)
      }; return data that structured clone accepts`,
    );
  }

  /**
   * Unwraps a result wrapped with `transfer()` and checks that it can cross: the error to report
   * instead when it cannot.
   */
  #check(value: unknown): { value: unknown; list?: readonly object[] } | TypeError {
    let list: readonly object[] | undefined;
    if (isTransfer(value)) {
      list = value.list;
      value = value.value;
    }
    // A bare function or symbol is checked too: handed to Deno's IPC channel, a value that cannot
    // be cloned corrupts the channel instead of failing the send, and the task never settles.
    if (
      (typeof value === "object" && value !== null) || typeof value === "function" ||
      typeof value === "symbol"
    ) {
      // A process shares no memory with its parent: Deno's channel fails on shared memory without
      // an error that reaches anyone, and the task would never settle.
      const process = this.#link.kind === "process";
      const bad = findUncloneableArgument([value], { sharedMemory: !process });
      if (bad) {
        const why = isSharedMemory(bad.culprit)
          ? "holds a SharedArrayBuffer, which cannot cross to another process (share data through a Value or a SharedArray)"
          : "is not cloneable";
        return this.#unsendable(
          new Error(`${describeValue(bad.culprit)} ${why}`),
          bad.path ? ` (at ${bad.path})` : "",
        );
      }
    }
    return { value, list };
  }

  #addResult(id: number, value: unknown): void {
    const checked = this.#check(value);
    if (checked instanceof TypeError) {
      this.#results.push(id, 0, serializeError(checked));
      return;
    }
    if (checked.list) { for (const item of checked.list) this.#transfers.push(item); }
    this.#results.push(id, 1, checked.value);
  }

  #flush(): void {
    if (this.#results.length === 0) return;
    const results = this.#results;
    const transfers = this.#transfers;
    this.#results = [];
    this.#transfers = [];
    this.#send(results, transfers);
  }

  #send(results: unknown[], transfers: object[]): void {
    let sent: Promise<void>;
    try {
      sent = this.#link.send({ type: "done", results }, transfers);
    } catch (error) {
      this.#resendOneByOne(results, error);
      return;
    }
    sent.catch((error) => this.#resendOneByOne(results, error));
  }

  /** A batch failed to send (a host object that the walk let through): find the culprits. */
  #resendOneByOne(results: unknown[], error: unknown): void {
    for (let i = 0; i < results.length; i += 3) {
      const single = results.slice(i, i + 3);
      const fallback = [single[0], 0, serializeError(this.#unsendable(error))];
      const sendFallback = () =>
        this.#link.send({ type: "done", results: fallback }).catch(() => {});
      try {
        this.#link.send({ type: "done", results: single }).catch(sendFallback);
      } catch {
        void sendFallback();
      }
    }
  }
}

/**
 * Makes a worker thread catch what is thrown outside any task (by a timer, or a rejection that
 * nobody handles) before the runtime does: the error goes to the parent as an `uncaught` message,
 * and the worker ends with code 1 as the runtime would have ended it, but the runtime prints
 * nothing on the stderr that the thread shares with its parent (the parent decides what is
 * printed). A child process leaves this to its runtime, which prints on the child's own stderr.
 *
 * @param link The worker's line to its parent.
 */
export function reportUncaughtErrors(link: ParentLink): void {
  if (link.kind !== "thread") return;
  const scope = globalThis as unknown as UncaughtScope;
  // A Web Worker: `Deno.exit()` there tells the parent its code, as the child link arranges. It
  // leaves `process` alone, which would load Node's globals into it.
  const webWorker = "WorkerGlobalScope" in globalThis;
  let ending = false;
  const report = (error: unknown) => {
    // A second error while the first is reported changes nothing: the worker ends.
    if (ending) return;
    ending = true;
    try {
      link.send({ type: "uncaught", error: serializeError(error) }).catch(() => {});
    } finally {
      if (webWorker) scope.Deno!.exit(1);
      else scope.process!.exit(1);
    }
  };
  // Web Workers, Deno's node workers and Bun's workers have the global events (under `bun test`,
  // only those); Node's workers only the process's.
  if (typeof scope.addEventListener === "function") {
    scope.addEventListener("error", (event) => {
      event.preventDefault();
      report(event.error ?? new Error(event.message));
    });
    scope.addEventListener("unhandledrejection", (event) => {
      event.preventDefault();
      report(event.reason);
    });
  }
  if (!webWorker) {
    scope.process!.on("uncaughtException", report);
    scope.process!.on("unhandledRejection", report);
  }
}

/**
 * What {@linkcode reportUncaughtErrors} reaches in a worker's global scope, by shape: Node's types
 * have no `ErrorEvent`.
 */
interface UncaughtScope {
  addEventListener?(
    type: "error",
    listener: (event: { error?: unknown; message: string; preventDefault(): void }) => void,
  ): void;
  addEventListener?(
    type: "unhandledrejection",
    listener: (event: { reason: unknown; preventDefault(): void }) => void,
  ): void;
  Deno?: { exit(code: number): never };
  process?: {
    on(type: "uncaughtException" | "unhandledRejection", listener: (error: unknown) => void): void;
    exit(code: number): never;
  };
}

/** The outcome of a task that waits. */
class Waiting {
  constructor(readonly promise: Promise<{ ok: boolean; value: unknown }>) {}
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}
