/**
 * What every `multiproc bench` subcommand shares: how a benchmark is declared, the report it
 * returns, and how a report becomes a table, JSON or a chart. A new benchmark is a
 * {@linkcode BenchCommand} added to `_bench_registry.ts`.
 *
 * @module
 */
import os from "node:os";
import process from "node:process";
import type { OptionSpec, Settings } from "./_options.ts";
import { spareCounts } from "./_internals.ts";
import { cpuCount } from "../src/cpu_count.ts";

/** A column of a result table. */
export interface BenchColumn {
  /** The key of the column's value in each row. */
  key: string;
  /** The heading, with the unit: `wall (s)`. */
  label: string;
  /** Decimal places for numbers in the text table; JSON keeps them as measured. */
  digits?: number;
}

/** A cell: text, a number, or nothing (`-` in the text table, `null` in JSON). */
export type BenchCell = string | number | null;

/** A table of results. */
export interface BenchTable {
  title: string;
  columns: BenchColumn[];
  rows: Array<Record<string, BenchCell>>;
}

/** One line or group of bars in a chart. */
export interface ChartSeries {
  name: string;
  /** One value per category; `null` where the series has none. */
  values: Array<number | null>;
}

/** What a chart shows; `_chart.ts` draws it. */
export interface ChartSpec {
  kind: "bar" | "line";
  title: string;
  subtitle?: string;
  /** The label of the category axis. */
  xLabel: string;
  /** The label of the value axis, with the unit. */
  yLabel: string;
  categories: string[];
  series: ChartSeries[];
  /** A horizontal line across the chart, such as the ideal speed-up. */
  reference?: { label: string; value: number };
  /** A logarithmic value axis, for values that span orders of magnitude. */
  logScale?: boolean;
}

/** A target that the project set itself, checked against a measurement of the same run. */
export interface BenchGoal {
  goal: string;
  measured: string;
  met: boolean;
}

/** What a benchmark returns; the CLI adds the command, settings and machine. */
export interface BenchResult {
  tables: BenchTable[];
  chart: ChartSpec;
  goals?: BenchGoal[];
  notes?: string[];
}

/** Where a benchmark tells how far it has got. */
export type Progress = (text: string) => void;

/** A `multiproc bench` subcommand. */
export interface BenchCommand {
  /** The subcommand: `multiproc bench <name>`. */
  name: string;
  /** One line for the usage. */
  summary: string;
  /** Its own options; `--json`, `--svg` and `--help` are added for every benchmark. */
  options: OptionSpec[];
  /** Runs the benchmark with the parsed options. */
  run(settings: Settings, progress: Progress): Promise<BenchResult>;
}

/** The machine that a report was measured on. */
export interface MachineInfo {
  runtime: string;
  os: string;
  cpu: string;
  cpus: number;
}

/** A finished benchmark, as `--json` prints it. */
export interface BenchReport extends BenchResult {
  command: string;
  settings: Settings;
  machine: MachineInfo;
}

/** The runtime that runs this code, with its version: `Deno 2.9.6`, `Node 20.20.0`. */
export function runtimeName(): string {
  const deno = (process.versions as Record<string, string | undefined>).deno;
  return deno ? `Deno ${deno}` : `Node ${process.versions.node}`;
}

/** Describes this machine, as far as the granted permissions allow. */
export function machineInfo(): MachineInfo {
  let cpu = "unknown CPU";
  try {
    cpu = os.cpus()[0]?.model?.trim() || cpu;
  } catch {
    // Deno asks for --allow-sys to name the CPU; the report says so rather than fail.
    cpu = "CPU model not readable (grant --allow-sys)";
  }
  return {
    runtime: runtimeName(),
    os: `${process.platform} ${process.arch}`,
    cpu,
    cpus: cpuCount(),
  };
}

/** One line naming the machine: `Deno 2.9.6, linux x64, AMD EPYC, 2 CPUs`. */
export function describeMachine(machine: MachineInfo): string {
  return `${machine.runtime}, ${machine.os}, ${machine.cpu}, ${machine.cpus} CPU${
    machine.cpus === 1 ? "" : "s"
  }`;
}

function formatCell(cell: BenchCell, column: BenchColumn): string {
  if (cell === null || cell === undefined) return "-";
  if (typeof cell === "number") {
    return column.digits === undefined ? String(cell) : cell.toFixed(column.digits);
  }
  return cell;
}

/** A table as aligned text: text columns to the left, numbers to the right. */
export function formatTable(table: BenchTable): string {
  const cells = table.rows.map((row) => table.columns.map((c) => formatCell(row[c.key], c)));
  const numeric = table.columns.map((c) =>
    table.rows.every((row) => typeof row[c.key] !== "string")
  );
  const widths = table.columns.map((c, i) =>
    Math.max(c.label.length, ...cells.map((line) => line[i].length))
  );
  const line = (values: string[]) =>
    values.map((value, i) => numeric[i] ? value.padStart(widths[i]) : value.padEnd(widths[i]))
      .join("  ").trimEnd();
  return [
    table.title,
    line(table.columns.map((c) => c.label)),
    line(widths.map((width) => "-".repeat(width))),
    ...cells.map(line),
  ].join("\n");
}

/** A report as the text that `multiproc bench` prints: tables, goals, notes, the machine. */
export function formatReport(report: BenchReport): string {
  const parts = report.tables.map(formatTable);
  if (report.goals?.length) {
    parts.push(
      report.goals.map((goal) =>
        `${goal.met ? "met    " : "not met"}  ${goal.goal}: ${goal.measured}`
      ).join("\n"),
    );
  }
  const notes = [...(report.notes ?? []), `Machine: ${describeMachine(report.machine)}`];
  parts.push(notes.join("\n"));
  return parts.join("\n\n");
}

/** A report as JSON, numbers rounded to what the clocks can tell. */
export function reportToJson(report: BenchReport): string {
  return JSON.stringify(
    report,
    (_key, value) =>
      typeof value === "number" && !Number.isInteger(value) ? Math.round(value * 1e4) / 1e4 : value,
    2,
  );
}

/** The median of `values`; NaN for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** The `p`th percentile of `values` by the nearest-rank method; NaN for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p / 100) * sorted.length))) - 1];
}

/** The wall clock in milliseconds since the epoch, comparable between processes on one machine. */
export function wallClockMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * A progress line on stderr, rewritten in place, when stderr is a terminal; otherwise nothing, so
 * that logs and pipes get only the results.
 */
export function terminalProgress(): { progress: Progress; done(): void } {
  const stderr = process.stderr;
  if (!stderr.isTTY) return { progress: () => {}, done: () => {} };
  let shown = false;
  return {
    progress: (text) => {
      shown = true;
      stderr.write(`\r\x1b[2K${text}`);
    },
    done: () => {
      if (shown) stderr.write("\r\x1b[2K");
    },
  };
}

/**
 * Waits until the forkserver has as many spares ready as it keeps, so that a benchmark times a
 * start with a spare ready and not the refill of the last burst.
 *
 * @returns Whether they were ready before `timeoutMs`; false at once when the forkserver has not
 * been used yet, and so keeps no spares.
 */
export async function forkserverSparesReady(timeoutMs = 15_000): Promise<boolean> {
  // The forkserver refills only once a burst of starts is over, a moment after the last one.
  await sleep(40);
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const { ready, booting, wanted } = spareCounts();
    if (ready >= wanted) return true;
    if (ready + booting === 0) return false;
    await sleep(10);
  }
  return false;
}
