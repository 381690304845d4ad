/**
 * Synchronisation across threads and processes, as Python's `threading` and `multiprocessing`
 * offer it: {@linkcode Lock}, {@linkcode RLock}, {@linkcode Semaphore},
 * {@linkcode BoundedSemaphore}, {@linkcode Event}, {@linkcode Condition} and {@linkcode Barrier}.
 *
 * Each object keeps its state in a `SharedArrayBuffer` and waits with `Atomics`. Passed to a
 * `Thread`, it is the same object in the worker. Passed to a `Process`, it stays in the parent and
 * the child uses it through the parent's broker, with the same calls.
 *
 * Blocking calls are async (`await lock.acquire()`). Inside worker threads, sync forms that block
 * with `Atomics.wait` are offered too (`lock.acquireSync()`); the main thread may not block.
 *
 * Ownership: a lock is owned by the thread or process that acquired it (all async code of one
 * thread counts as that thread, as in Python). When a thread or process ends while it holds a lock,
 * the lock is released and the next acquisition fails once with an {@linkcode AbandonedLockError}.
 *
 * @module
 */
import {
  assertCanBlock,
  currentOwnerId,
  deadlineOf,
  MUTEX_WORDS,
  mutexLockAsync,
  mutexLockSync,
  mutexOwner,
  mutexTryLock,
  mutexUnlock,
  mutexUnlockAs,
  remaining,
  trackOwnerAware,
  waitUntil,
} from "./_atomics.ts";
import { brokerOp, registerBrokered } from "./_broker.ts";
import { getLockInternals, type LockCompanion, setLockInternals } from "./_lock_access.ts";
import { TimeoutError } from "./errors.ts";
import { registerErrorClassByName } from "./_error_records.ts";
import { checkInteger, checkOptions, checkTimeoutMs, describeValue } from "./_checks.ts";
import {
  type Descriptor,
  type Destination,
  encodeOne,
  newObjectId,
  registerReviver,
  rememberInstance,
  type RemoteChannel,
  type ReviveContext,
  reviveOnce,
  toDescriptor,
} from "./_revive.ts";

// ---------------------------------------------------------------------------------------------
// Errors

/**
 * A lock's owner (a thread or process) ended while it held the lock. The lock was released for it;
 * the first acquisition after that fails with this error, once, to say that whatever the lock
 * guarded may be half-updated. Acquire again to go on. This follows Win32's abandoned mutexes.
 *
 * @example
 * ```ts
 * import { AbandonedLockError } from "@multiproc/multiproc";
 *
 * const error = new AbandonedLockError("The lock's owner ended", { ownerId: 3 });
 * console.log(error.name, error.ownerId); // "AbandonedLockError" 3
 * ```
 */
export class AbandonedLockError extends Error {
  /** Always `"AbandonedLockError"`, also after the error crossed from a worker. */
  override name = "AbandonedLockError";
  /** The owner id of the thread or process that ended while holding the lock. */
  readonly ownerId: number;

  /**
   * Creates the error.
   *
   * @param message What happened, in a sentence.
   * @param options The owner id of the thread or process that ended.
   */
  constructor(message: string, options: { ownerId: number }) {
    super(message);
    this.ownerId = options.ownerId;
  }
}

/**
 * A {@linkcode Barrier} was broken: a party timed out, or it was aborted or reset while parties
 * waited, as Python's `threading.BrokenBarrierError`.
 *
 * @example
 * ```ts
 * import { BrokenBarrierError } from "@multiproc/multiproc";
 *
 * console.log(new BrokenBarrierError("The barrier is broken").name); // "BrokenBarrierError"
 * ```
 */
export class BrokenBarrierError extends Error {
  /** Always `"BrokenBarrierError"`, also after the error crossed from a worker. */
  override name = "BrokenBarrierError";
}

registerErrorClassByName(AbandonedLockError);
registerErrorClassByName(BrokenBarrierError);

// ---------------------------------------------------------------------------------------------
// Options

/** Options for the `acquire` methods of locks and semaphores. */
export interface AcquireOptions {
  /** When false, return at once with whether it was acquired. Defaults to true. */
  blocking?: boolean;
  /** The longest wait, in milliseconds; no limit when omitted. On timeout, `false`. */
  timeoutMs?: number;
}

/** Options for the `wait` methods of events, conditions and barriers. */
export interface SyncWaitOptions {
  /** The longest wait, in milliseconds; no limit when omitted. */
  timeoutMs?: number;
}

/** A deadline from a timeout that crossed from a child process (Infinity for none). */
function deadlineOfTimeout(timeoutMs: number): number {
  return timeoutMs === Infinity ? Infinity : performance.now() + timeoutMs;
}

/** The timeout to send to the broker for a deadline of this process. */
function timeoutOfDeadline(deadline: number): number {
  return deadline === Infinity ? Infinity : Math.max(0, deadline - performance.now());
}

function deadlineOfAcquire(options: AcquireOptions | undefined): number {
  if (options?.blocking === false) return 0;
  return deadlineOf(options?.timeoutMs);
}

interface Remote {
  channel: RemoteChannel;
  id: string;
}

// An object being rebuilt from a descriptor; its constructor takes its state from here.
let attaching: unknown;

function attach<T>(state: unknown, make: () => T): T {
  attaching = state;
  try {
    return make();
  } finally {
    attaching = undefined;
  }
}

function takeAttaching<T>(): T | undefined {
  const state = attaching as T | undefined;
  attaching = undefined;
  return state;
}

function sharedInt32(words: number): Int32Array {
  return new Int32Array(new SharedArrayBuffer(words * 4));
}

function remoteFrom(context: ReviveContext, id: string): Remote | undefined {
  return context.where === "process" ? { channel: context.remote!, id } : undefined;
}

