/**
 * `multiproc bench start`: how long spawn, forkserver and threads take from `start()` to the
 * target's first line, one at a time and many at once, and what each child costs in memory.
 *
 * @module
 */
import { execFile } from "node:child_process";
import process from "node:process";
import {
  type BenchCell,
  type BenchCommand,
  type BenchGoal,
  type BenchResult,
  type BenchTable,
  forkserverSparesReady,
  median,
  percentile,
  type Progress,
  sleep,
  wallClockMs,
} from "./_bench.ts";
import { benchTargetsUrl, firstLine, hold } from "./_bench_targets.ts";
import { integerListOption, integerOption, type Settings } from "./_options.ts";
import { Process } from "../src/process.ts";
import { Thread } from "../src/thread.ts";

type Way = "spawn" | "forkserver" | "threads";
const WAYS: readonly Way[] = ["spawn", "forkserver", "threads"];

// How long each child stays alive after its first line while its memory is sampled.
const HOLD_MS = 600;
const SAMPLE_EVERY_MS = 50;

function makeWorker<Args extends unknown[]>(
  way: Way,
  target: (...args: Args) => unknown,
  args: Args,
): Thread<Args> | Process<Args> {
  const options = { target, args, module: benchTargetsUrl };
  return way === "threads" ? new Thread(options) : new Process({ ...options, startMethod: way });
}

async function joinAll(workers: Array<Thread | Process>): Promise<void> {
  await Promise.all(workers.map((worker) => worker.join()));
  const failed = workers.find((worker) => worker.exitCode !== 0);
  if (failed) {
    throw new Error(`${failed.name} ended with exit code ${failed.exitCode}`, {
      cause: failed.error,
    });
  }
}

/** Starts `count` at once; returns each one's delay from the first `start()` to its first line. */
async function startBatch(way: Way, count: number): Promise<number[]> {
  if (way === "forkserver") await forkserverSparesReady();
  const workers = Array.from({ length: count }, () => makeWorker(way, firstLine, []));
  const t0 = wallClockMs();
  for (const worker of workers) worker.start();
  await joinAll(workers);
  return workers.map((worker) => (worker.result as number) - t0);
}

interface StartRow {
  way: Way;
  count: number;
  delays: number[];
  /** The slowest delay of each batch: when all of it had started. */
  batchEnds: number[];
}

async function measureStarts(
  counts: number[],
  samples: number,
  progress: Progress,
): Promise<StartRow[]> {
  const rows: StartRow[] = [];
  for (const count of counts) {
    const batches = Math.max(1, Math.ceil(samples / count));
    for (const way of WAYS) {
      progress(`bench start: ${count} at once, ${way}, warming up`);
      // Warms the module caches, and grows the forkserver's spares to this burst size.
      await startBatch(way, count);
      const row: StartRow = { way, count, delays: [], batchEnds: [] };
      for (let batch = 1; batch <= batches; batch++) {
        progress(`bench start: ${count} at once, ${way}, batch ${batch}/${batches}`);
        const delays = await startBatch(way, count);
        row.delays.push(...delays);
        row.batchEnds.push(Math.max(...delays));
      }
      rows.push(row);
    }
  }
  return rows;
}

/** Resident memory in KiB of each of `pids` that still runs, by pid; asks `ps`. */
function residentKiB(pids: number[]): Promise<Map<number, number>> {
  return new Promise((resolve) => {
    execFile("ps", ["-o", "pid=,rss=", "-p", pids.join(",")], { encoding: "utf8" }, (_e, out) => {
      // ps exits with 1 when none of the pids runs any more: an empty answer, not an error.
      const sizes = new Map<number, number>();
      for (const line of (out ?? "").trim().split("\n")) {
        const [pid, rss] = line.trim().split(/\s+/).map(Number);
        if (Number.isFinite(pid) && Number.isFinite(rss)) sizes.set(pid, rss);
      }
      resolve(sizes);
    });
  });
}

/**
 * The resident memory of each of `count` child processes, in MiB: the largest that `ps` saw while
 * each was alive, which is after its runtime had booted and the target had begun.
 */
async function childMemory(way: "spawn" | "forkserver", count: number): Promise<number[]> {
  if (way === "forkserver") await forkserverSparesReady();
  const workers = Array.from({ length: count }, () => makeWorker(way, hold, [HOLD_MS]));
  for (const worker of workers) worker.start();
  const pids = workers.map((worker) => (worker as Process).pid!);
  const peaks = new Map<number, number>();
  let finished = false;
  const joined = joinAll(workers).finally(() => finished = true);
  while (!finished) {
    for (const [pid, kib] of await residentKiB(pids)) {
      peaks.set(pid, Math.max(peaks.get(pid) ?? 0, kib));
    }
    await sleep(SAMPLE_EVERY_MS);
  }
  await joined;
  return pids.filter((pid) => peaks.has(pid)).map((pid) => peaks.get(pid)! / 1024);
}

