/**
 * How long a Thread and a Process take from construction to the first line of their target, against
 * a hand-written `new Worker` and `Deno.Command` doing the same job (import the target's module, run
 * the target). Prints the medians and multiproc's overhead, measured in one run.
 *
 *     deno run -A scripts/bench/start.ts [--rounds 15]
 */
import { parseArgs } from "@std/cli/parse-args";
import { Process, Thread } from "../../mod.ts";
import { firstLine } from "./_start_target.ts";

const targetModule = new URL("./_start_target.ts", import.meta.url).href;
const bareWorker = new URL("./_bare_worker.ts", import.meta.url);
const bareChild = new URL("./_bare_child.ts", import.meta.url).href;

const now = () => performance.timeOrigin + performance.now();

/** Starts `count` at once; returns each one's delay from the start of the batch to its first line. */
type Starter = (count: number) => Promise<number[]>;

const bareThreads: Starter = async (count) => {
  const t0 = now();
  const delays = await Promise.all(Array.from({ length: count }, () => {
    const worker = new Worker(bareWorker, { type: "module" });
    return new Promise<number>((resolve) => {
      worker.onmessage = (event) => {
        worker.terminate();
        resolve(event.data - t0);
      };
      worker.postMessage(targetModule);
    });
  }));
  return delays;
};

const bareProcesses: Starter = async (count) => {
  const t0 = now();
  return await Promise.all(Array.from({ length: count }, async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--quiet", "--allow-read", bareChild, targetModule],
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    const output = await child.output();
    return Number(new TextDecoder().decode(output.stdout)) - t0;
  }));
};

function multiprocStarter(Kind: typeof Thread | typeof Process): Starter {
  return async (count) => {
    const t0 = now();
    const workers = Array.from(
      { length: count },
      () => new Kind({ target: firstLine, module: targetModule }),
    );
    for (const worker of workers) worker.start();
    await Promise.all(workers.map((worker) => worker.join()));
    return workers.map((worker) => (worker.result as number) - t0);
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function measure(starter: Starter, count: number, rounds: number) {
  await starter(count); // warm the module cache
  const all: number[] = [];
  const last: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const delays = await starter(count);
    all.push(...delays);
    last.push(Math.max(...delays));
  }
  return { median: median(all), lastMedian: median(last) };
}

if (import.meta.main) {
  const args = parseArgs(Deno.args, { string: ["rounds"], default: { rounds: "15" } });
  const rounds = Number(args.rounds);
  const rows: string[][] = [["case", "bare ms", "multiproc ms", "overhead"]];
  const cases: Array<[string, Starter, Starter, number]> = [
    ["1 thread", bareThreads, multiprocStarter(Thread), 1],
    ["8 threads", bareThreads, multiprocStarter(Thread), 8],
    ["1 process", bareProcesses, multiprocStarter(Process), 1],
    ["8 processes", bareProcesses, multiprocStarter(Process), 8],
  ];
  for (const [label, bare, ours, count] of cases) {
    // Alternate the two so that machine noise falls on both alike.
    const bareResult = { median: [] as number[], last: [] as number[] };
    const ourResult = { median: [] as number[], last: [] as number[] };
    for (let i = 0; i < 3; i++) {
      const b = await measure(bare, count, Math.ceil(rounds / 3));
      const o = await measure(ours, count, Math.ceil(rounds / 3));
      bareResult.median.push(b.median);
      ourResult.median.push(o.median);
    }
    const b = median(bareResult.median);
    const o = median(ourResult.median);
    rows.push([label, b.toFixed(1), o.toFixed(1), `${((o / b - 1) * 100).toFixed(0)}%`]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i])).join("  "));
  console.log(`median delay from construction to the target's first line; ${rounds} rounds`);
}
