import {
  assert,
  assertEquals,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { asCompleted, CancelledError, Future, ThreadPool, TimeoutError, wait } from "../mod.ts";
import { delayed, fail, targetsUrl } from "./fixtures/targets.ts";
import { waitUntil } from "./_helpers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("asCompleted() yields the futures themselves, each once, in completion order", async () => {
  await using pool = new ThreadPool({ size: 3, module: targetsUrl });
  const futures = [300, 10, 120].map((ms) => pool.submit(delayed, [ms, ms]));
  // The order in which they settle, seen from outside (a loaded machine may reorder them).
  const settleOrder: Future<number>[] = [];
  for (const future of futures) future.then(() => settleOrder.push(future));
  const seen: Future<number>[] = [];
  for await (const item of asCompleted(futures)) {
    // The future itself, not its value: a thenable is not unwrapped on the way (TypeScript types
    // the loop variable as the awaited value).
    const future = item as unknown as Future<number>;
    assert(future instanceof Future);
    assert(futures.includes(future));
    assert(future.done());
    seen.push(future);
  }
  assertEquals(seen.length, 3);
  assertEquals(new Set(seen).size, 3);
  assertEquals(seen, settleOrder);
  assertEquals(await Promise.all(futures), [300, 10, 120]);
});

Deno.test("asCompleted() yields failed and cancelled futures without ending the loop", async () => {
  await using pool = new ThreadPool({ size: 1, module: targetsUrl });
  const failing: Future<unknown> = pool.submit(fail, ["boom"]);
  const slow = pool.submit(delayed, [1, 150]);
  const queued = pool.submit(delayed, [2, 1]);
  queued.cancel();
  const seen: unknown[] = [];
  for await (const item of asCompleted([failing, slow, queued])) {
    const future = item as unknown as Future<unknown>;
    seen.push(future);
    const error = await future.exception().catch((e) => e);
    if (future === failing) assertEquals((error as Error).message, "boom");
    if (future === queued) assert(error instanceof CancelledError);
    if (future === slow) assertEquals(await future.result(), 1);
  }
  assertEquals(seen.length, 3);
  assert([failing, slow, queued].every((future) => seen.includes(future)));
  // Settled before the call: first, in the order given.
  assertEquals(seen[0], queued);
});

