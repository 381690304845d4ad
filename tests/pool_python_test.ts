import { assert, assertEquals, assertRejects } from "@std/assert";
import { Pool, ThreadPool, TimeoutError } from "../mod.ts";
import { poolPythonUrl, sleepFor, square } from "./fixtures/pool_python_targets.ts";
import { waitUntil } from "./_helpers.ts";

const pools = [
  ["ThreadPool", (size: number) => new ThreadPool({ size, module: poolPythonUrl })],
  ["Pool", (size: number) => new Pool({ size, module: poolPythonUrl })],
] as const;

/** Yields `items`, then throws, as an input generator that fails part-way. */
function* failingInput(items: number[]): Generator<number> {
  yield* items;
  throw new Error("the input broke");
}

async function* failingAsyncInput(items: number[]): AsyncGenerator<number> {
  for (const item of items) yield item;
  throw new Error("the async input broke");
}

for (const [kind, makePool] of pools) {
  Deno.test(`${kind}.map() with timeoutMs rejects with TimeoutError, as Executor.map(timeout=)`, async () => {
    await using pool = makePool(1);
    await pool.apply(square, [1]); // a worker up, so that the timeout measures the tasks
    const started = performance.now();
    await assertRejects(
      () => pool.map(sleepFor, [10, 1_500, 1_500, 1_500], { chunksize: 1, timeoutMs: 200 }),
      TimeoutError,
      "200 ms",
    );
    assert(performance.now() - started < 1_400, "the timeout did not end the wait");
    // What had not started is cancelled; the running task finishes.
    assert(await waitUntil(() => pool.stats().tasksCancelled >= 2, 5_000));
    assertEquals(await pool.map(square, [1, 2, 3], { timeoutMs: Infinity }), [1, 4, 9]);
    assertEquals(await pool.map(square, [4], { timeoutMs: 2 ** 31 }), [16]);
  });

  Deno.test(`${kind}.imap() with timeoutMs yields what finished in time, then throws TimeoutError`, async () => {
    for (const ordered of [true, false]) {
      // A pool each: a task that timed out runs on, and would hold the next ones back.
      await using pool = makePool(2);
      await pool.map(square, [1, 2], { chunksize: 1 }); // workers up
      const seen: number[] = [];
      const options = { chunksize: 1, timeoutMs: 1_000 };
      // Whichever worker takes them, 10 and 20 are done in time, 3000 is not.
      const items = [10, 20, 3_000, 30];
      await assertRejects(
        async () => {
          const results = ordered
            ? pool.imap(sleepFor, items, options)
            : pool.imapUnordered(sleepFor, items, options);
          for await (const ms of results) seen.push(ms);
        },
        TimeoutError,
        ordered ? "imap()" : "imapUnordered()",
      );
      if (ordered) assertEquals(seen, [10, 20]);
      else assert(seen.includes(10) && seen.includes(20) && !seen.includes(3_000), `${seen}`);
      const all: number[] = [];
      for await (const n of pool.imap(square, [1, 2, 3], { timeoutMs: Infinity })) all.push(n);
      assertEquals(all, [1, 4, 9]);
      // The task that timed out is still running; terminate spares the wait.
      await pool.terminate();
    }
  });

  Deno.test(`${kind}.imap() over an input that throws yields the results before it, then raises`, async () => {
    await using pool = makePool(2);
    for (const chunksize of [1, undefined]) {
      const seen: number[] = [];
      await assertRejects(
        async () => {
          for await (const n of pool.imap(square, failingInput([1, 2, 3]), { chunksize })) {
            seen.push(n);
          }
        },
        Error,
        "the input broke",
      );
      assertEquals(seen, [1, 4, 9], `chunksize ${chunksize}`);
      const unordered: number[] = [];
      await assertRejects(
        async () => {
          for await (const n of pool.imapUnordered(square, failingAsyncInput([4, 5]))) {
            unordered.push(n);
          }
        },
        Error,
        "the async input broke",
      );
      assertEquals(unordered.sort((a, b) => a - b), [16, 25]);
    }
    await assertRejects(() => pool.map(square, failingAsyncInput([1])), Error, "async input broke");
  });

  Deno.test(`${kind}.shutdown({ wait, cancelFutures }) is Python's Executor.shutdown()`, async () => {
    const pool = makePool(1);
    const futures = [100, 100].map((ms) => pool.submit(sleepFor, [ms]));
    await pool.shutdown();
    // wait: true (the default) returns once every pending task has run and the workers are gone.
    assert(futures.every((future) => future.done() && !future.cancelled()));
    assertEquals(pool.stats().workers, 0);
    const other = makePool(1);
    const slow = other.submit(sleepFor, [200]);
    await other.shutdown({ wait: false });
    assert(!slow.done(), "shutdown({ wait: false }) waited");
    assertEquals(await slow, 200);
    await other.join();
    assertRejects(() => other.shutdown({ wait: "yes" } as never), TypeError, "'wait'");
    assertRejects(() => other.shutdown({ cancel_futures: true } as never), TypeError);
  });
}
