/**
 * Fairness of the pools: one long task and N short ones on a pool of 2. Each short task is
 * submitted when the one before it is done, and must take about as long as it does on a pool with
 * nothing else to do: a short task never waits behind the long one while the other worker idles.
 * Prints, for ThreadPool and Pool, the worst short task's time against the median time alone; the
 * aim is at most 1.10.
 *
 *     deno run -A scripts/bench/fairness.ts [--short MS] [--long MS] [--count N]
 */
import { parseArgs } from "@std/cli/parse-args";
import { Pool, ThreadPool } from "../../mod.ts";

/** Keeps its worker busy for `ms` without yielding. */
export function spin(ms: number): number {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* busy */ }
  return ms;
}

type AnyPool = ThreadPool | Pool;

/** The time of each short task, one after another, while `busy` (if any) runs. */
async function shortTimes(pool: AnyPool, count: number, shortMs: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await pool.apply(spin, [shortMs]);
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
  options: { count: number; shortMs: number; longMs: number },
): Promise<number> {
  const { count, shortMs, longMs } = options;
  await using pool = make();
  // Workers started and the target loaded before any measure.
  await Promise.all([pool.apply(spin, [1]), pool.apply(spin, [1])]);
  const alone = await shortTimes(pool, count, shortMs);
  const long = pool.apply(spin, [longMs]);
  // The long task is on a worker before the short ones come.
  await new Promise((resolve) => setTimeout(resolve, 20));
  const withLong = await shortTimes(pool, count, shortMs);
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
  const args = parseArgs(Deno.args, { string: ["short", "long", "count"] });
  const shortMs = Number(args.short ?? 20);
  const count = Number(args.count ?? 20);
  const longMs = Number(args.long ?? Math.max(1000, 2 * count * shortMs));
  console.log(
    `1 task of ${longMs} ms and ${count} tasks of ${shortMs} ms, one after another, on a pool of 2`,
  );
  const options = { count, shortMs, longMs };
  await measure("ThreadPool", () => new ThreadPool({ size: 2 }), options);
  await measure("Pool", () => new Pool({ size: 2 }), options);
}
