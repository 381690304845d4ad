/**
 * Queues between threads and processes, as Python's `multiprocessing` offers them:
 * {@linkcode Queue}, {@linkcode JoinableQueue} and {@linkcode SimpleQueue}.
 *
 * Items travel as copies (structured-clone semantics) through a ring in shared memory, so that any
 * thread can put and any thread can take, each item exactly once, in FIFO order. Passed to a
 * `Process`, a queue stays in the parent and the child uses it through the parent's broker, with
 * the same calls; `qsize()`, `empty()` and `full()` are then approximate, as Python warns they are.
 * A child may pass a queue on to its own threads and processes.
 *
 * Shared objects (locks, queues) cannot be put on a queue; pass them as task arguments instead.
 *
 * Rules this file keeps: it checks arguments and calls the operations of each queue's handle
 * (the state machine is in `_queue_atomics.ts`; the mechanism in `_shared.ts`). Python's
 * positional `get(False)` and `put(item, False)` keep Python's meaning.
 *
 * @module
 */
import { currentOwnerId, deadlineOf } from "./_atomics.ts";
import { checkBoolean, checkInteger, checkNoArgumentAfter, checkOptions } from "./_checks.ts";
import {
  attachQueue,
  isShutDown,
  newQueue,
  type QueueBuffers,
  queueBuffers,
  queueGetSync,
  queueOps,
  queuePutSync,
  queueSize,
  type QueueState,
} from "./_queue_atomics.ts";
import {
  blockingTimeout,
  handleOf,
  rejecting,
  Shared,
  type SharedKind,
  waitTimeout,
} from "./_shared.ts";

/** Options for {@linkcode Queue} and {@linkcode JoinableQueue}. */
export interface QueueOptions {
  /** The most items that the queue holds; `put` waits while it is full. 0 (the default): no limit. */
  maxsize?: number;
}

/** Options for `put` and `get`. */
export interface QueueWaitOptions {
  /** When false, do not wait: fail at once if the queue is full (or empty). Defaults to true. */
  blocking?: boolean;
  /** The longest wait in milliseconds; no limit when omitted or `Infinity`. Then a `TimeoutError`. */
  timeoutMs?: number;
}

/** Options for {@linkcode Queue.prototype.shutdown}. */
export interface QueueShutdownOptions {
  /** When true, the items left are dropped and gets fail at once, as Python's `immediate=True`. */
  immediate?: boolean;
}

type QueueConfig = { maxsize: number };
type QueueHandle = Shared<QueueState, QueueConfig, typeof queueOps>;

// Handles closed with close(): later puts and gets through them throw.
const closed = new WeakSet<object>();

function queueKind(kind: string, type: { prototype: object }, joinable: boolean) {
  const spec: SharedKind<QueueState, QueueConfig, typeof queueOps> = {
    kind,
    type,
    share: queueBuffers,
    attach: (buffers, config) => attachQueue(buffers as QueueBuffers, config.maxsize, joinable),
    ops: queueOps,
    watch: queueSize,
    client: {
      put: (handle, send, args) => {
        if ((handle.config as QueueConfig).maxsize !== 0) return send();
        // An unbounded queue cannot refuse an item: the put goes without waiting for an answer,
        // as Python's feeder thread sends it, and a failure surfaces at the next call.
        const { remote, id } = handle;
        remote!.cast(id, "put", args);
        remote!.know(id, (handle.watched() as number ?? 0) + 1);
        return Promise.resolve();
      },
    },
  };
  Shared.define(spec);
  return spec;
}

function open(queue: object): QueueHandle {
  if (closed.has(queue)) throw new Error("The queue is closed");
  return handleOf<QueueHandle>(queue);
}

function put(
  queue: object,
  item: unknown,
  options: QueueWaitOptions | boolean | undefined,
  args?: ArrayLike<unknown>,
) {
  return rejecting(() => {
    const what = `${queue.constructor.name}.put()`;
    if (args) checkNoArgumentAfter(what, args, 2);
    return open(queue).call("put", item, blockingTimeout(options, what));
  });
}

