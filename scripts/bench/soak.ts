/**
 * A soak under load, not a CI test: a million tasks through a `ThreadPool`, then through a `Pool`
 * (spawn), each with `maxQueue`, fed by a producer that waits for room as a real one must. Every
 * task returns `2 * i + 1`, and every `--fail-every`-th one throws instead. At the end each task
 * must have settled exactly once, with its own value or its own error, and `stats()` must agree.
 * Prints the time, the throughput, the peak RSS of the parent and of the worker processes, and
 * PASS or FAIL; the exit code is 1 on FAIL.
 *
 *     deno run -A scripts/bench/soak.ts [--tasks 1000000] [--pool thread|process|both] [--size N]
 *                                       [--max-queue 1000] [--window N] [--fail-every 1000]
 *                                       [--stall-s 60] [--json]
 *
 * On Node, against the npm build (the script compiled next to it, its imports pointed there):
 *
 *     deno task build:npm && (cd npm && npm install --omit=dev --no-package-lock)
 *     deno run -A scripts/bench/soak.ts --emit-node npm/soak.mjs
 *     node npm/soak.mjs [flags as above]
 *
 * `submit()` returns its future at once and never waits: beyond `maxQueue`, tasks wait outside the
 * queue, and that overflow has no bound. So the producer awaits `pool.waitForRoom()` before each
 * `submit()`, as a real one must. `--window N` adds a cap of its own on tasks outstanding
 * (submitted and not settled); by default there is none. The peak queue length
 * (`stats().queueLength`) shows the bound.
 *
 * With `--v8-flags=--expose-gc` (Deno) or `--expose-gc` (Node), the parent's heap in use at the end is
 * measured after a GC: tasks that the pool kept would show there.
 *
 * Worker RSS is the largest `VmHWM` among the parent's child processes, read from `/proc` every
 * 100 ms (Linux only); worker threads are part of the parent's RSS.
 *
 * @module
 */
import { parseArgs } from "@std/cli/parse-args";
import { readdirSync, readFileSync, realpathSync } from "node:fs";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { isMainThread } from "node:worker_threads";
import { Pool, ThreadPool } from "../../mod.ts";

/** The soak's task: `2 * i + 1`, or an error for every `failEvery`-th id. */
export function soakTask(i: number, failEvery: number): number {
  if (failEvery > 0 && i % failEvery === failEvery - 1) {
    throw new Error(`task ${i} fails on purpose`);
  }
  return i * 2 + 1;
}

/** Options of {@linkcode soak}. */
export interface SoakOptions {
  kind: "ThreadPool" | "Pool";
  tasks: number;
  /** The pool's size; the pool's default (the CPU count) when undefined. */
  size?: number;
  maxQueue: number;
  /** The most tasks outstanding (submitted and not settled) at once. */
  window: number;
  /** Every this-many-th task throws; 0 for none. */
  failEvery: number;
  /** Give up when no task settles for this long. */
  stallSeconds: number;
  /** Called with the share done, every 10%. */
  progress?: (line: string) => void;
}

/** What {@linkcode soak} measured and found. */
export interface SoakResult {
  pool: string;
  tasks: number;
  size: number;
  maxQueue: number;
  window: number;
  /** From the first submit until the last task settled. */
  seconds: number;
  tasksPerSecond: number;
  /** `close()` + `join()` after the last task settled. */
  joinMs: number;
  parentRssStartMiB: number;
  parentRssPeakMiB: number;
  parentRssEndMiB: number;
  /** The parent's V8 heap in use once the pool is gone, after a GC where `gc` is exposed. */
  parentHeapEndMiB: number;
  /** The largest VmHWM among the worker processes seen; null for threads or without /proc. */
  workerRssPeakMiB: number | null;
  workerProcessesSeen: number;
  /** The largest `stats().queueLength` seen: the queue and its overflow. */
  queuePeak: number;
  expectedFailures: number;
  settledTwice: number;
  neverSettled: number;
  wrongOutcome: number;
  stats: { tasksCompleted: number; tasksFailed: number; tasksCancelled: number };
  problems: string[];
  pass: boolean;
}

const MiB = 1 << 20;

