/**
 * The state machine under `queue.ts`: puts and gets on a ring of serialized items in shared
 * memory (`_ring.ts`), the waits for room and for items, the unfinished count of a JoinableQueue
 * and Python 3.13's shutdown. Its operations run here or in the parent's broker for a child
 * process (see `_shared.ts`).
 *
 * Rules this file keeps:
 * - The ring's mutex guards only short copies, never a wait: a waiter counts itself among the
 *   waiters, unlocks, and sleeps on a sequence number that the other side bumps.
 * - Operations take a timeout in milliseconds (`Infinity`: no limit), never a deadline.
 * - An item taken for a child process that never receives it goes back on the queue.
 *
 * @module
 */
import { assertCanBlock, currentOwnerId, remaining, waitUntil } from "./_atomics.ts";
import type { Caller } from "./_shared.ts";
import { deadlineAfter } from "./_sync_atomics.ts";
import { QueueEmptyError, QueueFullError, ShutDown, TimeoutError } from "./errors.ts";
import { decodeItem, encodeItem, H, Ring, type RingBuffers } from "./_ring.ts";

// The words beside the ring: whether the queue was shut down (1), immediately (2).
const SHUTDOWN = 0;

/** The state of a queue. */
export interface QueueState {
  maxsize: number;
  joinable: boolean;
  ring: Ring;
  flags: Int32Array;
  /** A child process's puts, chained so that a put that waits is not overtaken by the next. */
  putChains?: Map<number, Promise<unknown>>;
}

/** What a thread receives to share a queue. */
export interface QueueBuffers {
  ring: RingBuffers;
  flags: SharedArrayBuffer;
}

/** A new, empty queue. */
export function newQueue(maxsize: number, joinable: boolean): QueueState {
  return {
    maxsize,
    joinable,
    ring: new Ring(),
    flags: new Int32Array(new SharedArrayBuffer(4)),
  };
}

/** The queue over buffers that crossed to a thread. */
export function attachQueue(
  buffers: QueueBuffers,
  maxsize: number,
  joinable: boolean,
): QueueState {
  return { maxsize, joinable, ring: new Ring(buffers.ring), flags: new Int32Array(buffers.flags) };
}

/** The buffers of a queue, for a thread. */
export function queueBuffers(state: QueueState): QueueBuffers {
  return { ring: state.ring.buffers, flags: state.flags.buffer as SharedArrayBuffer };
}

/** How many items are on the queue. */
export function queueSize(state: QueueState): number {
  return state.ring.count;
}

type Encoded = { tag: number; payload: Uint8Array };

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

function shutDownError(): ShutDown {
  return new ShutDown("The queue was shut down");
}

/**
 * With the ring locked by the caller: pushes the item when there is room, or counts the caller
 * among the waiting putters. Unlocks either way.
 *
 * @returns Null once pushed; otherwise the sequence number to wait on for room.
 */
