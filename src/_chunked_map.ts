/**
 * How `map`, `starmap`, `imap` and `imapUnordered` cut their input into chunks, submit them and put
 * the results back together, written once for every pool: the local pools and `DistributedPool`
 * differ only in the hooks that submit and cancel a chunk.
 *
 * Rules this file keeps:
 * - The first error rejects the whole map, and the chunks not yet started are cancelled.
 * - Lazy input is pulled only as far as `buffersize` chunks ahead of the consumer; leaving the loop
 *   early cancels what is left and closes the input.
 * - An error of the input itself is thrown after the results of the items before it.
 * - With `timeoutMs`, the call rejects with a `TimeoutError` at the deadline, counted from the call;
 *   a result that is ready is still yielded, as Python's does.
 *
 * @module
 */
import { longDelay } from "./_checks.ts";
import { checkArgLists, isAsyncIterable } from "./_iterables.ts";
import { TaskMode } from "./_protocol.ts";
import { TimeoutError } from "./errors.ts";

/** The largest chunk that a pool picks by itself. */
export const MAX_AUTO_CHUNK = 4096;

/**
 * The size of the next lazy chunk when the caller gave none: about `targetMs` of work at the
 * measured `itemMs` per item, from 1 to {@linkcode MAX_AUTO_CHUNK}. 1 while nothing is measured
 * (`itemMs` negative); the largest for items too quick to measure (0).
 */
export function chunkForSpeed(itemMs: number, targetMs: number): number {
  if (itemMs < 0) return 1;
  if (itemMs === 0) return MAX_AUTO_CHUNK;
  return Math.max(1, Math.min(MAX_AUTO_CHUNK, Math.floor(targetMs / itemMs)));
}

/** A chunk's task, as the drivers see it: its promise of the chunk's results. */
export interface ChunkTask {
  readonly promise: Promise<unknown>;
}

/** What a pool lends the drivers. */
export interface ChunkHooks<T extends ChunkTask> {
  /** Resolves when the pool has room for another chunk. */
  room(): Promise<void>;
  /** Why the pool takes no more chunks, or undefined. */
  refusal(): Error | undefined;
  /** The size of the next lazy chunk when the caller gave none. */
  chunkSize(): number;
  /** Submits a chunk of items; the items of a starmap are checked already. */
  submit(chunk: unknown[]): T;
  /** Takes back a chunk that nobody will await: the map failed or the loop was left. */
  drop(task: T): void;
  /** Takes back a chunk that has not started, after a timeout. */
  dropUnstarted(task: T): void;
  /** When set, an eager map awaits room before each chunk (a pool that holds no overflow). */
  eagerRoom?: boolean;
}

/** How a map call runs. */
export interface ChunkOptions {
  mode: TaskMode;
  what: string;
  timeoutMs?: number;
}

/**
 * Maps an array: cuts it into chunks of `size`, submits them all, and gives the results in order.
 *
 * @throws The first chunk's error, or a `TimeoutError` after `timeoutMs`.
 */
export async function eagerMap<T extends ChunkTask>(
  items: unknown[],
  size: number,
  hooks: ChunkHooks<T>,
  options: ChunkOptions,
): Promise<unknown[]> {
  const { mode, what, timeoutMs } = options;
  if (mode === TaskMode.Starmap) checkArgLists(items, what);
  if (items.length === 0) return [];
  const tasks: T[] = [];
  try {
    for (let start = 0; start < items.length; start += size) {
      if (hooks.eagerRoom) {
        await hooks.room();
        const refusal = hooks.refusal();
        if (refusal) throw refusal;
      }
      tasks.push(hooks.submit(items.slice(start, start + size)));
    }
  } catch (error) {
    for (const task of tasks) hooks.drop(task);
    throw error;
  }
  const results = new Array(items.length);
  const all = new Promise<unknown[]>((resolve, reject) => {
    let remaining = tasks.length;
    let failed = false;
    for (let k = 0; k < tasks.length; k++) {
      tasks[k].promise.then(
        (values) => {
          const chunk = values as unknown[];
          const offset = k * size;
          for (let i = 0; i < chunk.length; i++) results[offset + i] = chunk[i];
          if (--remaining === 0 && !failed) resolve(results);
        },
        (error) => {
          if (failed) return;
          failed = true;
          for (const task of tasks) hooks.drop(task);
          reject(error);
        },
      );
    }
  });
  if (timeoutMs === undefined || timeoutMs === Infinity) return await all;
  const timeout = longDelay(timeoutMs);
  try {
    return await Promise.race([
      all,
      timeout.done.then(() => {
        all.catch(() => {});
        for (const task of tasks) hooks.dropUnstarted(task);
        throw new TimeoutError(`${what} did not finish within ${timeoutMs} ms`);
      }),
    ]);
  } finally {
    timeout.timer.clear();
  }
}

