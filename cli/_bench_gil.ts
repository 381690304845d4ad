/**
 * `multiproc bench gil`: one CPU-bound loop, run N times sequentially, on N threads and on N
 * processes under each start method, and with `--python` the same in CPython, where threads take
 * turns under the GIL. The speed-ups side by side are the point.
 *
 * @module
 */
import {
  type BenchCell,
  type BenchCommand,
  type BenchResult,
  type ChartSeries,
  forkserverSparesReady,
  median,
  type Progress,
  runtimeName,
} from "./_bench.ts";
import { benchTargetsUrl, spin } from "./_bench_targets.ts";
import { findPython, type PythonTimings, runPython } from "./_bench_python.ts";
import { integerOption, type Settings } from "./_options.ts";
import { cpuCount } from "../src/cpu_count.ts";
import { Process } from "../src/process.ts";
import { Thread } from "../src/thread.ts";

// Beyond this, i * i exceeds 2 ** 53 and JavaScript's numbers would part from Python's integers.
const MAX_WORK = 90_000_000;

type Way = "sequential" | "threads" | "spawn" | "forkserver";
const WAYS: readonly Way[] = ["sequential", "threads", "spawn", "forkserver"];

const wayLabels: Record<Way, string> = {
  sequential: "sequential",
  threads: "threads",
  spawn: "processes (spawn)",
  forkserver: "processes (forkserver)",
};

/** Runs `tasks` loops one way; returns the wall time in seconds and every checksum. */
async function runWay(
  way: Way,
  tasks: number,
  work: number,
): Promise<{ seconds: number; results: number[] }> {
  const started = performance.now();
  if (way === "sequential") {
    const results = Array.from({ length: tasks }, () => spin(work));
    return { seconds: (performance.now() - started) / 1000, results };
  }
  const options = { target: spin, args: [work] as [number], module: benchTargetsUrl };
  const workers = Array.from(
    { length: tasks },
    () => way === "threads" ? new Thread(options) : new Process({ ...options, startMethod: way }),
  );
  for (const worker of workers) worker.start();
  await Promise.all(workers.map((worker) => worker.join()));
  const seconds = (performance.now() - started) / 1000;
  const failed = workers.find((worker) => worker.exitCode !== 0);
  if (failed) {
    throw new Error(`${failed.name} ended with exit code ${failed.exitCode}`, {
      cause: failed.error,
    });
  }
  return { seconds, results: workers.map((worker) => worker.result as number) };
}

async function measureJavaScript(
  sizes: { tasks: number; work: number; rounds: number },
  progress: Progress,
): Promise<{ seconds: Record<Way, number>; checksum: number }> {
  progress("bench gil: warming up threads and processes");
  // Module caches and forkserver spares are warmed first, so that each way is timed as it runs in
  // a program that has used it before.
  for (const way of WAYS) await runWay(way, sizes.tasks, 1);
  const checksum = spin(sizes.work);
  const samples: Record<Way, number[]> = { sequential: [], threads: [], spawn: [], forkserver: [] };
  for (let round = 1; round <= sizes.rounds; round++) {
    // Rounds interleave the ways so that a noisy moment of the machine does not fall on one alone.
    for (const way of WAYS) {
      if (way === "forkserver") await forkserverSparesReady();
      progress(`bench gil: round ${round}/${sizes.rounds}, ${wayLabels[way]}`);
      const { seconds, results } = await runWay(way, sizes.tasks, sizes.work);
      if (results.some((result) => result !== checksum)) {
        throw new Error(
          `${wayLabels[way]} returned [${results.join(", ")}]: expected ${checksum} from each task`,
        );
      }
      samples[way].push(seconds);
    }
  }
  const seconds = Object.fromEntries(
    WAYS.map((way) => [way, median(samples[way])]),
  ) as Record<Way, number>;
  return { seconds, checksum };
}