/** The growth of this process's resident memory per running thread, in MiB. */
async function threadMemory(count: number): Promise<number> {
  const baseline = process.memoryUsage().rss;
  const workers = Array.from({ length: count }, () => makeWorker("threads", hold, [HOLD_MS]));
  for (const worker of workers) worker.start();
  let peak = baseline;
  let finished = false;
  const joined = joinAll(workers).finally(() => finished = true);
  while (!finished) {
    peak = Math.max(peak, process.memoryUsage().rss);
    await sleep(SAMPLE_EVERY_MS);
  }
  await joined;
  return (peak - baseline) / count / 1024 / 1024;
}

async function measureMemory(count: number, progress: Progress): Promise<BenchTable> {
  const rows: Array<Record<string, BenchCell>> = [];
  for (const way of ["spawn", "forkserver"] as const) {
    progress(`bench start: memory of ${count} ${way} children`);
    const sizes = await childMemory(way, count);
    rows.push({
      way,
      measured: "resident memory (RSS) of each child process",
      children: sizes.length,
      mib: sizes.length ? median(sizes) : null,
    });
  }
  progress(`bench start: memory of ${count} threads`);
  rows.push({
    way: "threads",
    measured: "growth of the parent's RSS per thread",
    children: count,
    mib: await threadMemory(count),
  });
  return {
    title: "Memory per child, median, while its target runs",
    columns: [
      { key: "way", label: "way" },
      { key: "measured", label: "measured" },
      { key: "children", label: "children" },
      { key: "mib", label: "MiB each", digits: 1 },
    ],
    rows,
  };
}

function goals(rows: StartRow[]): BenchGoal[] {
  const find = (way: Way, count: number) =>
    rows.find((row) => row.way === way && row.count === count);
  const found: BenchGoal[] = [];
  const single = find("forkserver", 1);
  if (single) {
    const value = median(single.delays);
    found.push({
      goal: "forkserver with a spare ready, median start() to first line <= 5 ms",
      measured: `${value.toFixed(1)} ms`,
      met: value <= 5,
    });
  }
  const forkserver8 = find("forkserver", 8);
  const spawn8 = find("spawn", 8);
  if (forkserver8 && spawn8) {
    const ratio = median(forkserver8.batchEnds) / median(spawn8.batchEnds);
    found.push({
      goal: "8 forkserver processes at once, all started in <= 1/4 of spawn's time",
      measured: `${(ratio * 100).toFixed(0)}% of spawn's (${
        median(forkserver8.batchEnds).toFixed(1)
      } ms against ${median(spawn8.batchEnds).toFixed(1)} ms)`,
      met: ratio <= 0.25,
    });
  }
  return found;
}

async function run(settings: Settings, progress: Progress): Promise<BenchResult> {
  const counts = settings.counts as number[];
  const samples = settings.samples as number;
  const memoryCount = settings.memory as number;
  const starts = await measureStarts(counts, samples, progress);
  const tables: BenchTable[] = [{
    title: "Start-up: from start() to the target's first line, n started at once",
    columns: [
      { key: "way", label: "way" },
      { key: "count", label: "at once" },
      { key: "samples", label: "samples" },
      { key: "median", label: "median (ms)", digits: 1 },
      { key: "p95", label: "p95 (ms)", digits: 1 },
      { key: "all", label: "all started (ms)", digits: 1 },
    ],
    rows: starts.map((row) => ({
      way: row.way,
      count: row.count,
      samples: row.delays.length,
      median: median(row.delays),
      p95: percentile(row.delays, 95),
      all: median(row.batchEnds),
    })),
  }];
  if (memoryCount > 0) tables.push(await measureMemory(memoryCount, progress));
  return {
    tables,
    goals: goals(starts),
    notes: [
      "Delays run from the first start() of a batch to each target's first line; 'all started' is " +
      "the slowest of a batch (median over batches)",
      "Forkserver batches start with the spares ready that the forkserver keeps; a batch larger " +
      "than that waits for new runtimes, as spawn does",
    ],
    chart: {
      kind: "bar",
      title: "Start-up: from start() to the target's first line",
      xLabel: "started at once",
      yLabel: "median delay (ms, log scale)",
      categories: counts.map((count) => `${count}`),
      series: WAYS.map((way) => ({
        name: way,
        values: counts.map((count) => {
          const row = starts.find((r) => r.way === way && r.count === count);
          return row ? median(row.delays) : null;
        }),
      })),
      logScale: true,
    },
  };
}

/** `multiproc bench start`. */
export const startBench: BenchCommand = {
  name: "start",
  summary: "Start-up time and memory of spawn, forkserver and threads",
  options: [
    {
      name: "counts",
      placeholder: "LIST",
      description: "How many to start at once, comma-separated",
      default: "1,8,32",
      parse: integerListOption("counts", { max: 256 }),
    },
    {
      name: "samples",
      placeholder: "N",
      description: "Starts to measure at least, per way and count",
      default: "10",
      parse: integerOption("samples", { min: 1, max: 1000 }),
    },
    {
      name: "memory",
      placeholder: "N",
      description: "Children to measure memory on, per way; 0 skips it",
      default: "4",
      parse: integerOption("memory", { min: 0, max: 64 }),
    },
  ],
  run,
};
