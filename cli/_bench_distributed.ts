/**
 * `multiproc bench distributed`: DistributedPool against bare BullMQ on the same Redis, in one run.
 * It starts its own `redis-server` on a Unix socket in a temporary folder (unless `--connection`
 * names one) and its own worker nodes, and stops them all before it returns.
 *
 * Goals, each a ratio of this run: `submit()` of tiny tasks at least 70% of bare BullMQ's jobs/s;
 * `map()` of 100,000 tiny tasks at least 100,000 tasks/s; a round trip's median at most 2 ms;
 * recovery from a killed node within its lease plus the check interval.
 *
 * @module
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { type BenchCommand, type BenchResult, median, type Progress } from "./_bench.ts";
import { integerOption, type Settings } from "./_options.ts";
import { lazyImport } from "./_lazy_import.deno.ts";
import type { ThreadPool } from "../src/pool.ts";

/** What the benchmark uses of a `DistributedPool`: the methods that it shares with the local pools. */
type PoolLike = Pick<ThreadPool, "apply" | "map" | "submit" | "close" | "join">;

const LEASE_MS = 1000;
const CHECK_MS = 500;

/** A process started by the benchmark, stopped by it. */
class Child {
  readonly process: ChildProcess;
  readonly exited: Promise<void>;
  output = "";

  constructor(command: string, args: string[]) {
    this.process = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.process.stdout!.on("data", (chunk) => this.output += String(chunk));
    this.process.stderr!.on("data", (chunk) => this.output += String(chunk));
    this.exited = new Promise((resolve) => this.process.on("exit", () => resolve()));
    this.process.on("error", (error) => this.output += String(error));
  }

  async waitFor(text: RegExp, what: string): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!text.test(this.output)) {
      if (this.process.exitCode !== null || this.process.signalCode !== null) {
        throw new Error(`${what} exited before it was ready:\n${this.output}`);
      }
      if (Date.now() > deadline) throw new Error(`${what} was not ready within 30 s`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** By pid: Deno's `ChildProcess.kill()` sends one signal only, and ignores later calls. */
  signal(signal: "SIGTERM" | "SIGKILL"): void {
    try {
      process.kill(this.process.pid!, signal);
    } catch {
      // It has exited already.
    }
  }

  async stop(signal: "SIGTERM" | "SIGKILL" = "SIGTERM"): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      this.signal(signal);
      const timer = setTimeout(() => this.signal("SIGKILL"), 5000);
      await this.exited;
      clearTimeout(timer);
    }
  }
}

/** How this runtime runs the `multiproc` command. */
function cliCommand(): [string, string[]] {
  const deno = (globalThis as { Deno?: unknown }).Deno !== undefined;
  const main = fileURLToPath(new URL("./main.ts", import.meta.url));
  return deno ? [process.execPath, ["run", "--quiet", "-A", main]] : [process.execPath, [main]];
}

function startNode(connection: string, queue: string, args: string[]): Child {
  const [command, base] = cliCommand();
  return new Child(command, [
    ...base,
    "worker",
    "--connection",
    connection,
    "--queue",
    queue,
    "--root",
    process.cwd(),
    "--allow-source",
    ...args,
  ]);
}