function pushOrEnlist(state: QueueState, encoded: Encoded): number | null {
  const { ring } = state;
  const h = ring.header;
  if (Atomics.load(state.flags, SHUTDOWN) !== 0) {
    ring.unlock();
    throw shutDownError();
  }
  const seq = Atomics.load(h, H.PUT_SEQ);
  if (state.maxsize === 0 || ring.count < state.maxsize) {
    try {
      ring.push(encoded.tag, encoded.payload);
      if (state.joinable) Atomics.add(h, H.UNFINISHED, 1);
    } finally {
      ring.unlock();
    }
    wake(h, GETTERS);
    return null;
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
function shiftOrEnlist(state: QueueState): Encoded | number {
  const { ring } = state;
  const h = ring.header;
  const shutdown = Atomics.load(state.flags, SHUTDOWN);
  const seq = Atomics.load(h, H.GET_SEQ);
  if (ring.count > 0 && shutdown !== 2) {
    let item;
    try {
      item = ring.shift();
    } finally {
      ring.unlock();
    }
    wake(h, PUTTERS);
    return item;
  }
  if (shutdown !== 0) {
    ring.unlock();
    throw shutDownError();
  }
  Atomics.add(h, H.GET_WAITERS, 1);
  ring.unlock();
  return seq;
}

/** The words of one side's waits: putters wait for room, getters for an item. */
interface Side {
  /** The word bumped when the other side moves, which waiters sleep on. */
  seq: number;
  /** The count of waiters, so that the other side notifies only when someone waits. */
  waiters: number;
}

const PUTTERS: Side = { seq: H.PUT_SEQ, waiters: H.PUT_WAITERS };
const GETTERS: Side = { seq: H.GET_SEQ, waiters: H.GET_WAITERS };

/**
 * Sleeps, counted among the waiters of `side`, until the other side moves past `seq`; throws
 * `timedOut()` when the deadline has passed.
 */
async function sleepOn(
  h: Int32Array,
  side: Side,
  seq: number,
  deadline: number,
  timedOut: () => Error,
  signal?: AbortSignal,
): Promise<void> {
  try {
    if (remaining(deadline) === 0) throw timedOut();
    await waitUntil(h, side.seq, seq, deadline, signal);
  } finally {
    Atomics.sub(h, side.waiters, 1);
  }
}

/** Like {@linkcode sleepOn}, blocking the thread. */
function sleepOnSync(
  h: Int32Array,
  side: Side,
  seq: number,
  deadline: number,
  timedOut: () => Error,
  what: string,
): void {
  try {
    if (remaining(deadline) === 0) throw timedOut();
    assertCanBlock(what);
    Atomics.wait(h, side.seq, seq, remaining(deadline));
  } finally {
    Atomics.sub(h, side.waiters, 1);
  }
}

/**
 * One put or get: `attempt` runs with the ring locked and returns its outcome, or the sequence
 * number to sleep on among the waiters of `side` (having unlocked the ring either way).
 */
interface Attempt<T> {
  side: Side;
  deadline: number;
  attempt(): T | number;
  timedOut(): Error;
}

/** Runs `job` until it is done, waiting without blocking between attempts. */
async function untilDone<T>(
  state: QueueState,
  owner: number,
  job: Attempt<T>,
  signal?: AbortSignal,
): Promise<T> {
  const { ring } = state;
  for (;;) {
    if (!ring.tryLock(owner)) await ring.lock(owner, signal);
    const outcome = job.attempt();
    if (typeof outcome !== "number") return outcome;
    await sleepOn(ring.header, job.side, outcome, job.deadline, job.timedOut, signal);
  }
}

/** Runs `job` until it is done, blocking the thread; `what` names the call for its error. */
function untilDoneSync<T>(state: QueueState, owner: number, job: Attempt<T>, what: string): T {
  const { ring } = state;
  for (;;) {
    ring.lockSync(owner);
    const outcome = job.attempt();
    if (typeof outcome !== "number") return outcome;
    sleepOnSync(ring.header, job.side, outcome, job.deadline, job.timedOut, what);
  }
}

function putting(state: QueueState, item: Encoded, deadline: number): Attempt<null> {
  return {
    side: PUTTERS,
    deadline,
    attempt: () => pushOrEnlist(state, item),
    timedOut: () => fullError(state, deadline),
  };
}

function getting(state: QueueState, deadline: number): Attempt<Encoded> {
  return {
    side: GETTERS,
    deadline,
    attempt: () => shiftOrEnlist(state),
    timedOut: () => emptyError(deadline),
  };
}

/** Puts an item, blocking the thread while the queue is full. */
export function queuePutSync(
  state: QueueState,
  item: unknown,
  owner: number,
  deadline: number,
): void {
  untilDoneSync(state, owner, putting(state, encodeItem(item), deadline), "putSync()");
}

/** Takes an item, blocking the thread while the queue is empty. */
export function queueGetSync(state: QueueState, owner: number, deadline: number): unknown {
  const taken = untilDoneSync(state, owner, getting(state, deadline), "getSync()");
  return decodeItem(taken.tag, taken.payload);
}

/** Bumps a side's word and wakes one of its waiters, or all of them. */
function wake(h: Int32Array, side: Side, all = false): void {
  Atomics.add(h, side.seq, 1);
  if (all || Atomics.load(h, side.waiters) > 0) Atomics.notify(h, side.seq, all ? Infinity : 1);
}

async function pollRing(state: QueueState, deadline: number, signal?: AbortSignal) {
  const h = state.ring.header;
  for (;;) {
    const seq = Atomics.load(h, H.GET_SEQ);
    if (state.ring.count > 0 || Atomics.load(state.flags, SHUTDOWN) !== 0) return true;
    if (remaining(deadline) === 0) return false;
    Atomics.add(h, H.GET_WAITERS, 1);
    try {
      await waitUntil(h, H.GET_SEQ, seq, deadline, signal);
    } finally {
      Atomics.sub(h, H.GET_WAITERS, 1);
    }
  }
}

function taskDone(state: QueueState, count = 1): void {
  const h = state.ring.header;
  for (;;) {
    const left = Atomics.load(h, H.UNFINISHED);
    if (left < count) throw new RangeError("taskDone() called more times than there were items");
    if (Atomics.compareExchange(h, H.UNFINISHED, left, left - count) === left) {
      if (left === count) Atomics.notify(h, H.UNFINISHED);
      return;
    }
  }
}

async function joinQueue(state: QueueState, deadline: number, signal?: AbortSignal) {
  const h = state.ring.header;
  for (;;) {
    const left = Atomics.load(h, H.UNFINISHED);
    if (left === 0) return;
    if (remaining(deadline) === 0) {
      throw new TimeoutError(`${left} items of the queue were not marked done in time`);
    }
    await waitUntil(h, H.UNFINISHED, left, deadline, signal);
  }
}

/**
 * Shuts the queue down, as Python 3.13's `Queue.shutdown()`: puts fail from now on, and gets fail
 * once the queue is empty; with `immediate`, the items left are dropped (and counted done) and
 * gets fail at once. Every waiter wakes to find out.
 */
async function shutdown(state: QueueState, owner: number, immediate: boolean): Promise<void> {
  const { ring } = state;
  if (!ring.tryLock(owner)) await ring.lock(owner);
  let dropped = 0;
  try {
    if (Atomics.load(state.flags, SHUTDOWN) !== 2) {
      Atomics.store(state.flags, SHUTDOWN, immediate ? 2 : 1);
    }
    if (immediate) {
      while (ring.count > 0) {
        ring.shift();
        dropped++;
      }
    }
  } finally {
    ring.unlock();
  }
  if (state.joinable && dropped > 0) {
    taskDone(state, Math.min(dropped, Atomics.load(ring.header, H.UNFINISHED)));
  }
  wake(ring.header, GETTERS, true);
  wake(ring.header, PUTTERS, true);
}

/** Whether the queue was shut down. */
export function isShutDown(state: QueueState): boolean {
  return Atomics.load(state.flags, SHUTDOWN) !== 0;
}

function chained(state: QueueState, owner: number, put: () => Promise<void>): Promise<void> {
  const chains = state.putChains ??= new Map();
  const previous = chains.get(owner);
  const next = previous ? previous.then(put, put) : put();
  chains.set(owner, next);
  const forget = () => {
    if (chains.get(owner) === next) chains.delete(owner);
  };
  next.then(forget, forget);
  return next;
}

/** The operations of a queue. */
export const queueOps = {
  put: (state: QueueState, caller: Caller, item: unknown, timeoutMs: number): Promise<void> => {
    const encoded = encodeItem(item);
    const deadline = deadlineAfter(timeoutMs);
    // An item sent by a child process without waiting (to an unbounded queue) is delivered even
    // when its sender has exited meanwhile.
    const signal = state.maxsize === 0 ? undefined : caller.signal;
    const push = async () => {
      await untilDone(state, caller.owner, putting(state, encoded, deadline), signal);
    };
    // A child process's puts go one after another, so that a single producer's items keep their
    // order.
    return caller.signal ? chained(state, caller.owner, push) : push();
  },
  get: async (state: QueueState, caller: Caller, timeoutMs: number): Promise<unknown> => {
    const job = getting(state, deadlineAfter(timeoutMs));
    const item = await untilDone(state, caller.owner, job, caller.signal);
    // An item that a child process never receives goes back on the queue.
    caller.keep?.(() => void putBack(state, item));
    return decodeItem(item.tag, item.payload);
  },
  poll: (state: QueueState, caller: Caller, timeoutMs: number): Promise<boolean> =>
    pollRing(state, deadlineAfter(timeoutMs), caller.signal),
  taskDone: (state: QueueState): void => taskDone(state),
  join: (state: QueueState, caller: Caller, timeoutMs: number): Promise<void> =>
    joinQueue(state, deadlineAfter(timeoutMs), caller.signal),
  shutdown: (state: QueueState, caller: Caller, immediate: boolean): Promise<void> =>
    shutdown(state, caller.owner, immediate),
};

/** Puts back an item that was taken for a child process that never received it. */
async function putBack(state: QueueState, item: Encoded): Promise<void> {
  const { ring } = state;
  const owner = currentOwnerId();
  if (!ring.tryLock(owner)) await ring.lock(owner);
  try {
    ring.push(item.tag, item.payload);
  } finally {
    ring.unlock();
  }
  wake(ring.header, GETTERS);
}
