/**
 * The state machines under `synchronize.ts`, in shared memory with `Atomics`: the lock with its
 * owner and recursion count, the semaphore, the event, the condition and the barrier. Each is a
 * state plus a table of operations (see `_shared.ts`), which run here or in the parent's broker
 * for a child process; the public classes only check arguments and call them.
 *
 * Rules this file keeps:
 * - Operations take a timeout in milliseconds (`Infinity`: no limit), never a deadline, since a
 *   deadline means nothing in another process's clock.
 * - Async forms never block the thread; the sync forms (`...Sync`) block with `Atomics.wait` and
 *   are only for worker threads ({@linkcode assertCanBlock}).
 * - A wait on behalf of a child process takes the broker's `signal` and ends when the child goes.
 *
 * @module
 */
import {
  assertCanBlock,
  Mutex,
  MUTEX_WORDS,
  remaining,
  trackOwnerAware,
  waitAsync,
  waitUntil,
} from "./_atomics.ts";
import type { Caller } from "./_shared.ts";
import { AbandonedLockError, BrokenBarrierError } from "./errors.ts";

/** A new Int32Array of `words` over shared memory. */
export function sharedInt32(words: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(words * 4));
}

/** The deadline of a wait of `timeoutMs`; 0 (already past) for no wait at all. */
export function deadlineAfter(timeoutMs: number): number {
  if (timeoutMs === Infinity) return Infinity;
  return timeoutMs === 0 ? 0 : performance.now() + timeoutMs;
}

// ---------------------------------------------------------------------------------------------
// Lock and RLock

// Words: a mutex (holding the owner id), the recursion count of an RLock, and the id of an owner
// that ended while holding it.
const COUNT = MUTEX_WORDS;
const ABANDONED_BY = MUTEX_WORDS + 1;
const LOCK_WORDS = MUTEX_WORDS + 2;

/** The state of a Lock or RLock, and the rules of ownership. */
export class LockCore {
  /** The words. */
  readonly i32: Int32Array;
  /** Whether the holder may take it again (an RLock). */
  readonly reentrant: boolean;
  readonly #mutex: Mutex;

  /**
   * Makes the state, over `i32` when it crossed from another thread.
   *
   * @param reentrant Whether it is an RLock.
   */
  constructor(reentrant: boolean, i32: Int32Array = sharedInt32(LOCK_WORDS)) {
    this.i32 = i32;
    this.reentrant = reentrant;
    this.#mutex = new Mutex(i32);
    trackOwnerAware(this);
  }

  #reenter(owner: number): boolean {
    if (!this.reentrant || this.#mutex.owner() !== owner) return false;
    Atomics.add(this.i32, COUNT, 1);
    return true;
  }

