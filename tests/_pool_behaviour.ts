/**
 * What every pool must do, whatever its workers are: the pool API's semantics (submit, apply, map,
 * starmap, imap, imapUnordered, errors, cancel, timeoutMs, signal, close, join, terminate,
 * waitForRoom, maxQueue, asCompleted and wait on its futures, await using), registered once for each
 * kind of pool by `pool_test.ts` (ThreadPool, Pool) and `distributed_test.ts` (DistributedPool).
 * Real workers, processes, worker nodes and Redis; nothing mocked.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import {
  asCompleted,
  BrokenPoolError,
  CancelledError,
  QueueFullError,
  registerErrorClass,
  TimeoutError,
  wait,
} from "../mod.ts";
import type { BasePool } from "../src/_pool_facade.ts";
import { add, delayed, fail, forever, TaskFailedError } from "./fixtures/targets.ts";
import { waitUntil } from "./_helpers.ts";

registerErrorClass(TaskFailedError);

/** The options that every kind of pool takes. */
export interface BehaviourOptions {
  /** How many workers run tasks at once. */
  size: number;
  maxQueue?: number;
}

/** A kind of pool, as the shared tests make and use it. */
export interface PoolKind {
  /** The class's name, which begins each test's name. */
  label: string;
  /** Said after each test's name (" under forkserver"). */
  suffix: string;
  /** Whether Deno's sanitizers can check the test: not where children or sockets outlive it. */
  sanitize: boolean;
  /**
   * Whether `cancel()` stops a running task (the local pools replace its worker). Where false, a
   * running task cannot be cancelled, as in Python, and `timeoutMs` rejects its future while it
   * runs on.
   */
  cancelsRunning: boolean;
  /**
   * Runs `fn` with a fresh pool whose functions default to `tests/fixtures/targets.ts`, and stops
   * the pool and whatever serves it afterwards, whatever `fn` did.
   */
  withPool(options: BehaviourOptions, fn: (pool: BasePool) => Promise<void>): Promise<void>;
}

