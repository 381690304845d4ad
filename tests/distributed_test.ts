/**
 * DistributedPool against real worker nodes (`multiproc worker` processes) and a real Redis on a
 * Unix socket: the behaviour of the local pools, and what crossing machines adds.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertMatch,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { fileURLToPath } from "node:url";
import { DistributedPool, WorkerLostError } from "../distributed.ts";
import { asCompleted, Queue, TimeoutError, wait } from "../mod.ts";
import { add, delayed, echo, fail } from "./fixtures/distributed_targets.ts";
import { fixturePath, runFixture } from "./_helpers.ts";
import { repoRoot, withCluster } from "./_redis.ts";
import { runtime } from "./_runtime.deno.ts";

const module = fixturePath("distributed_targets");
const test = (name: string, fn: () => void | Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

test("DistributedPool.apply() runs an exported target on a node and keeps the result", async () => {
  await withCluster({}, async ({ redis, queue }) => {
    await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
    assertEquals(await pool.apply(add, [2, 40], { module }), 42);
    const future = pool.submit(delayed, [{ nested: [1, "two"] }, 20], { module });
    assertEquals(await future, { nested: [1, "two"] });
    assert(future.done());
    assertEquals(pool.stats().tasksCompleted, 2);
    assertEquals(pool.stats().queueLength, 0);
  });
});

/** A value with what structured clone keeps, and a check that it came back whole. */
function richValue() {
  const cyclic: Record<string, unknown> = { name: "loop" };
  cyclic.self = cyclic;
  return {
    date: new Date(86_400_000),
    map: new Map<unknown, unknown>([[1, "one"], ["set", new Set([1n, 2n])]]),
    big: 12345678901234567890n,
    bytes: new Uint8Array([1, 2, 255]),
    floats: new Float64Array([0.5, -0]),
    special: [NaN, -0, Infinity, undefined, null],
    regexp: /a+b/gi,
    error: new TypeError("inner", { cause: new RangeError("deeper") }),
    cyclic,
  };
}

function assertRich(back: ReturnType<typeof richValue>): void {
  assertInstanceOf(back.date, Date);
  assertEquals(back.date.getTime(), 86_400_000);
  assertEquals(back.map.get(1), "one");
  assertInstanceOf(back.map.get("set"), Set);
  assertEquals([...back.map.get("set") as Set<bigint>], [1n, 2n]);
  assertEquals(back.big, 12345678901234567890n);
  assertEquals(back.bytes, new Uint8Array([1, 2, 255]));
  assertInstanceOf(back.floats, Float64Array);
  assert(Object.is(back.floats[1], -0));
  assert(Number.isNaN(back.special[0]) && Object.is(back.special[1], -0));
  assertEquals(back.special.slice(2), [Infinity, undefined, null]);
  assertEquals(String(back.regexp), "/a+b/gi");
  assertInstanceOf(back.error, TypeError);
  assertInstanceOf(back.error.cause, RangeError);
  assertEquals((back.error.cause as Error).message, "deeper");
  assert(back.cyclic.self === back.cyclic);
}

if (runtime !== "deno") {
  test(`DistributedPool: a ${runtime} client and a Deno worker node work together`, async () => {
    await withCluster({ nodes: 0 }, async (cluster) => {
      await cluster.startNode(["--processes", "1"], true);
      await using pool = new DistributedPool({
        connection: cluster.redis.socket,
        queue: cluster.queue,
        root: repoRoot,
      });
      assertRich(await pool.apply(echo, [richValue()], { module }));
      const error = await assertRejects(() => pool.apply(fail, ["across"], { module }), RangeError);
      assertEquals((error.cause as Error).message, "inner cause");
    });
  });
}

test("DistributedPool keeps what structured clone keeps, across runtimes' encodings", async () => {
  await withCluster({}, async ({ redis, queue }) => {
    await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
    assertRich(await pool.apply(echo, [richValue()], { module }));
  });
});

