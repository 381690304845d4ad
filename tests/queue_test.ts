import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  getContext,
  JoinableQueue,
  Lock,
  Pipe,
  Process,
  Queue,
  QueueEmptyError,
  QueueFullError,
  SharedArray,
  ShutDown,
  SimpleQueue,
  Thread,
  TimeoutError,
  type Value,
} from "../mod.ts";

type Kind = typeof Thread | typeof Process;

function start(Kind: Kind, target: (...args: never[]) => unknown, args: unknown[]) {
  const worker = new Kind({ target: target as (...args: unknown[]) => unknown, args });
  worker.start();
  return worker;
}

async function joinAll(workers: Array<Thread | Process>): Promise<unknown[]> {
  for (const worker of workers) await worker.join();
  for (const worker of workers) assertEquals(worker.error, undefined, String(worker.error?.stack));
  return workers.map((worker) => worker.result);
}

async function produce(q: Queue<number>, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i++) await q.put(i);
}

async function consume(q: Queue<number>, count: number): Promise<number[]> {
  const items: number[] = [];
  for (let i = 0; i < count; i++) items.push(await q.get({ timeoutMs: 20_000 }));
  return items;
}

const range = (from: number, count: number) => Array.from({ length: count }, (_, i) => from + i);

for (
  const [label, Producer, Consumer, count] of [
    ["across threads", Thread, Thread, 2000],
    ["across processes", Process, Process, 300],
    ["from a thread to a process", Thread, Process, 300],
    ["from a process to a thread", Process, Thread, 300],
  ] as Array<[string, Kind, Kind, number]>
) {
  Deno.test(`Queue delivers every item exactly once, in FIFO order, ${label}`, async () => {
    const q = new Queue<number>();
    const workers = [start(Producer, produce, [q, 0, count]), start(Consumer, consume, [q, count])];
    const [, received] = await joinAll(workers);
    assertEquals(received, range(0, count));
    assert(q.empty());
  });
}

Deno.test("Queue delivers every item exactly once with several producers and consumers", async () => {
  const q = new Queue<number>({ maxsize: 16 });
  const workers = [
    start(Thread, produce, [q, 0, 500]),
    start(Thread, produce, [q, 500, 500]),
    start(Process, produce, [q, 1000, 100]),
    start(Thread, consume, [q, 400]),
    start(Thread, consume, [q, 400]),
    start(Process, consume, [q, 100]),
  ];
  const extra = await consume(q, 200);
  const results = await joinAll(workers);
  const all = [...results.slice(3).flat() as number[], ...extra];
  assertEquals(all.sort((a, b) => a - b), range(0, 1100));
  // Each producer's own items stay in order for any one consumer.
  for (const items of [...results.slice(3) as number[][], extra]) {
    const mine = items.filter((n) => n < 500);
    assertEquals(mine, [...mine].sort((a, b) => a - b));
  }
});

Deno.test("Queue({ maxsize }) makes put wait when full, and putNowait throw QueueFullError", async () => {
  const q = new Queue<string>({ maxsize: 2 });
  await q.put("a");
  await q.putNowait("b");
  assert(q.full());
  await assertRejects(() => q.putNowait("c"), QueueFullError, "maxsize 2");
  await assertRejects(() => q.put("c", { timeoutMs: 30 }), TimeoutError);
  let putDone = false;
  const pending = q.put("c").then(() => putDone = true);
  await new Promise((resolve) => setTimeout(resolve, 50));
  assert(!putDone, "put() returned while the queue was full");
  const taker = start(Thread, (q: Queue<string>) => q.get(), [q]);
  await pending;
  assertEquals(await joinAll([taker]), ["a"]);
  assertEquals([await q.get(), await q.get()], ["b", "c"]);
});

Deno.test("Queue getNowait on an empty queue throws QueueEmptyError, and get times out", async () => {
  const q = new Queue();
  await assertRejects(() => q.getNowait(), QueueEmptyError);
  await assertRejects(() => q.get({ timeoutMs: 30 }), TimeoutError);
  const [name] = await joinAll([
    start(Process, async (q: Queue) => {
      try {
        await q.get({ timeoutMs: 30 });
      } catch (error) {
        return (error as Error).name;
      }
    }, [q]),
  ]);
  assertEquals(name, "TimeoutError");
});

Deno.test("Queue rejects a negative maxsize and items that cannot be cloned", async () => {
  assertThrows(
    () => new Queue({ maxsize: -1 }),
    RangeError,
    "'maxsize' must be a non-negative integer: received -1",
  );
  await assertRejects(() => new Queue().put(() => 1), TypeError, "cannot be put on the queue");
});

