/**
 * Where a spawned Process's start time goes, against a bare `Deno.Command` child in the same run:
 * the delay from the start of each to its target's first line, for
 * - a bare child that imports the target and runs it (the baseline);
 * - the same child loading Deno's Node compatibility layer (`node:process`);
 * - a child started through `node:child_process` with Node's IPC channel that reports over it, the
 *   channel that multiproc falls back to where the parent may not make its own (see the README);
 * - a multiproc `Process` under spawn, whose channel the child opens itself (a Unix socket joined
 *   with a one-time token);
 * - a multiproc `Process` under forkserver, with a spare ready: the fast path.
 * Prints the medians and each one's ratio to the baseline.
 *
 * Run it with `-A`, where the parent makes the sealed channel itself; under
 * `--allow-read --allow-env --allow-run` the Process rows measure the channel relay instead.
 *
 *     deno run -A scripts/bench/spawn_start.ts [--rounds 15]
 */
import { spawn } from "node:child_process";
import { parseArgs } from "@std/cli/parse-args";
import { Process } from "../../mod.ts";
import { spareCounts } from "../../src/_forkserver.ts";
import { firstLine } from "./_start_target.ts";

const target = new URL("./_start_target.ts", import.meta.url).href;
const script = (name: string) => new URL(name, import.meta.url).href;
const now = () => performance.timeOrigin + performance.now();

async function commandChild(child: string): Promise<number> {
  const t0 = now();
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--quiet", "--allow-read", script(child), target],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  return parseFloat(new TextDecoder().decode(output.stdout)) - t0;
}

function ipcChild(): Promise<number> {
  const t0 = now();
  const child = spawn(
    Deno.execPath(),
    ["run", "--quiet", "--allow-read", "--allow-env", script("./_ipc_child.ts"), target],
    { stdio: ["ignore", "inherit", "inherit", "ipc"], serialization: "advanced" },
  );
  // The channel alone does not hold the event loop open.
  const keep = setTimeout(() => {}, 60_000);
  return new Promise((resolve) =>
    child.on("message", (at) => {
      clearTimeout(keep);
      resolve((at as number) - t0);
    })
  );
}

async function multiprocProcess(): Promise<number> {
  const t0 = now();
  const child = new Process({ target: firstLine, module: target });
  child.start();
  await child.join();
  return (child.result as number) - t0;
}

async function forkserverProcess(): Promise<number> {
  // Timed with a spare ready, as the forkserver keeps one between bursts (none before first use).
  for (let i = 0; i < 400 && spareCounts().ready < 1; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  const t0 = now();
  const child = new Process({ target: firstLine, module: target, startMethod: "forkserver" });
  child.start();
  await child.join();
  return (child.result as number) - t0;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

if (import.meta.main) {
  const args = parseArgs(Deno.args, { string: ["rounds"], default: { rounds: "15" } });
  const rounds = Number(args.rounds);
  const cases: Array<[string, () => Promise<number>]> = [
    ["bare Deno.Command child", () => commandChild("./_bare_child.ts")],
    ["+ node:process", () => commandChild("./_node_process_child.ts")],
    ["+ Node IPC channel", ipcChild],
    ["multiproc Process (spawn)", multiprocProcess],
    ["multiproc Process (forkserver)", forkserverProcess],
  ];
  const delays = cases.map(() => [] as number[]);
  // One warm-up, then rounds that take each case in turn, so that noise falls on all alike.
  for (let round = -1; round < rounds; round++) {
    for (const [i, [, run]] of cases.entries()) {
      const delay = await run();
      if (round >= 0) delays[i].push(delay);
    }
  }
  const base = median(delays[0]);
  const rows = [["case", "median ms", "ratio"]];
  for (const [i, [label]] of cases.entries()) {
    const m = median(delays[i]);
    rows.push([label, m.toFixed(1), `${(m / base).toFixed(2)}x`]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i])).join("  "));
  console.log(`delay from start to the target's first line; medians of ${rounds} rounds`);
}
