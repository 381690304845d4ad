/**
 * The pool benchmarks, as functions that return their figures, for `scripts/bench/pool.ts` and for
 * the `multiproc bench pool` command. Runtime-agnostic: only multiproc's own API and `node:`
 * modules. Each figure is measured in the same run as the baseline it is compared with.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import { cpuCount } from "../src/cpu_count.ts";
import { Pool, ThreadPool } from "../src/pool.ts";

/** One measured figure. */
export interface BenchRow {
  /** What was measured, e.g. `"ThreadPool.submit()"`. */
  name: string;
  /** Tasks per second, for throughput rows. */
  tasksPerSecond?: number;
  /** Wall time in milliseconds, for scaling rows. */
  ms?: number;
  /** The ratio to the row's baseline (higher is better), when it has one. */
  ratio?: number;
  /** What the ratio is against. */
  against?: string;
}

/** Options for {@linkcode benchThroughput}. */
export interface ThroughputOptions {
  /** Tasks per measurement; 100k by default. */
  tasks?: number;
  /** Measurements per row; the best is kept. */
  rounds?: number;
}

const now = () => performance.now();

// The bare baseline's worker: one message per task each way, nothing else.
const bareWorkerSource = `
const { parentPort } = require("node:worker_threads");
parentPort.on("message", (m) => parentPort.postMessage([m[0], m[1] + 1]));
`;

/** Two bare `node:worker_threads` workers, one promise per task, all tasks in flight. */
async function bareBaseline(tasks: number): Promise<number> {
  const workers = [0, 1].map(() => new Worker(bareWorkerSource, { eval: true }));
  const pending = new Map<number, (value: number) => void>();
  for (const worker of workers) {
    worker.on("message", (m: [number, number]) => {
      const resolve = pending.get(m[0])!;
      pending.delete(m[0]);
      resolve(m[1]);
    });
  }
  // Warm up: the workers have booted once both answered.
  await Promise.all(workers.map((worker, i) =>
    new Promise<number>((resolve) => {
      pending.set(-1 - i, resolve);
      worker.postMessage([-1 - i, 0]);
    })
  ));
  const t0 = now();
  const promises = new Array<Promise<number>>(tasks);
  for (let i = 0; i < tasks; i++) {
    promises[i] = new Promise<number>((resolve) => {
      pending.set(i, resolve);
      workers[i & 1].postMessage([i, i]);
    });
  }
  await Promise.all(promises);
  const elapsed = now() - t0;
  await Promise.all(workers.map((worker) => worker.terminate()));
  return tasks / elapsed * 1000;
}

async function best(rounds: number, measure: () => Promise<number>): Promise<number> {
  let top = 0;
  for (let round = 0; round < rounds; round++) top = Math.max(top, await measure());
  return top;
}

/**
 * Tiny-task throughput on 2 workers: a hand-written bare-worker baseline against `ThreadPool`'s
 * `submit`, `apply`, `map` (automatic chunks) and `map` with `chunksize: 1`.
 *
 * @param options Tasks per measurement and rounds.
 * @returns One row per contender, with its ratio to the baseline (and, for automatic `map`, to
 * `chunksize: 1`).
 */
export async function benchThroughput(options: ThroughputOptions = {}): Promise<BenchRow[]> {
  const tasks = options.tasks ?? 100_000;
  const rounds = options.rounds ?? 3;
  const inc = (x: number) => x + 1;
  const bare = await best(rounds, () => bareBaseline(tasks));
  const pool = new ThreadPool({ size: 2 });
  try {
    await pool.map(inc, [1, 2, 3, 4], { chunksize: 1 }); // boot both workers
    const items = Array.from({ length: tasks }, (_, i) => i);
    const submit = await best(rounds, async () => {
      const t0 = now();
      const futures = new Array(tasks);
      for (let i = 0; i < tasks; i++) futures[i] = pool.submit(inc, [i]);
      await Promise.all(futures);
      return tasks / (now() - t0) * 1000;
    });
    const apply = await best(rounds, async () => {
      const t0 = now();
      const promises = new Array(tasks);
      for (let i = 0; i < tasks; i++) promises[i] = pool.apply(inc, [i]);
      await Promise.all(promises);
      return tasks / (now() - t0) * 1000;
    });
    const mapAuto = await best(rounds, async () => {
      const t0 = now();
      await pool.map(inc, items);
      return tasks / (now() - t0) * 1000;
    });
    const mapOne = await best(rounds, async () => {
      const t0 = now();
      await pool.map(inc, items, { chunksize: 1 });
      return tasks / (now() - t0) * 1000;
    });
    const bareName = "bare workers (2, one promise per task)";
    return [
      { name: bareName, tasksPerSecond: bare },
      {
        name: "ThreadPool.submit()",
        tasksPerSecond: submit,
        ratio: submit / bare,
        against: bareName,
      },
      { name: "ThreadPool.apply()", tasksPerSecond: apply, ratio: apply / bare, against: bareName },
      {
        name: "ThreadPool.map() auto chunks",
        tasksPerSecond: mapAuto,
        ratio: mapAuto / bare,
        against: bareName,
      },
      {
        name: "ThreadPool.map() chunksize 1",
        tasksPerSecond: mapOne,
        ratio: mapAuto / mapOne,
        against: "auto chunks over chunksize 1",
      },
    ];
  } finally {
    await pool.terminate();
  }
}

