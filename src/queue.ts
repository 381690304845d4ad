/**
 * Queues between threads and processes, as Python's `multiprocessing` offers them:
 * {@linkcode Queue}, {@linkcode JoinableQueue} and {@linkcode SimpleQueue}.
 *
 * Items travel as copies (structured-clone semantics) through a ring in shared memory, so that any
 * thread can put and any thread can take, each item exactly once, in FIFO order. Passed to a
 * `Process`, a queue stays in the parent and the child uses it through the parent's broker, with
 * the same calls; `qsize()`, `empty()` and `full()` are then approximate, as Python warns they are.
 *
 * Shared objects (locks, queues) cannot be put on a queue; pass them as task arguments instead.
 *
 * @module
 */
import { assertCanBlock, currentOwnerId, deadlineOf, remaining, waitUntil } from "./_atomics.ts";
import { brokerOp, registerBrokered } from "./_broker.ts";
import { QueueEmptyError, QueueFullError, TimeoutError } from "./errors.ts";
import { checkInteger, checkOptions } from "./_checks.ts";
import {
  type Descriptor,
  type Destination,
  newObjectId,
  registerReviver,
  rememberInstance,
  type RemoteChannel,
  reviveOnce,
  toDescriptor,
} from "./_revive.ts";
import { decodeItem, encodeItem, H, Ring, type RingBuffers } from "./_ring.ts";

/** Options for {@linkcode Queue} and {@linkcode JoinableQueue}. */
export interface QueueOptions {
  /** The most items that the queue holds; `put` waits while it is full. 0 (the default): no limit. */
  maxsize?: number;
}

/** Options for `put` and `get`. */
export interface QueueWaitOptions {
  /** When false, do not wait: fail at once if the queue is full (or empty). Defaults to true. */
  blocking?: boolean;
  /** The longest wait in milliseconds; no limit when omitted. Then a `TimeoutError`. */
  timeoutMs?: number;
}

interface QueueState {
  id: string;
  maxsize: number;
  joinable: boolean;
  ring?: Ring;
  remote?: { channel: RemoteChannel; id: string };
}

let attaching: QueueState | undefined;

function deadlineOfWait(options: QueueWaitOptions | undefined): number {
  if (options?.blocking === false) return 0;
  return deadlineOf(options?.timeoutMs);
}

function timeoutOf(deadline: number): number {
  return deadline === Infinity ? Infinity : Math.max(0, deadline - performance.now());
}

function fullError(state: QueueState, deadline: number): Error {
  return deadline === 0
    ? new QueueFullError(`The queue is full: maxsize ${state.maxsize}`)
    : new TimeoutError(`The queue stayed full: maxsize ${state.maxsize}`);
}

function emptyError(deadline: number): Error {
  return deadline === 0
    ? new QueueEmptyError("The queue is empty")
    : new TimeoutError("No item arrived on the queue in time");
}

/**
 * With the ring locked by the caller: pushes the item when there is room, or counts the caller
 * among the waiting putters. Unlocks either way.
 *
 * @returns Undefined once pushed; otherwise the sequence number to wait on for room.
 */
function pushOrEnlist(
  state: QueueState,
  encoded: { tag: number; payload: Uint8Array },
): number | undefined {
  const ring = state.ring!;
  const h = ring.header;
  const seq = Atomics.load(h, H.PUT_SEQ);
  if (state.maxsize === 0 || ring.count < state.maxsize) {
    try {
      ring.push(encoded.tag, encoded.payload);
      if (state.joinable) Atomics.add(h, H.UNFINISHED, 1);
    } finally {
      ring.unlock();
    }
    wakeGetters(h);
    return undefined;
  }
  Atomics.add(h, H.PUT_WAITERS, 1);
  ring.unlock();
  return seq;
}

/**
 * With the ring locked by the caller: takes the oldest item when there is one, or counts the
 * caller among the waiting getters. Unlocks either way.
 *
 * @returns The item taken, or the sequence number to wait on for an item.
 */
function shiftOrEnlist(state: QueueState): { tag: number; payload: Uint8Array } | number {
  const ring = state.ring!;
  const h = ring.header;
  const seq = Atomics.load(h, H.GET_SEQ);
  if (ring.count > 0) {
    let item;
    try {
      item = ring.shift();
    } finally {
      ring.unlock();
    }
    wakePutters(h);
    return item;
  }
  Atomics.add(h, H.GET_WAITERS, 1);
  ring.unlock();
  return seq;
}

