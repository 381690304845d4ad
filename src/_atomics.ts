/**
 * The shared-memory machinery under the queues, locks and shared values: who is asking (an owner
 * id per thread), how to wait on a word of shared memory without blocking the event loop, and a
 * mutex whose owner is recorded so that a dead owner's hold can be undone.
 *
 * @module
 */
import { checkTimeoutMs } from "./_checks.ts";

/** A wait's outcome, as `Atomics.wait` reports it. */
export type WaitOutcome = "ok" | "not-equal" | "timed-out";

// ---------------------------------------------------------------------------------------------
// Who is asking

const CHILD_MARKER = Symbol.for("multiproc.child");
const OWNERS_KEY = Symbol.for("multiproc.owners");

interface OwnerState {
  /** This realm's owner id: 1 in the program's main thread, assigned by the parent elsewhere. */
  id: number;
  /** A counter that every realm of the program shares, so that ids never collide. */
  counter: Int32Array;
  /** Whether this realm is a worker thread, where blocking waits are allowed. */
  worker: boolean;
}

function ownerState(): OwnerState {
  const global = globalThis as Record<symbol, OwnerState | undefined>;
  let state = global[OWNERS_KEY];
  if (!state) {
    const child = Boolean((globalThis as Record<symbol, unknown>)[CHILD_MARKER]);
    const counter = new Int32Array(new SharedArrayBuffer(4));
    // A child that was never told its id (no shared object reached it yet) draws from a range of
    // its own, so that locks it makes and hands on do not confuse its children with its parent's.
    counter[0] = child ? 2 ** 20 + Math.floor(Math.random() * 2 ** 28) : 1;
    state = {
      id: child ? counter[0] : 1,
      counter,
      worker: "WorkerGlobalScope" in globalThis,
    };
    global[OWNERS_KEY] = state;
  }
  return state;
}

/** The owner id of the calling thread (or process), as recorded in the locks that it holds. */
export function currentOwnerId(): number {
  return (state ??= ownerState()).id;
}

// This realm's state, once looked up: the lock fast paths read the owner id on every call.
let state: OwnerState | undefined;

/** A new owner id, for a child about to start; unique across every thread of the program. */
export function allocateOwnerId(): number {
  return Atomics.add(ownerState().counter, 0, 1) + 1;
}

/** The shared id counter, which children adopt so that the ids they hand out stay unique. */
export function ownerCounter(): Int32Array {
  return ownerState().counter;
}

/** Adopts the identity that the parent gave this child. */
export function adoptOwner(id: number, counter: Int32Array | undefined, worker: boolean): void {
  const state = ownerState();
  state.id = id;
  if (counter) state.counter = counter;
  state.worker ||= worker;
}

/** Marks this realm as a worker thread (or not), where blocking waits are allowed. */
export function setWorkerThread(worker: boolean): void {
  ownerState().worker = worker;
}

/**
 * Throws unless the caller may block its thread with `Atomics.wait`: only worker threads may,
 * because a blocked main thread would stop the very event loop that serves the workers.
 */
