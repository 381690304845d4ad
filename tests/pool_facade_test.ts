/**
 * The one pool API (`BasePool`) over its two backends: `ThreadPool` and `Pool` on this machine,
 * `DistributedPool` on worker nodes through Redis. The same call is checked the same way on each,
 * and what the API adds to a backend (`shutdown()`, `cancelFutures`) works on the remote one too.
 */
import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { DistributedPool } from "../distributed.ts";
import { BasePool, CancelledError, Pool, ThreadPool } from "../mod.ts";
import { add, delayed } from "./fixtures/distributed_targets.ts";
import { fixturePath } from "./_helpers.ts";
import { repoRoot, withCluster } from "./_redis.ts";

const module = fixturePath("distributed_targets");
const test = (name: string, fn: () => void | Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

const inc = (x: number) => x + 1;

test("ThreadPool, Pool and DistributedPool refuse the same bad input with the same errors", async () => {
  // Nothing here reaches a worker: the pools start no worker and open no connection for it.
  const pools: [string, BasePool][] = [
    ["ThreadPool", new ThreadPool({ size: 1 })],
    ["Pool", new Pool({ size: 1 })],
    ["DistributedPool", new DistributedPool({ connection: "redis://localhost:6379" })],
  ];
  for (const [kind, pool] of pools) {
    assert(pool instanceof BasePool);
    await assertRejects(
      () => pool.apply(inc, 5 as never),
      TypeError,
      `${kind}.apply() 'args' must be an array: received 5`,
    );
    assertThrows(
      () => pool.submit(inc, [1], 5 as never),
      TypeError,
      `${kind}.submit() options must be an object: received 5; pass { timeoutMs, signal, module }`,
    );
    assertThrows(
      () => pool.submit(inc, [1], { timeout: 5 } as never),
      TypeError,
      `${kind}.submit() has no option 'timeout': did you mean 'timeoutMs'`,
    );
    assertThrows(
      () => pool.submit(5 as never),
      TypeError,
      `${kind}.submit() 'target' must be a function: received 5`,
    );
    await assertRejects(
      () => pool.map(inc, 5 as never),
      TypeError,
      `${kind}.map() 'iterable' must be an iterable or async iterable: received 5`,
    );
    await assertRejects(
      () => pool.map(inc, [1], { chunksize: 0 }),
      RangeError,
      "'chunksize' must be a positive integer: received 0",
    );
    assertThrows(
      () => pool.imap(inc, [1], { buffersize: 0 }),
      RangeError,
      "'buffersize' must be a positive integer: received 0",
    );
    assertThrows(
      () => pool.close({ cancelFutures: 1 } as never),
      TypeError,
      `${kind}.close() 'cancelFutures' must be a boolean: received 1`,
    );
    await assertRejects(
      () => pool.shutdown({ wait: "no" } as never),
      TypeError,
      `${kind}.shutdown() 'wait' must be a boolean: received "no"`,
    );
    // Every refusal left the pool open and unused.
    assertEquals(pool.stats().queueLength, 0);
    await pool.shutdown();
    assertThrows(() => pool.submit(inc, [1]), Error, "it is closed");
  }
});

test("DistributedPool.shutdown({ cancelFutures: true }) cancels its pending futures and ends the pool", async () => {
  await withCluster({ nodeArgs: ["--threads", "1"] }, async ({ redis, queue }) => {
    const pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
    // Connected, and a node serves the queue.
    assertEquals(await pool.apply(add, [1, 2], { module }), 3);
    const futures = [0, 1, 2, 3, 4, 5].map((n) => pool.submit(delayed, [n, 300], { module }));
    await new Promise((resolve) => setTimeout(resolve, 100));
    await pool.shutdown({ cancelFutures: true });
    // Each future has settled: with its value, if it ran to the end, or cancelled.
    let cancelled = 0;
    for (const [n, future] of futures.entries()) {
      assert(future.done());
      if (future.cancelled()) {
        cancelled++;
        await assertRejects(() => future.result(), CancelledError);
      } else assertEquals(await future, n);
    }
    // One node thread at 300 ms a task: the last ones cannot have started.
    assert(futures.at(-1)!.cancelled());
    assertEquals(pool.stats().tasksCancelled, cancelled);
    assertThrows(() => pool.submit(add, [1, 2], { module }), Error, "it is closed");
  });
});