  #taken(): true {
    if (Atomics.load(this.i32, ABANDONED_BY) !== 0) {
      const dead = Atomics.exchange(this.i32, ABANDONED_BY, 0);
      this.#unlock();
      throw new AbandonedLockError(
        `The lock's previous owner (owner ${dead}) ended while it held the lock; the lock was released, and what it guarded may be inconsistent. Acquire it again to go on`,
        { ownerId: dead },
      );
    }
    if (this.reentrant) Atomics.store(this.i32, COUNT, 1);
    return true;
  }

  #unlock(): void {
    this.#mutex.unlock();
  }

  /** Takes the lock, blocking the thread; false when the deadline passed first. */
  acquireSync(owner: number, deadline: number): boolean {
    if (this.#mutex.tryLock(owner)) return this.#taken();
    if (this.#reenter(owner)) return true;
    if (deadline === 0) return false;
    assertCanBlock("acquireSync()");
    return this.#mutex.lockSync(owner, deadline) && this.#taken();
  }

  /** Takes the lock without blocking the thread; false when the deadline passed first. */
  async acquire(owner: number, deadline: number, signal?: AbortSignal): Promise<boolean> {
    if (this.#mutex.tryLock(owner)) return this.#taken();
    if (this.#reenter(owner)) return true;
    if (deadline === 0) return false;
    return await this.#mutex.lock(owner, deadline, signal) && this.#taken();
  }

  /** Releases one level of `owner`'s hold. */
  release(owner: number): void {
    if (this.reentrant && this.#mutex.owner() === owner) {
      if (Atomics.sub(this.i32, COUNT, 1) !== 1) return;
    }
    const holder = this.#mutex.unlockAs(owner);
    if (holder === owner) return;
    if (holder === 0) throw new Error("Cannot release a lock that is not held");
    throw new Error(
      `Cannot release a lock held by another thread or process (owner ${holder}, caller ${owner})`,
    );
  }

  /** Releases every level of `owner`'s hold, for a condition wait; returns the levels. */
  releaseAll(owner: number): number {
    if (this.#mutex.owner() !== owner) {
      throw new Error("Cannot wait on a condition whose lock is not held");
    }
    const count = this.reentrant ? Atomics.exchange(this.i32, COUNT, 0) : 1;
    this.#unlock();
    return count;
  }

  /** Takes the lock back after a condition wait, with the levels that `releaseAll` returned. */
  async restore(owner: number, count: number, signal?: AbortSignal): Promise<void> {
    await this.#mutex.lock(owner, Infinity, signal);
    this.#taken();
    if (this.reentrant) Atomics.store(this.i32, COUNT, count);
  }

  /** Like `restore`, blocking the thread. */
  restoreSync(owner: number, count: number): void {
    this.#mutex.lockSync(owner);
    this.#taken();
    if (this.reentrant) Atomics.store(this.i32, COUNT, count);
  }

  /** The owner id of the holder, 0 when free. */
  owner(): number {
    return this.#mutex.owner();
  }

  /** Undoes the hold of `owner`, who is gone (see `OwnerAware`). */
  releaseOwnedBy(owner: number, abandoned: boolean): void {
    if (this.#mutex.owner() !== owner) return;
    if (abandoned) Atomics.store(this.i32, ABANDONED_BY, owner);
    Atomics.store(this.i32, COUNT, 0);
    this.#unlock();
  }
}

/** The operations of a Lock or RLock. */
export const lockOps = {
  acquire: (lock: LockCore, caller: Caller, timeoutMs: number): Promise<boolean> =>
    lock.acquire(caller.owner, deadlineAfter(timeoutMs), caller.signal),
  release: (lock: LockCore, caller: Caller): void => lock.release(caller.owner),
};

// ---------------------------------------------------------------------------------------------
// Semaphore and BoundedSemaphore

const SEM_VALUE = 0;
const SEM_WAITERS = 1;

/** The state of a semaphore: its count, and its bound when it is a BoundedSemaphore. */
export interface SemaphoreState {
  i32: Int32Array;
  bound?: number;
}

/** A semaphore's state with `value` as its count. */
export function newSemaphore(value: number, bound: number | undefined): SemaphoreState {
  const i32 = sharedInt32(2);
  Atomics.store(i32, SEM_VALUE, value);
  return { i32, bound };
}

/** The current count of a semaphore. */
export function semaphoreValue(state: SemaphoreState): number {
  return Atomics.load(state.i32, SEM_VALUE);
}

function semTryTake(i32: Int32Array): boolean {
  for (;;) {
    const value = Atomics.load(i32, SEM_VALUE);
    if (value <= 0) return false;
    if (Atomics.compareExchange(i32, SEM_VALUE, value, value - 1) === value) return true;
  }
}

async function semAcquire(i32: Int32Array, deadline: number, signal?: AbortSignal) {
  if (semTryTake(i32)) return true;
  while (remaining(deadline) > 0) {
    Atomics.add(i32, SEM_WAITERS, 1);
    try {
      if (semTryTake(i32)) return true;
      await waitUntil(i32, SEM_VALUE, 0, deadline, signal);
    } finally {
      Atomics.sub(i32, SEM_WAITERS, 1);
    }
    if (semTryTake(i32)) return true;
  }
  return false;
}

/** Takes one from the count, blocking the thread; false when the deadline passed first. */
export function semaphoreAcquireSync(state: SemaphoreState, deadline: number): boolean {
  const { i32 } = state;
  if (semTryTake(i32)) return true;
  if (deadline === 0) return false;
  assertCanBlock("acquireSync()");
  while (remaining(deadline) > 0) {
    Atomics.add(i32, SEM_WAITERS, 1);
    try {
      if (semTryTake(i32)) return true;
      Atomics.wait(i32, SEM_VALUE, 0, remaining(deadline));
    } finally {
      Atomics.sub(i32, SEM_WAITERS, 1);
    }
    if (semTryTake(i32)) return true;
  }
  return false;
}

/** The largest count of a semaphore: its count is one Int32 word. */
export const SEMAPHORE_MAX = 2 ** 31 - 1;

function semRelease(state: SemaphoreState, n: number): void {
  const { i32, bound } = state;
  for (;;) {
    const value = Atomics.load(i32, SEM_VALUE);
    if (bound !== undefined && value + n > bound) {
      throw new RangeError(
        `Semaphore released too many times: its value would exceed its bound ${bound}`,
      );
    }
    if (value + n > SEMAPHORE_MAX) {
      throw new RangeError(
        `Semaphore released too many times: its value would exceed ${SEMAPHORE_MAX}`,
      );
    }
    if (Atomics.compareExchange(i32, SEM_VALUE, value, value + n) === value) break;
  }
  if (Atomics.load(i32, SEM_WAITERS) > 0) Atomics.notify(i32, SEM_VALUE, n);
}

/** The operations of a semaphore. */
export const semaphoreOps = {
  acquire: (state: SemaphoreState, caller: Caller, timeoutMs: number): Promise<boolean> =>
    semAcquire(state.i32, deadlineAfter(timeoutMs), caller.signal),
  release: (state: SemaphoreState, _caller: Caller, n: number): void => semRelease(state, n),
};

// ---------------------------------------------------------------------------------------------
// Event

// Words: the flag, and a counter of the times it was set, so that a waiter that slept through a
// set() followed at once by clear() still knows that it was set while it waited, as in Python.
const EVENT_FLAG = 0;
const EVENT_SETS = 1;

/** A new event's words. */
export function newEvent(): Int32Array {
  return sharedInt32(2);
}

/** Whether the event's flag is set. */
export function eventIsSet(i32: Int32Array): boolean {
  return Atomics.load(i32, EVENT_FLAG) === 1;
}

async function eventWait(i32: Int32Array, deadline: number, signal?: AbortSignal) {
  const sets = Atomics.load(i32, EVENT_SETS);
  while (Atomics.load(i32, EVENT_FLAG) === 0) {
    if (Atomics.load(i32, EVENT_SETS) !== sets) return true;
    if (remaining(deadline) === 0) return false;
    await waitUntil(i32, EVENT_SETS, sets, deadline, signal);
  }
  return true;
}

/** Waits for the event's flag, blocking the thread; false when the deadline passed first. */
export function eventWaitSync(i32: Int32Array, deadline: number): boolean {
  const sets = Atomics.load(i32, EVENT_SETS);
  if (Atomics.load(i32, EVENT_FLAG) === 1) return true;
  assertCanBlock("waitSync()");
  while (Atomics.load(i32, EVENT_FLAG) === 0) {
    if (Atomics.load(i32, EVENT_SETS) !== sets) return true;
    if (remaining(deadline) === 0) return false;
    Atomics.wait(i32, EVENT_SETS, sets, remaining(deadline));
  }
  return true;
}

/** The operations of an event. */
export const eventOps = {
  wait: (i32: Int32Array, caller: Caller, timeoutMs: number): Promise<boolean> =>
    eventWait(i32, deadlineAfter(timeoutMs), caller.signal),
  set: (i32: Int32Array): void => {
    if (Atomics.exchange(i32, EVENT_FLAG, 1) === 1) return;
    Atomics.add(i32, EVENT_SETS, 1);
    Atomics.notify(i32, EVENT_SETS);
  },
  clear: (i32: Int32Array): void => {
    Atomics.store(i32, EVENT_FLAG, 0);
  },
};

// ---------------------------------------------------------------------------------------------
// Condition

// Words: the next waiter's ticket, then a table of waiter slots of two words each: its state
// (free, waiting, notified) and its ticket. A waiter takes a slot while it holds the lock, and
// sleeps on its own state word; notify(n) marks the n oldest waiting slots notified, as Python's
// notify() wakes the oldest n waiters. A waiter that comes later can never take the wake-up of one
// that was waiting when notify() ran, and one that times out as it is notified counts as notified.
const COND_TICKET = 0;
const COND_SLOTS = 1;
const COND_CAPACITY = 1024;
const SLOT_FREE = 0;
const SLOT_WAITING = 1;
const SLOT_NOTIFIED = 2;

/** The state of a condition: its words and its lock's. */
export interface ConditionState {
  i32: Int32Array;
  lock: LockCore;
}

/** A new condition's words. */
export function newCondition(): Int32Array {
  return sharedInt32(COND_SLOTS + 2 * COND_CAPACITY);
}

/** Takes a free slot for a waiter that holds the lock; returns the index of its state word. */
function condEnlist(i32: Int32Array): number {
  for (let slot = 0; slot < COND_CAPACITY; slot++) {
    const at = COND_SLOTS + 2 * slot;
    if (Atomics.load(i32, at) !== SLOT_FREE) continue;
    // Taken under the lock, so no other waiter races for it; a leaving waiter only frees slots.
    Atomics.store(i32, at + 1, Atomics.add(i32, COND_TICKET, 1));
    Atomics.store(i32, at, SLOT_WAITING);
    return at;
  }
  throw new RangeError(`A Condition holds at most ${COND_CAPACITY} waiters at a time`);
}

/**
 * Leaves the slot: returns whether the waiter was notified (a timed-out waiter that was notified
 * meanwhile counts as notified).
 */
function condLeave(i32: Int32Array, at: number): boolean {
  const notified = Atomics.compareExchange(i32, at, SLOT_WAITING, SLOT_FREE) !== SLOT_WAITING;
  if (notified) Atomics.store(i32, at, SLOT_FREE);
  return notified;
}

async function condWait(
  { i32, lock }: ConditionState,
  owner: number,
  deadline: number,
  signal?: AbortSignal,
): Promise<boolean> {
  if (lock.owner() !== owner) throw new Error("Cannot wait on a condition whose lock is not held");
  const at = condEnlist(i32);
  const levels = lock.releaseAll(owner);
  try {
    while (Atomics.load(i32, at) === SLOT_WAITING && remaining(deadline) > 0) {
      await waitUntil(i32, at, SLOT_WAITING, deadline, signal);
    }
  } catch (error) {
    condLeave(i32, at);
    throw error;
  }
  const notified = condLeave(i32, at);
  await lock.restore(owner, levels, signal);
  return notified;
}

/** Waits for a notify, blocking the thread; false when the deadline passed first. */
export function conditionWaitSync(
  { i32, lock }: ConditionState,
  owner: number,
  deadline: number,
): boolean {
  if (lock.owner() !== owner) throw new Error("Cannot wait on a condition whose lock is not held");
  assertCanBlock("waitSync()");
  const at = condEnlist(i32);
  const levels = lock.releaseAll(owner);
  while (Atomics.load(i32, at) === SLOT_WAITING && remaining(deadline) > 0) {
    Atomics.wait(i32, at, SLOT_WAITING, remaining(deadline));
  }
  const notified = condLeave(i32, at);
  lock.restoreSync(owner, levels);
  return notified;
}

function condNotify({ i32, lock }: ConditionState, owner: number, n: number): boolean {
  if (lock.owner() !== owner) {
    throw new Error("Cannot notify on a condition whose lock is not held");
  }
  const waiting: Array<[ticket: number, at: number]> = [];
  for (let slot = 0; slot < COND_CAPACITY; slot++) {
    const at = COND_SLOTS + 2 * slot;
    if (Atomics.load(i32, at) === SLOT_WAITING) waiting.push([Atomics.load(i32, at + 1), at]);
  }
  // Oldest first; tickets are compared as a circular sequence, so that wrapping is harmless.
  waiting.sort((a, b) => (a[0] - b[0]) | 0);
  let woken = 0;
  for (const [, at] of waiting) {
    if (woken === n) break;
    // A waiter that timed out meanwhile has left its slot: the wake-up goes to the next.
    if (Atomics.compareExchange(i32, at, SLOT_WAITING, SLOT_NOTIFIED) !== SLOT_WAITING) continue;
    Atomics.notify(i32, at);
    woken++;
  }
  return woken > 0;
}

/** The operations of a condition. */
export const conditionOps = {
  wait: (state: ConditionState, caller: Caller, timeoutMs: number): Promise<boolean> =>
    condWait(state, caller.owner, deadlineAfter(timeoutMs), caller.signal),
  notify: (state: ConditionState, caller: Caller, n: number): boolean =>
    condNotify(state, caller.owner, n),
};

// ---------------------------------------------------------------------------------------------
// Barrier

/** The words of a barrier. */
const BAR = {
  /** Arrivals in this round. */
  COUNT: 0,
  /** The round (generation). */
  GEN: 1,
  /** The round that was broken, plus one. */
  BROKEN_GEN: 2,
  /** 1 while the barrier stays broken until reset. */
  BROKEN: 3,
  /** The round whose action is due, plus one; -1 when the barrier has an action, 0 when not. */
  ACTION: 4,
} as const;

/** The state of a barrier. */
export interface BarrierState {
  i32: Int32Array;
  parties: number;
  /**
   * Runs the action of a round, where the barrier was made; absent elsewhere. Elsewhere, the last
   * party to arrive asks for it through the words, and the barrier's realm runs it.
   */
  action?: () => void;
}

/** A new barrier's words. */
export function newBarrier(): Int32Array {
  return sharedInt32(5);
}

/** How many parties wait at the barrier now. */
export function barrierWaiting(i32: Int32Array): number {
  return Atomics.load(i32, BAR.COUNT);
}

/** Whether the barrier is broken. */
export function barrierBroken(i32: Int32Array): boolean {
  return Atomics.load(i32, BAR.BROKEN) === 1;
}

function barrierBreak(i32: Int32Array, permanently: boolean): void {
  if (permanently) Atomics.store(i32, BAR.BROKEN, 1);
  Atomics.store(i32, BAR.BROKEN_GEN, Atomics.load(i32, BAR.GEN) + 1);
  Atomics.notify(i32, BAR.GEN);
}

/** Breaks the barrier: current and later waits fail until `reset`. */
export function barrierAbort(i32: Int32Array): void {
  barrierBreak(i32, true);
}

/** Returns the barrier to its initial state; parties waiting now fail. */
export function barrierReset(i32: Int32Array): void {
  Atomics.store(i32, BAR.BROKEN_GEN, Atomics.load(i32, BAR.GEN) + 1);
  Atomics.store(i32, BAR.COUNT, 0);
  Atomics.store(i32, BAR.BROKEN, 0);
  Atomics.add(i32, BAR.GEN, 1);
  Atomics.notify(i32, BAR.GEN);
}

function broken(): BrokenBarrierError {
  return new BrokenBarrierError("The barrier is broken");
}

/** A party leaves a round that was broken: it no longer counts among those waiting. */
function leaveBroken(i32: Int32Array, gen: number): never {
  // A reset() started a new round with a count of 0, which this party is not part of.
  if (Atomics.load(i32, BAR.GEN) === gen) Atomics.sub(i32, BAR.COUNT, 1);
  throw broken();
}

/**
 * Arrives: returns the arrival index and the round, and, for the last party, ends the round
 * (after the action, when this realm can run it).
 */
function barrierArrive(state: BarrierState): { index: number; gen: number } {
  const { i32, parties } = state;
  if (Atomics.load(i32, BAR.BROKEN) === 1) throw broken();
  const gen = Atomics.load(i32, BAR.GEN);
  const index = Atomics.add(i32, BAR.COUNT, 1);
  if (index === parties - 1) {
    if (state.action) runAction(state, gen);
    else if (Atomics.load(i32, BAR.ACTION) === -1) {
      // The barrier's realm runs the action and then ends the round.
      Atomics.store(i32, BAR.ACTION, gen + 1);
      Atomics.notify(i32, BAR.ACTION);
    } else endRound(i32);
  }
  return { index, gen };
}

function endRound(i32: Int32Array): void {
  Atomics.store(i32, BAR.COUNT, 0);
  Atomics.add(i32, BAR.GEN, 1);
  Atomics.notify(i32, BAR.GEN);
}

function runAction(state: BarrierState, gen: number): void {
  try {
    state.action!();
  } catch (error) {
    // As in Python, an action that throws breaks the barrier; its error goes to the party that
    // ran it, and the others get a BrokenBarrierError.
    barrierBreak(state.i32, true);
    if (Atomics.load(state.i32, BAR.GEN) === gen) Atomics.sub(state.i32, BAR.COUNT, 1);
    throw error;
  }
  endRound(state.i32);
}

/**
 * Marks a barrier as having an action, run in this realm: the last party to arrive in another
 * realm asks for it through the words, and this loop runs it. Ends when `alive()` turns false.
 */
export async function serveBarrierAction(state: BarrierState, alive: () => boolean) {
  const { i32 } = state;
  Atomics.store(i32, BAR.ACTION, -1);
  while (alive()) {
    const due = Atomics.load(i32, BAR.ACTION);
    if (due > 0) {
      Atomics.store(i32, BAR.ACTION, -1);
      try {
        runAction(state, due - 1);
      } catch (error) {
        // The party that asked is in another realm: the error is reported here.
        queueMicrotask(() => {
          throw error;
        });
      }
      continue;
    }
    await waitAsync(i32, BAR.ACTION, due, 1000, false);
  }
}

/**
 * Whether the round of a party that arrived in round `gen` is over; false while it must go on
 * waiting. Throws once the barrier is broken, and breaks it when the deadline has passed, as in
 * Python, where a party that times out breaks the barrier for all.
 */
function roundOver(i32: Int32Array, gen: number, deadline: number): boolean {
  if (Atomics.load(i32, BAR.BROKEN_GEN) === gen + 1) leaveBroken(i32, gen);
  if (Atomics.load(i32, BAR.GEN) !== gen) return true;
  if (remaining(deadline) > 0) return false;
  barrierBreak(i32, true);
  leaveBroken(i32, gen);
}

async function barrierWait(
  state: BarrierState,
  deadline: number,
  signal?: AbortSignal,
): Promise<number> {
  const { i32 } = state;
  const { index, gen } = barrierArrive(state);
  while (!roundOver(i32, gen, deadline)) {
    try {
      await waitUntil(i32, BAR.GEN, gen, deadline, signal);
    } catch (error) {
      // The child process that waited has gone: the others must not wait for it.
      barrierBreak(i32, true);
      if (Atomics.load(i32, BAR.GEN) === gen) Atomics.sub(i32, BAR.COUNT, 1);
      throw error;
    }
  }
  return index;
}

/** Waits at the barrier, blocking the thread; returns the arrival index. */
export function barrierWaitSync(state: BarrierState, deadline: number): number {
  const { i32 } = state;
  const { index, gen } = barrierArrive(state);
  while (!roundOver(i32, gen, deadline)) Atomics.wait(i32, BAR.GEN, gen, remaining(deadline));
  return index;
}

/** The operations of a barrier. */
export const barrierOps = {
  wait: (state: BarrierState, caller: Caller, timeoutMs: number): Promise<number> =>
    barrierWait(state, deadlineAfter(timeoutMs), caller.signal),
  abort: (state: BarrierState): void => barrierAbort(state.i32),
  reset: (state: BarrierState): void => barrierReset(state.i32),
};
