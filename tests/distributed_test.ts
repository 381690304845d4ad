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
import { DistributedPool } from "../distributed.ts";
import { Queue, TimeoutError } from "../mod.ts";
import { add, delayed, echo, fail } from "./fixtures/distributed_targets.ts";
import { targetsUrl } from "./fixtures/targets.ts";
import { fixturePath, runFixture, waitUntil } from "./_helpers.ts";
import { testPoolBehaviour } from "./_pool_behaviour.ts";
import { repoRoot, withCluster } from "./_redis.ts";
import { runtime } from "./_runtime.deno.ts";

const module = fixturePath("distributed_targets");
const test = (name: string, fn: () => void | Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

// The local pools' behaviour, on a node of `size` threads per pool.
testPoolBehaviour({
  label: "DistributedPool",
  suffix: "",
  sanitize: false,
  cancelsRunning: false,
  withPool: (options, fn) =>
    withCluster(
      { nodeArgs: ["--threads", String(options.size), "--allow-source"] },
      async ({ redis, queue }) => {
        await using pool = new DistributedPool({
          connection: redis.socket,
          queue,
          root: repoRoot,
          module: targetsUrl,
          maxQueue: options.maxQueue,
        });
        await fn(pool);
      },
    ),
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
    // The chunks that timed out while running finish on their node, as in the local pools.
    assert(await waitUntil(() => pool.stats().queueLength === 0, 20_000), "a task never settled");
    const stats = pool.stats();
    assert(stats.tasksCompleted >= 2 && stats.tasksFailed >= 2, JSON.stringify(stats));
    assert(stats.waitTimeMs.p50 > 0);
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

for (const mode of ["forgotten", "using", "close", "redis-gone"]) {
  const how = {
    forgotten: "A forgotten DistributedPool does not keep the program alive",
    using: "An idle program ends after `await using` a DistributedPool",
    close: "An idle program ends after a DistributedPool's close() and join()",
    "redis-gone":
      "An idle program ends after close() and join() of a DistributedPool whose Redis went away: no reconnection timer is left",
  }[mode]!;
  test(how, async () => {
    await withCluster({}, async ({ redis, queue }) => {
      let halting: Promise<void> | undefined;
      const out = await runFixture("distributed_forgotten", [mode, redis.socket, queue, repoRoot], {
        runtimeFlags: runtime === "deno" ? ["-A"] : [],
        // The deadline: a program that does not end by itself is killed, and the test fails.
        timeoutMs: 30_000,
        onStdout: (text) => {
          if (text.includes("ran") && halting === undefined) halting = redis.halt();
        },
      });
      await halting;
      assertEquals(out.signal, null, `the program was still running at its deadline: ${mode}`);
      assertEquals(out.code, 0, out.stderrText);
      assertEquals(out.stdoutText.split("\n")[0], "3");
      if (mode === "redis-gone") assertStringIncludes(out.stdoutText, "closed");
    });
  });
}

test("DistributedPool.stats() reports the nodes' sizes and busy workers from their heartbeats", async () => {
  await withCluster({ nodes: 2, nodeArgs: ["--threads", "2"] }, async (cluster) => {
    const { redis, queue } = cluster;
    await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
    assertEquals(pool.stats().size, 0, "nothing is known before the first task connects");
    assertEquals(await pool.apply(add, [1, 2], { module }), 3);
    assert(
      await waitUntil(() => pool.stats().size === 4 && pool.stats().workers === 4, 15_000),
      `stats: ${JSON.stringify(pool.stats())}`,
    );
    assertEquals(pool.size, 4);
    // Two tasks run at once, on one node or on both: a node takes several jobs at a time.
    const slow = [1, 2].map((n) => pool.submit(delayed, [n, 4000], { module }));
    assert(await waitUntil(() => slow.every((future) => future.running()), 15_000));
    assert(
      await waitUntil(() => pool.stats().busyWorkers === 2, 15_000),
      `busy: ${JSON.stringify(pool.stats())}`,
    );
    assertEquals(pool.stats().utilization, 0.5);
    assertEquals(await Promise.all(slow), [1, 2]);
    // A node that drains takes its report away.
    await cluster.nodes[0].stop();
    assert(
      await waitUntil(() => pool.stats().size === 2 && pool.stats().busyWorkers === 0, 15_000),
      `after a node left: ${JSON.stringify(pool.stats())}`,
    );
  });
});
