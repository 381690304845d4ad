/**
 * Fairness of the pools: one long task and N short ones on a pool of 2. Each short task is
 * submitted when the one before it is done, and must take about as long as it does on a pool with
 * nothing else to do: a short task never waits behind the long one while the other worker idles.
 * Prints, for ThreadPool and Pool, the worst short task's time against the median time alone; the
 * aim is at most 1.10.
 *
 * The tasks wait on a timer by default, so that the figure measures where the pool puts each task
 * rather than how a loaded machine shares its cores; `--cpu` makes them spin instead (on a machine
 * with fewer free cores than the pool's size plus one, the cores then decide).
 *
 *     deno run -A scripts/bench/fairness.ts [--short MS] [--long MS] [--count N] [--cpu]
 */
import { parseArgs } from "@std/cli/parse-args";
import { Pool, ThreadPool } from "../../mod.ts";

/** Holds its worker for `ms` while waiting on a timer: a worker runs one such task at a time. */
export async function hold(ms: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, ms));
  return ms;
}

/** Keeps its worker busy for `ms` without yielding. */
export function spin(ms: number): number {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* busy */ }
  return ms;
}

type AnyPool = ThreadPool | Pool;
type Task = (ms: number) => number | Promise<number>;

/** The time of each short task, one after another, while `busy` (if any) runs. */
async function shortTimes(
  pool: AnyPool,
  task: Task,
  count: number,
  shortMs: number,
): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await pool.apply(task, [shortMs]);
    times.push(performance.now() - start);
  }
  return times;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

async function measure(
  label: string,
  make: () => AnyPool,
  options: { count: number; shortMs: number; longMs: number; task: Task },
): Promise<number> {
  const { count, shortMs, longMs, task } = options;
  await using pool = make();
  // Workers started and the target loaded before any measure.
  await Promise.all([pool.apply(spin, [1]), pool.apply(spin, [1])]);
  const alone = await shortTimes(pool, task, count, shortMs);
  const long = pool.apply(task, [longMs]);
  // The long task is on a worker before the short ones come.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const withLong = await shortTimes(pool, task, count, shortMs);
  await long;
  const ratio = Math.max(...withLong) / median(alone);
  console.log(
    `${label.padEnd(10)} short alone: median ${
      median(alone).toFixed(1)
    } ms; beside the long one: median ${median(withLong).toFixed(1)} ms, worst ${
      Math.max(...withLong).toFixed(1)
    } ms; ratio ${ratio.toFixed(2)} (${ratio <= 1.1 ? "met" : "not met"}, aim <= 1.10)`,
  );
  return ratio;
}

if (import.meta.main) {
  const args = parseArgs(Deno.args, { string: ["short", "long", "count"], boolean: ["cpu"] });
  const shortMs = Number(args.short ?? 50);
  const count = Number(args.count ?? 20);
  const longMs = Number(args.long ?? Math.max(1000, 2 * count * shortMs));
  console.log(
    `1 task of ${longMs} ms and ${count} tasks of ${shortMs} ms, one after another, on a pool of 2 (tasks ${
      args.cpu ? "spin" : "wait on a timer"
    })`,
  );
  const options = { count, shortMs, longMs, task: args.cpu ? spin : hold };
  await measure("ThreadPool", () => new ThreadPool({ size: 2 }), options);
  await measure("Pool", () => new Pool({ size: 2 }), options);
}