/**
 * Maps any input lazily, chunk by chunk, at most `buffersize` chunks ahead of the consumer.
 *
 * @param iterable The input: an iterable or async iterable, possibly infinite.
 * @param chunksize The caller's chunk size, or undefined for `hooks.chunkSize()`.
 * @param buffersize How many chunks may be submitted and not yet consumed.
 * @param ordered Results in input order (`imap`), else in completion order.
 * @returns The results, one by one.
 */
export async function* lazyMap<T extends ChunkTask>(
  iterable: unknown,
  chunksize: number | undefined,
  buffersize: number,
  ordered: boolean,
  hooks: ChunkHooks<T>,
  options: ChunkOptions,
): AsyncGenerator<unknown, void, undefined> {
  const { mode, what, timeoutMs } = options;
  const iterator = isAsyncIterable(iterable)
    ? iterable[Symbol.asyncIterator]()
    : (iterable as Iterable<unknown>)[Symbol.iterator]();
  const pending = new Set<T>();
  const order: T[] = [];
  let orderHead = 0;
  // Unordered: chunks in the order they settle.
  const settled: T[] = [];
  let wake: (() => void) | undefined;
  let exhausted = false;
  // An error of the input itself: thrown once the results of the items before it are out.
  let inputError: { error: unknown } | undefined;
  // With timeoutMs, every wait races the deadline, counted from the call.
  const deadline = timeoutMs === undefined || timeoutMs === Infinity
    ? undefined
    : longDelay(timeoutMs);
  const expired = deadline?.done.then(() => {
    throw new TimeoutError(`${what} did not finish within ${timeoutMs} ms`);
  });
  expired?.catch(() => {});
  const race = <R>(promise: Promise<R>): Promise<R> =>
    expired ? Promise.race([promise, expired]) : promise;
  const onSettled = (task: T) => {
    settled.push(task);
    wake?.();
  };
  const next = async (): Promise<IteratorResult<unknown>> => {
    try {
      return await iterator.next();
    } catch (error) {
      inputError = { error };
      return { done: true, value: undefined };
    }
  };
  const fill = async () => {
    while (!exhausted && pending.size < buffersize) {
      await race(hooks.room());
      const refusal = hooks.refusal();
      if (refusal) throw refusal;
      const size = chunksize ?? hooks.chunkSize();
      const chunk: unknown[] = [];
      while (chunk.length < size) {
        const step = await race(next());
        if (step.done) {
          exhausted = true;
          break;
        }
        chunk.push(step.value);
      }
      if (chunk.length === 0) break;
      if (mode === TaskMode.Starmap) checkArgLists(chunk, what);
      const task = hooks.submit(chunk);
      pending.add(task);
      // Chunks left behind by an early exit are cancelled; nobody awaits them then.
      task.promise.catch(() => {});
      if (ordered) order.push(task);
      else {
        const done = () => onSettled(task);
        task.promise.then(done, done);
      }
    }
  };
  let timedOut = false;
  try {
    await fill();
    while (pending.size > 0) {
      let task: T;
      if (ordered) {
        task = order[orderHead];
        order[orderHead++] = undefined as unknown as T;
        if (orderHead > 1024 && orderHead * 2 > order.length) {
          order.splice(0, orderHead);
          orderHead = 0;
        }
      } else {
        while (settled.length === 0) {
          await race(new Promise<void>((resolve) => wake = resolve));
          wake = undefined;
        }
        task = settled.shift()!;
      }
      // A result that is ready is yielded even past the deadline, as Python's does.
      const values = await race(task.promise) as unknown[];
      pending.delete(task);
      // Submit more before handing results out, so the workers stay busy meanwhile.
      await fill();
      for (const value of values) yield value;
    }
    if (inputError) throw inputError.error;
  } catch (error) {
    timedOut = error instanceof TimeoutError && expired !== undefined;
    throw error;
  } finally {
    deadline?.timer.clear();
    for (const task of pending) {
      if (timedOut) hooks.dropUnstarted(task);
      else hooks.drop(task);
    }
    // An input that ended, or threw, is done; one left behind is closed.
    if (!exhausted) await iterator.return?.();
  }
}
