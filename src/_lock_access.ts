/**
 * The door between the lock classes and the other shared objects of this library, which need a
 * lock's internals (a Condition waits with its state; a shared value refreshes its copy around it
 * in a child process) without making them public.
 *
 * @module
 */
import { maybeHandleOf, type Shared } from "./_shared.ts";
import type { LockCore, lockOps } from "./_sync_atomics.ts";

/** Hooks that a shared value runs around its lock in a child process, to fetch and write back. */
export interface LockCompanion {
  /** After the lock was acquired: fetch the current data. */
  afterAcquire(): Promise<void>;
  /** Before the lock is released: send the changes. */
  beforeRelease(): void;
}

/** What a child process keeps of a lock whose memory is in its parent. */
export class LockMirror {
  /** How many levels of the lock this process holds. */
  held = 0;
  /** The shared values guarded by the lock, whose copies follow it. */
  readonly companions: Set<LockCompanion> = new Set();

  /** Runs the companions' fetches, after the lock was taken. */
  async afterAcquire(): Promise<void> {
    for (const companion of this.companions) await companion.afterAcquire();
  }

  /** Runs the companions' sends, before the lock is released. */
  beforeRelease(): void {
    for (const companion of this.companions) companion.beforeRelease();
  }
}

/** The handle of a Lock or RLock. */
export type LockHandle = Shared<LockCore, Record<never, never>, typeof lockOps>;

/** The handle of `lock` when it is a Lock or RLock, else undefined. */
export function lockHandleOf(lock: unknown): LockHandle | undefined {
  const handle = maybeHandleOf<LockHandle>(lock);
  return handle && (handle.kind.kind === "lock" || handle.kind.kind === "rlock")
    ? handle
    : undefined;
}

/** The mirror of a lock in a child process, or undefined where its memory is shared. */
export function lockMirrorOf(handle: LockHandle): LockMirror | undefined {
  return handle.mirror as LockMirror | undefined;
}