/** Peak resident sizes of the parent's child processes, from `/proc` (Linux). */
class ChildMemory {
  /** pid → the largest VmHWM seen, in bytes. */
  readonly peaks = new Map<number, number>();
  #available = true;

  sample(): void {
    if (!this.#available) return;
    let pids: number[];
    try {
      pids = [];
      for (const tid of readdirSync(`/proc/${process.pid}/task`)) {
        const text = readFileSync(`/proc/${process.pid}/task/${tid}/children`, "utf8").trim();
        if (text) { for (const pid of text.split(/\s+/)) pids.push(Number(pid)); }
      }
    } catch {
      this.#available = false;
      return;
    }
    for (const pid of pids) {
      try {
        const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
        if (!match) continue;
        const bytes = Number(match[1]) * 1024;
        this.peaks.set(pid, Math.max(this.peaks.get(pid) ?? 0, bytes));
      } catch {
        // It exited between the two reads.
      }
    }
  }

  get available(): boolean {
    return this.#available;
  }

  peak(): number {
    let top = 0;
    for (const bytes of this.peaks.values()) top = Math.max(top, bytes);
    return top;
  }
}

/** Runs `tasks` tasks through a new pool and checks that each settled exactly once, correctly. */
export async function soak(options: SoakOptions): Promise<SoakResult> {
  const { kind, tasks, maxQueue, window, failEvery } = options;
  const pool = kind === "ThreadPool"
    ? new ThreadPool({ size: options.size, maxQueue })
    : new Pool({ size: options.size, maxQueue, startMethod: "spawn" });
  const problems: string[] = [];
  // Settlements per task id, saturating at 255; compact enough for tens of millions of tasks.
  const counts = new Uint8Array(tasks);
  let wrongOutcome = 0;
  let settled = 0;
  let outstanding = 0;
  let submitted = 0;
  let wake: (() => void) | undefined;
  let stalled = false;
  let lastProgress = performance.now();

  const record = (i: number, ok: boolean, value: unknown) => {
    if (counts[i] < 255) counts[i]++;
    const shouldFail = failEvery > 0 && i % failEvery === failEvery - 1;
    const right = ok
      ? !shouldFail && value === i * 2 + 1
      : shouldFail && value instanceof Error && value.message === `task ${i} fails on purpose`;
    if (!right && ++wrongOutcome <= 5) {
      problems.push(
        `task ${i} ${ok ? "resolved with" : "rejected with"} ${
          value instanceof Error ? value.stack : value
        }`,
      );
    }
    settled++;
    outstanding--;
    lastProgress = performance.now();
    if (wake !== undefined && (outstanding < window || settled === tasks)) {
      const resolve = wake;
      wake = undefined;
      resolve();
    }
  };

  const rssStart = process.memoryUsage.rss();
  let rssPeak = rssStart;
  let queuePeak = 0;
  const children = new ChildMemory();
  const sample = () => {
    rssPeak = Math.max(rssPeak, process.memoryUsage.rss());
    queuePeak = Math.max(queuePeak, pool.stats().queueLength);
    children.sample();
  };
  const sampler = setInterval(() => {
    sample();
    if (!stalled && performance.now() - lastProgress > options.stallSeconds * 1000) {
      stalled = true;
      problems.push(
        `no task settled for ${options.stallSeconds} s: ${outstanding} outstanding, ${settled} settled; stats ${
          JSON.stringify(pool.stats())
        }`,
      );
      wake?.();
      // A producer waiting for room would wait for ever; a terminated pool has none to give.
      pool.terminate();
    }
  }, 100);

  let nextReport = 0.1;
  const t0 = performance.now();
  try {
    for (let i = 0; i < tasks && !stalled; i++) {
      while (outstanding >= window && !stalled) {
        await new Promise<void>((resolve) => wake = resolve);
      }
      await pool.waitForRoom();
      if (stalled) break;
      outstanding++;
      submitted++;
      pool.submit(soakTask, [i, failEvery]).then(
        (value) => record(i, true, value),
        (error) => record(i, false, error),
      );
      if (options.progress && i + 1 >= nextReport * tasks) {
        options.progress(
          `${kind}: ${Math.round(nextReport * 100)}% submitted, ${
            ((performance.now() - t0) / 1000).toFixed(1)
          } s, RSS ${(process.memoryUsage.rss() / MiB).toFixed(0)} MiB`,
        );
        nextReport += 0.1;
      }
    }
    while (settled < tasks && !stalled) await new Promise<void>((resolve) => wake = resolve);
  } catch (error) {
    problems.push(`the producer failed: ${error instanceof Error ? error.stack : error}`);
  }
  const elapsed = performance.now() - t0;
  sample();

  const t1 = performance.now();
  if (stalled || problems.length > 0) await pool.terminate();
  else {
    pool.close();
    await pool.join();
  }
  const joinMs = performance.now() - t1;
  clearInterval(sampler);
  // Anything that settled late, during the join, is counted too.
  await new Promise((resolve) => setTimeout(resolve, 50));

  let settledTwice = 0;
  let neverSettled = 0;
  if (submitted < tasks) problems.push(`only ${submitted} of ${tasks} tasks were submitted`);
  for (let i = 0; i < submitted; i++) {
    if (counts[i] === 0) {
      if (neverSettled++ < 10) problems.push(`task ${i} never settled`);
    } else if (counts[i] > 1) {
      if (settledTwice++ < 10) problems.push(`task ${i} settled ${counts[i]} times`);
    }
  }
  const expectedFailures = failEvery > 0 ? Math.floor(tasks / failEvery) : 0;
  const stats = pool.stats();
  if (stats.tasksCompleted !== tasks - expectedFailures) {
    problems.push(
      `stats().tasksCompleted is ${stats.tasksCompleted}, not ${tasks - expectedFailures}`,
    );
  }
  if (stats.tasksFailed !== expectedFailures) {
    problems.push(`stats().tasksFailed is ${stats.tasksFailed}, not ${expectedFailures}`);
  }
  if (stats.tasksCancelled !== 0) {
    problems.push(`stats().tasksCancelled is ${stats.tasksCancelled}, not 0`);
  }
  if (stats.queueLength !== 0 || stats.workers !== 0) {
    problems.push(`after join: queueLength ${stats.queueLength}, workers ${stats.workers}`);
  }
  if (wrongOutcome > 0) problems.push(`${wrongOutcome} tasks settled with the wrong outcome`);

  (globalThis as { gc?: () => void }).gc?.();
  const heapEnd = process.memoryUsage().heapUsed;
  const rssEnd = process.memoryUsage.rss();
  return {
    pool: kind,
    tasks,
    size: pool.size,
    maxQueue,
    window,
    seconds: elapsed / 1000,
    tasksPerSecond: tasks / (elapsed / 1000),
    joinMs,
    parentRssStartMiB: rssStart / MiB,
    parentRssPeakMiB: Math.max(rssPeak, rssEnd) / MiB,
    parentRssEndMiB: rssEnd / MiB,
    parentHeapEndMiB: heapEnd / MiB,
    workerRssPeakMiB: kind === "Pool" && children.available ? children.peak() / MiB : null,
    workerProcessesSeen: children.peaks.size,
    queuePeak,
    expectedFailures,
    settledTwice,
    neverSettled,
    wrongOutcome,
    stats: {
      tasksCompleted: stats.tasksCompleted,
      tasksFailed: stats.tasksFailed,
      tasksCancelled: stats.tasksCancelled,
    },
    problems,
    pass: problems.length === 0,
  };
}

/** Writes this script as plain JavaScript at `path`, importing the npm build's compiled modules. */
async function emitNode(path: string): Promise<void> {
  const { ts } = await import("npm:deno2node@1.16.0");
  const { dirname, relative, resolve } = await import("node:path");
  const { writeFileSync } = await import("node:fs");
  const root = fileURLToPath(new URL("../../", import.meta.url));
  const out = resolve(path);
  const esm = (file: string) => {
    const specifier = relative(dirname(out), resolve(root, "npm/esm", file)).replaceAll("\\", "/");
    return specifier.startsWith(".") ? specifier : `./${specifier}`;
  };
  const source = readFileSync(fileURLToPath(import.meta.url), "utf8")
    // The npm build installs deno-std for the tests; the package itself does not depend on it.
    .replace(
      `"@std/cli/parse-args"`,
      JSON.stringify(esm("../.tmp/node/node_modules/deno-std/cli/parse_args.js")),
    )
    .replace(`"../../mod.ts"`, JSON.stringify(esm("mod.js")));
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
  });
  writeFileSync(out, outputText);
  console.log(`wrote ${out}`);
}

