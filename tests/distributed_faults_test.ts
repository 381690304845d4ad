/**
 * The fault matrix of DistributedPool, with short leases: a node killed mid-task, a node suspended
 * past its lease, `retries: 0`, a module that differs on the node, cancel and timeout, `maxQueue`,
 * and Redis restarted. Real nodes, real Redis, real signals.
 */
import {
  assert,
  assertEquals,
  assertInstanceOf,
  assertRejects,
  assertStringIncludes,
  assertThrows,
} from "@std/assert";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, relative } from "node:path";
import { DistributedPool, REDIS_SILENCE_MS, WorkerLostError } from "../distributed.ts";
import { CancelledError, QueueFullError, TimeoutError } from "../mod.ts";
import { add, delayed, echo, markAndWait } from "./fixtures/distributed_targets.ts";
import { fixturePath, isPidAlive, waitUntil } from "./_helpers.ts";
import { type Cluster, repoRoot, withCluster, type WorkerNodeProcess } from "./_redis.ts";

const module = fixturePath("distributed_targets");
// Short, yet long enough that a node slowed down by a loaded machine keeps renewing in time.
const SHORT_LEASE = ["--lease-ms", "2000", "--check-ms", "500", "--processes", "1"];
const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, fn, sanitizeOps: false, sanitizeResources: false });

