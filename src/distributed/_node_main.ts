/**
 * A worker node of `DistributedPool`s: takes jobs from a BullMQ queue and runs their tasks in a
 * local `Pool` or `ThreadPool`, writing each group's outcomes to its client's stream before the
 * job completes. Worker side; `multiproc worker` starts it.
 *
 * Rules this file keeps:
 * - No task runs on this thread: it renews BullMQ's locks, which a busy thread would let lapse,
 *   and then the task would run twice.
 * - A job that comes back after its node was lost skips the tasks whose outcome is already on the
 *   stream; past the client's `retries`, the rest reject with a lost-worker outcome instead of
 *   running again.
 * - A module runs only when its content hash matches the client's; source text runs only with
 *   `allowSource`.
 * - A group's start is on its client's stream before its outcomes (one connection keeps the
 *   order): the client counts its tasks as running from then on.
 * - A lost node's jobs are taken up within `checkMs` of its lease lapsing: the stalled-job check
 *   runs twice per `checkMs`, so that the check, the move and the pickup together fit in it.
 *
 * @module
 */
// ioredis before bullmq: Deno 2.9 fails to load bullmq from a dynamic import otherwise.
import { Redis, type RedisOptions } from "npm:ioredis@^6.0.0";
import { type Job, Worker } from "npm:bullmq@^6.7.0";
import { isAbsolute, relative, resolve, sep } from "node:path";
import { pathToFileURL } from "node:url";
import type { WorkerNode, WorkerNodeOptions } from "./_node_options.ts";
import { Pool, ThreadPool } from "../pool.ts";
import { encode } from "./_codec.ts";
import { moduleHash } from "./_module_hash.ts";
import type { NodeTarget } from "./_node_task.ts";
import { runNodeTasks, warmUp } from "./_node_task.ts";
import {
  doneKey,
  HEARTBEAT_MS,
  HEARTBEAT_TTL_MS,
  KEY_TTL_S,
  nodeKey,
  nodesKey,
  Outcome,
  OUTCOMES_FIELD,
  parseConnection,
  STARTED_FIELD,
} from "./_wire.ts";
import type { JobData, NodeReport, WireOutcome, WireTarget, WireTask } from "./_wire.ts";

export type { WorkerNode, WorkerNodeOptions };

const nodeTaskModule = new URL("./_node_task.ts", import.meta.url);

/**
 * Starts a node; it serves the queue until drained.
 *
 * @throws {TypeError} When `connection` is neither a Redis URL nor a socket path.
 */