Deno.test("Queue carries what structured clone carries: Maps, Dates, bigints, typed arrays", async () => {
  const q = new Queue();
  const item = {
    map: new Map([[1, "one"]]),
    when: new Date(0),
    big: 2n ** 70n,
    bytes: new Uint8Array([1, 2, 3]),
    nested: { list: [1, "two", null, -0] },
  };
  const echo = async (q: Queue, back: Queue) => await back.put(await q.get());
  const back = new Queue();
  const workers = [start(Thread, echo, [q, back]), start(Process, echo, [back, q])];
  await q.put(item);
  await joinAll(workers);
  assertEquals(await q.get(), item);
});

Deno.test("Queue getSync refuses the main thread and blocks in a worker", async () => {
  const q = new Queue<number>();
  assertThrows(() => q.getSync(), Error, "only available inside a worker thread");
  const worker = start(Thread, (q: Queue<number>) => q.getSync() + q.getSync(), [q]);
  await q.put(20);
  await q.put(22);
  assertEquals(await joinAll([worker]), [42]);
});

Deno.test("JoinableQueue.join() returns when every item has been marked done", async () => {
  const q = new JoinableQueue<number>();
  const done = new Queue<number>();
  const work = async (q: JoinableQueue<number>, done: Queue<number>, count: number) => {
    for (let i = 0; i < count; i++) {
      const item = await q.get();
      await new Promise((resolve) => setTimeout(resolve, 2));
      await done.put(item);
      q.taskDone();
    }
  };
  const workers = [start(Thread, work, [q, done, 20]), start(Process, work, [q, done, 10])];
  for (let i = 0; i < 30; i++) await q.put(i);
  await q.join({ timeoutMs: 20_000 });
  assertEquals(done.qsize(), 30);
  await joinAll(workers);
  assertThrows(() => q.taskDone(), RangeError, "taskDone()");
  await q.put(1);
  await assertRejects(() => q.join({ timeoutMs: 20 }), TimeoutError);
});

Deno.test("SimpleQueue passes items between a thread and a process", async () => {
  const q = new SimpleQueue<string>();
  const back = new SimpleQueue<string>();
  const relay = async (q: SimpleQueue<string>, back: SimpleQueue<string>) =>
    await back.put((await q.get()).toUpperCase());
  const workers = [start(Process, relay, [q, back])];
  await q.put("ping");
  assertEquals(await back.get(), "PING");
  await joinAll(workers);
  assert(q.empty());
  q.close();
  await assertRejects(() => q.put("late"), Error, "closed");
});

Deno.test({
  name: "A context offers the queues, locks and shared values",
  // Forkserver spares outlive the test by design; they stop when the test run exits.
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const ctx = getContext("forkserver");
    const q = new ctx.Queue<number>();
    const total = new ctx.Value("i32", 0);
    const worker = new ctx.Process({
      target: async (q: Queue<number>, total: Value<"i32">) => {
        const lock = total.getLock();
        await lock.acquire();
        total.value += await q.get();
        lock.release();
      },
      args: [q, total],
    });
    worker.start();
    await q.put(41);
    await worker.join();
    assertEquals(worker.error, undefined);
    assertEquals(total.value, 41);
    assert(ctx.Lock === Lock && ctx.SharedArray === SharedArray && ctx.Pipe === Pipe);
  },
});

// ---------------------------------------------------------------------------------------------
// Python fidelity and bad input

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function nameOfRejection(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return "resolved";
  } catch (error) {
    return (error as Error).name;
  }
}

Deno.test("Queue.shutdown() makes blocked and later put and get raise ShutDown in threads and processes, as Python 3.13's", async () => {
  const q = new Queue<number>({ maxsize: 1 });
  const getOnce = async (q: Queue<number>) => {
    try {
      return await q.get({ timeoutMs: 10_000 });
    } catch (error) {
      return (error as Error).name;
    }
  };
  const getters = [start(Thread, getOnce, [q]), start(Process, getOnce, [q])];
  await sleep(300);
  q.shutdown();
  assertEquals(await joinAll(getters), ["ShutDown", "ShutDown"]);
  await assertRejects(() => q.put(1), ShutDown);
  await assertRejects(() => q.get({ timeoutMs: 10 }), ShutDown);
  const later = start(Process, async (q: Queue<number>) => {
    try {
      await q.put(2);
      return "put";
    } catch (error) {
      return (error as Error).name;
    }
  }, [q]);
  assertEquals(await joinAll([later]), ["ShutDown"]);
});

