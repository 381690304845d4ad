/**
 * The child side of a pool worker: it runs the initializer once, then the tasks that the parent
 * sends, one at a time and in the order sent, however many the parent has sent ahead.
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
import {
  describeValue,
  findUncloneableArgument,
  type ParentLink,
  type PoolStartMessage,
  type PoolTargetMessage,
  serializeError,
  type TargetSpec,
  TaskMode,
} from "./_protocol.ts";
import { resolveTarget } from "./_target_resolve.ts";
import { isTransfer } from "./_transfer_marker.ts";

type AnyFunction = (...args: unknown[]) => unknown;

const FLUSH_AFTER_MS = 1;
const FLUSH_AFTER_RESULTS = 1024;

/** A pool worker's task loop; the child entry hands it the pool's messages. */
export class PoolChild {
  #link: ParentLink;
  #ready: Promise<void>;
  #slot?: Int32Array;
  #batchResults: boolean;
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
  /** The id of the task that runs now, or 0. */
  #current = 0;

  constructor(link: ParentLink, start: PoolStartMessage, preloaded: Promise<void>) {
    this.#link = link;
    this.#slot = start.runningSlot;
    this.#batchResults = start.batchResults;
    this.#ready = this.#initialize(start, preloaded);
    // The parent times tasks from here, not from the worker's start.
    this.#ready.then(() => link.send({ type: "ready" })).catch(() => {});
    this.#ready.catch(async (error) => {
      await link.send({ type: "init-failed", error: serializeError(error) }).catch(() => {});
      link.finish(1);
    });
    this.#flushBeforeExit();
  }

  /** Records the target that tasks with `message.id` run. */
  addTarget(message: PoolTargetMessage): void {
    this.#specs.set(message.id, message.target);
  }

  /**
   * Marks tasks that were sent ahead as cancelled: they are skipped. One that runs already (it
   * waits on something, or this message would not have been read) is reported, so that the parent
   * stops this worker rather than leave it running a task that nobody wants.
   */
  skip(ids: number[]): void {
    for (const id of ids) {
      if (id === this.#current) {
        this.#link.send({ type: "skip-failed", id }).catch(() => {});
      } else {
        this.#skipped.add(id);
      }
    }
  }

  /** Queues a batch of tasks and starts the loop if it is not running. */
  addTasks(tasks: unknown[]): void {
    this.#batches.push(tasks);
    if (!this.#running) void this.#drain();
  }

  async #initialize(start: PoolStartMessage, preloaded: Promise<void>): Promise<void> {
    await preloaded;
    if (!start.initializer) return;
    const initializer = await resolveTarget(start.initializer);
    await initializer(...start.initArgs);
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

  #next(): { id: number; targetId: number; mode: TaskMode; payload: unknown } | undefined {
    while (this.#batchIndex < this.#batches.length) {
      const batch = this.#batches[this.#batchIndex];
      if (this.#position < batch.length) {
        const at = this.#position;
        this.#position += 4;
        return {
          id: batch[at] as number,
          targetId: batch[at + 1] as number,
          mode: batch[at + 2] as TaskMode,
          payload: batch[at + 3],
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

  async #drain(): Promise<void> {
    this.#running = true;
    try {
      await this.#ready;
    } catch {
      return; // The initializer failed; the parent is told and the worker exits.
    }
    for (let task = this.#next(); task; task = this.#next()) {
      if (this.#skipped.size > 0 && this.#skipped.delete(task.id)) continue;
      let target = this.#targets.get(task.targetId);
      try {
        if (!target) {
          this.#flush();
          target = await this.#resolve(task.targetId);
          // A skip may have come while the module loaded.
          if (this.#skipped.size > 0 && this.#skipped.delete(task.id)) continue;
        }
        this.#current = task.id;
        if (this.#slot) Atomics.store(this.#slot, 0, task.id);
        let args = task.payload as unknown[];
        // Shared objects among the arguments come back to life here; plain data passes as is.
        const decoded = task.mode === TaskMode.Apply ? decodeArgs(args, this.#link) : args;
        if (decoded !== args) args = await decoded;
        let value = task.mode === TaskMode.Apply
          ? target.apply(undefined, args)
          : await this.#runChunk(target, task.mode, args);
        if (decoded !== task.payload) {
          if (isThenable(value)) value = await value;
          await settleTask();
        }
        if (isThenable(value)) {
          // The task waits: its results so far go out now, not after it.
          this.#flush();
          value = await value;
        }
        this.#addResult(task.id, value);
      } catch (error) {
        this.#results.push(task.id, 0, serializeError(error));
      }
      this.#current = 0;
      if (this.#slot) Atomics.store(this.#slot, 0, 0);
      if (this.#results.length === 3) this.#firstResultAt = performance.now();
      if (
        !this.#batchResults || this.#results.length >= 3 * FLUSH_AFTER_RESULTS ||
        performance.now() - this.#firstResultAt >= FLUSH_AFTER_MS
      ) this.#flush();
    }
    this.#flush();
    this.#running = false;
  }

  async #resolve(targetId: number): Promise<AnyFunction> {
    const spec = this.#specs.get(targetId);
    if (!spec) throw new Error(`Internal error: no target with id ${targetId}`);
    const target = await resolveTarget(spec);
    this.#targets.set(targetId, target);
    return target;
  }

  /** Runs a map or starmap chunk, awaiting items that return promises, one after another. */
  async #runChunk(target: AnyFunction, mode: TaskMode, items: unknown[]): Promise<unknown[]> {
    const values = new Array(items.length);
    for (let i = 0; i < items.length; i++) {
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

  #addResult(id: number, value: unknown): void {
    if (isTransfer(value)) {
      for (const item of value.list) this.#transfers.push(item);
      value = value.value;
    }
    // A bare function or symbol is checked too: handed to Deno's IPC channel, a value that cannot
    // be cloned corrupts the channel instead of failing the send, and the task never settles.
    if (
      (typeof value === "object" && value !== null) || typeof value === "function" ||
      typeof value === "symbol"
    ) {
      const bad = findUncloneableArgument([value]);
      if (bad) {
        const where = bad.path ? ` (at ${bad.path})` : "";
        this.#results.push(
          id,
          0,
          serializeError(
            new TypeError(
              `The return value of the task cannot be sent to the parent${where}: ${
                describeValue(bad.culprit)
              } is not cloneable; return data that structured clone accepts`,
            ),
          ),
        );
        return;
      }
    }
    this.#results.push(id, 1, value);
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
      const fallback = [
        single[0],
        0,
        serializeError(
          new TypeError(
            `The return value of the task cannot be sent to the parent: ${
              error instanceof Error ? error.message : String(error)
            }; return data that structured clone accepts`,
          ),
        ),
      ];
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

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}
