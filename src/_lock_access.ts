/**
 * The door between the lock classes and the other shared objects of this library, which need a
 * lock's internals (a Condition waits with them; a shared value refreshes its copy around them)
 * without making them public.
 *
 * @module
 */

/** Hooks that a shared value runs around its lock in a child process, to fetch and write back. */
export interface LockCompanion {
  /** After the lock was acquired: fetch the current data. */
  afterAcquire(): Promise<void>;
  /** Before the lock is released: send the changes. */
  beforeRelease(): void;
}

const internals = new WeakMap<object, unknown>();

/** Records the internals of `lock`. */
export function setLockInternals(lock: object, value: unknown): void {
  internals.set(lock, value);
}

/** The internals of `lock`, or undefined when it is not a Lock or RLock. */
export function getLockInternals<T>(lock: unknown): T | undefined {
  return typeof lock === "object" && lock !== null ? internals.get(lock) as T : undefined;
}
