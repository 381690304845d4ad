/**
 * Synchronisation across threads and processes, as Python's `threading` and `multiprocessing`
 * offer it: {@linkcode Lock}, {@linkcode RLock}, {@linkcode Semaphore},
 * {@linkcode BoundedSemaphore}, {@linkcode Event}, {@linkcode Condition} and {@linkcode Barrier}.
 *
 * Each object keeps its state in a `SharedArrayBuffer` and waits with `Atomics` (the state
 * machines are in `_sync_atomics.ts`). Passed to a `Thread`, it is the same object in the worker.
 * Passed to a `Process`, it stays in the parent and the child uses it through the parent's broker,
 * with the same calls; a child may pass it on to its own threads and processes.
 *
 * Blocking calls are async (`await lock.acquire()`). Inside worker threads, sync forms that block
 * with `Atomics.wait` are offered too (`lock.acquireSync()`); the main thread may not block.
 *
 * Ownership: a lock is owned by the thread or process that acquired it (all async code of one
 * thread counts as that thread, as in Python). When a thread or process ends while it holds a lock,
 * the lock is released and the next acquisition fails once with an `AbandonedLockError`.
 *
 * Rules this file keeps: it checks arguments and calls the operations of each object's handle
 * (see `_shared.ts`); where the memory is, here or in a parent process, is the handle's business.
 * Python's positional forms are taken with Python's meaning (`acquire(false)`, `Semaphore(5)`),
 * and a bare number where Python means seconds is refused with the right call.
 *
 * @module
 */
import { assertCanBlock, currentOwnerId, deadlineOf, remaining } from "./_atomics.ts";
import {
  checkInteger,
  checkNoArgumentAfter,
  checkOptions,
  checkTimeoutMs,
  describeValue,
} from "./_checks.ts";
import { type LockHandle, lockHandleOf, LockMirror, lockMirrorOf } from "./_lock_access.ts";
import { blockingTimeout, handleOf, Shared, type SharedKind, waitTimeout } from "./_shared.ts";
import {
  barrierBroken,
  barrierOps,
  type BarrierState,
  barrierWaiting,
  barrierWaitSync,
  conditionOps,
  type ConditionState,
  conditionWaitSync,
  eventIsSet,
  eventOps,
  eventWaitSync,
  LockCore,
  lockOps,
  newBarrier,
  newCondition,
  newEvent,
  newSemaphore,
  SEMAPHORE_MAX,
  semaphoreAcquireSync,
  semaphoreOps,
  type SemaphoreState,
  semaphoreValue,
  serveBarrierAction,
} from "./_sync_atomics.ts";
import { TimeoutError } from "./errors.ts";

// ---------------------------------------------------------------------------------------------
// Options

/** Options for the `acquire` methods of locks and semaphores. */
export interface AcquireOptions {
  /** When false, return at once with whether it was acquired. Defaults to true. */
  blocking?: boolean;
  /** The longest wait, in milliseconds; no limit when omitted or `Infinity`. On timeout, `false`. */
  timeoutMs?: number;
}

/** Options for the `wait` methods of events, conditions and barriers. */
export interface SyncWaitOptions {
  /** The longest wait, in milliseconds; no limit when omitted or `Infinity`. */
  timeoutMs?: number;
}

// ---------------------------------------------------------------------------------------------
// Lock and RLock

function lockKind(kind: "lock" | "rlock", type: { prototype: object }) {
  const spec: SharedKind<LockCore, Record<never, never>, typeof lockOps> = {
    kind,
    type,
    share: (core) => core.i32.buffer,
    attach: (buffer) => new LockCore(kind === "rlock", new Int32Array(buffer as SharedArrayBuffer)),
    ops: lockOps,
    watch: (core) => core.owner() !== 0,
    revivedRemote: (handle) => handle.mirror = new LockMirror(),
    client: {
      // A child process counts its own holds, and refreshes the values that the lock guards.
      acquire: async (handle, send) => {
        const acquired = await send() as boolean;
        if (acquired) {
          const mirror = lockMirrorOf(handle)!;
          mirror.held++;
          await mirror.afterAcquire();
        }
        return acquired;
      },
      release: (handle, send) => {
        const mirror = lockMirrorOf(handle)!;
        handle.remote!.throwDeferred(handle.id);
        if (mirror.held === 0) throw new Error("Cannot release a lock that is not held");
        if (mirror.held === 1) mirror.beforeRelease();
        if (--mirror.held === 0) handle.remote!.know(handle.id, false);
        send();
      },
    },
  };
  Shared.define(spec);
  return spec;
}