function runtimeName(): string {
  return process.versions.deno ? `Deno ${process.versions.deno}` : `Node ${process.versions.node}`;
}

const fixed = (n: number | null, digits = 0) => n === null ? "" : n.toFixed(digits);

function printResults(results: SoakResult[]): void {
  console.log(
    "\n| pool | size | tasks | s | tasks/s | parent RSS start / peak / end (MiB) | worker RSS peak (MiB) | queue peak | exactly once |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |");
  for (const r of results) {
    console.log(
      `| ${r.pool} | ${r.size} | ${r.tasks} | ${fixed(r.seconds, 1)} | ${
        fixed(r.tasksPerSecond)
      } | ${fixed(r.parentRssStartMiB)} / ${fixed(r.parentRssPeakMiB)} / ${
        fixed(r.parentRssEndMiB)
      } | ${fixed(r.workerRssPeakMiB)} | ${r.queuePeak} | ${r.pass ? "PASS" : "FAIL"} |`,
    );
  }
  for (const r of results) {
    console.log(
      `\n${r.pool}: ${r.stats.tasksCompleted} completed, ${r.stats.tasksFailed} failed (${r.expectedFailures} expected), ${r.stats.tasksCancelled} cancelled; ${r.neverSettled} never settled, ${r.settledTwice} settled twice, ${r.wrongOutcome} wrong; join ${
        fixed(r.joinMs)
      } ms; heap in use after it ${fixed(r.parentHeapEndMiB, 1)} MiB${
        r.pool === "Pool" ? `; ${r.workerProcessesSeen} worker processes seen` : ""
      }`,
    );
    for (const problem of r.problems) console.log(`  FAIL: ${problem}`);
  }
}