export function assertCanBlock(what: string): void {
  if (!ownerState().worker) {
    throw new Error(
      `${what} blocks its thread and is only available inside a worker thread: use the async form with await here`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Waiting

// ES2024 API, typed here so that the npm build's ES2023 library does not need to know it.
const atomicsWaitAsync = (Atomics as unknown as {
  waitAsync(
    i32: Int32Array,
    index: number,
    value: number,
    timeoutMs: number,
  ): { async: false; value: WaitOutcome } | { async: true; value: Promise<WaitOutcome> };
}).waitAsync;

let pendingWaits = 0;
let aliveTimer: ReturnType<typeof setInterval> | undefined;

/**
 * Waits until `i32[index]` is notified or no longer `expected`, without blocking. An
 * `Atomics.waitAsync` alone does not keep Deno's event loop alive, so a ref'd timer is held for as
 * long as any wait is pending, as a real blocking call would hold the program; a wait in the
 * background (a watcher) passes `keepAlive` false.
 */
export function waitAsync(
  i32: Int32Array,
  index: number,
  expected: number,
  timeoutMs = Infinity,
  keepAlive = true,
): Promise<WaitOutcome> {
  const result = atomicsWaitAsync(i32, index, expected, timeoutMs);
  if (!result.async) return Promise.resolve(result.value);
  if (!keepAlive) return result.value;
  if (pendingWaits++ === 0) aliveTimer = setInterval(() => {}, 2 ** 30);
  return result.value.finally(() => {
    if (--pendingWaits === 0) clearInterval(aliveTimer);
  });
}

/**
 * Waits on `i32[index]` until `deadline`; with a `signal` (a broker wait for a child that may go
 * away) in short slices, rejecting with the signal's reason once it is aborted.
 */
export async function waitUntil(
  i32: Int32Array,
  index: number,
  expected: number,
  deadline: number,
  signal?: AbortSignal,
): Promise<void> {
  const left = remaining(deadline);
  await waitAsync(i32, index, expected, signal ? Math.min(left, 200) : left);
  signal?.throwIfAborted();
}

/** The time left until `deadline` (from `performance.now()`), never negative. */
export function remaining(deadline: number): number {
  return deadline === Infinity ? Infinity : Math.max(0, deadline - performance.now());
}

/** The deadline of a wait of `timeoutMs` (Infinity for none), after checking it. */
export function deadlineOf(timeoutMs: number | undefined, what?: string): number {
  if (checkTimeoutMs(timeoutMs, what) === undefined) return Infinity;
  return performance.now() + timeoutMs!;
}

// ---------------------------------------------------------------------------------------------
// A mutex with an owner, in one word: 0 when free, else the owner id, with CONTENDED set once a
// waiter may sleep on it. Taking and releasing it uncontended is one compare-and-swap each, as for
// a bare spin lock; the owner comes for free.

/** The number of Int32 words that a mutex takes. */
export const MUTEX_WORDS = 1;

const CONTENDED = 0x40000000;
const OWNER_BITS = CONTENDED - 1;

/** Takes the mutex if it is free; returns whether it did. */
export function mutexTryLock(i32: Int32Array, base: number, owner: number): boolean {
  return Atomics.compareExchange(i32, base, 0, owner) === 0;
}

/** One step of a contended acquisition: the value to sleep on, or 0 once the mutex is taken. */
function contendedStep(i32: Int32Array, base: number, owner: number): number {
  const seen = Atomics.load(i32, base);
  if (seen === 0) {
    // Others may sleep on it still, so it is taken marked contended.
    return Atomics.compareExchange(i32, base, 0, owner | CONTENDED) === 0 ? 0 : -1;
  }
  if ((seen & CONTENDED) !== 0) return seen;
  return Atomics.compareExchange(i32, base, seen, seen | CONTENDED) === seen
    ? seen | CONTENDED
    : -1;
}

/** Takes the mutex, blocking the thread; returns false when `deadline` passed first. */
export function mutexLockSync(
  i32: Int32Array,
  base: number,
  owner: number,
  deadline = Infinity,
): boolean {
  if (mutexTryLock(i32, base, owner)) return true;
  for (;;) {
    const value = contendedStep(i32, base, owner);
    if (value === 0) return true;
    if (value === -1) continue;
    const left = remaining(deadline);
    if (left === 0) return false;
    Atomics.wait(i32, base, value, left);
  }
}

/** Takes the mutex without blocking the thread; resolves false when `deadline` passed first. */
export async function mutexLockAsync(
  i32: Int32Array,
  base: number,
  owner: number,
  deadline = Infinity,
  signal?: AbortSignal,
): Promise<boolean> {
  if (mutexTryLock(i32, base, owner)) return true;
  for (;;) {
    const value = contendedStep(i32, base, owner);
    if (value === 0) return true;
    if (value === -1) continue;
    if (remaining(deadline) === 0) return false;
    await waitUntil(i32, base, value, deadline, signal);
  }
}

/** Releases the mutex, whoever holds it; the caller has checked the owner. */
export function mutexUnlock(i32: Int32Array, base: number): void {
  if ((Atomics.exchange(i32, base, 0) & CONTENDED) !== 0) Atomics.notify(i32, base, 1);
}

/**
 * Releases the mutex if `owner` holds it; returns the holder otherwise (0 when free), so that the
 * caller can say what went wrong.
 */
export function mutexUnlockAs(i32: Int32Array, base: number, owner: number): number {
  if (Atomics.compareExchange(i32, base, owner, 0) === owner) return owner;
  const seen = Atomics.load(i32, base);
  if ((seen & OWNER_BITS) !== owner) return seen & OWNER_BITS;
  mutexUnlock(i32, base);
  return owner;
}

/** The owner id of a held mutex, or 0 when it is free. */
export function mutexOwner(i32: Int32Array, base: number): number {
  return Atomics.load(i32, base) & OWNER_BITS;
}

/** The owned mutex at word `base` of `i32`, as an object: the functions above, bound to it. */
export class Mutex {
  /** The words. */
  readonly i32: Int32Array;
  /** The index of the mutex's word. */
  readonly base: number;

  /**
   * Binds the mutex at `i32[base]`.
   *
   * @param base The index of its word; its `MUTEX_WORDS` words must be reserved there.
   */
  constructor(i32: Int32Array, base = 0) {
    this.i32 = i32;
    this.base = base;
  }

  /** See {@linkcode mutexTryLock}. */
  tryLock(owner: number): boolean {
    return mutexTryLock(this.i32, this.base, owner);
  }

  /** See {@linkcode mutexLockSync}. */
  lockSync(owner: number, deadline = Infinity): boolean {
    return mutexLockSync(this.i32, this.base, owner, deadline);
  }

  /** See {@linkcode mutexLockAsync}. */
  lock(owner: number, deadline = Infinity, signal?: AbortSignal): Promise<boolean> {
    return mutexLockAsync(this.i32, this.base, owner, deadline, signal);
  }

  /** See {@linkcode mutexUnlock}. */
  unlock(): void {
    mutexUnlock(this.i32, this.base);
  }

  /** See {@linkcode mutexUnlockAs}. */
  unlockAs(owner: number): number {
    return mutexUnlockAs(this.i32, this.base, owner);
  }

  /** See {@linkcode mutexOwner}. */
  owner(): number {
    return mutexOwner(this.i32, this.base);
  }
}

// ---------------------------------------------------------------------------------------------
// Undoing a dead owner's holds

/** Something that can undo the holds of an owner that is gone. */
export interface OwnerAware {
  /**
   * Releases what `owner` holds. `abandoned` is false when the owner had no chance to release it
   * (a broker wait that completed after its process had gone), so no one needs warning.
   */
  releaseOwnedBy(owner: number, abandoned: boolean): void;
}

const ownerAware = new Set<WeakRef<OwnerAware>>();

/** Registers an object whose holds are undone when their owner's thread or process ends. */
export function trackOwnerAware(object: OwnerAware): void {
  ownerAware.add(new WeakRef(object));
}

/**
 * Undoes every hold of `owner`, a thread or process that has ended: its locks are released and
 * marked abandoned, and its place in internal queues is freed.
 */
export function releaseOwnedBy(owner: number, abandoned = true): void {
  for (const ref of ownerAware) {
    const object = ref.deref();
    if (object) object.releaseOwnedBy(owner, abandoned);
    else ownerAware.delete(ref);
  }
}