/** A disposable hold on a lock: `using` releases it at the end of the scope. */
export interface LockHold {
  /** Releases the lock. */
  [Symbol.dispose](): void;
}

function lockAcquire(
  lock: Lock | RLock,
  what: string,
  options: AcquireOptions | boolean | undefined,
  args: ArrayLike<unknown>,
) {
  try {
    checkNoArgumentAfter(what, args, 1);
    return lockOf(lock).call("acquire", blockingTimeout(options, what));
  } catch (error) {
    return Promise.reject(error);
  }
}

function lockAcquireSync(
  lock: Lock | RLock,
  what: string,
  options: AcquireOptions | boolean | undefined,
  args: ArrayLike<unknown>,
) {
  checkNoArgumentAfter(what, args, 1);
  const timeoutMs = blockingTimeout(options, what);
  const core = lockOf(lock).here(what);
  return core.acquireSync(currentOwnerId(), timeoutMs === 0 ? 0 : deadlineOf(timeoutMs));
}

async function lockHold(lock: Lock | RLock, what: string, options: SyncWaitOptions | undefined) {
  const timeoutMs = waitTimeout(options, what);
  if (!await lockOf(lock).call("acquire", timeoutMs)) {
    throw new TimeoutError(`The lock was not acquired within ${timeoutMs} ms`);
  }
  return { [Symbol.dispose]: () => lock.release() };
}

function lockOf(lock: Lock | RLock): LockHandle {
  return handleOf<LockHandle>(lock);
}

/**
 * A mutual-exclusion lock, as Python's `threading.Lock` / `multiprocessing.Lock`, for threads and
 * processes alike. It is not re-entrant: a second acquisition by its holder waits like any other.
 * Its holder is recorded, so that `release()` by anyone else throws, and a holder that ends while
 * holding it does not deadlock the others (see `AbandonedLockError`).
 *
 * @example Four threads add to a shared counter under one lock
 * ```ts
 * import { Lock, SharedArray, Thread } from "@multiproc/multiproc";
 *
 * const lock = new Lock();
 * const counter = new SharedArray("i32", 1);
 * const threads = [1, 2, 3, 4].map(() =>
 *   new Thread({
 *     target: async (lock: Lock, counter: SharedArray<"i32">) => {
 *       for (let i = 0; i < 100; i++) {
 *         using _held = await lock.hold();
 *         counter.array[0] += 1;
 *       }
 *     },
 *     args: [lock, counter],
 *   })
 * );
 * for (const t of threads) t.start();
 * for (const t of threads) await t.join();
 * console.log(counter.array[0]); // 400
 * ```
 */
export class Lock {
  /** Creates an unlocked lock. */
  constructor() {
    Shared.create(this, LOCK, {}, new LockCore(false));
  }

  /**
   * Acquires the lock, waiting without blocking the thread.
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while. Python's
   * `acquire(False)` is `acquire(false)`.
   * @returns Whether the lock was acquired, as Python's `acquire()` returns.
   * @throws {AbandonedLockError} (as a rejection) Once, when the previous holder ended while
   * holding the lock; the lock is then free again.
   * @throws {RangeError} (as a rejection) When `timeoutMs` is negative or not a number.
   * @throws {TypeError} (as a rejection) For a number instead of the options, or an unknown option.
   */
  acquire(options?: AcquireOptions | boolean): Promise<boolean> {
    return lockAcquire(this, "Lock.acquire()", options, arguments);
  }

  /**
   * Acquires the lock, blocking the thread with `Atomics.wait`; only inside worker threads.
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while.
   * @returns Whether the lock was acquired.
   * @throws {Error} When it would block the main thread, or for a lock of a parent process.
   * @throws {AbandonedLockError} Once, when the previous holder ended while holding the lock.
   */
  acquireSync(options?: AcquireOptions | boolean): boolean {
    return lockAcquireSync(this, "Lock.acquireSync()", options, arguments);
  }

