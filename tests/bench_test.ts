import { assert, assertEquals, assertGreater, assertStringIncludes } from "@std/assert";
import { XMLParser } from "npm:fast-xml-parser@^5.3.0";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { median, percentile } from "../cli/_bench.ts";
import { findPython } from "../cli/_bench_python.ts";
import { runCli } from "./_helpers.ts";

// Sizes that finish in moments: the tests check the shape of the output, never the timings.
// Large enough that the sequential run takes measurable time on a coarse clock.
const tinyGil = ["bench", "gil", "--tasks", "2", "--work", "2000000", "--rounds", "1"];
const jsWays = ["sequential", "threads", "processes (spawn)", "processes (forkserver)"];
const python = await findPython();

interface Report {
  command: string;
  settings: Record<string, unknown>;
  machine: { runtime: string; os: string; cpu: string; cpus: number };
  tables: Array<{
    title: string;
    columns: Array<{ key: string; label: string }>;
    rows: Array<Record<string, string | number | null>>;
  }>;
  goals?: Array<{ goal: string; measured: string; met: boolean }>;
  notes: string[];
  chart: { categories: string[]; series: Array<{ name: string; values: unknown[] }> };
}

async function runJson(args: string[], env?: Record<string, string>): Promise<Report> {
  const out = await runCli([...args, "--json"], { env });
  assertEquals(out.code, 0, out.stderrText);
  return JSON.parse(out.stdoutText);
}

/** Every piece of text in an SVG document, in document order. */
function svgTexts(svg: string): string[] {
  const texts: string[] = [];
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      node.forEach(walk);
    } else if (node && typeof node === "object") {
      for (const [key, value] of Object.entries(node)) {
        if (key === "#text") texts.push(String(value));
        else if (key !== ":@") walk(value);
      }
    }
  };
  walk(new XMLParser({ preserveOrder: true, ignoreAttributes: false }).parse(svg));
  return texts;
}

Deno.test("bench gil prints a table with a row per way, each with a time and a speed-up", async () => {
  const out = await runCli(tinyGil);
  assertEquals(out.code, 0, out.stderrText);
  assertEquals(out.stderrText, "", "no progress line when stderr is not a terminal");
  const lines = out.stdoutText.split("\n");
  const header = lines.findIndex((line) => line.startsWith("runtime"));
  assert(header > 0, out.stdoutText);
  for (const label of ["way", "workers", "wall (s)", "speed-up (x)"]) {
    assertStringIncludes(lines[header], label);
  }
  assertEquals(lines[header + 1].replace(/[- ]/g, ""), "", "a rule under the header");
  const rows = lines.slice(header + 2, header + 2 + jsWays.length);
  for (const [i, way] of jsWays.entries()) {
    assertStringIncludes(rows[i], way);
    const [workers, wall, speedup] = rows[i].trim().split(/\s+/).slice(-3).map(Number);
    assertEquals(workers, i === 0 ? 1 : 2, rows[i]);
    // Tiny runs may round to zero in the text; the JSON test checks the values themselves.
    assert(wall >= 0 && speedup >= 0, rows[i]);
  }
  assertEquals(lines[header + 2 + jsWays.length], "", "the table ends after the JavaScript rows");
  assertStringIncludes(out.stdoutText, "2 tasks of 2000000 loop iterations each");
  assertStringIncludes(out.stdoutText, "Machine: ");
});

Deno.test("bench gil --json reports the settings, the machine, the rows and the chart", async () => {
  const report = await runJson(tinyGil);
  assertEquals(report.command, "bench gil");
  assertEquals(report.settings, { tasks: 2, work: 2000000, rounds: 1, python: false });
  assert(/^(Deno|Node) \d/.test(report.machine.runtime), report.machine.runtime);
  assertGreater(report.machine.cpus, 0);
  const [table] = report.tables;
  assertEquals(table.rows.map((row) => row.way), jsWays);
  for (const row of table.rows) {
    assertGreater(row.wall as number, 0);
    assertGreater(row.speedup as number, 0);
  }
  assertEquals(table.rows[0].speedup, 1);
  assertEquals(report.chart.series.length, 1);
  assertEquals(report.chart.series[0].values.length, report.chart.categories.length);
});