/** Options for {@linkcode benchScaling}. */
export interface ScalingOptions {
  /** `fib(n)` per task; 30 by default. */
  n?: number;
  /** Tasks per run; 32 by default. */
  count?: number;
  /** Pool sizes to try; 1, 2 and `cpuCount()` by default. */
  sizes?: number[];
}

/**
 * CPU-bound scaling: `fib(n)` × `count` on `ThreadPool`, `Pool` (spawn) and `Pool`
 * (forkserver) at several sizes, each against its own size 1.
 *
 * @param options The work and the sizes.
 * @returns One row per pool kind and size, with its speed-up over size 1.
 */
export async function benchScaling(options: ScalingOptions = {}): Promise<BenchRow[]> {
  const n = options.n ?? 30;
  const count = options.count ?? 32;
  const sizes = options.sizes ?? [...new Set([1, 2, cpuCount()])];
  const fib = function fib(k: number): number {
    return k < 2 ? k : fib(k - 1) + fib(k - 2);
  };
  const kinds: { label: string; make: (size: number) => ThreadPool | Pool }[] = [
    { label: "ThreadPool", make: (size) => new ThreadPool({ size }) },
    { label: "Pool spawn", make: (size) => new Pool({ size, startMethod: "spawn" }) },
    { label: "Pool forkserver", make: (size) => new Pool({ size, startMethod: "forkserver" }) },
  ];
  const rows: BenchRow[] = [];
  for (const kind of kinds) {
    let single = 0;
    for (const size of sizes) {
      const pool = kind.make(size);
      try {
        // Workers boot outside the measurement: this measures the work, not the start. The pause
        // lets the forkserver refill its spares, which would otherwise boot during the run.
        await pool.map(fib, Array.from({ length: size * 2 }, () => 5), { chunksize: 1 });
        await new Promise((resolve) => setTimeout(resolve, 500));
        const t0 = now();
        await pool.map(fib, Array.from({ length: count }, () => n), { chunksize: 1 });
        const ms = now() - t0;
        if (size === sizes[0]) single = ms;
        rows.push({
          name: `${kind.label} size ${size}`,
          ms,
          ratio: single / ms,
          against: `${kind.label} size ${sizes[0]}`,
        });
      } finally {
        await pool.terminate();
      }
    }
  }
  return rows;
}

/**
 * Memory under a long lazy stream: `count` tiny tasks through `imap` with `maxQueue` and
 * `buffersize` set, sampling the resident set size.
 *
 * @param count How many items; a million by default.
 * @returns The throughput, and the RSS before and at its peak, in MiB.
 */
export async function benchMemory(
  count = 1_000_000,
): Promise<{ tasksPerSecond: number; rssBeforeMiB: number; rssPeakMiB: number }> {
  const { memoryUsage } = await import("node:process");
  const pool = new ThreadPool({ size: 2, maxQueue: 64 });
  try {
    const items = function* () {
      for (let i = 0; i < count; i++) yield i;
    };
    const before = memoryUsage.rss();
    let peak = before;
    const t0 = now();
    let seen = 0;
    for await (const _ of pool.imap((x: number) => x + 1, items(), { buffersize: 16 })) {
      if ((++seen & 0x3fff) === 0) peak = Math.max(peak, memoryUsage.rss());
    }
    const elapsed = now() - t0;
    const mib = (bytes: number) => bytes / (1 << 20);
    return {
      tasksPerSecond: count / elapsed * 1000,
      rssBeforeMiB: mib(before),
      rssPeakMiB: mib(Math.max(peak, memoryUsage.rss())),
    };
  } finally {
    await pool.terminate();
  }
}