function isMain(): boolean {
  // Deno says so itself. On Node, worker threads see the parent's argv, so they are ruled out first.
  if (typeof import.meta.main === "boolean") return import.meta.main;
  if (!isMainThread || !process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMain()) {
  const args = parseArgs(process.argv.slice(2), {
    string: ["tasks", "pool", "size", "max-queue", "window", "fail-every", "stall-s", "emit-node"],
    boolean: ["json"],
    default: { tasks: "1000000", pool: "both", "max-queue": "1000", "fail-every": "1000" },
  });
  if (args["emit-node"] !== undefined) {
    await emitNode(String(args["emit-node"]));
    process.exit(0);
  }
  const positive = (name: string, value: unknown) => {
    if (value === undefined) return undefined;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`--${name}: not a count: ${value}`);
    return n;
  };
  const maxQueue = positive("max-queue", args["max-queue"])!;
  const kinds = ({
    thread: ["ThreadPool"],
    process: ["Pool"],
    both: ["ThreadPool", "Pool"],
  } as Record<string, ("ThreadPool" | "Pool")[]>)[String(args.pool)];
  if (!kinds) throw new TypeError(`--pool must be thread, process or both: received ${args.pool}`);
  const common = {
    tasks: positive("tasks", args.tasks)!,
    size: positive("size", args.size),
    maxQueue,
    window: positive("window", args.window) ?? Infinity,
    failEvery: positive("fail-every", args["fail-every"])!,
    stallSeconds: positive("stall-s", args["stall-s"]) ?? 60,
    progress: (line: string) => console.error(line),
  };
  const results: SoakResult[] = [];
  for (const kind of kinds) results.push(await soak({ ...common, kind }));
  const pass = results.every((r) => r.pass);
  if (args.json) {
    console.log(JSON.stringify({ runtime: runtimeName(), pass, results }, null, 2));
  } else {
    console.log(
      `Soak: ${runtimeName()}, ${process.platform} ${process.arch}, max queue ${maxQueue}, window ${
        Number.isFinite(common.window) ? common.window : "none"
      }, every ${common.failEvery}th task fails`,
    );
    printResults(results);
    console.log(`\n${pass ? "PASS" : "FAIL"}`);
  }
  process.exit(pass ? 0 : 1);
}