async function run(settings: Settings, progress: Progress): Promise<BenchResult> {
  const sizes = {
    tasks: settings.tasks as number,
    work: settings.work as number,
    rounds: settings.rounds as number,
  };
  const notes: string[] = [];
  const js = await measureJavaScript(sizes, progress);

  let python: PythonTimings | undefined;
  if (settings.python) {
    progress("bench gil: looking for python3");
    const executable = await findPython();
    if (executable === undefined) {
      notes.push("python3 is not on PATH: the CPython rows are left out");
    } else {
      progress(`bench gil: running the loop in CPython (${sizes.rounds} rounds)`);
      python = await runPython(executable, sizes);
      if (python.checksum !== js.checksum) {
        throw new Error(
          `CPython's checksum ${python.checksum} differs from JavaScript's ${js.checksum}`,
        );
      }
    }
  }

  const jsName = `JavaScript (${runtimeName()})`;
  const rows: Array<Record<string, BenchCell>> = WAYS.map((way) => ({
    runtime: jsName,
    way: wayLabels[way],
    workers: way === "sequential" ? 1 : sizes.tasks,
    wall: js.seconds[way],
    speedup: js.seconds.sequential / js.seconds[way],
  }));
  const pythonName = python && `CPython ${python.version}`;
  if (python && pythonName) {
    const pythonWays = [
      ["sequential", python.sequential, 1],
      ["threading", python.threading, sizes.tasks],
      [`multiprocessing (${python.startMethod})`, python.multiprocessing, sizes.tasks],
    ] as const;
    for (const [way, seconds, workers] of pythonWays) {
      rows.push({
        runtime: pythonName,
        way,
        workers,
        wall: seconds,
        speedup: python.sequential / seconds,
      });
    }
  }

  const categories = ["sequential", "threads", "processes: spawn", "processes: forkserver"];
  if (python && !["spawn", "forkserver"].includes(python.startMethod)) {
    categories.push(`processes: ${python.startMethod}`);
  }
  const series: ChartSeries[] = [{
    name: jsName,
    values: categories.map((_, i) => i < WAYS.length ? rows[i].speedup as number : null),
  }];
  if (python && pythonName) {
    const speedups: Record<string, number> = {
      "sequential": 1,
      "threads": python.sequential / python.threading,
      [`processes: ${python.startMethod}`]: python.sequential / python.multiprocessing,
    };
    series.push({
      name: pythonName,
      values: categories.map((category) => speedups[category] ?? null),
    });
  }
  const ideal = Math.min(sizes.tasks, cpuCount());
  notes.unshift(
    `${sizes.tasks} tasks of ${sizes.work} loop iterations each; median of ${sizes.rounds} round${
      sizes.rounds === 1 ? "" : "s"
    }; speed-up is over the same runtime's sequential run, ideal ${ideal}x on ${cpuCount()} CPUs`,
    "Process and thread times include starting them; forkserver starts with its spares ready",
  );
  return {
    tables: [{
      title: "The same CPU-bound loop, sequentially, on threads and on processes",
      columns: [
        { key: "runtime", label: "runtime" },
        { key: "way", label: "way" },
        { key: "workers", label: "workers" },
        { key: "wall", label: "wall (s)", digits: 3 },
        { key: "speedup", label: "speed-up (x)", digits: 2 },
      ],
      rows,
    }],
    chart: {
      kind: "bar",
      title: `The same CPU-bound loop: ${sizes.tasks} tasks of ${
        sizes.work.toLocaleString("en-US")
      } iterations each`,
      xLabel: "how the tasks run",
      yLabel: "speed-up over sequential (x)",
      categories,
      series,
      reference: { label: `ideal ${ideal}x`, value: ideal },
    },
    notes,
  };
}

/** `multiproc bench gil`. */
export const gilBench: BenchCommand = {
  name: "gil",
  summary: "One CPU-bound loop: sequentially, on threads, on processes",
  options: [
    {
      name: "tasks",
      placeholder: "N",
      description: "How many loops run at once; one per CPU",
      default: String(cpuCount()),
      parse: integerOption("tasks", { min: 1, max: 256 }),
    },
    {
      name: "work",
      placeholder: "N",
      description: "Loop iterations per task",
      default: "10000000",
      parse: integerOption("work", { min: 1, max: MAX_WORK }),
    },
    {
      name: "rounds",
      placeholder: "N",
      description: "Rounds to take the median of",
      default: "3",
      parse: integerOption("rounds", { min: 1, max: 100 }),
    },
    {
      name: "python",
      description: "Also run the loop in CPython, when python3 is on PATH",
    },
  ],
  run,
};