  /**
   * Acquires the lock and returns a hold that `using` releases at the end of the scope.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns The hold.
   * @throws {TimeoutError} (as a rejection) When `timeoutMs` passed first.
   */
  hold(options?: SyncWaitOptions): Promise<LockHold> {
    return lockHold(this, "Lock.hold()", options);
  }

  /**
   * Releases the lock; the caller must hold it.
   *
   * @throws {Error} When the lock is not held, or is held by another thread or process.
   */
  release(): void {
    lockOf(this).cast("release");
  }

  /**
   * Whether some thread or process holds the lock. In a child process, as the parent last told it;
   * each read also asks the parent for news, so a child that polls sees a change at a later read.
   *
   * @returns True while it is held.
   */
  locked(): boolean {
    return lockOf(this).watched() === true;
  }

  /** The owner id of the holder, or null when free or when not known here (in a child process). */
  get ownerId(): number | null {
    return lockOf(this).local?.owner() || null;
  }

  /** Releases the lock at the end of a `using` scope, for a lock acquired before it. */
  [Symbol.dispose](): void {
    this.release();
  }
}

const LOCK = lockKind("lock", Lock);

/**
 * A re-entrant lock, as Python's `RLock`: its holder may acquire it again, and must release it as
 * many times. All async code of one thread counts as one holder.
 *
 * @example
 * ```ts
 * import { RLock } from "@multiproc/multiproc";
 *
 * const lock = new RLock();
 * await lock.acquire();
 * await lock.acquire();
 * lock.release();
 * lock.release();
 * console.log(lock.locked()); // false
 * ```
 */
export class RLock {
  /** Creates an unlocked re-entrant lock. */
  constructor() {
    Shared.create(this, RLOCK, {}, new LockCore(true));
  }

  /**
   * Acquires the lock, or one more level of it when the caller holds it already; otherwise as
   * {@linkcode Lock.prototype.acquire}, Python's `acquire(False)` included.
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while.
   * @returns Whether the lock (or one more level) was acquired.
   * @throws {AbandonedLockError} (as a rejection) Once, after a holder ended while holding it.
   */
  acquire(options?: AcquireOptions | boolean): Promise<boolean> {
    return lockAcquire(this, "RLock.acquire()", options, arguments);
  }

  /**
   * Like {@linkcode RLock.prototype.acquire}, blocking the thread with `Atomics.wait`; only
   * inside worker threads, and only where the lock's memory is (not in a child process).
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while.
   * @returns Whether the lock (or one more level) was acquired.
   * @throws {Error} On the main thread, or for a lock of a parent process.
   */
  acquireSync(options?: AcquireOptions | boolean): boolean {
    return lockAcquireSync(this, "RLock.acquireSync()", options, arguments);
  }

  /**
   * Acquires one level for a `using` scope, which releases it at its end.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns The hold of that level.
   * @throws {TimeoutError} (as a rejection) When `timeoutMs` passed first.
   */
  hold(options?: SyncWaitOptions): Promise<LockHold> {
    return lockHold(this, "RLock.hold()", options);
  }

  /**
   * Whether some thread or process holds any level of the lock; in a child process, as the
   * parent last told (see {@linkcode Lock.prototype.locked}).
   *
   * @returns True while it is held.
   */
  locked(): boolean {
    return lockOf(this).watched() === true;
  }

  /**
   * Releases one level of the lock; the lock is free once every level is released.
   *
   * @throws {Error} When the caller does not hold the lock.
   */
  release(): void {
    lockOf(this).cast("release");
  }

  /** Releases one level at the end of a `using` scope. */
  [Symbol.dispose](): void {
    this.release();
  }
}

const RLOCK = lockKind("rlock", RLock);

// ---------------------------------------------------------------------------------------------
// Semaphore and BoundedSemaphore

/** Options for {@linkcode Semaphore} and {@linkcode BoundedSemaphore}. */
export interface SemaphoreOptions {
  /** The initial count: how many holders it admits at once. Defaults to 1. */
  value?: number;
}

type SemaphoreHandle = Shared<SemaphoreState, { bound?: number }, typeof semaphoreOps>;