/** Registers the shared tests for `kind`, each named after it: "ThreadPool.map() keeps…". */
export function testPoolBehaviour(kind: PoolKind): void {
  const test = (name: string, fn: () => Promise<void>) =>
    Deno.test({
      name: `${kind.label}${name}${kind.suffix}`,
      fn,
      sanitizeResources: kind.sanitize,
      sanitizeOps: kind.sanitize,
    });
  const withPool = kind.withPool;

  test(".apply() runs an exported function and a self-contained one", async () => {
    await withPool({ size: 2 }, async (pool) => {
      assertEquals(await pool.apply(add, [2, 40]), 42);
      assertEquals(await pool.apply((s: string) => s.toUpperCase(), ["abc"]), "ABC");
      assertEquals(await pool.apply(delayed, [{ nested: [1, "two"] }, 20]), {
        nested: [1, "two"],
      });
      assertEquals(pool.stats().tasksCompleted, 3);
    });
  });

  test(".map() keeps input order, with automatic and given chunk sizes", async () => {
    await withPool({ size: 2 }, async (pool) => {
      const items = Array.from({ length: 1000 }, (_, i) => i);
      const doubled = items.map((x) => x * 2);
      assertEquals(await pool.map((x: number) => x * 2, items), doubled);
      assertEquals(await pool.map((x: number) => x * 2, items, { chunksize: 7 }), doubled);
      assertEquals(await pool.map((x: number) => x * 2, new Set([3, 1, 2])), [6, 2, 4]);
      assertEquals(await pool.map((x: number) => x, []), []);
      assertEquals(await pool.starmap(add, [[1, 2], [3, 4], [5, 6]]), [3, 7, 11]);
    });
  });

  test(".imap() yields in order and pulls an infinite input lazily", async () => {
    await withPool({ size: 2 }, async (pool) => {
      let pulled = 0;
      function* naturals() {
        for (let n = 0;; n++) {
          pulled++;
          yield n;
        }
      }
      const seen: number[] = [];
      for await (
        const value of pool.imap((n: number) => n * n, naturals(), {
          chunksize: 1,
          buffersize: 3,
        })
      ) {
        seen.push(value);
        if (seen.length === 20) break;
      }
      assertEquals(seen, Array.from({ length: 20 }, (_, n) => n * n));
      // Never more than the buffer ahead of the consumer.
      assert(pulled <= 20 + 3 + 1, `pulled ${pulled} items for 20 results`);
    });
  });

  test(".imapUnordered() yields every result of an async input", async () => {
    await withPool({ size: 2 }, async (pool) => {
      async function* input() {
        for (let i = 0; i < 50; i++) {
          if (i % 10 === 0) await new Promise((resolve) => setTimeout(resolve, 1));
          yield i;
        }
      }
      const results: number[] = [];
      for await (const value of pool.imapUnordered((x: number) => x + 1, input())) {
        results.push(value);
      }
      assertEquals(results.sort((a, b) => a - b), Array.from({ length: 50 }, (_, i) => i + 1));
      assertEquals(
        await pool.map((x: number) => x * 3, input()),
        Array.from({ length: 50 }, (_, i) => i * 3),
      );
    });
  });

  test(" rebuilds task errors with their class, stack and cause", async () => {
    await withPool({ size: 1 }, async (pool) => {
      const error = await assertRejects(() => pool.apply(fail, ["it broke"]), TaskFailedError);
      assertEquals(error.message, "it broke");
      assertEquals((error as TaskFailedError).code, "E_TASK");
      assertStringIncludes(error.stack!, "targets");
      assertInstanceOf(error.cause, RangeError);
      assertEquals((error.cause as Error).message, "the inner cause");
      // The first item to fail, in the order they fail, as Python's map(): a node may run the
      // chunks side by side.
      const mapError = await assertRejects(() => pool.map(fail, ["a", "b"]), TaskFailedError);
      assert(["a", "b"].includes(mapError.message), `map() rejected with '${mapError.message}'`);
      // The pool goes on after task errors.
      assertEquals(await pool.apply(add, [1, 1]), 2);
    });
  });

  test(".submit() gives a Future that is running while it runs; cancel() stops what has not started", async () => {
    await withPool({ size: 1 }, async (pool) => {
      const running = pool.submit(delayed, ["ran", 1500]);
      const queued = pool.submit(add, [1, 2]);
      assert(!running.done());
      assert(await waitUntil(() => running.running(), 20_000), "the first task never ran");
      assert(!queued.running() && !queued.done());
      assert(queued.cancel());
      await assertRejects(() => queued, CancelledError);
      assert(queued.cancelled() && queued.done() && !queued.running());
      if (kind.cancelsRunning) {
        // The worker is stopped and replaced.
        assert(running.cancel(new Error("stop it")));
        await assertRejects(() => running, Error, "stop it");
        assert(running.cancelled());
      } else {
        // As Python's Future.cancel(): a running task cannot be cancelled, and runs to its end.
        assert(!running.cancel(new Error("stop it")));
        assert(running.running() && !running.cancelled());
        assertEquals(await running, "ran");
        assert(running.done() && !running.running());
      }
      assert(!running.cancel(), "a settled future cannot be cancelled");
      const next = pool.submit(add, [2, 2]);
      assertEquals(await next, 4);
      assert(next.done() && !next.cancelled() && !next.running());
      const stats = pool.stats();
      assertEquals(stats.tasksCancelled, kind.cancelsRunning ? 2 : 1);
      assertEquals(stats.tasksCompleted, kind.cancelsRunning ? 1 : 2);
    });
  });

  test(" rejects with signal.reason and with a TimeoutError after timeoutMs", async () => {
    // Three workers: where a task runs on past its timeout, the last task still finds one free.
    await withPool({ size: 3 }, async (pool) => {
      // A local worker is stopped; a task on a node runs on, so it ends by itself there.
      const [long, args] = kind.cancelsRunning
        ? [forever as (...args: unknown[]) => unknown, []]
        : [delayed as (...args: unknown[]) => unknown, [0, 3000]];
      const controller = new AbortController();
      const aborted = pool.apply(long, args, { signal: controller.signal });
      setTimeout(() => controller.abort(new RangeError("aborted by the caller")), 50);
      await assertRejects(() => aborted, RangeError, "aborted by the caller");
      await assertRejects(
        () => pool.apply(long, args, { timeoutMs: 100 }),
        TimeoutError,
        "100 ms",
      );
      const already = AbortSignal.abort(new Error("was aborted"));
      await assertRejects(() => pool.apply(add, [1, 2], { signal: already }), Error, "was aborted");
      assertEquals(await pool.apply(add, [1, 2], { timeoutMs: 10_000 }), 3);
    });
  });

  test(".close({ cancelFutures: true }) cancels what has not started and lets running tasks finish", async () => {
    await withPool({ size: 1 }, async (pool) => {
      const running = pool.submit(delayed, [300, 300]);
      const queued = [1, 2, 3].map((n) => pool.submit(delayed, [n, 300]));
      assert(await waitUntil(() => running.running(), 20_000), "the first task never ran");
      pool.close({ cancelFutures: true });
      await pool.join();
      assertEquals(await running, 300);
      for (const future of queued) {
        assert(future.cancelled());
        await assertRejects(() => future.result(), CancelledError);
      }
    });
  });

  test(".terminate() rejects pending tasks; close() + join() waits for them", async () => {
    await withPool({ size: 1 }, async (pool) => {
      const slow = pool.submit(delayed, ["late", 200]);
      pool.close();
      assertThrows(() => pool.submit(add, [1, 2]), Error, "closed");
      await assertRejects(() => pool.apply(add, [1, 2]), Error, "closed");
      await pool.join();
      assert(slow.done(), "join() returned with a task pending");
      assertEquals(await slow, "late");
    });
    await withPool({ size: 1 }, async (pool) => {
      await assertRejects(() => pool.join(), Error, "close()");
      const stuck = [pool.submit(delayed, ["never", 5000]), pool.submit(add, [1, 2])];
      await pool.terminate();
      for (const future of stuck) await assertRejects(() => future, BrokenPoolError);
      assertThrows(() => pool.submit(add, [1, 2]), Error, "terminated");
    });
  });

  test(".waitForRoom() holds a submit loop within maxQueue", async () => {
    await withPool({ size: 1, maxQueue: 3 }, async (pool) => {
      const futures = [];
      let peak = 0;
      for (let i = 0; i < 30; i++) {
        await pool.waitForRoom();
        futures.push(pool.submit(delayed, [i, 1]));
        peak = Math.max(peak, pool.stats().queueLength);
      }
      assert(peak <= 3, `the queue held ${peak} tasks`);
      assertEquals(await Promise.all(futures), Array.from({ length: 30 }, (_, i) => i));
      // A closed pool takes no tasks: waiting for room ends at once, and submit() says why.
      pool.close();
      await pool.waitForRoom();
      assertThrows(() => pool.submit(add, [1, 2]));
    });
  });

  test(" with maxQueue keeps the queue bounded and runs every task", async () => {
    await withPool({ size: 1, maxQueue: 4 }, async (pool) => {
      // Past maxQueue, submit() and apply() refuse at once; the tasks taken all run.
      const futures = [];
      const taken: number[] = [];
      let refused = 0;
      for (let i = 0; i < 40; i++) {
        try {
          futures.push(pool.submit(delayed, [i, 1]));
          taken.push(i);
        } catch (error) {
          assertInstanceOf(error, QueueFullError);
          assertStringIncludes(error.message, "maxQueue");
          refused++;
        }
        assert(pool.stats().queueLength <= 4, `${pool.stats().queueLength} tasks wait`);
      }
      assert(refused >= 40 - 4 - 2, `only ${refused} of 40 submits were refused`);
      await assertRejects(() => pool.apply(delayed, [0, 1]), QueueFullError);
      assertEquals(await Promise.all(futures), taken);
      let pulled = 0;
      const input = (function* () {
        for (let i = 0; i < 200; i++) {
          pulled++;
          yield i;
        }
      })();
      let consumed = 0;
      for await (const _ of pool.imap((x: number) => x, input, { chunksize: 2, buffersize: 2 })) {
        consumed++;
        assert(pulled - consumed <= 2 * 3 + 1, `ran ${pulled - consumed} items ahead`);
      }
      assertEquals(consumed, 200);
    });
  });

  test(" futures work with asCompleted() and wait() unchanged", async () => {
    await withPool({ size: 2 }, async (pool) => {
      const futures = [600, 10, 300].map((ms) => pool.submit(delayed, [ms, ms]));
      const seen = [];
      for await (const future of asCompleted(futures)) seen.push(await future);
      assertEquals(seen.sort((a, b) => a - b), [10, 300, 600]);
      const { done, notDone } = await wait(
        [pool.submit(delayed, [1, 5]), pool.submit(fail, ["x"])],
        { returnWhen: "ALL_COMPLETED" },
      );
      assertEquals(done.size, 2);
      assertEquals(notDone.size, 0);
      const first = await wait(
        [pool.submit(fail, ["early"]), pool.submit(delayed, [1, 1000])],
        { returnWhen: "FIRST_EXCEPTION" },
      );
      assertEquals(first.done.size, 1);
      assertInstanceOf(await [...first.done][0].exception(), TaskFailedError);
    });
  });
}