export async function startWorkerNode(options: WorkerNodeOptions): Promise<WorkerNode> {
  const target = parseConnection(options.connection, "multiproc worker");
  const root = resolve(options.root);
  const log = options.log ?? (() => {});
  const size = options.threads ?? options.processes ?? 2;
  const leaseMs = options.leaseMs ?? 30_000;
  const checkMs = options.checkMs ?? 30_000;
  const pool = options.threads !== undefined
    ? new ThreadPool({ size, name: "node-threads" })
    : new Pool({ size, name: "node-processes" });
  const redisOptions: RedisOptions = {
    ...("path" in target ? { path: target.path } : {}),
    // BullMQ's blocking reads must wait through reconnections.
    maxRetriesPerRequest: null,
    retryStrategy: (times) => Math.min(times * 100, 1000),
  };
  const connect = () =>
    "url" in target ? new Redis(target.url, redisOptions) : new Redis(redisOptions);
  const redis = connect();
  redis.on("error", () => {});
  // One task per worker at once starts every worker of the local pool before the first job.
  await Promise.all(
    Array.from({ length: size }, () => pool.apply(warmUp, [], { module: nodeTaskModule })),
  );

  const targetsOf = (targets: WireTarget[]): NodeTarget[] =>
    targets.map((wire) => nodeTarget(wire, root, options.allowSource === true));

  const write = async (
    data: JobData,
    done: string,
    outcomes: WireOutcome[] | string,
    ids: number[],
  ) => {
    const text = typeof outcomes === "string" ? outcomes : JSON.stringify(outcomes);
    await redis.multi()
      .xadd(data.stream, "*", OUTCOMES_FIELD, text)
      .expire(data.stream, KEY_TTL_S)
      .sadd(done, ...ids)
      .expire(done, KEY_TTL_S)
      .exec();
  };

  // Groups wait here rather than in the local pool's queue, so that a task cancelled while it
  // waits is skipped: the cancellations are read just before a group runs.
  let free = size;
  const slotWaiters: (() => void)[] = [];
  const acquire = async () => {
    while (free === 0) await new Promise<void>((resolve) => slotWaiters.push(resolve));
    free--;
  };
  const release = () => {
    free++;
    slotWaiters.shift()?.();
  };

  const runGroup = async (
    data: JobData,
    done: string,
    targets: NodeTarget[],
    group: WireTask[],
  ): Promise<void> => {
    await acquire();
    try {
      const flags = await redis.smismember(data.cancelled, ...group.map((task) => task[0]));
      const live = group.filter((_, i) => !flags[i]);
      if (live.length === 0) return;
      const ids = live.map((task) => task[0]);
      // Not awaited: the outcome's write on the same connection follows it.
      redis.multi()
        .xadd(data.stream, "*", STARTED_FIELD, JSON.stringify(ids))
        .expire(data.stream, KEY_TTL_S)
        .exec()
        .catch(() => {});
      let text: string;
      try {
        text = await pool.apply(runNodeTasks, [targets, live], { module: nodeTaskModule });
      } catch (error) {
        // The local worker died while running the group (it exited, ran out of memory): each
        // task of it fails with that error, as in a local pool.
        text = JSON.stringify(live.map((task) => [task[0], Outcome.Thrown, encode(error), 0]));
      }
      await write(data, done, text, ids);
    } finally {
      release();
    }
  };

  const processJob = async (job: Job<JobData>): Promise<void> => {
    const data = job.data;
    const done = doneKey(options.queue, String(job.id));
    let tasks: WireTask[] = data.tasks;
    if (job.stalledCounter > 0) {
      // A job that comes back: the tasks whose outcome is on the stream do not run again.
      const finished = new Set((await redis.smembers(done)).map(Number));
      tasks = tasks.filter((task) => !finished.has(task[0]));
      if (tasks.length === 0) return;
      if (job.stalledCounter > data.retries) {
        const message =
          `The node running the task was lost (it died, was cut off or stalled past its lease) ${job.stalledCounter} time(s), more than the pool's retries (${data.retries}); the task may have partly run`;
        const flags = await redis.smismember(data.cancelled, ...tasks.map((task) => task[0]));
        const lost = tasks.filter((_, i) => !flags[i]);
        if (lost.length > 0) {
          await write(
            data,
            done,
            lost.map((task) => [task[0], Outcome.Lost, message, 0]),
            lost.map((task) => task[0]),
          );
        }
        await redis.del(done);
        return;
      }
    }
    const targets = targetsOf(data.targets);
    // Refused targets answer at once; the rest go to the local pool in groups, one per worker.
    const runnable: WireTask[] = [];
    const refused: WireOutcome[] = [];
    for (const task of tasks) {
      const t = targets[task[1]];
      if ("refused" in t) {
        refused.push([task[0], Outcome.Thrown, encode(new TypeError(t.refused)), 0]);
      } else runnable.push(task);
    }
    const writes: Promise<unknown>[] = [];
    if (refused.length > 0) {
      writes.push(write(data, done, refused, refused.map((outcome) => outcome[0])));
    }
    for (const group of groups(runnable, size)) {
      writes.push(runGroup(data, done, targets, group));
    }
    await Promise.all(writes);
    await redis.del(done);
  };

  // BullMQ leaves a connection that it was given open: drain() closes it.
  const workerConnection = connect();
  workerConnection.on("error", () => {});
  const worker = new Worker<JobData>(options.queue, processJob, {
    connection: workerConnection,
    concurrency: Math.max(2, size * 2),
    lockDuration: leaseMs,
    // A lock that lapses just after a check waits for the next one; with two checks per checkMs,
    // the wait, the move back to the queue and another node's pickup fit in checkMs.
    stalledInterval: Math.max(1, Math.floor(checkMs / 2)),
    // The client's `retries` decides, per job (see processJob); BullMQ must never fail a job for
    // stalling, or its tasks would get no outcome at all.
    maxStalledCount: Number.MAX_SAFE_INTEGER,
    autorun: false,
  });
  worker.on("error", (error) => log(`error: ${error.message}`));
  worker.on("failed", (job, error) => log(`job ${job?.id} failed: ${error.message}`));
  void worker.run().catch((error) => log(`error: ${error.message}`));
  await worker.waitUntilReady();

  // The heartbeat: clients read the queue's nodes, their sizes and busy workers, for stats().
  const nodeId = crypto.randomUUID();
  const heartbeat = () => {
    const local = pool.stats();
    const report: NodeReport = { size, workers: local.workers, busy: local.busyWorkers };
    return redis.multi()
      .set(nodeKey(options.queue, nodeId), JSON.stringify(report), "PX", HEARTBEAT_TTL_MS)
      .sadd(nodesKey(options.queue), nodeId)
      .expire(nodesKey(options.queue), KEY_TTL_S)
      .exec()
      .catch(() => {});
  };
  await heartbeat();
  const beating = setInterval(heartbeat, HEARTBEAT_MS);

  let drained: Promise<void> | undefined;
  return {
    size,
    drain: () =>
      drained ??= (async () => {
        clearInterval(beating);
        const closed = worker.close().then(() => true, () => true);
        // The groups held finish on the local pool; their outcomes then wait for Redis for one
        // lease at most: past it, other nodes take the jobs for lost and run them again.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const gaveUp = (async () => {
          while (free < size || slotWaiters.length > 0) {
            await new Promise((resolve) => timer = setTimeout(resolve, 20));
          }
          await new Promise((resolve) => timer = setTimeout(resolve, leaseMs));
          return false;
        })();
        const reached = await Promise.race([closed, gaveUp]);
        clearTimeout(timer);
        if (reached) {
          // The worker can close while Redis is gone (it has nothing left to hand back); then
          // these commands would wait for a reconnection that never comes: one lease at most.
          const farewell = (async () => {
            await redis.multi()
              .del(nodeKey(options.queue, nodeId))
              .srem(nodesKey(options.queue), nodeId)
              .exec()
              .catch(() => {});
            await redis.quit().catch(() => redis.disconnect());
          })();
          const late = new Promise((resolve) => timer = setTimeout(resolve, leaseMs));
          await Promise.race([farewell, late]);
          clearTimeout(timer);
          redis.disconnect();
        } else {
          log(
            `Redis did not take the last outcomes within the lease (${leaseMs} ms): leaving without them`,
          );
          worker.close(true).catch(() => {});
          redis.disconnect();
        }
        workerConnection.disconnect();
        pool.close();
        await pool.join();
      })(),
  };
}