function semaphoreKind(kind: string, type: { prototype: object }) {
  const spec: SharedKind<SemaphoreState, { bound?: number }, typeof semaphoreOps> = {
    kind,
    type,
    share: (state) => state.i32.buffer,
    attach: (buffer, config) => ({
      i32: new Int32Array(buffer as SharedArrayBuffer),
      bound: config.bound,
    }),
    ops: semaphoreOps,
  };
  Shared.define(spec);
  return spec;
}

function semaphoreValueOption(options: SemaphoreOptions | number, what: string): number {
  // Python's Semaphore(5): the value, positionally.
  const value = typeof options === "number"
    ? options
    : checkOptions(options, what, ["value"], "pass a number or { value }").value;
  return checkInteger(value, "value", { min: 0, max: SEMAPHORE_MAX, what }) ?? 1;
}

/**
 * A counting semaphore, as Python's `Semaphore`: `acquire()` takes one from the count, waiting
 * while it is 0, and `release()` gives one back. It never admits more holders than its count.
 * Semaphores have no owner: a crashed holder's count is not given back.
 *
 * @example At most two threads at a time
 * ```ts
 * import { Semaphore } from "@multiproc/multiproc";
 *
 * const slots = new Semaphore(2); // or new Semaphore({ value: 2 })
 * console.log(await slots.acquire(), await slots.acquire()); // true true
 * console.log(await slots.acquire({ blocking: false })); // false
 * slots.release();
 * console.log(slots.value); // 1
 * ```
 */
export class Semaphore {
  /**
   * Creates a semaphore.
   *
   * @param options The initial count, as a number (Python's `Semaphore(5)`) or `{ value }`;
   * 1 by default.
   * @throws {RangeError} When the count is not an integer from 0 to 2**31 - 1.
   * @throws {TypeError} When it is not a number, or for an unknown option.
   */
  constructor(options: SemaphoreOptions | number = {}) {
    const bounded = this instanceof BoundedSemaphore;
    const value = semaphoreValueOption(options, bounded ? "BoundedSemaphore" : "Semaphore");
    const bound = bounded ? value : undefined;
    Shared.create(this, bounded ? BOUNDED : SEMAPHORE, { bound }, newSemaphore(value, bound));
  }

  /**
   * Takes one from the count, waiting while it is 0.
   *
   * @param options `blocking: false` (or Python's `false`) to try once; `timeoutMs` to give up.
   * @returns Whether it was acquired.
   * @throws {RangeError} (as a rejection) When `timeoutMs` is negative or not a number.
   */
  acquire(options?: AcquireOptions | boolean): Promise<boolean> {
    const what = "Semaphore.acquire()";
    const args = arguments;
    return semaphoreOf(this).callWith("acquire", () => {
      checkNoArgumentAfter(what, args, 1);
      return [blockingTimeout(options, what)];
    });
  }

  /**
   * Takes one from the count, blocking the thread; only inside worker threads.
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while.
   * @returns Whether it was acquired.
   * @throws {Error} When it would block the main thread, or for a semaphore of a parent process.
   */
  acquireSync(options?: AcquireOptions | boolean): boolean {
    const what = "Semaphore.acquireSync()";
    checkNoArgumentAfter(what, arguments, 1);
    const timeoutMs = blockingTimeout(options, what);
    const state = semaphoreOf(this).here(what);
    return semaphoreAcquireSync(state, timeoutMs === 0 ? 0 : deadlineOf(timeoutMs));
  }

  /**
   * Gives `n` back to the count and wakes as many waiters.
   *
   * @param n How many to give back; 1 by default.
   * @throws {RangeError} When `n` is not a positive integer, when the count would pass
   * 2**31 - 1, or, for a {@linkcode BoundedSemaphore}, its initial value.
   */
  release(n = 1): void {
    checkInteger(n, "n", { min: 1, max: SEMAPHORE_MAX, what: "Semaphore.release()" });
    semaphoreOf(this).cast("release", n);
  }

  /** The current count; NaN in a child process, which sees the semaphore through the broker. */
  get value(): number {
    const state = semaphoreOf(this).local;
    return state ? semaphoreValue(state) : NaN;
  }

  /** Gives one back at the end of a `using` scope, for a semaphore acquired before it. */
  [Symbol.dispose](): void {
    this.release();
  }
}

function semaphoreOf(semaphore: Semaphore): SemaphoreHandle {
  return handleOf<SemaphoreHandle>(semaphore);
}

