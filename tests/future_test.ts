import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { asCompleted, Future, ThreadPool, TimeoutError, wait } from "../mod.ts";
import { delayed, fail, targetsUrl } from "./fixtures/targets.ts";
import { waitUntil } from "./_helpers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("asCompleted() yields futures in the order they settle", async () => {
  await using pool = new ThreadPool({ size: 3, module: targetsUrl });
  const futures = [300, 10, 120].map((ms) => pool.submit(delayed, [ms, ms]));
  const order: number[] = [];
  for await (const future of asCompleted(futures)) order.push(await future);
  assertEquals(order, [10, 120, 300]);
});

Deno.test("asCompleted() throws a TimeoutError once timeoutMs has passed", async () => {
  const slow = new Promise((resolve) => setTimeout(resolve, 400));
  const seen: unknown[] = [];
  await assertRejects(
    async () => {
      for await (const p of asCompleted([Promise.resolve(1), slow], { timeoutMs: 50 })) {
        seen.push(await p);
      }
    },
    TimeoutError,
    "1 of 2 futures",
  );
  assertEquals(seen, [1]);
  await slow;
});

Deno.test("wait() returns on the first completed, the first exception, or all", async () => {
  await using pool = new ThreadPool({ size: 3, module: targetsUrl });
  const first = [pool.submit(delayed, [1, 10]), pool.submit(delayed, [2, 400])];
  const one = await wait(first, { returnWhen: "FIRST_COMPLETED" });
  assertEquals([one.done.size, one.notDone.size], [1, 1]);
  assert(one.done.has(first[0]));
  const failing = [pool.submit(fail, ["no"]), pool.submit(delayed, [3, 400])];
  const exception = await wait(failing, { returnWhen: "FIRST_EXCEPTION" });
  assert(exception.done.has(failing[0]) && exception.notDone.has(failing[1]));
  const all = await wait([...first, ...failing]);
  assertEquals([all.done.size, all.notDone.size], [4, 0]);
  const timed = await wait([pool.submit(delayed, [4, 300])], { timeoutMs: 20 });
  assertEquals([timed.done.size, timed.notDone.size], [0, 1]);
  await sleep(300);
});

Deno.test("wait() and asCompleted() take plain promises and refuse bad input", async () => {
  const { done } = await wait([Promise.resolve(1), Promise.reject(new Error("x"))]);
  assertEquals(done.size, 2);
  await assertRejects(() => wait(5 as unknown as Promise<unknown>[]), TypeError, "'futures'");
  await assertRejects(
    () => wait([], { returnWhen: "SOMETIME" as "ALL_COMPLETED" }),
    TypeError,
    "'returnWhen'",
  );
  assertThrows(() => asCompleted([1 as unknown as Promise<number>]), TypeError, "item 0");
  assertThrows(() => asCompleted([], { timeoutMs: -1 }), RangeError, "'timeoutMs'");
});

Deno.test("Future holds its rejection until awaited and is a thenable", async () => {
  await using pool = new ThreadPool({ size: 1, module: targetsUrl });
  const future = pool.submit(fail, ["later"]);
  assert(future instanceof Future);
  assertEquals(Object.prototype.toString.call(future), "[object Future]");
  // Nobody awaits it while it settles: an unhandled rejection would fail the test run.
  assert(await waitUntil(() => future.done(), 10_000), "the task did not settle");
  assert(!future.cancelled());
  await assertRejects(() => future.then(), Error, "later");
  assertEquals(await pool.submit(delayed, [5, 1]).finally(() => {}), 5);
});