function refuseForward(what: string): never {
  throw new TypeError(
    `${what} received from a parent process cannot be passed on to another thread or process; create it in the parent and pass it from there`,
  );
}

function checkCount(value: unknown, what: string, min: number): number {
  return checkInteger(value, what, { min })!;
}

// ---------------------------------------------------------------------------------------------
// The core of Lock and RLock

// Words: a mutex (holding the owner id), the recursion count of an RLock, and the id of an owner
// that ended while holding it.
const COUNT = MUTEX_WORDS;
const ABANDONED_BY = MUTEX_WORDS + 1;
const LOCK_WORDS = MUTEX_WORDS + 2;

/** What Lock and RLock share: the state in shared memory and the rules of ownership. */
class LockCore {
  readonly i32: Int32Array;
  readonly reentrant: boolean;

  constructor(i32: Int32Array, reentrant: boolean) {
    this.i32 = i32;
    this.reentrant = reentrant;
    trackOwnerAware(this);
  }

  #reenter(owner: number): boolean {
    if (!this.reentrant || mutexOwner(this.i32, 0) !== owner) return false;
    Atomics.add(this.i32, COUNT, 1);
    return true;
  }

  #taken(): true {
    if (Atomics.load(this.i32, ABANDONED_BY) !== 0) {
      const dead = Atomics.exchange(this.i32, ABANDONED_BY, 0);
      mutexUnlock(this.i32, 0);
      throw new AbandonedLockError(
        `The lock's previous owner (owner ${dead}) ended while it held the lock; the lock was released, and what it guarded may be inconsistent. Acquire it again to go on`,
        { ownerId: dead },
      );
    }
    if (this.reentrant) Atomics.store(this.i32, COUNT, 1);
    return true;
  }

  acquireSync(owner: number, deadline: number): boolean {
    if (mutexTryLock(this.i32, 0, owner)) return this.#taken();
    if (this.#reenter(owner)) return true;
    if (deadline === 0) return false;
    assertCanBlock("acquireSync()");
    return mutexLockSync(this.i32, 0, owner, deadline) && this.#taken();
  }

  async acquire(owner: number, deadline: number, signal?: AbortSignal): Promise<boolean> {
    if (mutexTryLock(this.i32, 0, owner)) return this.#taken();
    if (this.#reenter(owner)) return true;
    if (deadline === 0) return false;
    return await mutexLockAsync(this.i32, 0, owner, deadline, signal) && this.#taken();
  }

  release(owner: number): void {
    if (this.reentrant && mutexOwner(this.i32, 0) === owner) {
      if (Atomics.sub(this.i32, COUNT, 1) !== 1) return;
    }
    const holder = mutexUnlockAs(this.i32, 0, owner);
    if (holder === owner) return;
    if (holder === 0) throw new Error("Cannot release a lock that is not held");
    throw new Error(
      `Cannot release a lock held by another thread or process (owner ${holder}, caller ${owner})`,
    );
  }

  /** Releases every level of `owner`'s hold, for a condition wait; returns the levels. */
  releaseAll(owner: number): number {
    if (mutexOwner(this.i32, 0) !== owner) {
      throw new Error("Cannot wait on a condition whose lock is not held");
    }
    const count = this.reentrant ? Atomics.exchange(this.i32, COUNT, 0) : 1;
    mutexUnlock(this.i32, 0);
    return count;
  }

  /** Takes the lock back after a condition wait, with the levels that `releaseAll` returned. */
  async restore(owner: number, count: number, signal?: AbortSignal): Promise<void> {
    await mutexLockAsync(this.i32, 0, owner, Infinity, signal);
    this.#taken();
    if (this.reentrant) Atomics.store(this.i32, COUNT, count);
  }

  restoreSync(owner: number, count: number): void {
    mutexLockSync(this.i32, 0, owner);
    this.#taken();
    if (this.reentrant) Atomics.store(this.i32, COUNT, count);
  }

  owner(): number {
    return mutexOwner(this.i32, 0);
  }

  releaseOwnedBy(owner: number, abandoned: boolean): void {
    if (mutexOwner(this.i32, 0) !== owner) return;
    if (abandoned) Atomics.store(this.i32, ABANDONED_BY, owner);
    Atomics.store(this.i32, COUNT, 0);
    mutexUnlock(this.i32, 0);
  }

  brokerOp(op: string, args: unknown[], owner: number, signal: AbortSignal): unknown {
    switch (op) {
      case "acquire":
        return this.acquire(owner, deadlineOfTimeout(args[0] as number), signal);
      case "release":
        return this.release(owner);
      case "locked":
        return this.owner() !== 0;
    }
    throw new TypeError(`Unknown lock operation '${op}'`);
  }
}

/** The client side of a lock in a child process. */
class RemoteLock {
  readonly remote: Remote;
  held = 0;
  companions: Set<LockCompanion> = new Set();

  constructor(remote: Remote) {
    this.remote = remote;
  }

  async acquire(deadline: number): Promise<boolean> {
    const { channel, id } = this.remote;
    const acquired = await channel.call(id, "acquire", [timeoutOfDeadline(deadline)]) as boolean;
    if (acquired) {
      this.held++;
      for (const companion of this.companions) await companion.afterAcquire();
    }
    return acquired;
  }

  release(): void {
    this.remote.channel.throwDeferred(this.remote.id);
    if (this.held === 0) throw new Error("Cannot release a lock that is not held");
    if (this.held === 1) { for (const companion of this.companions) companion.beforeRelease(); }
    this.held--;
    this.remote.channel.cast(this.remote.id, "release");
  }
}

/** What Lock and RLock do, for the thread's own shared memory or through the broker. */
class LockImpl {
  readonly id: string;
  readonly core?: LockCore;
  readonly remote?: RemoteLock;
  readonly kind: "lock" | "rlock";

  constructor(kind: "lock" | "rlock") {
    const attached = takeAttaching<LockImpl>();
    this.kind = kind;
    if (attached) {
      this.id = attached.id;
      this.core = attached.core;
      this.remote = attached.remote;
    } else {
      this.id = newObjectId();
      this.core = new LockCore(sharedInt32(LOCK_WORDS), kind === "rlock");
    }
  }

  acquire(options: AcquireOptions | undefined): Promise<boolean> {
    try {
      const deadline = deadlineOfAcquire(options);
      if (this.remote) return this.remote.acquire(deadline);
      return this.core!.acquire(currentOwnerId(), deadline);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  acquireSync(options: AcquireOptions | undefined): boolean {
    if (this.remote) assertCanBlock("acquireSync() of a lock from a parent process");
    return this.core!.acquireSync(currentOwnerId(), deadlineOfAcquire(options));
  }

  async hold(options: SyncWaitOptions | undefined, release: () => void): Promise<LockHold> {
    if (!await this.acquire(options)) {
      throw new TimeoutError(`The lock was not acquired within ${options?.timeoutMs} ms`);
    }
    return { [Symbol.dispose]: release };
  }

  release(): void {
    if (this.remote) return this.remote.release();
    this.core!.release(currentOwnerId());
  }

  locked(): boolean {
    return this.core ? this.core.owner() !== 0 : this.remote!.held > 0;
  }

  descriptor(destination: Destination, ownerId: number): Descriptor {
    if (this.remote) refuseForward(this.kind === "lock" ? "A Lock" : "An RLock");
    if (destination === "process") {
      const core = this.core!;
      registerBrokered(this.id, { [brokerOp]: core.brokerOp.bind(core) }, ownerId);
      return { kind: this.kind, data: { id: this.id } };
    }
    return { kind: this.kind, data: { id: this.id, buffer: this.core!.i32.buffer } };
  }
}

function reviveLock(kind: "lock" | "rlock", data: unknown, context: ReviveContext): object {
  const { id, buffer } = data as { id: string; buffer?: SharedArrayBuffer };
  return reviveOnce(id, () => {
    const remote = remoteFrom(context, id);
    const state = remote
      ? { id, remote: new RemoteLock(remote) }
      : { id, core: new LockCore(new Int32Array(buffer!), kind === "rlock") };
    return attach(state, () => kind === "rlock" ? new RLock() : new Lock());
  });
}

/** The implementation behind a Lock or RLock. */
function lockImpl(lock: Lock | RLock): LockImpl {
  const impl = getLockInternals<LockImpl>(lock);
  if (!impl) {
    throw new TypeError(`Expected a Lock or RLock: received ${describeValue(lock)}`);
  }
  return impl;
}

/** A disposable hold on a lock: `using` releases it at the end of the scope. */
export interface LockHold {
  /** Releases the lock. */
  [Symbol.dispose](): void;
}

/**
 * A mutual-exclusion lock, as Python's `threading.Lock` / `multiprocessing.Lock`, for threads and
 * processes alike. It is not re-entrant: a second acquisition by its holder waits like any other.
 * Its holder is recorded, so that `release()` by anyone else throws, and a holder that ends while
 * holding it does not deadlock the others (see {@linkcode AbandonedLockError}).
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
  #impl: LockImpl;

  /** Creates an unlocked lock. */
  constructor() {
    this.#impl = new LockImpl("lock");
    setLockInternals(this, this.#impl);
    rememberInstance(this.#impl.id, this);
  }

  /**
   * Acquires the lock, waiting without blocking the thread.
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while.
   * @returns Whether the lock was acquired, as Python's `acquire()` returns.
   * @throws {AbandonedLockError} (as a rejection) Once, when the previous holder ended while
   * holding the lock; the lock is then free again.
   * @throws {RangeError} (as a rejection) When `timeoutMs` is negative or not a number.
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#impl.acquire(options);
  }

  /**
   * Acquires the lock, blocking the thread with `Atomics.wait`; only inside worker threads.
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while.
   * @returns Whether the lock was acquired.
   * @throws {Error} When it would block the main thread, or for a lock of a parent process.
   * @throws {AbandonedLockError} Once, when the previous holder ended while holding the lock.
   */
  acquireSync(options?: AcquireOptions): boolean {
    return this.#impl.acquireSync(options);
  }

  /**
   * Acquires the lock and returns a hold that `using` releases at the end of the scope.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns The hold.
   * @throws {TimeoutError} (as a rejection) When `timeoutMs` passed first.
   */
  hold(options?: SyncWaitOptions): Promise<LockHold> {
    return this.#impl.hold(options, () => this.release());
  }

  /**
   * Releases the lock; the caller must hold it.
   *
   * @throws {Error} When the lock is not held, or is held by another thread or process.
   */
  release(): void {
    this.#impl.release();
  }

  /**
   * Whether some thread or process holds the lock.
   *
   * @returns True while it is held.
   */
  locked(): boolean {
    return this.#impl.locked();
  }

  /** The owner id of the holder, or null when free or when not known here (in a child process). */
  get ownerId(): number | null {
    return this.#impl.core?.owner() || null;
  }

  /** Releases the lock at the end of a `using` scope, for a lock acquired before it. */
  [Symbol.dispose](): void {
    this.release();
  }

  /**
   * The crossing to a child; called by multiproc when the lock is passed to a thread or process.
   *
   * @param destination Where the lock goes.
   * @param ownerId The owner id of the child.
   * @returns The descriptor.
   * @ignore
   */
  [toDescriptor](destination: Destination, ownerId: number): Descriptor {
    return this.#impl.descriptor(destination, ownerId);
  }
}

registerReviver("lock", (data, context) => reviveLock("lock", data, context));

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
  #impl: LockImpl;

  /** Creates an unlocked re-entrant lock. */
  constructor() {
    this.#impl = new LockImpl("rlock");
    setLockInternals(this, this.#impl);
    rememberInstance(this.#impl.id, this);
  }

  /**
   * Acquires the lock, or one more level of it for its holder.
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while.
   * @returns Whether the lock was acquired.
   * @throws {AbandonedLockError} (as a rejection) Once, after a holder ended while holding it.
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#impl.acquire(options);
  }

  /**
   * Acquires the lock, blocking the thread; only inside worker threads.
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while.
   * @returns Whether the lock was acquired.
   * @throws {Error} When it would block the main thread, or for a lock of a parent process.
   */
  acquireSync(options?: AcquireOptions): boolean {
    return this.#impl.acquireSync(options);
  }

  /**
   * Acquires the lock and returns a hold that `using` releases at the end of the scope.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns The hold.
   * @throws {TimeoutError} (as a rejection) When `timeoutMs` passed first.
   */
  hold(options?: SyncWaitOptions): Promise<LockHold> {
    return this.#impl.hold(options, () => this.release());
  }

  /**
   * Releases one level of the lock; the caller must hold it.
   *
   * @throws {Error} When the caller does not hold the lock.
   */
  release(): void {
    this.#impl.release();
  }

  /**
   * Whether some thread or process holds the lock.
   *
   * @returns True while it is held.
   */
  locked(): boolean {
    return this.#impl.locked();
  }

  /** Releases one level at the end of a `using` scope. */
  [Symbol.dispose](): void {
    this.release();
  }

  /**
   * The crossing to a child; called by multiproc when the lock is passed to a thread or process.
   *
   * @param destination Where the lock goes.
   * @param ownerId The owner id of the child.
   * @returns The descriptor.
   * @ignore
   */
  [toDescriptor](destination: Destination, ownerId: number): Descriptor {
    return this.#impl.descriptor(destination, ownerId);
  }
}

registerReviver("rlock", (data, context) => reviveLock("rlock", data, context));

// ---------------------------------------------------------------------------------------------
// Helpers of the objects below: a state in shared memory here, or a client of the broker

interface SharedState {
  id: string;
  i32?: Int32Array;
  remote?: Remote;
  /** Fixed settings (a semaphore's bound, a barrier's parties), sent along with the buffer. */
  config: Record<string, unknown>;
}

function newState(words: number, config: Record<string, unknown>): SharedState {
  return takeAttaching<SharedState>() ?? { id: newObjectId(), i32: sharedInt32(words), config };
}

function describeState(
  kind: string,
  state: SharedState,
  what: string,
  destination: Destination,
  ownerId: number,
  op: (op: string, args: unknown[], owner: number, signal: AbortSignal) => unknown,
  extra: Record<string, unknown> = {},
): Descriptor {
  if (state.remote) refuseForward(what);
  if (destination === "process") {
    registerBrokered(state.id, { [brokerOp]: op }, ownerId);
    return { kind, data: { id: state.id, config: state.config, ...extra } };
  }
  return {
    kind,
    data: { id: state.id, buffer: state.i32!.buffer, config: state.config, ...extra },
  };
}

function registerStateReviver(kind: string, make: () => object): void {
  registerReviver(kind, (data, context) => {
    const { id, buffer, config } = data as {
      id: string;
      buffer?: SharedArrayBuffer;
      config: Record<string, unknown>;
    };
    return reviveOnce(id, () => {
      const remote = remoteFrom(context, id);
      const state: SharedState = remote
        ? { id, remote, config }
        : { id, i32: new Int32Array(buffer!), config };
      return attach(state, make);
    });
  });
}

function call(remote: Remote, op: string, args: unknown[] = []): Promise<unknown> {
  return remote.channel.call(remote.id, op, args);
}

function cast(remote: Remote, op: string, args: unknown[] = []): void {
  remote.channel.cast(remote.id, op, args);
}

// ---------------------------------------------------------------------------------------------
// Semaphore and BoundedSemaphore

const SEM_VALUE = 0;
const SEM_WAITERS = 1;

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

function semAcquireSync(i32: Int32Array, deadline: number): boolean {
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

function semRelease(i32: Int32Array, n: number, bound: number | undefined): void {
  checkCount(n, "n", 1);
  for (;;) {
    const value = Atomics.load(i32, SEM_VALUE);
    if (bound !== undefined && value + n > bound) {
      throw new RangeError(
        `Semaphore released too many times: its value would exceed its bound ${bound}`,
      );
    }
    if (Atomics.compareExchange(i32, SEM_VALUE, value, value + n) === value) break;
  }
  if (Atomics.load(i32, SEM_WAITERS) > 0) Atomics.notify(i32, SEM_VALUE, n);
}

/** Options for {@linkcode Semaphore} and {@linkcode BoundedSemaphore}. */
export interface SemaphoreOptions {
  /** The initial count: how many holders it admits at once. Defaults to 1. */
  value?: number;
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
 * const slots = new Semaphore({ value: 2 });
 * console.log(await slots.acquire(), await slots.acquire()); // true true
 * console.log(await slots.acquire({ blocking: false })); // false
 * slots.release();
 * console.log(slots.value); // 1
 * ```
 */
export class Semaphore {
  #state: SharedState;
  #bounded: boolean;

  /**
   * Creates a semaphore.
   *
   * @param options The initial count (`value`, default 1).
   * @throws {RangeError} When `value` is not a non-negative integer.
   */
  constructor(options: SemaphoreOptions = {}) {
    this.#bounded = this instanceof BoundedSemaphore;
    const attached = takeAttaching<SharedState>();
    if (attached) {
      this.#state = attached;
    } else {
      checkOptions(options, this.#bounded ? "BoundedSemaphore" : "Semaphore", ["value"]);
      const value = checkCount(options.value ?? 1, "value", 0);
      this.#state = attach(undefined, () => newState(2, { bound: value }));
      Atomics.store(this.#state.i32!, SEM_VALUE, value);
    }
    rememberInstance(this.#state.id, this);
  }

  /**
   * Takes one from the count, waiting while it is 0.
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while.
   * @returns Whether it was acquired.
   * @throws {RangeError} (as a rejection) When `timeoutMs` is negative or not a number.
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    try {
      const deadline = deadlineOfAcquire(options);
      const { i32, remote } = this.#state;
      if (remote) return call(remote, "acquire", [timeoutOfDeadline(deadline)]) as Promise<boolean>;
      return semAcquire(i32!, deadline);
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Takes one from the count, blocking the thread; only inside worker threads.
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while.
   * @returns Whether it was acquired.
   * @throws {Error} When it would block the main thread, or for a semaphore of a parent process.
   */
  acquireSync(options?: AcquireOptions): boolean {
    if (this.#state.remote) assertCanBlock("acquireSync() of a semaphore from a parent process");
    return semAcquireSync(this.#state.i32!, deadlineOfAcquire(options));
  }

  /**
   * Gives `n` back to the count and wakes as many waiters.
   *
   * @param n How many to give back; 1 by default.
   * @throws {RangeError} For a {@linkcode BoundedSemaphore}, when the count would exceed its
   * initial value.
   */
  release(n = 1): void {
    const { i32, remote, config } = this.#state;
    const bound = this.#bounded ? config.bound as number : undefined;
    if (remote) return cast(remote, "release", [n]);
    semRelease(i32!, n, bound);
  }

  /** The current count; NaN in a child process, which sees the semaphore through the broker. */
  get value(): number {
    return this.#state.i32 ? Atomics.load(this.#state.i32, SEM_VALUE) : NaN;
  }

  /** Gives one back at the end of a `using` scope, for a semaphore acquired before it. */
  [Symbol.dispose](): void {
    this.release();
  }

  /**
   * The crossing to a child; called by multiproc when the semaphore is passed on.
   *
   * @param destination Where it goes.
   * @param ownerId The owner id of the child.
   * @returns The descriptor.
   * @ignore
   */
  [toDescriptor](destination: Destination, ownerId: number): Descriptor {
    const kind = this.#bounded ? "bounded-semaphore" : "semaphore";
    return describeState(
      kind,
      this.#state,
      "A Semaphore",
      destination,
      ownerId,
      (op, args, _o, signal) => {
        const i32 = this.#state.i32!;
        if (op === "acquire") return semAcquire(i32, deadlineOfTimeout(args[0] as number), signal);
        if (op === "release") {
          return semRelease(
            i32,
            args[0] as number,
            this.#bounded ? this.#state.config.bound as number : undefined,
          );
        }
        throw new TypeError(`Unknown semaphore operation '${op}'`);
      },
    );
  }
}

/**
 * A semaphore whose count may not exceed its initial value, as Python's `BoundedSemaphore`: a
 * `release()` too many throws, which catches a release without its acquire.
 *
 * @example
 * ```ts
 * import { BoundedSemaphore } from "@multiproc/multiproc";
 *
 * const slots = new BoundedSemaphore({ value: 1 });
 * try {
 *   slots.release();
 * } catch (error) {
 *   console.log((error as Error).name); // "RangeError"
 * }
 * ```
 */
export class BoundedSemaphore extends Semaphore {}

registerStateReviver("semaphore", () => new Semaphore());
registerStateReviver("bounded-semaphore", () => new BoundedSemaphore());

// ---------------------------------------------------------------------------------------------
// Event

const EVENT_FLAG = 0;

async function eventWait(i32: Int32Array, deadline: number, signal?: AbortSignal) {
  while (Atomics.load(i32, EVENT_FLAG) === 0) {
    if (remaining(deadline) === 0) return false;
    await waitUntil(i32, EVENT_FLAG, 0, deadline, signal);
  }
  return true;
}

function eventSet(i32: Int32Array, on: boolean): void {
  Atomics.store(i32, EVENT_FLAG, on ? 1 : 0);
  if (on) Atomics.notify(i32, EVENT_FLAG);
}

/**
 * A flag that threads and processes wait for, as Python's `Event`: `set()` wakes every waiter,
 * and later waits return at once until `clear()`.
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
  #state: SharedState;
  #lastSeen = false;

  /** Creates an event whose flag is not set. */
  constructor() {
    this.#state = newState(1, {});
    rememberInstance(this.#state.id, this);
  }

  /**
   * Whether the flag is set. In a child process, the state as last seen by this process.
   *
   * @returns The flag.
   */
  isSet(): boolean {
    return this.#state.i32 ? Atomics.load(this.#state.i32, EVENT_FLAG) === 1 : this.#lastSeen;
  }

  /** Sets the flag and wakes every waiter. */
  set(): void {
    this.#lastSeen = true;
    if (this.#state.remote) return cast(this.#state.remote, "set");
    eventSet(this.#state.i32!, true);
  }

  /** Clears the flag. */
  clear(): void {
    this.#lastSeen = false;
    if (this.#state.remote) return cast(this.#state.remote, "clear");
    eventSet(this.#state.i32!, false);
  }

  /**
   * Waits until the flag is set.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns True when the flag is set, false when the time ran out, as in Python.
   * @throws {RangeError} (as a rejection) When `timeoutMs` is negative or not a number.
   */
  async wait(options?: SyncWaitOptions): Promise<boolean> {
    const deadline = deadlineOf(options?.timeoutMs);
    const { i32, remote } = this.#state;
    if (remote) {
      return this.#lastSeen = await call(remote, "wait", [timeoutOfDeadline(deadline)]) as boolean;
    }
    return eventWait(i32!, deadline);
  }

  /**
   * Waits until the flag is set, blocking the thread; only inside worker threads.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns True when the flag is set, false when the time ran out.
   * @throws {Error} When it would block the main thread, or for an event of a parent process.
   */
  waitSync(options?: SyncWaitOptions): boolean {
    const deadline = deadlineOf(options?.timeoutMs);
    const i32 = this.#state.i32;
    if (!i32 || Atomics.load(i32, EVENT_FLAG) === 0) assertCanBlock("waitSync()");
    while (Atomics.load(i32!, EVENT_FLAG) === 0) {
      if (remaining(deadline) === 0) return false;
      Atomics.wait(i32!, EVENT_FLAG, 0, remaining(deadline));
    }
    return true;
  }

  /**
   * The crossing to a child; called by multiproc when the event is passed on.
   *
   * @param destination Where it goes.
   * @param ownerId The owner id of the child.
   * @returns The descriptor.
   * @ignore
   */
  [toDescriptor](destination: Destination, ownerId: number): Descriptor {
    return describeState(
      "event",
      this.#state,
      "An Event",
      destination,
      ownerId,
      (op, args, _o, signal) => {
        const i32 = this.#state.i32!;
        if (op === "wait") return eventWait(i32, deadlineOfTimeout(args[0] as number), signal);
        if (op === "set" || op === "clear") return eventSet(i32, op === "set");
        throw new TypeError(`Unknown event operation '${op}'`);
      },
    );
  }
}

registerStateReviver("event", () => new Event());

// ---------------------------------------------------------------------------------------------
// Condition

// Words: waiters and pending wake-ups packed in one word (waiters << 16 | wake-ups), so that a
// wake-up is handed to exactly one waiter; and a sequence number that waiters sleep on.
const COND_PACKED = 0;
const COND_SEQ = 1;
const ONE_WAITER = 1 << 16;

function condTakeWakeup(i32: Int32Array, leaving: boolean): boolean {
  for (;;) {
    const packed = Atomics.load(i32, COND_PACKED);
    if ((packed & 0xffff) > 0) {
      if (Atomics.compareExchange(i32, COND_PACKED, packed, packed - ONE_WAITER - 1) === packed) {
        return true;
      }
    } else if (!leaving) {
      return false;
    } else if (
      Atomics.compareExchange(i32, COND_PACKED, packed, packed - ONE_WAITER) === packed
    ) {
      return false;
    }
  }
}

async function condWait(
  i32: Int32Array,
  lock: LockCore,
  owner: number,
  deadline: number,
  signal?: AbortSignal,
): Promise<boolean> {
  if (lock.owner() !== owner) throw new Error("Cannot wait on a condition whose lock is not held");
  Atomics.add(i32, COND_PACKED, ONE_WAITER);
  const levels = lock.releaseAll(owner);
  let notified = false;
  try {
    for (;;) {
      const seq = Atomics.load(i32, COND_SEQ);
      if (condTakeWakeup(i32, false)) {
        notified = true;
        break;
      }
      if (remaining(deadline) === 0) {
        notified = condTakeWakeup(i32, true);
        break;
      }
      await waitUntil(i32, COND_SEQ, seq, deadline, signal);
    }
  } catch (error) {
    condTakeWakeup(i32, true);
    throw error;
  }
  await lock.restore(owner, levels, signal);
  return notified;
}

function condWaitSync(i32: Int32Array, lock: LockCore, owner: number, deadline: number): boolean {
  if (lock.owner() !== owner) throw new Error("Cannot wait on a condition whose lock is not held");
  assertCanBlock("waitSync()");
  Atomics.add(i32, COND_PACKED, ONE_WAITER);
  const levels = lock.releaseAll(owner);
  let notified = false;
  for (;;) {
    const seq = Atomics.load(i32, COND_SEQ);
    if (condTakeWakeup(i32, false)) {
      notified = true;
      break;
    }
    if (remaining(deadline) === 0) {
      notified = condTakeWakeup(i32, true);
      break;
    }
    Atomics.wait(i32, COND_SEQ, seq, remaining(deadline));
  }
  lock.restoreSync(owner, levels);
  return notified;
}

function condNotify(i32: Int32Array, lock: LockCore, owner: number, n: number): void {
  if (lock.owner() !== owner) {
    throw new Error("Cannot notify on a condition whose lock is not held");
  }
  for (;;) {
    const packed = Atomics.load(i32, COND_PACKED);
    const waiters = packed >>> 16;
    const wakeups = packed & 0xffff;
    const add = Math.min(n, waiters - wakeups);
    if (add <= 0) return;
    if (Atomics.compareExchange(i32, COND_PACKED, packed, packed + add) === packed) break;
  }
  Atomics.add(i32, COND_SEQ, 1);
  Atomics.notify(i32, COND_SEQ);
}

/** Options for {@linkcode Condition}. */
export interface ConditionOptions {
  /** The lock to wait with; a new {@linkcode RLock} when omitted, as in Python. */
  lock?: Lock | RLock;
}

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
  #state: SharedState;
  #lock: Lock | RLock;

  /**
   * Creates a condition.
   *
   * @param options The lock to use (`lock`); a new RLock by default.
   * @throws {TypeError} When `lock` is not a Lock or RLock.
   */
  constructor(options: ConditionOptions = {}) {
    const attached = takeAttaching<SharedState & { lock: Lock | RLock }>();
    if (!attached) checkOptions(options, "Condition", ["lock"]);
    this.#state = attached ?? { id: newObjectId(), i32: sharedInt32(2), config: {} };
    this.#lock = attached?.lock ?? options.lock ?? new RLock();
    lockImpl(this.#lock);
    rememberInstance(this.#state.id, this);
  }

  /** The condition's lock. */
  get lock(): Lock | RLock {
    return this.#lock;
  }

  /**
   * Acquires the condition's lock.
   *
   * @param options `blocking: false` to try once; `timeoutMs` to give up after a while.
   * @returns Whether it was acquired.
   */
  acquire(options?: AcquireOptions): Promise<boolean> {
    return this.#lock.acquire(options);
  }

  /**
   * Releases the condition's lock.
   *
   * @throws {Error} When the caller does not hold it.
   */
  release(): void {
    this.#lock.release();
  }

  /**
   * Acquires the lock and returns a hold that `using` releases at the end of the scope.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns The hold.
   */
  hold(options?: SyncWaitOptions): Promise<LockHold> {
    return this.#lock.hold(options);
  }

  /**
   * Releases the lock, waits for a `notify`, and takes the lock back before it returns.
   *
   * @param options `timeoutMs` to give up after a while.
   * @returns True when notified, false when the time ran out.
   * @throws {Error} (as a rejection) When the caller does not hold the lock.
   */
  async wait(options?: SyncWaitOptions): Promise<boolean> {
    const deadline = deadlineOf(options?.timeoutMs);
    const impl = lockImpl(this.#lock);
    if (this.#state.remote) {
      if (!impl.remote || impl.remote.held === 0) {
        throw new Error("Cannot wait on a condition whose lock is not held");
      }
      return await call(this.#state.remote, "wait", [timeoutOfDeadline(deadline)]) as boolean;
    }
    return condWait(this.#state.i32!, impl.core!, currentOwnerId(), deadline);
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
    const deadline = deadlineOf(options?.timeoutMs);
    const impl = lockImpl(this.#lock);
    if (this.#state.remote) assertCanBlock("waitSync() of a condition from a parent process");
    return condWaitSync(this.#state.i32!, impl.core!, currentOwnerId(), deadline);
  }

  /**
   * Waits until `predicate()` is truthy, as Python's `wait_for`.
   *
   * @param predicate Checked with the lock held, before each wait.
   * @param options `timeoutMs` to give up after a while.
   * @returns The predicate's last value.
   */
  async waitFor<T>(predicate: () => T, options?: SyncWaitOptions): Promise<T> {
    const deadline = deadlineOf(options?.timeoutMs);
    let result = predicate();
    while (!result) {
      const left = remaining(deadline);
      if (left === 0) break;
      await this.wait(left === Infinity ? {} : { timeoutMs: left });
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
    checkCount(n, "n", 1);
    const impl = lockImpl(this.#lock);
    if (this.#state.remote) {
      if (!impl.remote || impl.remote.held === 0) {
        throw new Error("Cannot notify on a condition whose lock is not held");
      }
      cast(this.#state.remote, "notify", [n]);
      return true;
    }
    const before = Atomics.load(this.#state.i32!, COND_PACKED);
    condNotify(this.#state.i32!, impl.core!, currentOwnerId(), n);
    return (before >>> 16) > (before & 0xffff);
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

  /**
   * The crossing to a child; called by multiproc when the condition is passed on.
   *
   * @param destination Where it goes.
   * @param ownerId The owner id of the child.
   * @returns The descriptor.
   * @ignore
   */
  [toDescriptor](destination: Destination, ownerId: number): Descriptor {
    const lock = encodeOne(this.#lock, { destination, ownerId });
    return describeState(
      "condition",
      this.#state,
      "A Condition",
      destination,
      ownerId,
      (op, args, owner, signal) => {
        const i32 = this.#state.i32!;
        const core = lockImpl(this.#lock).core!;
        if (op === "wait") {
          return condWait(i32, core, owner, deadlineOfTimeout(args[0] as number), signal);
        }
        if (op === "notify") return condNotify(i32, core, owner, args[0] as number);
        throw new TypeError(`Unknown condition operation '${op}'`);
      },
      { lock },
    );
  }
}

registerReviver("condition", (data, context) => {
  const { id, buffer, lock } = data as { id: string; buffer?: SharedArrayBuffer; lock: unknown };
  return reviveOnce(id, () => {
    const remote = remoteFrom(context, id);
    const state = {
      id,
      config: {},
      lock: context.revive(lock) as Lock | RLock,
      ...(remote ? { remote } : { i32: new Int32Array(buffer!) }),
    };
    return attach(state, () => new Condition());
  });
});

// ---------------------------------------------------------------------------------------------
// Barrier

// Words: arrivals in this round, the round (generation), the round that was broken plus one, and
// whether the barrier stays broken until reset.
const BAR_COUNT = 0;
const BAR_GEN = 1;
const BAR_BROKEN_GEN = 2;
const BAR_BROKEN = 3;

function barrierBreak(i32: Int32Array, permanently: boolean): void {
  if (permanently) Atomics.store(i32, BAR_BROKEN, 1);
  Atomics.store(i32, BAR_BROKEN_GEN, Atomics.load(i32, BAR_GEN) + 1);
  Atomics.notify(i32, BAR_GEN);
}

async function barrierWait(
  i32: Int32Array,
  parties: number,
  deadline: number,
  signal?: AbortSignal,
): Promise<number> {
  const broken = () => new BrokenBarrierError("The barrier is broken");
  if (Atomics.load(i32, BAR_BROKEN) === 1) throw broken();
  const gen = Atomics.load(i32, BAR_GEN);
  const index = Atomics.add(i32, BAR_COUNT, 1);
  if (index === parties - 1) {
    Atomics.store(i32, BAR_COUNT, 0);
    Atomics.add(i32, BAR_GEN, 1);
    Atomics.notify(i32, BAR_GEN);
    return index;
  }
  for (;;) {
    if (Atomics.load(i32, BAR_BROKEN_GEN) === gen + 1) throw broken();
    if (Atomics.load(i32, BAR_GEN) !== gen) return index;
    if (remaining(deadline) === 0) {
      // As in Python, a party that times out breaks the barrier for all.
      barrierBreak(i32, true);
      throw broken();
    }
    try {
      await waitUntil(i32, BAR_GEN, gen, deadline, signal);
    } catch (error) {
      barrierBreak(i32, true);
      throw error;
    }
  }
}

function barrierWaitSync(i32: Int32Array, parties: number, deadline: number): number {
  const broken = () => new BrokenBarrierError("The barrier is broken");
  if (Atomics.load(i32, BAR_BROKEN) === 1) throw broken();
  const gen = Atomics.load(i32, BAR_GEN);
  const index = Atomics.add(i32, BAR_COUNT, 1);
  if (index === parties - 1) {
    Atomics.store(i32, BAR_COUNT, 0);
    Atomics.add(i32, BAR_GEN, 1);
    Atomics.notify(i32, BAR_GEN);
    return index;
  }
  for (;;) {
    if (Atomics.load(i32, BAR_BROKEN_GEN) === gen + 1) throw broken();
    if (Atomics.load(i32, BAR_GEN) !== gen) return index;
    if (remaining(deadline) === 0) {
      barrierBreak(i32, true);
      throw broken();
    }
    Atomics.wait(i32, BAR_GEN, gen, remaining(deadline));
  }
}

/** Options for {@linkcode Barrier}. */
export interface BarrierOptions {
  /** The default timeout of `wait()`, in milliseconds; none when omitted. */
  timeoutMs?: number;
}

/**
 * A barrier for a fixed number of parties, as Python's `Barrier`: each `wait()` waits until all
 * `parties` have called it, then all are released together, and the barrier can be used again.
 *
 * @example
 * ```ts
 * import { Barrier, Thread } from "@multiproc/multiproc";
 *
 * const barrier = new Barrier(3);
 * const threads = [1, 2].map(() =>
 *   new Thread({ target: (b: Barrier) => b.wait(), args: [barrier] })
 * );
 * for (const t of threads) t.start();
 * const mine = await barrier.wait();
 * for (const t of threads) await t.join();
 * console.log([mine, ...threads.map((t) => t.result)].sort()); // [0, 1, 2]
 * ```
 */
export class Barrier {
  #state: SharedState;

  /**
   * Creates a barrier.
   *
   * @param parties How many parties must call `wait()` before any is released.
   * @param options A default `timeoutMs` for `wait()`.
   * @throws {RangeError} When `parties` is not a positive integer, or `timeoutMs` is invalid.
   */
  constructor(parties: number, options: BarrierOptions = {}) {
    const attached = takeAttaching<SharedState>();
    if (attached) {
      this.#state = attached;
    } else {
      checkCount(parties, "parties", 1);
      checkOptions(options, "Barrier", ["timeoutMs"], "pass { timeoutMs }");
      checkTimeoutMs(options.timeoutMs, "Barrier");
      this.#state = { id: newObjectId(), i32: sharedInt32(4), config: { parties, ...options } };
    }
    rememberInstance(this.#state.id, this);
  }

  /** How many parties the barrier waits for. */
  get parties(): number {
    return this.#state.config.parties as number;
  }

  /** How many parties wait at the barrier now (unknown, NaN, in a child process). */
  get nWaiting(): number {
    return this.#state.i32 ? Atomics.load(this.#state.i32, BAR_COUNT) : NaN;
  }

  /** Whether the barrier is broken (false in a child process until a wait finds out). */
  get broken(): boolean {
    return this.#state.i32 ? Atomics.load(this.#state.i32, BAR_BROKEN) === 1 : false;
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
    try {
      const timeoutMs = options?.timeoutMs ?? this.#state.config.timeoutMs as number | undefined;
      const deadline = deadlineOf(timeoutMs);
      const { i32, remote } = this.#state;
      if (remote) return call(remote, "wait", [timeoutOfDeadline(deadline)]) as Promise<number>;
      return barrierWait(i32!, this.parties, deadline);
    } catch (error) {
      return Promise.reject(error);
    }
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
    const timeoutMs = options?.timeoutMs ?? this.#state.config.timeoutMs as number | undefined;
    const deadline = deadlineOf(timeoutMs);
    assertCanBlock("waitSync()");
    if (this.#state.remote) assertCanBlock("waitSync() of a barrier from a parent process");
    return barrierWaitSync(this.#state.i32!, this.parties, deadline);
  }

  /** Breaks the barrier: current and later waits reject until `reset()`. */
  abort(): void {
    if (this.#state.remote) return cast(this.#state.remote, "abort");
    barrierBreak(this.#state.i32!, true);
  }

  /** Returns the barrier to its initial state; parties waiting now get a `BrokenBarrierError`. */
  reset(): void {
    if (this.#state.remote) return cast(this.#state.remote, "reset");
    const i32 = this.#state.i32!;
    Atomics.store(i32, BAR_BROKEN_GEN, Atomics.load(i32, BAR_GEN) + 1);
    Atomics.store(i32, BAR_COUNT, 0);
    Atomics.store(i32, BAR_BROKEN, 0);
    Atomics.add(i32, BAR_GEN, 1);
    Atomics.notify(i32, BAR_GEN);
  }

  /**
   * The crossing to a child; called by multiproc when the barrier is passed on.
   *
   * @param destination Where it goes.
   * @param ownerId The owner id of the child.
   * @returns The descriptor.
   * @ignore
   */
  [toDescriptor](destination: Destination, ownerId: number): Descriptor {
    return describeState(
      "barrier",
      this.#state,
      "A Barrier",
      destination,
      ownerId,
      (op, args, _o, signal) => {
        if (op === "wait") {
          return barrierWait(
            this.#state.i32!,
            this.parties,
            deadlineOfTimeout(args[0] as number),
            signal,
          );
        }
        if (op === "abort") return this.abort();
        if (op === "reset") return this.reset();
        throw new TypeError(`Unknown barrier operation '${op}'`);
      },
    );
  }
}

registerStateReviver("barrier", () => new Barrier(1));