function putSync(queue: object, item: unknown, options: QueueWaitOptions | boolean | undefined) {
  const what = `${queue.constructor.name}.putSync()`;
  const timeoutMs = blockingTimeout(options, what);
  const state = open(queue).here(what);
  queuePutSync(state, item, currentOwnerId(), timeoutMs === 0 ? 0 : deadlineOf(timeoutMs));
}

function get(
  queue: object,
  options: QueueWaitOptions | boolean | undefined,
  args?: ArrayLike<unknown>,
): Promise<never> {
  return rejecting(() => {
    const what = `${queue.constructor.name}.get()`;
    if (args) checkNoArgumentAfter(what, args, 1);
    return open(queue).call("get", blockingTimeout(options, what));
  }) as Promise<never>;
}

function getSync(queue: object, options: QueueWaitOptions | boolean | undefined): never {
  const what = `${queue.constructor.name}.getSync()`;
  const timeoutMs = blockingTimeout(options, what);
  const state = open(queue).here(what);
  return queueGetSync(
    state,
    currentOwnerId(),
    timeoutMs === 0 ? 0 : deadlineOf(timeoutMs),
  ) as never;
}

function size(queue: object): number {
  return handleOf<QueueHandle>(queue).watched() as number ?? 0;
}

/**
 * Waits until `queue` holds an item (or was shut down), without taking it, for
 * `Connection.poll()`. Not part of the public API: mod.ts exports this module's classes by name.
 */
export function pollQueue(queue: SimpleQueue, timeoutMs: number): Promise<boolean> {
  return rejecting(() => open(queue).call("poll", timeoutMs));
}

/** Shuts `queue` down, for `Connection.close()`; see {@linkcode Queue.prototype.shutdown}. */
export function shutdownQueue(queue: SimpleQueue, immediate: boolean): void {
  handleOf<QueueHandle>(queue).cast("shutdown", immediate);
}

/** Whether `queue` was shut down, as far as this realm knows; for `Connection`. */
export function queueShutDown(queue: SimpleQueue): boolean {
  const state = handleOf<QueueHandle>(queue).local;
  return state !== undefined && isShutDown(state);
}

/**
 * A FIFO queue for threads and processes, as Python's `multiprocessing.Queue`: any thread or
 * process can put and get; each item is delivered exactly once, as a copy.
 *
 * @typeParam T The type of the items.
 * @example A thread produces, the main thread consumes
 * ```ts
 * import { Queue, Thread } from "@multiproc/multiproc";
 *
 * const q = new Queue<number>();
 * const producer = new Thread({
 *   target: async (q: Queue<number>) => {
 *     for (let i = 0; i < 3; i++) await q.put(i);
 *   },
 *   args: [q],
 * });
 * producer.start();
 * console.log(await q.get(), await q.get(), await q.get()); // 0 1 2
 * await producer.join();
 * ```
 */
export class Queue<T = unknown> {
  /**
   * Creates a queue.
   *
   * @param options `maxsize`: the most items it holds (0, the default, for no limit); as a
   * number too, as in Python's `Queue(maxsize)`.
   * @throws {RangeError} When `maxsize` is not a non-negative integer.
   * @throws {TypeError} For an unknown option.
   */
  constructor(options: QueueOptions | number = {}) {
    const joinable = this instanceof JoinableQueue;
    const what = joinable ? "JoinableQueue" : "Queue";
    const maxsize = checkInteger(
      typeof options === "number" ? options : checkOptions(options, what, ["maxsize"]).maxsize,
      "maxsize",
      { what },
    ) ?? 0;
    Shared.create(this, joinable ? JOINABLE : QUEUE, { maxsize }, newQueue(maxsize, joinable));
  }

  /** The queue's `maxsize` (0 for no limit). */
  get maxsize(): number {
    return handleOf<QueueHandle>(this).config.maxsize;
  }

