/**
 * `multiproc bench pool`: the pool benchmarks of `_bench_pool.ts` as a CLI subcommand, with its
 * table, JSON and chart.
 *
 * @module
 */
import type { BenchCommand, BenchResult, BenchTable, Progress } from "./_bench.ts";
import { type BenchRow, benchScaling, benchThroughput } from "./_bench_pool.ts";
import { integerOption, type Settings } from "./_options.ts";

function rowsOf(rows: BenchRow[]): BenchTable["rows"] {
  return rows.map((row) => ({
    what: row.name,
    tasksPerSecond: row.tasksPerSecond ?? null,
    ms: row.ms ?? null,
    ratio: row.ratio ?? null,
    against: row.against ?? "",
  }));
}

const columns: BenchTable["columns"] = [
  { key: "what", label: "what" },
  { key: "tasksPerSecond", label: "tasks/s", digits: 0 },
  { key: "ms", label: "wall (ms)", digits: 0 },
  { key: "ratio", label: "ratio (x)", digits: 2 },
  { key: "against", label: "against" },
];

async function run(settings: Settings, progress: Progress): Promise<BenchResult> {
  progress("bench pool: tiny-task throughput");
  const throughput = await benchThroughput({
    tasks: settings.tasks as number,
    rounds: settings.rounds as number,
  });
  progress("bench pool: CPU-bound scaling");
  const scaling = await benchScaling({
    n: settings.fib as number,
    count: settings.count as number,
  });
  const speedups = scaling.filter((row) => row.ratio !== undefined && !/ size 1$/.test(row.name));
  return {
    tables: [
      {
        title: `Tiny-task throughput: ${settings.tasks} tasks returning x + 1, 2 workers`,
        columns,
        rows: rowsOf(throughput),
      },
      {
        title: `CPU-bound scaling: fib(${settings.fib}) x ${settings.count}, by pool size`,
        columns,
        rows: rowsOf(scaling),
      },
    ],
    chart: {
      kind: "bar",
      title: "Pool throughput on tiny tasks",
      subtitle: `${settings.tasks} tasks returning x + 1, 2 workers`,
      xLabel: "how the tasks are submitted",
      yLabel: "tasks per second",
      categories: throughput.map((row) => row.name),
      series: [{ name: "tasks/s", values: throughput.map((row) => row.tasksPerSecond ?? null) }],
      logScale: true,
    },
    notes: speedups.length > 0
      ? [
        `Scaling rows give the speed-up over the same pool at size 1; ${
          speedups.map((row) => `${row.name} ${row.ratio!.toFixed(2)}x`).join(", ")
        }`,
      ]
      : [],
  };
}

/** The `pool` benchmark: throughput against bare workers, and CPU-bound scaling. */
export const poolBench: BenchCommand = {
  name: "pool",
  summary: "Pool throughput against bare workers, and CPU-bound scaling",
  options: [
    {
      name: "tasks",
      placeholder: "N",
      description: "Tiny tasks per throughput measurement",
      default: "100000",
      parse: integerOption("tasks", { min: 1, max: 10_000_000 }),
    },
    {
      name: "rounds",
      placeholder: "N",
      description: "Measurements per throughput row; the best is kept",
      default: "3",
      parse: integerOption("rounds", { min: 1, max: 100 }),
    },
    {
      name: "fib",
      placeholder: "N",
      description: "fib(N) per CPU-bound task",
      default: "30",
      parse: integerOption("fib", { min: 1, max: 40 }),
    },
    {
      name: "count",
      placeholder: "N",
      description: "CPU-bound tasks per scaling run",
      default: "32",
      parse: integerOption("count", { min: 1, max: 10_000 }),
    },
  ],
  run,
};
