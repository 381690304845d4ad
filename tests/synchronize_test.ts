import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  AbandonedLockError,
  Barrier,
  BoundedSemaphore,
  BrokenBarrierError,
  Condition,
  Event,
  Lock,
  Process,
  Queue,
  RLock,
  Semaphore,
  SharedArray,
  Thread,
  Value,
} from "../mod.ts";
import { passOn, sharedTargetsUrl } from "./fixtures/shared_targets.ts";

type Kind = typeof Thread | typeof Process;

function startAll(
  Kind: Kind,
  count: number,
  target: (...args: never[]) => unknown,
  args: unknown[],
) {
  const workers = Array.from(
    { length: count },
    (_, i) => new Kind({ target: target as (...args: unknown[]) => unknown, args: [...args, i] }),
  );
  for (const worker of workers) worker.start();
  return workers;
}

async function joinAll(workers: Array<Thread | Process>): Promise<unknown[]> {
  for (const worker of workers) await worker.join();
  for (const worker of workers) assertEquals(worker.error, undefined, String(worker.error?.stack));
  return workers.map((worker) => worker.result);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("Lock.release() of a lock that the caller does not hold throws, as in Python", async () => {
  const lock = new Lock();
  assertThrows(() => lock.release(), Error, "not held");
  const done = new Event();
  const holder = startAll(Thread, 1, async (lock: Lock, done: Event) => {
    await lock.acquire();
    await done.wait();
    lock.release();
  }, [lock, done]);
  while (!lock.locked()) await sleep(5);
  assertThrows(() => lock.release(), Error, "held by another thread or process");
  done.set();
  await joinAll(holder);
  assert(!lock.locked());
});

Deno.test("Lock.acquire() with a timeout or without blocking resolves false while held", async () => {
  const lock = new Lock();
  assert(await lock.acquire());
  assertEquals(await lock.acquire({ blocking: false }), false);
  const started = performance.now();
  assertEquals(await lock.acquire({ timeoutMs: 50 }), false);
  assert(performance.now() - started >= 40);
  lock.release();
  assert(!lock.locked());
  await assertRejects(() => lock.acquire({ timeoutMs: -1 }), RangeError, "'timeoutMs'");
});

Deno.test("Lock.acquireSync() refuses the main thread and works in a worker", async () => {
  const lock = new Lock();
  await lock.acquire();
  assertThrows(() => lock.acquireSync(), Error, "only available inside a worker thread");
  lock.release();
  const [result] = await joinAll(startAll(Thread, 1, (lock: Lock) => {
    const first = lock.acquireSync();
    const second = lock.acquireSync({ timeoutMs: 20 });
    lock.release();
    return [first, second];
  }, [lock]));
  assertEquals(result, [true, false]);
});

Deno.test("Lock held by a crashed thread is released; the next acquirer gets AbandonedLockError once", async () => {
  const lock = new Lock();
  const [crasher] = startAll(Thread, 1, async (lock: Lock) => {
    await lock.acquire();
    throw new Error("crash while holding the lock");
  }, [lock]);
  await crasher.join();
  assertEquals(crasher.error?.message, "crash while holding the lock");
  const error = await assertRejects(() => lock.acquire({ timeoutMs: 2000 }), AbandonedLockError);
  assertStringIncludes(error.message, "ended while it held the lock");
  assert(await lock.acquire({ timeoutMs: 2000 }), "the lock is usable again after the error");
  lock.release();
});

Deno.test("Lock held by a killed process is released; a waiting thread gets AbandonedLockError", async () => {
  const lock = new Lock();
  const [holder] = startAll(Process, 1, async (lock: Lock) => {
    await lock.acquire();
    await new Promise(() => setInterval(() => {}, 1000));
  }, [lock]);
  while (!lock.locked()) await sleep(10);
  const [waiter] = startAll(Thread, 1, async (lock: Lock) => {
    try {
      await lock.acquire({ timeoutMs: 10_000 });
      return "acquired";
    } catch (error) {
      return (error as Error).name;
    }
  }, [lock]);
  await sleep(100);
  (holder as Process).kill();
  await holder.join();
  await waiter.join();
  assertEquals(waiter.result, "AbandonedLockError");
  assert(!lock.locked());
});

Deno.test("RLock re-enters for its holder and is released level by level", async () => {
  const lock = new RLock();
  assert(await lock.acquire());
  assert(await lock.acquire());
  lock.release();
  assert(lock.locked());
  lock.release();
  assert(!lock.locked());
  assertThrows(() => lock.release(), Error, "not held");
  const [other] = await joinAll(startAll(Thread, 1, async (lock: RLock) => {
    await lock.acquire();
    await lock.acquire();
    const inner = await lock.acquire({ blocking: false });
    lock.release();
    lock.release();
    lock.release();
    return inner;
  }, [lock]));
  assertEquals(other, true);
});

async function holdSlot(slots: Semaphore, stats: SharedArray<"i32">): Promise<void> {
  for (let round = 0; round < 5; round++) {
    await slots.acquire();
    const now = Atomics.add(stats.array as Int32Array, 0, 1) + 1;
    Atomics.store(
      stats.array as Int32Array,
      1,
      Math.max(Atomics.load(stats.array as Int32Array, 1), now),
    );
    await new Promise((resolve) => setTimeout(resolve, 5));
    Atomics.sub(stats.array as Int32Array, 0, 1);
    slots.release();
  }
}

Deno.test("Semaphore never admits more holders than its count, across threads", async () => {
  const slots = new Semaphore({ value: 2 });
  const stats = new SharedArray("i32", 2);
  await joinAll(startAll(Thread, 5, holdSlot, [slots, stats]));
  assert(stats.array[1] <= 2, `${stats.array[1]} holders at once`);
  assertEquals(slots.value, 2);
});

Deno.test("Semaphore never admits more holders than its count, across processes", async () => {
  const slots = new Semaphore({ value: 1 });
  const inside = new SharedArray("i32", 2);
  // Processes see the array through the broker, so the count is kept by the parent's threads:
  // each process holds the slot while a thread of the parent checks that it is alone.
  const workers = startAll(Process, 3, async (slots: Semaphore, inside: SharedArray<"i32">) => {
    for (let i = 0; i < 3; i++) {
      await slots.acquire();
      inside.array[0] += 1;
      inside.flush();
      await inside.refresh();
      const alone = inside.array[0] === 1;
      inside.array[0] -= 1;
      inside.flush();
      slots.release();
      if (!alone) return false;
    }
    return true;
  }, [slots, inside]);
  assertEquals(await joinAll(workers), [true, true, true]);
});

Deno.test("BoundedSemaphore throws when released beyond its initial value", async () => {
  const slots = new BoundedSemaphore({ value: 1 });
  assertThrows(() => slots.release(), RangeError, "released too many times");
  assert(await slots.acquire());
  slots.release();
  assertThrows(() => new Semaphore({ value: -1 }), RangeError, "'value'");
});

Deno.test("Event wakes every waiter, in threads and processes", async () => {
  const event = new Event();
  const wait = (event: Event) => event.wait({ timeoutMs: 10_000 });
  const workers = [...startAll(Thread, 3, wait, [event]), ...startAll(Process, 2, wait, [event])];
  await sleep(100);
  assert(!event.isSet());
  event.set();
  assertEquals(await joinAll(workers), [true, true, true, true, true]);
  assertEquals(await event.wait({ timeoutMs: 0 }), true);
  event.clear();
  assertEquals(await event.wait({ timeoutMs: 20 }), false);
});

Deno.test("Condition.notify(k) wakes exactly k waiters", async () => {
  const cond = new Condition();
  // [registered waiters, woken waiters]
  const counts = new SharedArray("i32", 2);
  const waiters = startAll(Thread, 4, async (cond: Condition, counts: SharedArray<"i32">) => {
    await cond.acquire();
    counts.array[0] += 1;
    const notified = await cond.wait({ timeoutMs: 10_000 });
    counts.array[1] += 1;
    cond.release();
    return notified;
  }, [cond, counts]);
  for (;;) {
    await cond.acquire();
    if (counts.array[0] === 4) break;
    cond.release();
    await sleep(10);
  }
  cond.notify(2);
  cond.release();
  await sleep(300);
  assertEquals(counts.array[1], 2);
  await cond.acquire();
  cond.notifyAll();
  cond.release();
  assertEquals(await joinAll(waiters), [true, true, true, true]);
  await cond.acquire();
  assertEquals(await cond.wait({ timeoutMs: 20 }), false);
  cond.release();
  await assertRejects(() => cond.wait(), Error, "not held");
});

Deno.test("Condition works for a child process that waits on it", async () => {
  const cond = new Condition({ lock: new Lock() });
  const ready = new Event();
  const [waiter] = startAll(Process, 1, async (cond: Condition, ready: Event) => {
    await cond.acquire();
    ready.set();
    const notified = await cond.wait({ timeoutMs: 10_000 });
    cond.release();
    return notified;
  }, [cond, ready]);
  await ready.wait();
  await cond.acquire();
  cond.notify();
  cond.release();
  assertEquals(await joinAll([waiter]), [true]);
});

Deno.test("Barrier releases all n parties together, threads and processes", async () => {
  const barrier = new Barrier(4);
  const arrived = new SharedArray("i32", 1);
  const party = async (barrier: Barrier, arrived: SharedArray<"i32">) => {
    const lock = arrived.getLock();
    await lock.acquire();
    arrived.array[0] += 1;
    lock.release();
    const index = await barrier.wait({ timeoutMs: 10_000 });
    await arrived.refresh();
    return { index, arrivedWhenReleased: arrived.array[0] };
  };
  const workers = [
    ...startAll(Thread, 2, party, [barrier, arrived]),
    ...startAll(Process, 1, party, [barrier, arrived]),
  ];
  const mine = await party(barrier, arrived);
  const results = [mine, ...await joinAll(workers)] as Array<
    { index: number; arrivedWhenReleased: number }
  >;
  assertEquals(results.map((r) => r.index).sort(), [0, 1, 2, 3]);
  for (const result of results) assertEquals(result.arrivedWhenReleased, 4);
});

Deno.test("Barrier that times out is broken for every party", async () => {
  const barrier = new Barrier(3);
  const [other] = startAll(Thread, 1, async (barrier: Barrier) => {
    try {
      await barrier.wait({ timeoutMs: 10_000 });
      return "released";
    } catch (error) {
      return (error as Error).name;
    }
  }, [barrier]);
  while (barrier.nWaiting < 1) await sleep(5);
  const error = await assertRejects(() => barrier.wait({ timeoutMs: 50 }), BrokenBarrierError);
  assertInstanceOf(error, BrokenBarrierError);
  assertEquals(await joinAll([other]), ["BrokenBarrierError"]);
  assert(barrier.broken);
  barrier.reset();
  assert(!barrier.broken);
  assertThrows(() => new Barrier(0), RangeError, "'parties'");
});

Deno.test("A shared object received by a child process can be passed on to its own thread and process, as Python's manager proxies can", async () => {
  const lock = new Lock();
  const total = new Value("i32", 0, { lock });
  const q = new Queue<string>();
  const child = new Process({ target: passOn, args: [lock, total, q], module: sharedTargetsUrl });
  child.start();
  await child.join();
  assertEquals(child.error, undefined, String(child.error?.stack));
  assertEquals(child.result, "done");
  assertEquals(total.value, 3, "the child, its thread and its process each added under the lock");
  const tags = [
    await q.get({ timeoutMs: 5000 }),
    await q.get({ timeoutMs: 5000 }),
    await q.get({ timeoutMs: 5000 }),
  ];
  assertEquals(tags.sort(), ["child", "process", "thread"]);
  assert(!lock.locked());
});

Deno.test("Barrier.waitSync() and Condition.waitSync() block worker threads, not the main one", async () => {
  const barrier = new Barrier(3);
  assertThrows(() => barrier.waitSync({ timeoutMs: 10 }), Error, "only available inside a worker");
  const parties = startAll(Thread, 2, (barrier: Barrier) => barrier.waitSync(), [barrier]);
  const mine = await barrier.wait({ timeoutMs: 10_000 });
  const indexes = [mine, ...await joinAll(parties)] as number[];
  assertEquals(indexes.sort(), [0, 1, 2]);

  const cond = new Condition({ lock: new Lock() });
  const ready = new Event();
  const [waiter] = startAll(Thread, 1, (cond: Condition, ready: Event) => {
    cond.lock.acquireSync();
    ready.set();
    const notified = cond.waitSync({ timeoutMs: 10_000 });
    cond.release();
    return notified;
  }, [cond, ready]);
  await ready.wait();
  await cond.acquire();
  cond.notify();
  cond.release();
  assertEquals(await joinAll([waiter]), [true]);
});