/** Puts an already serialized item, waiting without blocking while the queue is full. */
async function putAsync(
  state: QueueState,
  encoded: { tag: number; payload: Uint8Array },
  deadline: number,
  owner: number,
  signal?: AbortSignal,
): Promise<void> {
  const ring = state.ring!;
  const h = ring.header;
  for (;;) {
    if (!ring.tryLock(owner)) await ring.lock(owner, signal);
    const seq = pushOrEnlist(state, encoded);
    if (seq === undefined) return;
    try {
      if (remaining(deadline) === 0) throw fullError(state, deadline);
      await waitUntil(h, H.PUT_SEQ, seq, deadline, signal);
    } finally {
      Atomics.sub(h, H.PUT_WAITERS, 1);
    }
  }
}

function putSync(state: QueueState, item: unknown, deadline: number): void {
  const encoded = encodeItem(item);
  const ring = state.ring!;
  const h = ring.header;
  const owner = currentOwnerId();
  for (;;) {
    ring.lockSync(owner);
    const seq = pushOrEnlist(state, encoded);
    if (seq === undefined) return;
    try {
      if (remaining(deadline) === 0) throw fullError(state, deadline);
      assertCanBlock("putSync()");
      Atomics.wait(h, H.PUT_SEQ, seq, remaining(deadline));
    } finally {
      Atomics.sub(h, H.PUT_WAITERS, 1);
    }
  }
}

function wakeGetters(h: Int32Array): void {
  Atomics.add(h, H.GET_SEQ, 1);
  if (Atomics.load(h, H.GET_WAITERS) > 0) Atomics.notify(h, H.GET_SEQ, 1);
}

function wakePutters(h: Int32Array): void {
  Atomics.add(h, H.PUT_SEQ, 1);
  if (Atomics.load(h, H.PUT_WAITERS) > 0) Atomics.notify(h, H.PUT_SEQ, 1);
}

/** Takes an item, waiting without blocking while the queue is empty. */
async function getAsync(
  state: QueueState,
  deadline: number,
  owner: number,
  signal?: AbortSignal,
): Promise<unknown> {
  const ring = state.ring!;
  const h = ring.header;
  for (;;) {
    if (!ring.tryLock(owner)) await ring.lock(owner, signal);
    const taken = shiftOrEnlist(state);
    if (typeof taken !== "number") return decodeItem(taken.tag, taken.payload);
    const seq = taken;
    try {
      if (remaining(deadline) === 0) throw emptyError(deadline);
      await waitUntil(h, H.GET_SEQ, seq, deadline, signal);
    } finally {
      Atomics.sub(h, H.GET_WAITERS, 1);
    }
  }
}

function getSync(state: QueueState, deadline: number): unknown {
  const ring = state.ring!;
  const h = ring.header;
  const owner = currentOwnerId();
  for (;;) {
    ring.lockSync(owner);
    const taken = shiftOrEnlist(state);
    if (typeof taken !== "number") return decodeItem(taken.tag, taken.payload);
    const seq = taken;
    try {
      if (remaining(deadline) === 0) throw emptyError(deadline);
      assertCanBlock("getSync()");
      Atomics.wait(h, H.GET_SEQ, seq, remaining(deadline));
    } finally {
      Atomics.sub(h, H.GET_WAITERS, 1);
    }
  }
}

async function pollRing(state: QueueState, deadline: number, signal?: AbortSignal) {
  const h = state.ring!.header;
  for (;;) {
    const seq = Atomics.load(h, H.GET_SEQ);
    if (state.ring!.count > 0) return true;
    if (remaining(deadline) === 0) return false;
    Atomics.add(h, H.GET_WAITERS, 1);
    try {
      await waitUntil(h, H.GET_SEQ, seq, deadline, signal);
    } finally {
      Atomics.sub(h, H.GET_WAITERS, 1);
    }
  }
}

function taskDone(state: QueueState): void {
  const h = state.ring!.header;
  for (;;) {
    const left = Atomics.load(h, H.UNFINISHED);
    if (left <= 0) throw new RangeError("taskDone() called more times than there were items");
    if (Atomics.compareExchange(h, H.UNFINISHED, left, left - 1) === left) {
      if (left === 1) Atomics.notify(h, H.UNFINISHED);
      return;
    }
  }
}