function markerFile(): { file: string; lines: () => string[]; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), "multiproc-marks-"));
  const file = join(dir, "marks");
  return {
    file,
    // A mark is counted once its line is whole: the file can exist, still empty, mid-append.
    lines: () =>
      existsSync(file)
        ? readFileSync(file, "utf8").split("\n").filter((line) => /^\d+ \d+$/.test(line))
        : [],
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The node whose process (or whose pool's child) wrote the first mark. */
function nodeThatRan(cluster: Cluster, line: string): WorkerNodeProcess {
  const pids = line.split(" ").map(Number);
  const node = cluster.nodes.find((candidate) => pids.includes(candidate.pid));
  assert(node, `No node ran the task: marks '${line}', nodes ${cluster.nodes.map((n) => n.pid)}`);
  return node;
}

test("DistributedPool: a node killed mid-task has its task run again on another node", async () => {
  const marks = markerFile();
  try {
    await withCluster({ nodes: 2, nodeArgs: SHORT_LEASE }, async (cluster) => {
      const { redis, queue } = cluster;
      await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
      const future = pool.submit(markAndWait, [marks.file, 2500], { module });
      assert(await waitUntil(() => marks.lines().length === 1, 20_000), "the task never started");
      const victim = nodeThatRan(cluster, marks.lines()[0]);
      const childPids = marks.lines()[0].split(" ").map(Number);
      victim.signal("SIGKILL");
      const pid = await future;
      assert(marks.lines().length >= 2, `ran ${marks.lines().length} time(s)`);
      assert(!childPids.includes(pid), "the task's second run was on the killed node");
      assertEquals(pool.stats().tasksCompleted, 1);
      // The killed node's pool child does not outlive it.
      assert(await waitUntil(() => !isPidAlive(childPids[0]), 10_000), "orphaned pool child");
    });
  } finally {
    marks.remove();
  }
});

test("DistributedPool: retries: 0 runs a task at most once; its lost node rejects it", async () => {
  const marks = markerFile();
  try {
    await withCluster({ nodes: 2, nodeArgs: SHORT_LEASE }, async (cluster) => {
      const { redis, queue } = cluster;
      await using pool = new DistributedPool({
        connection: redis.socket,
        queue,
        root: repoRoot,
        retries: 0,
      });
      const future = pool.submit(markAndWait, [marks.file, 2500], { module });
      assert(await waitUntil(() => marks.lines().length === 1, 20_000), "the task never started");
      nodeThatRan(cluster, marks.lines()[0]).signal("SIGKILL");
      const error = await assertRejects(() => Promise.resolve(future), WorkerLostError);
      assertStringIncludes(error.message, "may have partly run");
      assertEquals(marks.lines().length, 1);
      // The other node still serves.
      assertEquals(await pool.apply(add, [1, 2], { module }), 3);
    });
  } finally {
    marks.remove();
  }
});

test("DistributedPool: a node suspended past its lease: the task runs elsewhere, settles once", async () => {
  const marks = markerFile();
  try {
    await withCluster({ nodes: 2, nodeArgs: SHORT_LEASE }, async (cluster) => {
      const { redis, queue } = cluster;
      await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
      const future = pool.submit(markAndWait, [marks.file, 2000], { module });
      assert(await waitUntil(() => marks.lines().length === 1, 20_000), "the task never started");
      const sleeper = nodeThatRan(cluster, marks.lines()[0]);
      sleeper.signal("SIGSTOP");
      try {
        const pid = await future;
        assert(marks.lines().length >= 2, `ran ${marks.lines().length} time(s)`);
        assert(!marks.lines()[0].split(" ").map(Number).includes(pid));
      } finally {
        sleeper.signal("SIGCONT");
      }
      // The woken node finishes its copy too; its late result changes nothing.
      await new Promise((resolve) => setTimeout(resolve, 2500));
      assertEquals(pool.stats().tasksCompleted, 1);
      assertEquals(pool.stats().queueLength, 0);
    });
  } finally {
    marks.remove();
  }
});

test("DistributedPool: a node whose module differs refuses the task, naming the file", async () => {
  const otherRoot = mkdtempSync(join(tmpdir(), "multiproc-root-"));
  try {
    const rel = relative(repoRoot, module);
    mkdirSync(dirname(join(otherRoot, rel)), { recursive: true });
    writeFileSync(join(otherRoot, rel), readFileSync(module, "utf8") + "\n// changed\n");
    await withCluster({ nodes: 0 }, async (cluster) => {
      await cluster.startNode(["--root", otherRoot, "--processes", "1"]);
      await using pool = new DistributedPool({
        connection: cluster.redis.socket,
        queue: cluster.queue,
        root: repoRoot,
      });
      const error = await assertRejects(() => pool.apply(add, [1, 2], { module }), TypeError);
      assertStringIncludes(error.message, rel.split("\\").join("/"));
      assertStringIncludes(error.message, "differs");
    });
  } finally {
    rmSync(otherRoot, { recursive: true, force: true });
  }
});

test("DistributedPool: a cancelled task that waits never runs; timeoutMs rejects", async () => {
  const marks = markerFile();
  try {
    await withCluster({ nodeArgs: ["--processes", "1"] }, async ({ redis, queue }) => {
      await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
      const blocker = pool.submit(delayed, ["first", 1500], { module });
      await new Promise((resolve) => setTimeout(resolve, 200));
      const waiting = pool.submit(markAndWait, [marks.file, 0], { module });
      await new Promise((resolve) => setTimeout(resolve, 200));
      assert(waiting.cancel());
      await assertRejects(() => Promise.resolve(waiting), CancelledError);
      assert(waiting.cancelled());
      assertEquals(await blocker, "first");
      await new Promise((resolve) => setTimeout(resolve, 500));
      assertEquals(marks.lines(), [], "the cancelled task ran");

      const started = Date.now();
      await assertRejects(
        () => pool.apply(delayed, ["slow", 2000], { module, timeoutMs: 300 }),
        TimeoutError,
      );
      assert(Date.now() - started < 4000, "the timeout came late");
      const aborted = new AbortController();
      const pending = pool.apply(delayed, ["slow", 2000], { module, signal: aborted.signal });
      aborted.abort(new Error("stop"));
      await assertRejects(() => pending, Error, "stop");
      assertEquals(pool.stats().tasksCancelled, 3);
    });
  } finally {
    marks.remove();
  }
});

test("DistributedPool: maxQueue bounds the pending tasks; past it submit() is refused", async () => {
  await withCluster({ nodeArgs: ["--processes", "2"] }, async ({ redis, queue }) => {
    await using pool = new DistributedPool({
      connection: redis.socket,
      queue,
      root: repoRoot,
      maxQueue: 3,
    });
    const futures = [];
    for (let i = 0; i < 12; i++) {
      await pool.waitForRoom();
      futures.push(pool.submit(delayed, [i, 20], { module }));
      assert(pool.stats().queueLength <= 3, `queue length ${pool.stats().queueLength}`);
    }
    assertEquals(await Promise.all(futures), Array.from({ length: 12 }, (_, i) => i));
    // Past maxQueue without waiting: refused at once, as by the local pools; the others settle.
    const burst = Array.from({ length: 3 }, (_, i) => pool.submit(delayed, [i, 50], { module }));
    assertThrows(() => pool.submit(delayed, [9, 5], { module }), QueueFullError, "maxQueue");
    await assertRejects(() => pool.apply(delayed, [9, 5], { module }), QueueFullError);
    assertEquals(await Promise.all(burst), [0, 1, 2]);
    const items = Array.from({ length: 500 }, (_, i) => i);
    assertEquals(await pool.map(echo, items, { module, chunksize: 25 }), items);
    assertEquals(
      await pool.starmap(add, items.map((i) => [i, 1]), { module, chunksize: 10 }),
      items.map((i) => i + 1),
    );
  });
});

test("DistributedPool: Redis restarted: pending futures reject in bounded time; then it works", async () => {
  await withCluster({ nodeArgs: ["--processes", "1"] }, async ({ redis, queue }) => {
    await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
    assertEquals(await pool.apply(add, [1, 1], { module }), 2);
    const pending = pool.submit(delayed, ["never", 4000], { module });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    await redis.halt();
    const error = await assertRejects(() => Promise.resolve(pending), WorkerLostError);
    assertStringIncludes(error.message, "Redis");
    assert(Date.now() - started < REDIS_SILENCE_MS + 2000, "the rejection came late");
    await redis.start();
    let result: number | undefined;
    const deadline = Date.now() + 20_000;
    while (result === undefined && Date.now() < deadline) {
      result = await pool.apply(add, [2, 2], { module, timeoutMs: 5000 }).catch(() => undefined);
    }
    assertEquals(result, 4);
    assertInstanceOf(error, Error);
  });
});

test("DistributedPool: Redis that stops answering rejects pending futures in bounded time", async () => {
  await withCluster({ nodeArgs: ["--processes", "1"] }, async ({ redis, queue }) => {
    await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
    assertEquals(await pool.apply(add, [1, 1], { module }), 2);
    const pending = pool.submit(delayed, ["never", 8000], { module });
    await new Promise((resolve) => setTimeout(resolve, 300));
    const started = Date.now();
    redis.signal("SIGSTOP");
    try {
      const error = await assertRejects(() => Promise.resolve(pending), WorkerLostError);
      assertStringIncludes(error.message, "Redis");
      assert(Date.now() - started < REDIS_SILENCE_MS + 2000, "the rejection came late");
    } finally {
      redis.signal("SIGCONT");
    }
    await pool.terminate();
  });
});

test("DistributedPool: a worker node whose Redis is gone still drains on SIGTERM and exits 0", async () => {
  await withCluster(
    { nodeArgs: ["--threads", "1", "--lease-ms", "1000"] },
    async ({ redis, queue, nodes }) => {
      await using pool = new DistributedPool({ connection: redis.socket, queue, root: repoRoot });
      assertEquals(await pool.apply(add, [1, 2], { module }), 3);
      await pool.terminate();
      await redis.halt();
      const node = nodes[0];
      // stop() sends SIGTERM, then SIGKILL 5 s later: a node that hangs shows as the signal.
      const exit = await node.stop();
      assertEquals(exit, { code: 0, signal: null }, node.stdout + node.stderr);
      assertStringIncludes(node.stdout, "drained");
      // It held nothing: whether its worker saw Redis gone and closed (Bun) or waited out the
      // lease (Deno, Node), nothing is lost, and it must not be stuck on a reconnection.
    },
  );
});
