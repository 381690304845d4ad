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
import { passOn, pollStates, sharedTargetsUrl } from "./fixtures/shared_targets.ts";
import { captureStderr } from "./_helpers.ts";

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
  const { value: crasher, stderr } = await captureStderr(async () => {
    const [crasher] = startAll(Thread, 1, async (lock: Lock) => {
      await lock.acquire();
      throw new Error("crash while holding the lock");
    }, [lock]);
    await crasher.join();
    return crasher;
  });
  assertStringIncludes(stderr, `Exception in thread ${crasher.name}:`);
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

for (const Kind of [Process, Thread]) {
  const kind = Kind === Thread ? "thread" : "process";
  Deno.test(`A shared object received by a child ${kind} can be passed on to its own thread and process, as Python's manager proxies can`, async () => {
    const lock = new Lock();
    const total = new Value("i32", 0, { lock });
    const q = new Queue<string>();
    const child = new Kind({ target: passOn, args: [lock, total, q], module: sharedTargetsUrl });
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
}

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

// ---------------------------------------------------------------------------------------------
// Python fidelity

Deno.test("Event.set() followed at once by clear() still wakes every thread and process waiting when set() ran, as in Python", async () => {
  const event = new Event();
  // One element per waiter: processes write back only the bytes that they changed.
  const ready = new SharedArray("i32", 4);
  const waitOnce = (event: Event, ready: SharedArray<"i32">, offset: number, i: number) => {
    const waiting = event.wait({ timeoutMs: 10_000 });
    ready.array[offset + i] = 1;
    ready.flush();
    return waiting;
  };
  const workers = [
    ...startAll(Thread, 2, waitOnce, [event, ready, 0]),
    ...startAll(Process, 2, waitOnce, [event, ready, 2]),
  ];
  while ([...ready.array].filter(Boolean).length < 4) await sleep(10);
  // The processes' waits reach the parent right after their flush; give them a moment.
  await sleep(200);
  event.set();
  event.clear();
  assertEquals(await joinAll(workers), [true, true, true, true]);
  assert(!event.isSet());
  assertEquals(
    await event.wait({ timeoutMs: 20 }),
    false,
    "a wait that starts later sees it clear",
  );
});

for (const Kind of [Lock, RLock]) {
  Deno.test(`${Kind.name}.locked() in a child process says whether anyone holds it, as in Python`, async () => {
    const lock = new Kind();
    const released = new Event();
    await lock.acquire();
    const [child] = startAll(Process, 1, async (lock: Lock, released: Event) => {
      const heldByParent = lock.locked();
      await released.wait({ timeoutMs: 10_000 });
      const afterRelease = lock.locked();
      await lock.acquire();
      const heldHere = lock.locked();
      lock.release();
      return [heldByParent, afterRelease, heldHere, lock.locked()];
    }, [lock, released]);
    await sleep(100);
    lock.release();
    released.set();
    assertEquals(await joinAll([child]), [[true, false, true, false]]);
  });
}

Deno.test("Condition.wait() and waitFor() in a child process refresh a Value that shares the condition's lock, as Python's condition with a shared value", async () => {
  const cond = new Condition();
  const shared = new Value("i32", 0, { lock: cond.lock });
  const [consumer] = startAll(Process, 1, async (cond: Condition, shared: Value<"i32">) => {
    await cond.acquire();
    const reached = await cond.waitFor(() => shared.value >= 3, { timeoutMs: 10_000 });
    const seen = shared.value;
    // And the other way round: the parent waits for what this process writes.
    shared.value = 100;
    cond.notifyAll();
    cond.release();
    return [reached, seen];
  }, [cond, shared]);
  for (let i = 1; i <= 3; i++) {
    await sleep(30);
    await cond.acquire();
    shared.value = i;
    cond.notifyAll();
    cond.release();
  }
  await cond.acquire();
  const answered = await cond.waitFor(() => shared.value === 100, { timeoutMs: 10_000 });
  cond.release();
  assertEquals(await joinAll([consumer]), [[true, 3]]);
  assert(answered);
  assertEquals(shared.value, 100);
});

Deno.test("Barrier.nWaiting drops to 0 once abort() has broken the waits, as in Python", async () => {
  const barrier = new Barrier(3);
  const waiters = startAll(Thread, 2, async (barrier: Barrier) => {
    try {
      await barrier.wait({ timeoutMs: 10_000 });
      return "passed";
    } catch (error) {
      return (error as Error).name;
    }
  }, [barrier]);
  while (barrier.nWaiting < 2) await sleep(5);
  barrier.abort();
  assertEquals(await joinAll(waiters), ["BrokenBarrierError", "BrokenBarrierError"]);
  assertEquals(barrier.nWaiting, 0);
  assert(barrier.broken);
  barrier.reset();
  assertEquals(barrier.nWaiting, 0);
  assert(!barrier.broken);
});

Deno.test("Barrier(parties, { action }) runs the action once per round, before any party is released, as in Python", async () => {
  const rounds = new Value("i32", 0);
  const barrier = new Barrier(3, { action: () => rounds.value += 1 });
  // Each party returns the rounds that it saw completed after each wait: the action's count.
  const party = async (barrier: Barrier, rounds: Value<"i32">) => {
    const seen: number[] = [];
    for (let i = 0; i < 3; i++) {
      await barrier.wait({ timeoutMs: 10_000 });
      await rounds.getLock().acquire(); // fetches the value in a child process
      seen.push(rounds.value);
      rounds.getLock().release();
    }
    return seen;
  };
  const workers = [
    ...startAll(Thread, 1, party, [barrier, rounds]),
    ...startAll(Process, 1, party, [barrier, rounds]),
  ];
  const mine = await party(barrier, rounds);
  assertEquals([mine, ...await joinAll(workers)], [[1, 2, 3], [1, 2, 3], [1, 2, 3]]);
  assertEquals(rounds.value, 3);
  // Python's positional form: Barrier(parties, action).
  let runs = 0;
  const positional = new Barrier(1, () => runs++);
  await positional.wait();
  assertEquals(runs, 1);
});

Deno.test("Barrier whose action throws is broken, and the party that ran it gets the error, as in Python", async () => {
  const barrier = new Barrier(2, {
    action: () => {
      throw new Error("action failed");
    },
  });
  const [other] = startAll(Thread, 1, async (barrier: Barrier) => {
    try {
      await barrier.wait({ timeoutMs: 10_000 });
      return "passed";
    } catch (error) {
      return (error as Error).name;
    }
  }, [barrier]);
  while (barrier.nWaiting < 1) await sleep(5);
  await assertRejects(() => barrier.wait(), Error, "action failed");
  assertEquals(await joinAll([other]), ["BrokenBarrierError"]);
  assert(barrier.broken);
});

Deno.test("Python's positional forms keep Python's meaning: Semaphore(0), Semaphore(5), BoundedSemaphore(3), Condition(lock)", async () => {
  const none = new Semaphore(0);
  assertEquals(none.value, 0);
  assertEquals(await none.acquire(false), false);
  const five = new Semaphore(5);
  assertEquals(five.value, 5);
  const bounded = new BoundedSemaphore(3);
  assertEquals(bounded.value, 3);
  assert(await bounded.acquire());
  bounded.release();
  assertThrows(() => bounded.release(), RangeError, "bound 3");
  const lock = new Lock();
  const cond = new Condition(lock);
  assert(cond.lock === lock);
  await cond.acquire();
  assert(lock.locked(), "the condition acquires the lock that it was given");
  cond.release();
  assertThrows(() => new Semaphore("5" as unknown as number), TypeError, '"5"');
});

// ---------------------------------------------------------------------------------------------
// Bad input: never ignored, never a hang

Deno.test("A boolean where the options go means Python's blocking; a number is refused with the right call", async () => {
  const lock = new Lock();
  await lock.acquire();
  assertEquals(await lock.acquire(false), false, "acquire(false) tries once, as Python's");
  await assertRejects(() => lock.acquire(500 as never), TypeError, "{ timeoutMs: 500 }");
  assertThrows(() => lock.acquireSync(500 as never), TypeError, "{ timeoutMs: 500 }");
  lock.release();
  assertEquals(await lock.acquire(true), true);
  lock.release();
  const event = new Event();
  await assertRejects(() => event.wait(300 as never), TypeError, "{ timeoutMs: 300 }");
  assertThrows(() => new Barrier(2, 300 as never), TypeError, "{ timeoutMs: 300 }");
  const semaphore = new Semaphore(0);
  assertEquals(await semaphore.acquire(false), false);
  await assertRejects(() => semaphore.acquire(10 as never), TypeError, "{ timeoutMs: 10 }");
});

Deno.test("Options of the wrong type or with unknown keys are refused, naming the nearest option", async () => {
  const lock = new Lock();
  await assertRejects(
    () => lock.acquire({ blocking: "no" as unknown as boolean }),
    TypeError,
    "'blocking' must be a boolean",
  );
  await assertRejects(() => lock.acquire({ timoutMs: 5 } as never), TypeError, "'timeoutMs'");
  await assertRejects(
    () => lock.acquire({ blocking: false, timeoutMs: 5 }),
    TypeError,
    "'timeoutMs' with 'blocking: false'",
  );
  await assertRejects(() => new Event().wait({ timeout: 5 } as never), TypeError, "'timeoutMs'");
  assertThrows(() => new Semaphore({ valeu: 2 } as never), TypeError, "did you mean 'value'");
  assertThrows(() => new Barrier(2, { timeotMs: 2 } as never), TypeError, "'timeoutMs'");
  assertThrows(() => new Condition({ lokc: lock } as never), TypeError, "'lock'");
});

Deno.test("Semaphore counts past 2**31 - 1 are refused instead of wrapping around", () => {
  assertThrows(() => new Semaphore(2 ** 31), RangeError, "'value'");
  const full = new Semaphore(2 ** 31 - 1);
  assertEquals(full.value, 2 ** 31 - 1);
  assertThrows(() => full.release(), RangeError, "exceed 2147483647");
  assertEquals(full.value, 2 ** 31 - 1);
  const some = new Semaphore(5);
  assertThrows(() => some.release(2 ** 31), RangeError, "'n'");
  assertThrows(() => some.release(2 ** 31 - 1), RangeError, "exceed 2147483647");
  assertThrows(() => some.release(0), RangeError, "'n'");
  assertEquals(some.value, 5);
});

Deno.test("Timeouts of Infinity or of 2**31 ms and more wait as long as needed, in this process and in a child", async () => {
  const lock = new Lock();
  const event = new Event();
  const slots = new Semaphore(0);
  await lock.acquire();
  let settled = 0;
  const waits = [
    lock.acquire({ timeoutMs: Infinity }),
    event.wait({ timeoutMs: 2 ** 31 }).then((set) => (settled++, set)),
    slots.acquire({ timeoutMs: 2 ** 40 }).then((taken) => (settled++, taken)),
  ];
  const [child] = startAll(Process, 1, async (lock: Lock, event: Event) => {
    const set = await event.wait({ timeoutMs: Infinity });
    const acquired = await lock.acquire({ timeoutMs: 2 ** 31 });
    lock.release();
    return [set, acquired];
  }, [lock, event]);
  await sleep(300);
  assertEquals(settled, 0, "a wait with a huge timeout returned at once");
  event.set();
  slots.release();
  lock.release();
  assertEquals(await Promise.all(waits), [true, true, true]);
  lock.release();
  assertEquals(await joinAll([child]), [[true, true]]);
});

Deno.test("Condition.notify() wakes a waiter that was waiting when it ran, never one that came later, as in Python", async () => {
  const cond = new Condition();
  const ready = new Event();
  const [waiter] = startAll(Thread, 1, async (cond: Condition, ready: Event) => {
    await cond.acquire();
    ready.set();
    const notified = await cond.wait({ timeoutMs: 10_000 });
    cond.release();
    return notified;
  }, [cond, ready]);
  await ready.wait();
  await cond.acquire();
  assert(cond.notify(1));
  // This wait starts after the notify: it must not take the wake-up meant for the thread.
  assertEquals(await cond.wait({ timeoutMs: 100 }), false);
  cond.release();
  assertEquals(await joinAll([waiter]), [true]);
});

Deno.test("Lock.locked() and Event.isSet() polled in a child process see a change made elsewhere, as Python's do", async () => {
  const started = new Event();
  const lock = new Lock();
  const flag = new Event();
  const child = new Process({
    target: pollStates,
    args: [started, lock, flag],
    module: sharedTargetsUrl,
  });
  child.start();
  try {
    assert(await started.wait({ timeoutMs: 20_000 }), "the child did not start");
    await lock.acquire();
    flag.set();
    await child.join();
  } finally {
    if (lock.locked()) lock.release();
  }
  assertEquals(child.error, undefined, String(child.error?.stack));
  assertEquals(child.result, ["locked", "set"]);
});

Deno.test("Lock, RLock, Semaphore and Condition refuse Python's acquire(True, 0.5) with the call that means it, never waiting for ever", async () => {
  // As a JavaScript caller, with no type check, writes it.
  type Loose = { acquire(...args: unknown[]): Promise<boolean> };
  const lock = new Lock();
  const rlock = new RLock();
  const semaphore = new Semaphore(0);
  const condition = new Condition();
  assert(await lock.acquire());
  for (const object of [lock, rlock, semaphore, condition]) {
    await assertRejects(
      () => (object as unknown as Loose).acquire(true, 0.5),
      TypeError,
      "{ timeoutMs: 500 }",
    );
  }
  // The refused calls took nothing.
  assert(!rlock.locked());
  assertEquals(semaphore.value, 0);
  assert(await condition.acquire({ blocking: false }));
  condition.release();
  lock.release();
});