/**
 * A semaphore whose count may not exceed its initial value, as Python's `BoundedSemaphore`: a
 * `release()` too many throws, which catches a release without its acquire.
 *
 * @example
 * ```ts
 * import { BoundedSemaphore } from "@multiproc/multiproc";
 *
 * const slots = new BoundedSemaphore(1);
 * try {
 *   slots.release();
 * } catch (error) {
 *   console.log((error as Error).name); // "RangeError"
 * }
 * ```
 */
export class BoundedSemaphore extends Semaphore {}

const SEMAPHORE = semaphoreKind("semaphore", Semaphore);
const BOUNDED = semaphoreKind("bounded-semaphore", BoundedSemaphore);

// ---------------------------------------------------------------------------------------------
// Event

type EventHandle = Shared<Int32Array, Record<never, never>, typeof eventOps>;

const EVENT_KIND: SharedKind<Int32Array, Record<never, never>, typeof eventOps> = {
  kind: "event",
  type: { prototype: {} },
  share: (i32) => i32.buffer,
  attach: (buffer) => new Int32Array(buffer as SharedArrayBuffer),
  ops: eventOps,
  watch: eventIsSet,
  client: {
    // A child process knows the flag as it set it, until the parent tells otherwise.
    set: (handle, send) => {
      handle.remote!.know(handle.id, true);
      send();
    },
    clear: (handle, send) => {
      handle.remote!.know(handle.id, false);
      send();
    },
  },
};

/**
 * A flag that threads and processes wait for, as Python's `Event`: `set()` wakes every waiter,
 * and later waits return at once until `clear()`. A waiter that was waiting when `set()` ran
 * returns true even when `clear()` followed at once.
 *
 * @example
 * ```ts
 * import { Event, Thread } from "@multiproc/multiproc";
 *
 * const ready = new Event();
 * const t = new Thread({ target: async (ready: Event) => await ready.wait(), args: [ready] });
 * t.start();
 * ready.set();
 * await t.join();
 * console.log(t.result); // true
 * ```
 */
export class Event {
  /** Creates an event whose flag is not set. */
  constructor() {
    Shared.create(this, EVENT_KIND, {}, newEvent());
  }

  /**
   * Whether the flag is set. In a child process, as the parent last told it; each read also asks
   * the parent for news, so a child that polls sees a change at a later read.
   *
   * @returns The flag.
   */
  isSet(): boolean {
    return eventOf(this).watched() === true;
  }

  /** Sets the flag and wakes every waiter. */
  set(): void {
    eventOf(this).cast("set");
  }

  /** Clears the flag. */
  clear(): void {
    eventOf(this).cast("clear");
  }

  /**
   * Waits until the flag is set.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns True when the flag was set, false when the time ran out, as in Python.
   * @throws {RangeError} (as a rejection) When `timeoutMs` is negative or not a number.
   * @throws {TypeError} (as a rejection) For a number instead of `{ timeoutMs }`.
   */
  wait(options?: SyncWaitOptions): Promise<boolean> {
    return eventOf(this).callWith("wait", () => [waitTimeout(options, "Event.wait()")]);
  }

  /**
   * Waits until the flag is set, blocking the thread; only inside worker threads.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns True when the flag was set, false when the time ran out.
   * @throws {Error} When it would block the main thread, or for an event of a parent process.
   */
  waitSync(options?: SyncWaitOptions): boolean {
    const what = "Event.waitSync()";
    const deadline = deadlineOf(waitTimeout(options, what));
    return eventWaitSync(eventOf(this).here(what), deadline);
  }
}

EVENT_KIND.type = Event;
Shared.define(EVENT_KIND);

function eventOf(event: Event): EventHandle {
  return handleOf<EventHandle>(event);
}

// ---------------------------------------------------------------------------------------------
// Condition

/** Options for {@linkcode Condition}. */
export interface ConditionOptions {
  /** The lock to wait with; a new {@linkcode RLock} when omitted, as in Python. */
  lock?: Lock | RLock;
}

type ConditionConfig = { lock: Lock | RLock };
type ConditionHandle = Shared<ConditionState, ConditionConfig, typeof conditionOps>;