async function joinQueue(state: QueueState, deadline: number, signal?: AbortSignal) {
  const h = state.ring!.header;
  for (;;) {
    const left = Atomics.load(h, H.UNFINISHED);
    if (left === 0) return;
    if (remaining(deadline) === 0) {
      throw new TimeoutError(`${left} items of the queue were not marked done in time`);
    }
    await waitUntil(h, H.UNFINISHED, left, deadline, signal);
  }
}

function queueBrokerOp(state: QueueState) {
  // A child's puts are performed one after another: a put that waits for the ring (or for room)
  // must not be overtaken by the next one, or a single producer's items would change order.
  const putChains = new Map<number, Promise<unknown>>();
  const chained = (owner: number, put: () => Promise<unknown>) => {
    const previous = putChains.get(owner);
    const next = previous ? previous.then(put, put) : put();
    putChains.set(owner, next);
    const forget = () => {
      if (putChains.get(owner) === next) putChains.delete(owner);
    };
    next.then(forget, forget);
    return next;
  };
  return (op: string, args: unknown[], owner: number, signal: AbortSignal): unknown => {
    const size = () => state.ring!.count;
    const deadline = (index: number) => {
      const timeout = args[index] as number;
      return timeout === Infinity ? Infinity : performance.now() + timeout;
    };
    switch (op) {
      case "put": {
        const encoded = encodeItem(args[0]);
        const until = deadline(1);
        // An item sent without waiting is delivered even when its sender has exited meanwhile.
        const putSignal = state.maxsize === 0 ? undefined : signal;
        return chained(owner, () => putAsync(state, encoded, until, owner, putSignal))
          .then(() => [undefined, size()]);
      }
      case "get":
        return getAsync(state, deadline(0), owner, signal).then((item) => [item, size()]);
      case "qsize":
        return [size(), size()];
      case "poll":
        return pollRing(state, deadline(0), signal).then((ready) => [ready, size()]);
      case "taskDone":
        return [taskDone(state), size()];
      case "join":
        return joinQueue(state, deadline(0), signal).then(() => [undefined, size()]);
    }
    throw new TypeError(`Unknown queue operation '${op}'`);
  };
}

/** The engine behind the three queue classes. */
class QueueImpl {
  readonly state: QueueState;
  #closed = false;
  #lastSize = 0;

  constructor(options: QueueOptions, joinable: boolean, what: string) {
    const attached = attaching;
    attaching = undefined;
    if (attached) {
      this.state = attached;
      return;
    }
    checkOptions(options, what, ["maxsize"]);
    const maxsize = checkInteger(options.maxsize, "maxsize") ?? 0;
    this.state = { id: newObjectId(), maxsize, joinable, ring: new Ring() };
  }

  #check(): void {
    if (this.#closed) throw new Error("The queue is closed");
  }

  async #call(op: string, args: unknown[]): Promise<unknown> {
    const { channel, id } = this.state.remote!;
    const [value, size] = await channel.call(id, op, args) as [unknown, number];
    this.#lastSize = size;
    return value;
  }

  async put(item: unknown, options?: QueueWaitOptions): Promise<void> {
    this.#check();
    const deadline = deadlineOfWait(options);
    if (this.state.remote) {
      if (this.state.maxsize === 0) {
        // An unbounded queue cannot refuse an item: the put goes without waiting for an answer,
        // as Python's feeder thread sends it, and a failure surfaces at the next call.
        const { channel, id } = this.state.remote;
        channel.cast(id, "put", [item, Infinity]);
        this.#lastSize++;
        return;
      }
      await this.#call("put", [item, timeoutOf(deadline)]);
      return;
    }
    return putAsync(this.state, encodeItem(item), deadline, currentOwnerId());
  }

  putSync(item: unknown, options?: QueueWaitOptions): void {
    this.#check();
    if (this.state.remote) assertCanBlock("putSync() of a queue from a parent process");
    putSync(this.state, item, deadlineOfWait(options));
  }

  async get(options?: QueueWaitOptions): Promise<unknown> {
    this.#check();
    const deadline = deadlineOfWait(options);
    if (this.state.remote) return await this.#call("get", [timeoutOf(deadline)]);
    return getAsync(this.state, deadline, currentOwnerId());
  }

  getSync(options?: QueueWaitOptions): unknown {
    this.#check();
    if (this.state.remote) assertCanBlock("getSync() of a queue from a parent process");
    return getSync(this.state, deadlineOfWait(options));
  }

  async poll(timeoutMs: number): Promise<boolean> {
    this.#check();
    const deadline = deadlineOf(timeoutMs);
    if (this.state.remote) return await this.#call("poll", [timeoutOf(deadline)]) as boolean;
    return pollRing(this.state, deadline);
  }

  qsize(): number {
    return this.state.ring ? this.state.ring.count : this.#lastSize;
  }

  close(): void {
    this.#closed = true;
  }

  taskDone(): void {
    if (this.state.remote) {
      const { channel, id } = this.state.remote;
      return channel.cast(id, "taskDone");
    }
    taskDone(this.state);
  }

  async join(options?: { timeoutMs?: number }): Promise<void> {
    const deadline = deadlineOf(options?.timeoutMs);
    if (this.state.remote) {
      await this.#call("join", [timeoutOf(deadline)]);
      return;
    }
    return joinQueue(this.state, deadline);
  }

  descriptor(kind: string, destination: Destination, ownerId: number): Descriptor {
    const { id, maxsize, joinable, ring, remote } = this.state;
    if (remote) {
      throw new TypeError(
        "A queue received from a parent process cannot be passed on to another thread or process; create it in the parent and pass it from there",
      );
    }
    if (destination === "process") {
      registerBrokered(id, { [brokerOp]: queueBrokerOp(this.state) }, ownerId);
      return { kind, data: { id, maxsize, joinable } };
    }
    return { kind, data: { id, maxsize, joinable, buffers: ring!.buffers } };
  }
}

