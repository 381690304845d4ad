/**
 * Unit tests of the owned mutex in `_atomics.ts`, under the locks and queues: ownership, waiting
 * and mutual exclusion between real worker threads.
 */
import { assert, assertEquals } from "@std/assert";
import {
  MUTEX_WORDS,
  mutexLockAsync,
  mutexLockSync,
  mutexOwner,
  mutexTryLock,
  mutexUnlock,
  mutexUnlockAs,
} from "../src/_atomics.ts";
import { Thread } from "../mod.ts";
import { countUnderMutex, sharedTargetsUrl } from "./fixtures/shared_targets.ts";

const words = (n = MUTEX_WORDS) => new Int32Array(new SharedArrayBuffer(n * 4));

Deno.test("Atomics mutex: tryLock takes a free mutex once and records its owner", () => {
  const i32 = words();
  assertEquals(mutexOwner(i32, 0), 0);
  assert(mutexTryLock(i32, 0, 7));
  assertEquals(mutexOwner(i32, 0), 7);
  assert(!mutexTryLock(i32, 0, 7), "a second tryLock, even by the owner, fails");
  assert(!mutexTryLock(i32, 0, 8));
  assertEquals(mutexOwner(i32, 0), 7);
});

Deno.test("Atomics mutex: unlockAs releases only for the owner and names the holder otherwise", () => {
  const i32 = words();
  assertEquals(mutexUnlockAs(i32, 0, 3), 0, "a free mutex reports no holder");
  mutexTryLock(i32, 0, 3);
  assertEquals(mutexUnlockAs(i32, 0, 4), 3, "another owner is told who holds it");
  assertEquals(mutexOwner(i32, 0), 3);
  assertEquals(mutexUnlockAs(i32, 0, 3), 3);
  assertEquals(mutexOwner(i32, 0), 0);
});

Deno.test("Atomics mutex: an async lock waits for the holder's unlock, then owns the mutex", async () => {
  const i32 = words();
  assert(mutexTryLock(i32, 0, 1));
  let acquired = false;
  const waiting = mutexLockAsync(i32, 0, 2).then((ok) => acquired = ok);
  await new Promise((resolve) => setTimeout(resolve, 30));
  assert(!acquired, "the lock was taken while held");
  // The waiter marked the mutex contended: the owner bits still say who holds it.
  assertEquals(mutexOwner(i32, 0), 1);
  mutexUnlock(i32, 0);
  await waiting;
  assert(acquired);
  assertEquals(mutexOwner(i32, 0), 2);
  assertEquals(mutexUnlockAs(i32, 0, 2), 2);
  assertEquals(i32[0], 0, "a released mutex is all zero, contended flag included");
});

Deno.test("Atomics mutex: a lock whose deadline passes while held returns false", async () => {
  const i32 = words();
  mutexTryLock(i32, 0, 1);
  const started = performance.now();
  assertEquals(await mutexLockAsync(i32, 0, 2, performance.now() + 40), false);
  assert(performance.now() - started >= 30);
  assertEquals(mutexLockSync(i32, 0, 2, performance.now()), false);
  assertEquals(mutexOwner(i32, 0), 1, "a lock that timed out leaves the holder in place");
});

Deno.test("Atomics mutex: an aborted signal ends an async wait", async () => {
  const i32 = words();
  mutexTryLock(i32, 0, 1);
  const controller = new AbortController();
  const waiting = mutexLockAsync(i32, 0, 2, Infinity, controller.signal);
  controller.abort(new Error("gone"));
  let error: unknown;
  try {
    await waiting;
  } catch (caught) {
    error = caught;
  }
  assertEquals((error as Error).message, "gone");
  assertEquals(mutexOwner(i32, 0), 1);
});

Deno.test("Atomics mutex: four threads counting under it lose no update", async () => {
  const i32 = words(3);
  const times = 500;
  const threads = [2, 3, 4, 5].map((owner) =>
    new Thread({ target: countUnderMutex, args: [i32, owner, times], module: sharedTargetsUrl })
  );
  for (const t of threads) t.start();
  // The main thread takes part with the async form.
  for (let i = 0; i < times; i++) {
    await mutexLockAsync(i32, 0, 1);
    const seen = i32[1];
    await Promise.resolve();
    i32[1] = seen + 1;
    mutexUnlock(i32, 0);
  }
  for (const t of threads) await t.join();
  for (const t of threads) assertEquals(t.error, undefined);
  assertEquals(i32[1], 5 * times);
  assertEquals(i32[0], 0);
});