function heldMirror(handle: ConditionHandle, doing: string): LockMirror {
  const mirror = lockMirrorOf(lockOf(handle.config.lock));
  if (!mirror || mirror.held === 0) {
    throw new Error(`Cannot ${doing} on a condition whose lock is not held`);
  }
  return mirror;
}

const CONDITION_KIND: SharedKind<ConditionState, ConditionConfig, typeof conditionOps> = {
  kind: "condition",
  type: { prototype: {} },
  share: (state) => state.i32.buffer,
  attach: (buffer, config) => ({
    i32: new Int32Array(buffer as SharedArrayBuffer),
    lock: lockOf(config.lock).here("A Condition's lock"),
  }),
  ops: conditionOps,
  client: {
    // The parent releases and retakes the lock for this process: the values that the lock
    // guards are sent before, and fetched again after, as around release() and acquire().
    wait: async (handle, send) => {
      const mirror = heldMirror(handle as ConditionHandle, "wait");
      mirror.beforeRelease();
      const notified = await send();
      await mirror.afterAcquire();
      return notified;
    },
    notify: (handle, send) => {
      heldMirror(handle as ConditionHandle, "notify");
      send();
    },
  },
};

/**
 * A condition variable, as Python's `Condition`: holders of its lock `wait()` until another
 * holder calls `notify(n)`, which wakes exactly `n` of the waiters (or all that wait, if fewer).
 *
 * @example
 * ```ts
 * import { Condition, Thread } from "@multiproc/multiproc";
 *
 * const cond = new Condition();
 * const waiter = new Thread({
 *   target: async (cond: Condition) => {
 *     await cond.acquire();
 *     const woken = await cond.wait({ timeoutMs: 5000 });
 *     cond.release();
 *     return woken;
 *   },
 *   args: [cond],
 * });
 * waiter.start();
 * while (true) {
 *   await cond.acquire();
 *   const notified = cond.notify();
 *   cond.release();
 *   if (notified) break;
 *   await new Promise((resolve) => setTimeout(resolve, 10));
 * }
 * await waiter.join();
 * console.log(waiter.result); // true
 * ```
 */
export class Condition {
  /**
   * Creates a condition.
   *
   * @param options The lock to use, positionally as in Python's `Condition(lock)` or as
   * `{ lock }`; a new RLock by default.
   * @throws {TypeError} When `lock` is not a Lock or RLock, or for an unknown option.
   */
  constructor(options: ConditionOptions | Lock | RLock = {}) {
    let lock: unknown;
    if (lockHandleOf(options)) lock = options;
    else {
      lock =
        checkOptions(options as ConditionOptions, "Condition", ["lock"], "pass a Lock or { lock }")
          .lock ?? new RLock();
    }
    const handle = lockHandleOf(lock);
    if (!handle) {
      throw new TypeError(`'lock' must be a Lock or RLock: received ${describeValue(lock)}`);
    }
    const core = handle.local;
    if (!core) {
      throw new TypeError(
        "A Condition needs a lock whose memory is in this process: this lock came from a parent process; make the Condition there and pass it on",
      );
    }
    Shared.create(this, CONDITION_KIND, { lock: lock as Lock | RLock }, {
      i32: newCondition(),
      lock: core,
    });
  }

  /** The condition's lock. */
  get lock(): Lock | RLock {
    return conditionOf(this).config.lock;
  }