Deno.test("asCompleted() with timeoutMs yields what finished in time, then throws TimeoutError", async () => {
  const fast = Promise.resolve(1);
  const failed = Promise.reject(new Error("failed in time"));
  let release!: (value: number) => void;
  const slow = new Promise<number>((resolve) => release = resolve);
  const seen: unknown[] = [];
  await assertRejects(
    async () => {
      for await (const p of asCompleted([fast, slow, failed], { timeoutMs: 50 })) seen.push(p);
    },
    TimeoutError,
    "1 of 3 futures",
  );
  assertEquals(seen, [fast, failed]);
  release(2);
  // A promise settled before the call counts as in time, even with no time at all.
  const late = asCompleted([slow], { timeoutMs: 0 });
  assertEquals((await late.next()).value, slow);
  assertEquals((await late.next()).done, true);
  // One that settles after the deadline is not yielded, even when nobody was waiting then.
  const quick = Promise.resolve(3);
  const after = new Promise((resolve) => setTimeout(resolve, 60, 4));
  const iterated: unknown[] = [];
  await assertRejects(async () => {
    for await (const p of asCompleted([quick, after], { timeoutMs: 30 })) {
      iterated.push(p);
      await sleep(120);
    }
  }, TimeoutError);
  assertEquals(iterated, [quick]);
  const missed = new Promise<void>(() => {});
  const iterator = asCompleted([missed], { timeoutMs: 20 });
  await sleep(40);
  await assertRejects(() => iterator.next(), TimeoutError);
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

Deno.test("wait() puts every future settled before the call in done, for every returnWhen", async () => {
  await using pool = new ThreadPool({ size: 2, module: targetsUrl });
  const futures = [pool.submit(delayed, [1, 1]), pool.submit(fail, ["no"])];
  await Promise.allSettled(futures);
  const promises = [Promise.resolve(1), Promise.reject(new Error("x")), Promise.resolve(3)];
  const pending = new Promise(() => {});
  for (const returnWhen of ["FIRST_COMPLETED", "FIRST_EXCEPTION", "ALL_COMPLETED"] as const) {
    const settled = await wait(futures, { returnWhen });
    assertEquals([settled.done.size, settled.notDone.size], [2, 0], returnWhen);
    const mixed = await wait([...promises, pending], { returnWhen, timeoutMs: 50 });
    assertEquals([mixed.done.size, mixed.notDone.size], [3, 1], returnWhen);
    assert(mixed.notDone.has(pending));
  }
});

Deno.test("Future.result() and exception() wait at most timeoutMs, as Python's result(timeout)", async () => {
  await using pool = new ThreadPool({ size: 2, module: targetsUrl });
  const slow = pool.submit(delayed, ["late", 300]);
  await assertRejects(() => slow.result({ timeoutMs: 20 }), TimeoutError, "20 ms");
  await assertRejects(() => slow.exception({ timeoutMs: 0 }), TimeoutError);
  // A timed-out wait leaves the task running, as in Python.
  assert(!slow.done() && !slow.cancelled());
  assertEquals(await slow.result(), "late");
  assertEquals(await slow.exception({ timeoutMs: 1 }), undefined);
  const failing = pool.submit(fail, ["broken"]);
  const error = await failing.exception({ timeoutMs: 10_000 });
  assert(error instanceof Error && error.message === "broken");
  await assertRejects(() => failing.result(), Error, "broken");
  const cancelled = pool.submit(delayed, [1, 1]);
  cancelled.cancel();
  await assertRejects(() => cancelled.result(), CancelledError);
  await assertRejects(() => cancelled.exception(), CancelledError);
  assertThrows(() => slow.result(5 as never), TypeError, "{ timeoutMs");
  assertThrows(() => slow.result({ timeout: 5 } as never), TypeError, "'timeout'");
  assertThrows(() => slow.exception({ timeoutMs: -1 }), RangeError, "'timeoutMs'");
});

Deno.test("Future.addDoneCallback() runs at once when done, else on settling, and a throwing callback is reported", async () => {
  await using pool = new ThreadPool({ size: 1, module: targetsUrl });
  const future = pool.submit(delayed, [7, 50]);
  const calls: string[] = [];
  const reported: unknown[] = [];
  const consoleError = console.error;
  console.error = (...args: unknown[]) => reported.push(args);
  try {
    future.addDoneCallback((f) => calls.push(`first ${f === future} ${f.done()}`));
    future.addDoneCallback(() => {
      throw new Error("callback failed");
    });
    future.addDoneCallback(() => calls.push("third"));
    assertEquals(calls, []);
    assertEquals(await future, 7);
    await sleep(0);
    assertEquals(calls, ["first true true", "third"]);
    assertEquals(reported.length, 1);
    assertStringIncludes(String((reported[0] as unknown[])[1]), "callback failed");
    // Already done: called before addDoneCallback returns.
    future.addDoneCallback(() => calls.push("late"));
    assertEquals(calls.at(-1), "late");
    future.addDoneCallback(() => {
      throw new Error("late callback failed");
    });
    assertEquals(reported.length, 2);
  } finally {
    console.error = consoleError;
  }
  assertThrows(() => future.addDoneCallback(5 as never), TypeError, "'fn'");
});

Deno.test("Infinity and timeouts past 2**31 ms mean no limit in asCompleted(), wait() and Future.result()", async () => {
  await using pool = new ThreadPool({ size: 2, module: targetsUrl });
  for (const timeoutMs of [Infinity, 2 ** 31, 2 ** 40]) {
    const future = pool.submit(delayed, [timeoutMs, 60]);
    const { done, notDone } = await wait([future], { timeoutMs });
    assertEquals([done.size, notDone.size], [1, 0], `wait ${timeoutMs}`);
    const next = pool.submit(delayed, [2, 60]);
    assertEquals(await next.result({ timeoutMs }), 2);
    assertEquals(await pool.submit(delayed, [3, 60]).exception({ timeoutMs }), undefined);
    const seen = [];
    for await (const f of asCompleted([pool.submit(delayed, [4, 60])], { timeoutMs })) seen.push(f);
    assertEquals(seen.length, 1, `asCompleted ${timeoutMs}`);
  }
});

Deno.test("new Future() written as in Python is a TypeError that points at pool.submit()", () => {
  for (const task of [undefined, null, 5, {}, { promise: Promise.resolve(1) }]) {
    assertThrows(
      () => new Future(task as never),
      TypeError,
      "Future is made by a pool's submit(), not by new Future()",
    );
  }
});