  /**
   * Puts an item at the end, waiting while the queue is full.
   *
   * @param item Any value that structured clone accepts.
   * @param options `blocking: false` (or Python's `false`) to fail at once when full;
   * `timeoutMs` to give up.
   * @returns A promise that resolves once the item is on the queue.
   * @throws {QueueFullError} (as a rejection) With `blocking: false`, when the queue is full.
   * @throws {TimeoutError} (as a rejection) When it stayed full for `timeoutMs`.
   * @throws {ShutDown} (as a rejection) When the queue was shut down.
   * @throws {TypeError} (as a rejection) When the item cannot be cloned.
   */
  put(item: T, options?: QueueWaitOptions | boolean): Promise<void> {
    return put(this, item, options, arguments);
  }

  /**
   * Puts an item without waiting, as Python's `put_nowait`.
   *
   * @param item Any value that structured clone accepts.
   * @returns A promise that resolves once the item is on the queue.
   * @throws {QueueFullError} (as a rejection) When the queue is full.
   */
  putNowait(item: T): Promise<void> {
    return put(this, item, false);
  }

  /**
   * Puts an item, blocking the thread while the queue is full; only inside worker threads.
   *
   * @param item Any value that structured clone accepts.
   * @param options `blocking: false` to fail at once when full; `timeoutMs` to give up.
   * @throws {QueueFullError} With `blocking: false`, when the queue is full.
   * @throws {TimeoutError} When it stayed full for `timeoutMs`.
   * @throws {Error} When it would block the main thread, or for a queue of a parent process.
   */
  putSync(item: T, options?: QueueWaitOptions | boolean): void {
    checkNoArgumentAfter(`${this.constructor.name}.putSync()`, arguments, 2);
    putSync(this, item, options);
  }

  /**
   * Takes the item at the front, waiting while the queue is empty.
   *
   * @param options `blocking: false` (or Python's `false`) to fail at once when empty;
   * `timeoutMs` to give up.
   * @returns The item.
   * @throws {QueueEmptyError} (as a rejection) With `blocking: false`, when the queue is empty.
   * @throws {TimeoutError} (as a rejection) When nothing arrived within `timeoutMs`.
   * @throws {ShutDown} (as a rejection) When the queue was shut down and is empty.
   */
  get(options?: QueueWaitOptions | boolean): Promise<T> {
    return get(this, options, arguments);
  }

  /**
   * Takes the item at the front without waiting, as Python's `get_nowait`.
   *
   * @returns The item.
   * @throws {QueueEmptyError} (as a rejection) When the queue is empty.
   */
  getNowait(): Promise<T> {
    return get(this, false);
  }

  /**
   * Takes the item at the front, blocking the thread while empty; only inside worker threads.
   *
   * @param options `blocking: false` to fail at once when empty; `timeoutMs` to give up.
   * @returns The item.
   * @throws {QueueEmptyError} With `blocking: false`, when the queue is empty.
   * @throws {TimeoutError} When nothing arrived within `timeoutMs`.
   * @throws {Error} When it would block the main thread, or for a queue of a parent process.
   */
  getSync(options?: QueueWaitOptions | boolean): T {
    checkNoArgumentAfter(`${this.constructor.name}.getSync()`, arguments, 1);
    return getSync(this, options);
  }

  /**
   * The number of items in the queue; in a child process, as of its last call.
   *
   * @returns The count.
   */
  qsize(): number {
    return size(this);
  }

  /**
   * Whether the queue is empty.
   *
   * @returns True when it holds no item.
   */
  empty(): boolean {
    return size(this) === 0;
  }

  /**
   * Whether the queue is full.
   *
   * @returns True when it holds `maxsize` items.
   */
  full(): boolean {
    return this.maxsize > 0 && size(this) >= this.maxsize;
  }

  /**
   * Shuts the queue down for every thread and process, as Python 3.13's `Queue.shutdown()`:
   * puts fail with {@linkcode ShutDown} from now on, and gets fail once the queue is empty.
   * Waiting puts and gets wake to fail.
   *
   * @param options `immediate: true` to drop the items left (each counted done for a
   * JoinableQueue), so that gets fail at once.
   * @throws {TypeError} For an unknown option.
   */
  shutdown(options: QueueShutdownOptions = {}): void {
    const what = `${this.constructor.name}.shutdown()`;
    const { immediate } = checkOptions(options, what, ["immediate"], "pass { immediate: true }");
    open(this).cast("shutdown", checkBoolean(immediate, "immediate", what) ?? false);
  }