  /**
   * Acquires the condition's lock.
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while.
   * @returns Whether it was acquired.
   */
  acquire(options?: AcquireOptions | boolean): Promise<boolean> {
    try {
      checkNoArgumentAfter("Condition.acquire()", arguments, 1);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.lock.acquire(options);
  }

  /**
   * Releases the condition's lock.
   *
   * @throws {Error} When the caller does not hold it.
   */
  release(): void {
    this.lock.release();
  }

  /**
   * Acquires the lock and returns a hold that `using` releases at the end of the scope.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns The hold.
   */
  hold(options?: SyncWaitOptions): Promise<LockHold> {
    return this.lock.hold(options);
  }

  /**
   * Releases the lock, waits for a `notify`, and takes the lock back before it returns. In a
   * child process, values guarded by the lock are sent before and fetched after, as around
   * `release()` and `acquire()`.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns True when notified, false when the time ran out.
   * @throws {Error} (as a rejection) When the caller does not hold the lock.
   */
  wait(options?: SyncWaitOptions): Promise<boolean> {
    return conditionOf(this).callWith("wait", () => [waitTimeout(options, "Condition.wait()")]);
  }

  /**
   * Like {@linkcode Condition.prototype.wait}, blocking the thread; only inside worker threads.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns True when notified, false when the time ran out.
   * @throws {Error} When the caller does not hold the lock, on the main thread, or for a
   * condition of a parent process.
   */
  waitSync(options?: SyncWaitOptions): boolean {
    const what = "Condition.waitSync()";
    const deadline = deadlineOf(waitTimeout(options, what));
    return conditionWaitSync(conditionOf(this).here(what), currentOwnerId(), deadline);
  }

  /**
   * Waits until `predicate()` is truthy, as Python's `wait_for`.
   *
   * @param predicate Checked with the lock held, before each wait.
   * @param options `timeoutMs` to give up after a while.
   * @returns The predicate's last value.
   */
  async waitFor<T>(predicate: () => T, options?: SyncWaitOptions): Promise<T> {
    const deadline = deadlineOf(waitTimeout(options, "Condition.waitFor()"));
    let result = predicate();
    while (!result) {
      const left = remaining(deadline);
      if (left === 0) break;
      await this.wait({ timeoutMs: left });
      result = predicate();
    }
    return result;
  }

  /**
   * Wakes `n` of the waiters (all of them when fewer wait). The caller must hold the lock.
   *
   * @param n How many to wake; 1 by default.
   * @returns Whether a waiter was there to wake (always true in a child process).
   * @throws {Error} When the caller does not hold the lock.
   */
  notify(n = 1): boolean {
    checkInteger(n, "n", { min: 1, what: "Condition.notify()" });
    return conditionOf(this).cast("notify", Math.min(n, 0xffff)) ?? true;
  }

  /**
   * Wakes every waiter. The caller must hold the lock.
   *
   * @returns Whether a waiter was there to wake.
   * @throws {Error} When the caller does not hold the lock.
   */
  notifyAll(): boolean {
    return this.notify(0xffff);
  }
}

CONDITION_KIND.type = Condition;
Shared.define(CONDITION_KIND);

function conditionOf(condition: Condition): ConditionHandle {
  return handleOf<ConditionHandle>(condition);
}

// ---------------------------------------------------------------------------------------------
// Barrier

/** Options for {@linkcode Barrier}. */
export interface BarrierOptions {
  /** The default timeout of `wait()`, in milliseconds; none when omitted or `Infinity`. */
  timeoutMs?: number;
  /**
   * Called once per round, when the last party arrives and before any is released, as Python's
   * `action`. It runs in the thread that made the barrier (which may be one of the parties); if
   * it throws, the barrier breaks.
   */
  action?: () => void;
}

type BarrierConfig = { parties: number; timeoutMs?: number };
type BarrierHandle = Shared<BarrierState, BarrierConfig, typeof barrierOps>;

const BARRIER_KIND: SharedKind<BarrierState, BarrierConfig, typeof barrierOps> = {
  kind: "barrier",
  type: { prototype: {} },
  share: (state) => state.i32.buffer,
  attach: (buffer, config) => ({
    i32: new Int32Array(buffer as SharedArrayBuffer),
    parties: config.parties,
  }),
  ops: barrierOps,
};

function barrierOptions(
  action: BarrierOptions | (() => void) | undefined,
  timeoutMs: number | undefined,
): BarrierOptions {
  if (typeof action === "function") return { action, timeoutMs };
  if (typeof action === "number") {
    throw new TypeError(
      `Barrier takes (parties, options): received ${
        describeValue(action)
      } where the options go; pass { timeoutMs: ${action} } for a default timeout in milliseconds`,
    );
  }
  if (timeoutMs !== undefined) {
    throw new TypeError(
      `Barrier takes a timeout as a third argument only after an action, as in Python's Barrier(parties, action, timeout): received ${
        describeValue(timeoutMs)
      }; pass { timeoutMs }`,
    );
  }
  return checkOptions(action, "Barrier", ["timeoutMs", "action"], "pass { timeoutMs, action }");
}

/**
 * A barrier for a fixed number of parties, as Python's `Barrier`: each `wait()` waits until all
 * `parties` have called it, then all are released together, and the barrier can be used again.
 *
 * @example
 * ```ts
 * import { Barrier, Thread } from "@multiproc/multiproc";
 *
 * let rounds = 0;
 * const barrier = new Barrier(3, { action: () => rounds++ });
 * const threads = [1, 2].map(() =>
 *   new Thread({ target: (b: Barrier) => b.wait(), args: [barrier] })
 * );
 * for (const t of threads) t.start();
 * const mine = await barrier.wait();
 * for (const t of threads) await t.join();
 * console.log([mine, ...threads.map((t) => t.result)].sort(), rounds); // [0, 1, 2] 1
 * ```
 */
export class Barrier {
  /**
   * Creates a barrier.
   *
   * @param parties How many parties must call `wait()` before any is released.
   * @param options A default `timeoutMs` for `wait()`, and an `action` for each round; or, as
   * in Python, the action itself, followed by a timeout in milliseconds.
   * @param timeoutMs With an action as the second argument: the default timeout.
   * @throws {RangeError} When `parties` is not a positive integer, or `timeoutMs` is invalid.
   * @throws {TypeError} For a number where the options go, or an unknown option.
   */
  constructor(
    parties: number,
    options?: BarrierOptions | (() => void),
    timeoutMs?: number,
  ) {
    const { action, timeoutMs: defaultTimeout } = barrierOptions(options, timeoutMs);
    checkInteger(parties, "parties", { min: 1, what: "Barrier" });
    checkTimeoutMs(defaultTimeout, "Barrier");
    if (action !== undefined && typeof action !== "function") {
      throw new TypeError(`'action' must be a function: received ${describeValue(action)}`);
    }
    const state: BarrierState = { i32: newBarrier(), parties, action };
    Shared.create(this, BARRIER_KIND, { parties, timeoutMs: defaultTimeout }, state);
    if (action) {
      const self = new WeakRef(this);
      void serveBarrierAction(state, () => self.deref() !== undefined);
    }
  }