test("DistributedPool rejects with the task's error: class, message, fields and cause", async () => {
  await withCluster({}, async ({ redis, queue }) => {
    await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
    const error = await assertRejects(() => pool.apply(fail, ["it broke"], { module }), RangeError);
    assertEquals(error.message, "it broke");
    assertEquals((error as RangeError & { code: string }).code, "E_FAIL");
    assertEquals((error.cause as Error).message, "inner cause");
    assertStringIncludes(error.stack ?? "", "distributed_targets");
    assertEquals(pool.stats().tasksFailed, 1);
  });
});

test("DistributedPool.map(), starmap(), imap() and imapUnordered() keep their orders", async () => {
  await withCluster(
    { nodeArgs: ["--processes", "2", "--allow-source"] },
    async ({ redis, queue }) => {
      await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
      const items = Array.from({ length: 2000 }, (_, i) => i);
      assertEquals(await pool.map((n: number) => n * 2, items), items.map((n) => n * 2));
      assertEquals(
        await pool.map((n: number) => n + 1, items, { chunksize: 7 }),
        items.map((n) => n + 1),
      );
      assertEquals(await pool.starmap(add, [[1, 2], [3, 4]], { module }), [3, 7]);
      assertEquals(await pool.map((n: number) => n, []), []);
      async function* numbers() {
        for (let i = 0; i < 50; i++) yield i;
      }
      const ordered: number[] = [];
      for await (const n of pool.imap((n: number) => n * n, numbers())) ordered.push(n);
      assertEquals(ordered, Array.from({ length: 50 }, (_, i) => i * i));
      const unordered: number[] = [];
      for await (const n of pool.imapUnordered((n: number) => n + 1, items.slice(0, 300))) {
        unordered.push(n);
      }
      assertEquals(unordered.sort((a, b) => a - b), items.slice(0, 300).map((n) => n + 1));
      function* naturals() {
        for (let n = 1;; n++) yield n;
      }
      const firsts: number[] = [];
      for await (const n of pool.imap((n: number) => n, naturals())) {
        if (n > 5) break;
        firsts.push(n);
      }
      assertEquals(firsts, [1, 2, 3, 4, 5]);
    },
  );
});

test("DistributedPool.map() rejects with the first error; bad items and options fail at once", async () => {
  await withCluster({ nodeArgs: ["--processes", "2", "--allow-source"] }, async (cluster) => {
    const { redis, queue } = cluster;
    await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
    const error = await assertRejects(
      () =>
        pool.map(
          (n: number) => {
            if (n === 37) throw new RangeError(`bad item ${n}`);
            return n;
          },
          Array.from({ length: 100 }, (_, i) => i),
          { chunksize: 10 },
        ),
      RangeError,
    );
    assertEquals(error.message, "bad item 37");
    await assertRejects(
      () => pool.starmap(add, [[1, 2], 3 as unknown as [number, number]], { module }),
      TypeError,
      "item 1",
    );
    await assertRejects(() => pool.map((n: number) => n, [1], { chunksize: 0 }), RangeError);
    await assertRejects(
      () => pool.map((n: number) => n, 5 as unknown as number[]),
      TypeError,
      "'iterable'",
    );
    const sleep = (ms: number) => new Promise((resolve) => setTimeout(() => resolve(ms), ms));
    await assertRejects(() => pool.map(sleep, [1500], { timeoutMs: 100 }), TimeoutError);
    const slow = pool.imap(sleep, [1500], { timeoutMs: 100 });
    await assertRejects(() => slow.next(), TimeoutError);
    async function* letters() {
      yield* ["a", "b", "c"];
    }
    assertEquals(await pool.map((s: string) => s.toUpperCase(), letters()), ["A", "B", "C"]);
    const future = pool.submit(delayed, ["ready", 10], { module });
    const seen = new Promise((resolve) => future.addDoneCallback((f) => resolve(f.done())));
    assertEquals(await future.result({ timeoutMs: 20_000 }), "ready");
    assertEquals(await seen, true);
    assertEquals(
      await pool.submit(fail, ["x"], { module }).exception().then((e) => e instanceof RangeError),
      true,
    );
    const stats = pool.stats();
    assertEquals(stats.queueLength, 0);
    assert(stats.tasksCompleted >= 2 && stats.tasksFailed >= 2, JSON.stringify(stats));
    assert(stats.waitTimeMs.p50 > 0);
  });
});