  /** Closes this handle: later puts and gets through it throw. Other handles go on working. */
  close(): void {
    closed.add(this);
  }
}

/**
 * A {@linkcode Queue} that counts unfinished items, as Python's `JoinableQueue`: each consumer
 * calls `taskDone()` for each item it took, and `join()` waits until all are done.
 *
 * @typeParam T The type of the items.
 * @example
 * ```ts
 * import { JoinableQueue, Thread } from "@multiproc/multiproc";
 *
 * const q = new JoinableQueue<string>();
 * const worker = new Thread({
 *   target: async (q: JoinableQueue<string>) => {
 *     for (let i = 0; i < 2; i++) {
 *       await q.get();
 *       q.taskDone();
 *     }
 *   },
 *   args: [q],
 * });
 * worker.start();
 * await q.put("a");
 * await q.put("b");
 * await q.join();
 * console.log("all done");
 * await worker.join();
 * ```
 */
export class JoinableQueue<T = unknown> extends Queue<T> {
  /**
   * Marks one item taken from the queue as done.
   *
   * @throws {RangeError} When called more times than there were items.
   */
  taskDone(): void {
    handleOf<QueueHandle>(this).cast("taskDone");
  }

  /**
   * Waits until every item put on the queue has been marked done.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns A promise that resolves when no item is unfinished.
   * @throws {TimeoutError} (as a rejection) When items were still unfinished after `timeoutMs`.
   */
  join(options?: { timeoutMs?: number }): Promise<void> {
    return rejecting(() =>
      handleOf<QueueHandle>(this).call("join", waitTimeout(options, "JoinableQueue.join()"))
    );
  }
}

/**
 * An unbounded FIFO queue with only the essentials, as Python's `SimpleQueue`.
 *
 * @typeParam T The type of the items.
 * @example
 * ```ts
 * import { SimpleQueue } from "@multiproc/multiproc";
 *
 * const q = new SimpleQueue<string>();
 * await q.put("hello");
 * console.log(q.empty(), await q.get()); // false "hello"
 * ```
 */
export class SimpleQueue<T = unknown> {
  /** Creates an empty queue. */
  constructor() {
    Shared.create(this, SIMPLE, { maxsize: 0 }, newQueue(0, false));
  }

  /**
   * Puts an item at the end.
   *
   * @param item Any value that structured clone accepts.
   * @returns A promise that resolves once the item is on the queue.
   * @throws {TypeError} (as a rejection) When the item cannot be cloned.
   */
  put(item: T): Promise<void> {
    return put(this, item, undefined);
  }

  /**
   * Takes the item at the front, waiting while the queue is empty.
   *
   * @param options `timeoutMs` to give up.
   * @returns The item.
   * @throws {TimeoutError} (as a rejection) When nothing arrived within `timeoutMs`.
   */
  get(options?: QueueWaitOptions | boolean): Promise<T> {
    return get(this, options, arguments);
  }

  /**
   * Puts an item; in worker threads, and for symmetry with `getSync`.
   *
   * @param item Any value that structured clone accepts.
   */
  putSync(item: T): void {
    putSync(this, item, undefined);
  }

  /**
   * Takes the item at the front, blocking the thread while empty; only inside worker threads.
   *
   * @param options `timeoutMs` to give up.
   * @returns The item.
   * @throws {Error} When it would block the main thread.
   */
  getSync(options?: QueueWaitOptions | boolean): T {
    checkNoArgumentAfter(`${this.constructor.name}.getSync()`, arguments, 1);
    return getSync(this, options);
  }

  /**
   * Whether the queue is empty.
   *
   * @returns True when it holds no item.
   */
  empty(): boolean {
    return size(this) === 0;
  }

  /** Closes this handle: later puts and gets through it throw. */
  close(): void {
    closed.add(this);
  }
}

const QUEUE = queueKind("queue", Queue, false);
const JOINABLE = queueKind("joinable-queue", JoinableQueue, true);
const SIMPLE = queueKind("simple-queue", SimpleQueue, false);