Deno.test("Queue.shutdown() lets gets drain what is left, and shutdown({ immediate: true }) drops it, as in Python", async () => {
  const q = new JoinableQueue<string>({ maxsize: 2 });
  await q.put("a");
  await q.put("b");
  // A put blocked on the full queue wakes to fail.
  const blocked = nameOfRejection(q.put("c"));
  await sleep(50);
  q.shutdown();
  assertEquals(await blocked, "ShutDown");
  assertEquals(await q.get(), "a");
  q.taskDone();
  q.shutdown({ immediate: true });
  assertEquals(await nameOfRejection(q.get()), "ShutDown");
  assert(q.empty());
  // The dropped item counts as done, so join() returns.
  await q.join({ timeoutMs: 1000 });
  assertThrows(() => q.shutdown({ immediat: true } as never), TypeError, "'immediate'");
});

Deno.test("Queue keeps what structured clone keeps, such as an array's own properties", async () => {
  const q = new Queue();
  const tagged = Object.assign([1, 2, 3], { label: "tagged" });
  await q.put(tagged);
  const back = await q.get() as number[] & { label?: string };
  assertEquals(back.label, "tagged");
  assertEquals([...back], [1, 2, 3]);
  const echo = async (q: Queue, out: Queue) => await out.put(await q.get());
  const out = new Queue();
  const workers = [start(Thread, echo, [q, out]), start(Process, echo, [out, q])];
  await q.put(tagged);
  await joinAll(workers);
  assertEquals((await q.get() as { label?: string }).label, "tagged");
});

Deno.test("Queue takes Python's get(False) and put(item, False); a bare number is refused with the right call", async () => {
  const q = new Queue<number>({ maxsize: 1 });
  await assertRejects(() => q.get(false), QueueEmptyError);
  await q.put(1, false);
  await assertRejects(() => q.put(2, false), QueueFullError);
  await assertRejects(() => q.put(2, 1000 as never), TypeError, "{ timeoutMs: 1000 }");
  await assertRejects(() => q.get(1000 as never), TypeError, "{ timeoutMs: 1000 }");
  assertEquals(await q.get(true), 1);
  await assertRejects(
    () => q.get({ timeoutMS: 5 } as never),
    TypeError,
    "did you mean 'timeoutMs'",
  );
  await assertRejects(() => q.get({ blocking: "no" } as never), TypeError, "'blocking'");
  assertThrows(() => new Queue({ maxsise: 3 } as never), TypeError, "did you mean 'maxsize'");
  assertEquals(new Queue(3).maxsize, 3, "Python's Queue(maxsize)");
});

Deno.test("Queue refuses Python's get(True, 5) and put(item, True, 5) with the call that means it, never waiting for ever", async () => {
  const q = new Queue<number>({ maxsize: 1 });
  // As a JavaScript caller, with no type check, writes it.
  type Loose = {
    get(...args: unknown[]): Promise<unknown>;
    put(...args: unknown[]): Promise<void>;
  };
  const py = q as unknown as Loose;
  const late = new SimpleQueue<number>() as unknown as Loose;
  await assertRejects(() => py.get(true, 5), TypeError, "{ timeoutMs: 5000 }");
  await q.put(1);
  await assertRejects(() => py.put(2, true, 0.5), TypeError, "{ timeoutMs: 500 }");
  await assertRejects(() => late.get(true, 1), TypeError, "{ timeoutMs: 1000 }");
  await assertRejects(() => py.get({}, "x"), TypeError, 'received "x"');
  // Nothing was taken or added by the refused calls.
  assertEquals(await q.get({ blocking: false }), 1);
});

Deno.test("Queue get() with a timeout of Infinity or 2**31 ms waits for the item", async () => {
  const q = new Queue<number>();
  let settled = false;
  const waits = [
    q.get({ timeoutMs: Infinity }).finally(() => settled = true),
    q.get({ timeoutMs: 2 ** 31 }).finally(() => settled = true),
  ];
  const child = start(Process, (q: Queue<number>) => q.get({ timeoutMs: 2 ** 40 }), [q]);
  await sleep(300);
  assert(!settled, "a get with a huge timeout returned at once");
  for (const item of [1, 2, 3]) await q.put(item);
  const got = [...await Promise.all(waits), ...await joinAll([child])] as number[];
  assertEquals(got.sort(), [1, 2, 3]);
});