const impls = new WeakMap<object, QueueImpl>();

function reviveQueue(kind: string, make: () => object): void {
  registerReviver(kind, (data, context) => {
    const { id, maxsize, joinable, buffers } = data as {
      id: string;
      maxsize: number;
      joinable: boolean;
      buffers?: RingBuffers;
    };
    return reviveOnce(id, () => {
      attaching = context.where === "process"
        ? { id, maxsize, joinable, remote: { channel: context.remote!, id } }
        : { id, maxsize, joinable, ring: new Ring(buffers) };
      try {
        return make();
      } finally {
        attaching = undefined;
      }
    });
  });
}

/**
 * Waits until `queue` holds an item, without taking it, for `Connection.poll()`. Not part of the
 * public API: mod.ts exports this module's classes by name.
 */
export function pollQueue(queue: SimpleQueue, timeoutMs: number): Promise<boolean> {
  return impls.get(queue)!.poll(timeoutMs);
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
  #impl: QueueImpl;

  /**
   * Creates a queue.
   *
   * @param options `maxsize`: the most items it holds (0, the default, for no limit).
   * @throws {RangeError} When `maxsize` is not a non-negative integer.
   */
  constructor(options: QueueOptions = {}) {
    this.#impl = new QueueImpl(options, this instanceof JoinableQueue, "Queue");
    impls.set(this, this.#impl);
    rememberInstance(this.#impl.state.id, this);
  }

  /** The queue's `maxsize` (0 for no limit). */
  get maxsize(): number {
    return this.#impl.state.maxsize;
  }

  /**
   * Puts an item at the end, waiting while the queue is full.
   *
   * @param item Any value that structured clone accepts.
   * @param options `blocking: false` to fail at once when full; `timeoutMs` to give up.
   * @returns A promise that resolves once the item is on the queue.
   * @throws {QueueFullError} (as a rejection) With `blocking: false`, when the queue is full.
   * @throws {TimeoutError} (as a rejection) When it stayed full for `timeoutMs`.
   * @throws {TypeError} (as a rejection) When the item cannot be cloned.
   */
  put(item: T, options?: QueueWaitOptions): Promise<void> {
    return this.#impl.put(item, options);
  }

  /**
   * Puts an item without waiting, as Python's `put_nowait`.
   *
   * @param item Any value that structured clone accepts.
   * @returns A promise that resolves once the item is on the queue.
   * @throws {QueueFullError} (as a rejection) When the queue is full.
   */
  putNowait(item: T): Promise<void> {
    return this.#impl.put(item, { blocking: false });
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
  putSync(item: T, options?: QueueWaitOptions): void {
    this.#impl.putSync(item, options);
  }

  /**
   * Takes the item at the front, waiting while the queue is empty.
   *
   * @param options `blocking: false` to fail at once when empty; `timeoutMs` to give up.
   * @returns The item.
   * @throws {QueueEmptyError} (as a rejection) With `blocking: false`, when the queue is empty.
   * @throws {TimeoutError} (as a rejection) When nothing arrived within `timeoutMs`.
   */
  get(options?: QueueWaitOptions): Promise<T> {
    return this.#impl.get(options) as Promise<T>;
  }

  /**
   * Takes the item at the front without waiting, as Python's `get_nowait`.
   *
   * @returns The item.
   * @throws {QueueEmptyError} (as a rejection) When the queue is empty.
   */
  getNowait(): Promise<T> {
    return this.#impl.get({ blocking: false }) as Promise<T>;
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
  getSync(options?: QueueWaitOptions): T {
    return this.#impl.getSync(options) as T;
  }

  /**
   * The number of items in the queue; in a child process, as of its last call.
   *
   * @returns The count.
   */
  qsize(): number {
    return this.#impl.qsize();
  }

  /**
   * Whether the queue is empty.
   *
   * @returns True when it holds no item.
   */
  empty(): boolean {
    return this.#impl.qsize() === 0;
  }

  /**
   * Whether the queue is full.
   *
   * @returns True when it holds `maxsize` items.
   */
  full(): boolean {
    return this.maxsize > 0 && this.#impl.qsize() >= this.maxsize;
  }

  /** Closes this handle: later puts and gets through it throw. Other handles go on working. */
  close(): void {
    this.#impl.close();
  }

  /**
   * The crossing to a child; called by multiproc when the queue is passed on.
   *
   * @param destination Where it goes.
   * @param ownerId The owner id of the child.
   * @returns The descriptor.
   * @ignore
   */
  [toDescriptor](destination: Destination, ownerId: number): Descriptor {
    const kind = this instanceof JoinableQueue ? "joinable-queue" : "queue";
    return this.#impl.descriptor(kind, destination, ownerId);
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
    impls.get(this)!.taskDone();
  }

  /**
   * Waits until every item put on the queue has been marked done.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns A promise that resolves when no item is unfinished.
   * @throws {TimeoutError} (as a rejection) When items were still unfinished after `timeoutMs`.
   */
  join(options?: { timeoutMs?: number }): Promise<void> {
    return impls.get(this)!.join(options);
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
  #impl: QueueImpl;

  /** Creates an empty queue. */
  constructor() {
    this.#impl = new QueueImpl({}, false, "SimpleQueue");
    impls.set(this, this.#impl);
    rememberInstance(this.#impl.state.id, this);
  }

  /**
   * Puts an item at the end.
   *
   * @param item Any value that structured clone accepts.
   * @returns A promise that resolves once the item is on the queue.
   * @throws {TypeError} (as a rejection) When the item cannot be cloned.
   */
  put(item: T): Promise<void> {
    return this.#impl.put(item);
  }

  /**
   * Takes the item at the front, waiting while the queue is empty.
   *
   * @param options `timeoutMs` to give up.
   * @returns The item.
   * @throws {TimeoutError} (as a rejection) When nothing arrived within `timeoutMs`.
   */
  get(options?: QueueWaitOptions): Promise<T> {
    return this.#impl.get(options) as Promise<T>;
  }

  /**
   * Puts an item; in worker threads, and for symmetry with `getSync`.
   *
   * @param item Any value that structured clone accepts.
   */
  putSync(item: T): void {
    this.#impl.putSync(item);
  }

  /**
   * Takes the item at the front, blocking the thread while empty; only inside worker threads.
   *
   * @param options `timeoutMs` to give up.
   * @returns The item.
   * @throws {Error} When it would block the main thread.
   */
  getSync(options?: QueueWaitOptions): T {
    return this.#impl.getSync(options) as T;
  }

  /**
   * Whether the queue is empty.
   *
   * @returns True when it holds no item.
   */
  empty(): boolean {
    return this.#impl.qsize() === 0;
  }

  /** Closes this handle: later puts and gets through it throw. */
  close(): void {
    this.#impl.close();
  }

  /**
   * The crossing to a child; called by multiproc when the queue is passed on.
   *
   * @param destination Where it goes.
   * @param ownerId The owner id of the child.
   * @returns The descriptor.
   * @ignore
   */
  [toDescriptor](destination: Destination, ownerId: number): Descriptor {
    return this.#impl.descriptor("simple-queue", destination, ownerId);
  }
}

reviveQueue("queue", () => new Queue());
reviveQueue("joinable-queue", () => new JoinableQueue());
reviveQueue("simple-queue", () => new SimpleQueue());