async function run(settings: Settings, progress: Progress): Promise<BenchResult> {
  // Loaded here, so that the other commands never load (nor download) bullmq and ioredis.
  const { DistributedPool } = await lazyImport("../distributed.ts", import.meta.url) as {
    DistributedPool: new (options: { connection: string; queue: string }) => PoolLike;
  };
  const { bareBullmqJobsPerSecond } = await lazyImport(
    "./_bench_distributed_bare.ts",
    import.meta.url,
  ) as { bareBullmqJobsPerSecond(connection: string, jobs: number): Promise<number> };
  const tasks = settings.tasks as number;
  const mapItems = settings["map-items"] as number;
  const children: Child[] = [];
  let redisDir: string | undefined;
  let connection = settings.connection as string | undefined;
  const queue = `multiproc-bench-${process.pid}`;
  try {
    if (connection === undefined) {
      redisDir = mkdtempSync(join(tmpdir(), "multiproc-bench-redis-"));
      connection = join(redisDir, "redis.sock");
      const redis = new Child("redis-server", [
        "--port",
        "0",
        "--unixsocket",
        connection,
        "--unixsocketperm",
        "700",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        redisDir,
      ]);
      children.push(redis);
      await redis.waitFor(
        /ready to accept connections/i,
        "redis-server (apt-get install redis-server)",
      );
    }

    progress("bench distributed: bare BullMQ");
    const bare = await bareBullmqJobsPerSecond(connection, tasks);

    progress("bench distributed: starting a node");
    const node = startNode(connection, queue, ["--threads", "2"]);
    children.push(node);
    await node.waitFor(/serving queue/, "The worker node");
    const pool = new DistributedPool({ connection, queue });
    const inc = (x: number) => x + 1;
    // Warm up: the node imports and compiles once.
    await pool.map(inc, Array.from({ length: 1000 }, (_, i) => i));

    progress("bench distributed: submit()");
    let started = performance.now();
    const futures = [];
    for (let i = 0; i < tasks; i++) futures.push(pool.submit(inc, [i]));
    await Promise.all(futures);
    const submitRate = tasks / ((performance.now() - started) / 1000);

    progress("bench distributed: map()");
    const items = Array.from({ length: mapItems }, (_, i) => i);
    started = performance.now();
    const mapped = await pool.map(inc, items);
    const mapRate = mapItems / ((performance.now() - started) / 1000);
    if (mapped[mapItems - 1] !== mapItems) throw new Error("map() returned a wrong result");

    progress("bench distributed: round trips");
    const trips: number[] = [];
    for (let i = 0; i < 300; i++) {
      const t = performance.now();
      await pool.apply(inc, [i]);
      trips.push(performance.now() - t);
    }
    const roundTrip = median(trips);
    pool.close();
    await pool.join();
    await node.stop();

    progress("bench distributed: recovery from a killed node");
    const recoveryQueue = `${queue}-recovery`;
    const recoveries: number[] = [];
    const startRecoveryNode = () => {
      const n = startNode(connection!, recoveryQueue, [
        "--threads",
        "1",
        "--lease-ms",
        String(LEASE_MS),
        "--check-ms",
        String(CHECK_MS),
      ]);
      children.push(n);
      return n;
    };
    let nodes = [startRecoveryNode(), startRecoveryNode()];
    await Promise.all(nodes.map((n) => n.waitFor(/serving queue/, "A worker node")));
    const recoveryPool = new DistributedPool({ connection, queue: recoveryQueue });
    // With threads, a task's process is its node: the file it leaves names the node.
    const sleeper = async (dir: string, ms: number) => {
      const fs = await import("node:fs");
      const { default: proc } = await import("node:process");
      fs.writeFileSync(`${dir}/${proc.pid}`, "");
      await new Promise((resolve) => setTimeout(resolve, ms));
      return proc.pid;
    };
    for (let trial = 0; trial < (settings.recoveries as number); trial++) {
      const marks = mkdtempSync(join(tmpdir(), "multiproc-bench-marks-"));
      try {
        const result = recoveryPool.apply(sleeper, [marks, 3000]);
        const deadline = Date.now() + 60_000;
        while (readdirSync(marks).length === 0 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        const first = Number(readdirSync(marks)[0]);
        const victim = nodes.find((n) => n.process.pid === first);
        if (!victim) throw new Error("The task did not start on a node of the benchmark");
        const killedAt = performance.now();
        victim.signal("SIGKILL");
        while (readdirSync(marks).length < 2 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 2));
        }
        recoveries.push(performance.now() - killedAt);
        await result;
        // A fresh node takes the killed one's place for the next trial.
        await victim.stop();
        const fresh = startRecoveryNode();
        await fresh.waitFor(/serving queue/, "A worker node");
        nodes = [...nodes.filter((n) => n !== victim), fresh];
      } finally {
        rmSync(marks, { recursive: true, force: true });
      }
    }
    recoveryPool.close();
    await recoveryPool.join();
    const recoveryMs = median(recoveries);
    const recoveryMax = Math.max(...recoveries);

    const submitRatio = submitRate / bare;
    const rows = [
      { what: "bare BullMQ, one job per task", rate: bare, ms: null, ratio: 1 },
      {
        what: "DistributedPool.submit(), tiny tasks",
        rate: submitRate,
        ms: null,
        ratio: submitRatio,
      },
      {
        what: `DistributedPool.map(), ${mapItems} items`,
        rate: mapRate,
        ms: null,
        ratio: mapRate / bare,
      },
      { what: "round trip of one apply(), median", rate: null, ms: roundTrip, ratio: null },
      {
        what:
          `recovery from a killed node, median of ${recoveries.length} (lease ${LEASE_MS} + check ${CHECK_MS} ms)`,
        rate: null,
        ms: recoveryMs,
        ratio: recoveryMs / (LEASE_MS + CHECK_MS),
      },
      {
        what: `recovery from a killed node, longest of ${recoveries.length}`,
        rate: null,
        ms: recoveryMax,
        ratio: recoveryMax / (LEASE_MS + CHECK_MS),
      },
    ];
    return {
      tables: [{
        title:
          `DistributedPool against bare BullMQ on one Redis (Unix socket), ${tasks} tiny tasks`,
        columns: [
          { key: "what", label: "what" },
          { key: "rate", label: "tasks/s", digits: 0 },
          { key: "ms", label: "ms", digits: 2 },
          { key: "ratio", label: "ratio (x)", digits: 2 },
        ],
        rows,
      }],
      chart: {
        kind: "bar",
        title: "DistributedPool throughput against bare BullMQ",
        xLabel: "what",
        yLabel: "tasks per second",
        categories: rows.slice(0, 3).map((row) => row.what),
        series: [{ name: "tasks/s", values: rows.slice(0, 3).map((row) => row.rate) }],
        logScale: true,
      },
      goals: [
        {
          goal: "submit() of tiny tasks at least 70% of bare BullMQ's jobs/s",
          measured: `${(submitRatio * 100).toFixed(0)}% (${submitRate.toFixed(0)} vs ${
            bare.toFixed(0)
          } per s)`,
          met: submitRatio >= 0.7,
        },
        {
          goal: `map() of ${mapItems} tiny tasks at least 100,000 tasks/s`,
          measured: `${mapRate.toFixed(0)} tasks/s (${(mapRate / 100_000).toFixed(2)}x the goal)`,
          met: mapRate >= 100_000,
        },
        {
          goal: "one task's round trip, median, at most 2 ms",
          measured: `${roundTrip.toFixed(2)} ms (${(roundTrip / 2).toFixed(2)}x the limit)`,
          met: roundTrip <= 2,
        },
        {
          goal: "recovery from a killed node within lease + check interval, median and longest",
          measured: `median ${recoveryMs.toFixed(0)} ms (${
            (recoveryMs / (LEASE_MS + CHECK_MS)).toFixed(2)
          }x), longest ${recoveryMax.toFixed(0)} ms (${
            (recoveryMax / (LEASE_MS + CHECK_MS)).toFixed(2)
          }x) of ${LEASE_MS + CHECK_MS} ms`,
          met: recoveryMax <= LEASE_MS + CHECK_MS,
        },
      ],
      notes: [
        "One node with 2 threads serves the throughput rows; bare BullMQ's worker runs in this process with concurrency 64.",
        "Recovery: two nodes of 1 thread; the node running a task is killed with SIGKILL, and the time until the task starts again on the other node is measured; a fresh node replaces it for the next trial. The kill comes just after the task starts, before BullMQ first renews the job's lock, which then lapses a full lease later: the slowest case. Nodes run BullMQ's stalled-job check twice per check interval.",
      ],
    };
  } finally {
    for (const child of children.reverse()) await child.stop();
    if (redisDir !== undefined && existsSync(redisDir)) {
      rmSync(redisDir, { recursive: true, force: true });
    }
  }
}

/** The `distributed` benchmark: DistributedPool against bare BullMQ, with its goals. */
export const distributedBench: BenchCommand = {
  name: "distributed",
  summary: "DistributedPool against bare BullMQ on Redis; recovery of a killed node",
  options: [
    {
      name: "connection",
      placeholder: "URL",
      description: "Redis to use (default: a redis-server of its own on a Unix socket)",
    },
    {
      name: "tasks",
      placeholder: "N",
      description: "Tiny tasks for the bare BullMQ and submit() rows",
      default: "5000",
      parse: integerOption("tasks", { min: 1, max: 1_000_000 }),
    },
    {
      name: "recoveries",
      placeholder: "N",
      description: "Nodes to kill for the recovery row; the median is reported",
      default: "5",
      parse: integerOption("recoveries", { min: 1, max: 100 }),
    },
    {
      name: "map-items",
      placeholder: "N",
      description: "Items for the map() row",
      default: "100000",
      parse: integerOption("map-items", { min: 1, max: 10_000_000 }),
    },
  ],
  run,
};