Deno.test("bench gil --svg draws a chart with its series, title and axis labels", async () => {
  const dir = mkdtempSync(join(tmpdir(), "multiproc-bench-"));
  try {
    const file = join(dir, "gil.svg");
    const out = await runCli([...tinyGil, "--svg", file], { write: true });
    assertEquals(out.code, 0, out.stderrText);
    assertStringIncludes(out.stderrText, `wrote the chart to ${file}`);
    assertStringIncludes(out.stdoutText, "speed-up (x)", "the table is printed too");
    const svg = readFileSync(file, "utf8");
    const texts = svgTexts(svg);
    for (
      const expected of [
        "The same CPU-bound loop: 2 tasks of 2,000,000 iterations each",
        "how the tasks run",
        "speed-up over sequential (x)",
        "sequential",
        "threads",
        "processes: spawn",
        "processes: forkserver",
        "ideal 2x",
      ]
    ) {
      assert(texts.includes(expected), `'${expected}' is not among ${JSON.stringify(texts)}`);
    }
    assert(texts.some((text) => /^JavaScript \((Deno|Node) /.test(text)), "the series' legend");
    assert(/<svg[^>]*width="\d+"[^>]*height="\d+"/.test(svg), "a sized SVG document");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

Deno.test("bench gil --python without python3 on PATH says so and goes on", async () => {
  const report = await runJson([...tinyGil, "--python"], { PATH: "/nonexistent" });
  assertEquals(report.tables[0].rows.length, jsWays.length);
  assert(report.notes.includes("python3 is not on PATH: the CPython rows are left out"));
});

Deno.test({
  name: `bench gil --python runs the same loop in CPython${
    python ? "" : " (skipped: python3 is not on PATH)"
  }`,
  ignore: python === undefined,
  fn: async () => {
    const report = await runJson([...tinyGil, "--python"]);
    const rows = report.tables[0].rows;
    assertEquals(rows.length, jsWays.length + 3);
    const cpython = rows.slice(jsWays.length);
    assert(cpython.every((row) => /^CPython 3\./.test(row.runtime as string)), "CPython rows");
    assertEquals(cpython[0].way, "sequential");
    assertEquals(cpython[1].way, "threading");
    assert(/^multiprocessing \((fork|spawn|forkserver)\)$/.test(cpython[2].way as string));
    for (const row of cpython) assertGreater(row.wall as number, 0);
    assertEquals(report.chart.series.length, 2);
  },
});

Deno.test("bench start reports start-up times, memory and the goals of issue 3", async () => {
  const report = await runJson([
    "bench",
    "start",
    "--counts",
    "1",
    "--samples",
    "1",
    "--memory",
    "1",
  ]);
  const [starts, memory] = report.tables;
  assertEquals(starts.rows.map((row) => row.way), ["spawn", "forkserver", "threads"]);
  for (const row of starts.rows) {
    assertEquals(row.count, 1);
    assertGreater(row.median as number, 0);
    assert((row.p95 as number) >= (row.median as number));
  }
  assertEquals(memory.rows.map((row) => row.way), ["spawn", "forkserver", "threads"]);
  for (const row of memory.rows.slice(0, 2)) assertGreater(row.mib as number, 1);
  assert(report.goals?.some((goal) => goal.goal.startsWith("forkserver with a spare ready")));
  assertEquals(report.chart.series.map((series) => series.name), [
    "spawn",
    "forkserver",
    "threads",
  ]);
});

Deno.test("median and percentile follow their textbook definitions", () => {
  assertEquals(median([3, 1, 2]), 2);
  assertEquals(median([4, 1, 2, 3]), 2.5);
  assert(Number.isNaN(median([])));
  const hundred = Array.from({ length: 100 }, (_, i) => 100 - i);
  assertEquals(percentile(hundred, 95), 95);
  assertEquals(percentile([7], 95), 7);
  assertEquals(percentile([1, 2], 50), 1);
});

Deno.test("bench pool --json reports throughput against bare workers and scaling by size", async () => {
  const report = await runJson([
    "bench",
    "pool",
    "--tasks",
    "500",
    "--rounds",
    "1",
    "--fib",
    "15",
    "--count",
    "4",
  ]);
  assertEquals(report.command, "bench pool");
  const [throughput, scaling] = report.tables;
  const names = throughput.rows.map((row) => String(row.what));
  assert(names.some((name) => name.startsWith("bare workers")), names.join(", "));
  assert(names.includes("ThreadPool.submit()") && names.includes("ThreadPool.map() auto chunks"));
  for (const row of throughput.rows) assertGreater(row.tasksPerSecond as number, 0);
  const kinds = scaling.rows.map((row) => String(row.what));
  for (const kind of ["ThreadPool size 2", "Pool spawn size 2", "Pool forkserver size 2"]) {
    assert(kinds.includes(kind), `missing ${kind} in ${kinds.join(", ")}`);
  }
  assertEquals(report.chart.series[0].values.length, report.chart.categories.length);
});