  /** How many parties the barrier waits for. */
  get parties(): number {
    return barrierOf(this).config.parties;
  }

  /** How many parties wait at the barrier now (unknown, NaN, in a child process). */
  get nWaiting(): number {
    const state = barrierOf(this).local;
    return state ? barrierWaiting(state.i32) : NaN;
  }

  /** Whether the barrier is broken (false in a child process until a wait finds out). */
  get broken(): boolean {
    const state = barrierOf(this).local;
    return state ? barrierBroken(state.i32) : false;
  }

  /**
   * Waits until all parties have arrived.
   *
   * @param options `timeoutMs`, instead of the barrier's default.
   * @returns This party's arrival index, from 0 to `parties - 1`, distinct for each party.
   * @throws {BrokenBarrierError} (as a rejection) When the barrier is or becomes broken: by a
   * timeout (which breaks it for every party), `abort()` or `reset()`.
   */
  wait(options?: SyncWaitOptions): Promise<number> {
    const handle = barrierOf(this);
    return handle.callWith("wait", () => [
      waitTimeout(options, "Barrier.wait()", handle.config.timeoutMs),
    ]);
  }

  /**
   * Like {@linkcode Barrier.prototype.wait}, blocking the thread; only inside worker threads.
   *
   * @param options `timeoutMs`, instead of the barrier's default.
   * @returns This party's arrival index.
   * @throws {BrokenBarrierError} When the barrier is or becomes broken.
   * @throws {Error} On the main thread, or for a barrier of a parent process.
   */
  waitSync(options?: SyncWaitOptions): number {
    const what = "Barrier.waitSync()";
    const handle = barrierOf(this);
    const deadline = deadlineOf(waitTimeout(options, what, handle.config.timeoutMs));
    const state = handle.here(what);
    assertCanBlock(what);
    return barrierWaitSync(state, deadline);
  }

  /** Breaks the barrier: current and later waits reject until `reset()`. */
  abort(): void {
    barrierOf(this).cast("abort");
  }

  /** Returns the barrier to its initial state; parties waiting now get a `BrokenBarrierError`. */
  reset(): void {
    barrierOf(this).cast("reset");
  }
}

BARRIER_KIND.type = Barrier;
Shared.define(BARRIER_KIND);

function barrierOf(barrier: Barrier): BarrierHandle {
  return handleOf<BarrierHandle>(barrier);
}