/** Splits tasks into at most `count` groups of about equal items, keeping their order. */
function groups(tasks: WireTask[], count: number): WireTask[][] {
  if (tasks.length === 0) return [];
  const total = tasks.reduce((sum, task) => sum + task[4], 0);
  const share = Math.max(1, Math.ceil(total / Math.min(count, tasks.length)));
  const out: WireTask[][] = [];
  let current: WireTask[] = [];
  let items = 0;
  for (const task of tasks) {
    if (current.length > 0 && items + task[4] > share) {
      out.push(current);
      current = [];
      items = 0;
    }
    current.push(task);
    items += task[4];
  }
  out.push(current);
  return out;
}

/** How this node finds a target, or why it refuses it. */
function nodeTarget(wire: WireTarget, root: string, allowSource: boolean): NodeTarget {
  const label = wire.name ? `'${wire.name}'` : "(anonymous)";
  const bySource = (): NodeTarget =>
    allowSource && wire.evalText !== undefined
      ? { spec: { name: wire.name, source: wire.source, evalText: wire.evalText } }
      : {
        refused: wire.evalText === undefined
          ? `Target ${label} is not exported from a module under the node's root and uses names from outside its body; export it from a module under the root`
          : `Target ${label} travels as source text, which this node refuses: start the node with --allow-source, or export the function from a module under the root '${root}'`,
      };
  if (wire.path === undefined) return bySource();
  const file = resolve(root, wire.path);
  const rel = relative(root, file);
  if (rel.startsWith("..") || isAbsolute(rel) || rel.startsWith(sep)) {
    return { refused: `Target ${label}: module path '${wire.path}' leaves the node's root` };
  }
  let hash: string;
  try {
    hash = moduleHash(file);
  } catch (error) {
    if (!wire.importRequired) return bySource();
    return {
      refused:
        `Target ${label}: module '${wire.path}' does not exist on this node under its root '${root}' (${
          (error as { code?: string }).code ?? String(error)
        }); deploy the same code to every node`,
    };
  }
  if (hash !== wire.hash) {
    if (!wire.importRequired && allowSource && wire.evalText !== undefined) return bySource();
    return {
      refused:
        `Target ${label}: module '${wire.path}' differs on this node from the client's (content hash ${
          hash.slice(0, 12)
        } here, ${
          wire.hash?.slice(0, 12)
        } sent) under root '${root}'; deploy the same code to every node`,
    };
  }
  return {
    sameFile: true,
    spec: {
      module: pathToFileURL(file).href,
      importRequired: wire.importRequired,
      name: wire.name,
      source: wire.source,
      evalText: allowSource ? wire.evalText : undefined,
    },
  };
}