test("asCompleted() and wait() take DistributedPool futures unchanged", async () => {
  await withCluster({}, async ({ redis, queue }) => {
    await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
    const futures = [300, 10, 150].map((ms) => pool.submit(delayed, [ms, ms], { module }));
    const seen = [];
    for await (const future of asCompleted(futures)) seen.push(await future);
    assertEquals(seen.sort((a, b) => a - b), [10, 150, 300]);
    const { done, notDone } = await wait(
      [pool.submit(delayed, [1, 5], { module }), pool.submit(fail, ["x"], { module })],
      { returnWhen: "ALL_COMPLETED" },
    );
    assertEquals(done.size, 2);
    assertEquals(notDone.size, 0);
  });
});

test("DistributedPool: a node without --allow-source refuses source text, naming the flag", async () => {
  await withCluster({}, async ({ redis, queue }) => {
    await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
    const error = await assertRejects(() => pool.apply((x: number) => x + 1, [1]), TypeError);
    assertStringIncludes(error.message, "--allow-source");
    // The node goes on serving.
    assertEquals(await pool.apply(add, [1, 1], { module }), 2);
  });
});

test("DistributedPool refuses what cannot cross machines, naming the argument", () => {
  const pool = new DistributedPool({ connection: "/nonexistent/redis.sock", root: repoRoot });
  const queue = new Queue();
  try {
    const error = assertThrows(
      () => pool.submit(add as (...args: unknown[]) => unknown, [1, { q: queue }], { module }),
      TypeError,
    );
    assertMatch(error.message, /argument 1 \(at \.q\)/);
    assertStringIncludes(error.message, "shared");
    assertThrows(
      () => pool.submit(echo as (...args: unknown[]) => unknown, [() => 1], { module }),
      TypeError,
      "argument 0",
    );
    assertEquals(pool.stats().queueLength, 0);
  } finally {
    queue.close?.();
    void pool.terminate();
  }
});

test("DistributedPool checks its options at once", async () => {
  assertThrows(
    () => new DistributedPool({ connection: 6379 as unknown as string }),
    TypeError,
    "'connection'",
  );
  assertThrows(() => new DistributedPool({ connection: "http://x" }), TypeError, "scheme");
  assertThrows(
    () => new DistributedPool({ connection: "redis://x", retires: 1 } as never),
    TypeError,
    "retires",
  );
  assertThrows(() => new DistributedPool({ connection: "redis://x", retries: -1 }), RangeError);
  assertThrows(() => new DistributedPool({ connection: "redis://x", maxQueue: 0 }), RangeError);
  assertThrows(() => new DistributedPool({ connection: "redis://x", queue: "a:b" }), TypeError);
  const pool = new DistributedPool({ connection: "redis://localhost:1" });
  await assertRejects(() => pool.join(), Error, "close()");
  await assertRejects(
    () =>
      pool.apply(add, [1, 2], {
        module: fileURLToPath(new URL("../README.md", import.meta.url)),
        timeoutMs: -1,
      }),
    RangeError,
  );
  pool.close();
  await pool.join();
  assertThrows(() => pool.submit(add, [1, 2], { module }), Error, "closed");
});

test("A forgotten DistributedPool does not keep the program alive", async () => {
  await withCluster({}, async ({ redis, queue }) => {
    const out = await runFixture(
      "distributed_forgotten",
      [redis.socket, queue, repoRoot],
      { runtimeFlags: runtime === "deno" ? ["-A"] : [], timeoutMs: 30_000 },
    );
    assertEquals(out.code, 0, out.stderrText);
    assertEquals(out.stdoutText.trim(), "3");
  });
});

test("DistributedPool.terminate() rejects pending tasks; close() + join() waits for them", async () => {
  await withCluster({}, async ({ redis, queue }) => {
    const pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
    const slow = pool.submit(delayed, ["late", 200], { module });
    pool.close();
    await pool.join();
    assertEquals(await slow, "late");
    const other = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
    const stuck = other.submit(delayed, ["never", 5000], { module });
    await other.terminate();
    const error = await assertRejects(() => Promise.resolve(stuck));
    assertEquals((error as Error).name, "BrokenPoolError");
    assert(!(error instanceof WorkerLostError));
  });
});
