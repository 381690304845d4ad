/**
 * Pool benchmarks, printed as tables of figures measured in one run: tiny-task throughput against a
 * bare-worker baseline, CPU-bound scaling, and memory under a long `imap`. On Node, run
 * `scripts/bench/pool_compare.mjs` for piscina, tinypool and workerpool in the same run.
 *
 *     deno run -A scripts/bench/pool.ts [--tasks 100000] [--rounds 3] [--n 30] [--count 32]
 *                                       [--memory 1000000] [--only throughput,scaling,memory]
 */
import { parseArgs } from "@std/cli/parse-args";
import {
  benchMemory,
  type BenchRow,
  benchScaling,
  benchThroughput,
} from "../../cli/_bench_pool.ts";

/** Prints rows as a Markdown table. */
export function printRows(title: string, rows: BenchRow[]): void {
  console.log(`\n### ${title}\n`);
  console.log("| what | tasks/s | ms | ratio | against |");
  console.log("| --- | ---: | ---: | ---: | --- |");
  for (const row of rows) {
    console.log(
      `| ${row.name} | ${row.tasksPerSecond?.toFixed(0) ?? ""} | ${row.ms?.toFixed(0) ?? ""} | ${
        row.ratio?.toFixed(2) ?? ""
      } | ${row.against ?? ""} |`,
    );
  }
}

if (import.meta.main) {
  const args = parseArgs(Deno.args, {
    string: ["tasks", "rounds", "n", "count", "memory", "only"],
  });
  const only = new Set(String(args.only ?? "throughput,scaling,memory").split(","));
  console.log(`Deno ${Deno.version.deno}, ${navigator.hardwareConcurrency} CPUs`);
  if (only.has("throughput")) {
    printRows(
      "Tiny-task throughput, 2 workers",
      await benchThroughput({
        tasks: Number(args.tasks ?? 100_000),
        rounds: Number(args.rounds ?? 3),
      }),
    );
  }
  if (only.has("scaling")) {
    printRows(
      "CPU-bound scaling",
      await benchScaling({ n: Number(args.n ?? 30), count: Number(args.count ?? 32) }),
    );
  }
  if (only.has("memory")) {
    const memory = await benchMemory(Number(args.memory ?? 1_000_000));
    console.log(
      `\n### imap memory\n\n${memory.tasksPerSecond.toFixed(0)} items/s; RSS ${
        memory.rssBeforeMiB.toFixed(0)
      } MiB before, ${memory.rssPeakMiB.toFixed(0)} MiB at its peak`,
    );
  }
}
