import { assert, assertEquals, assertMatch, assertStringIncludes } from "@std/assert";
import { VERSION } from "../mod.ts";
import { runCli } from "./_helpers.ts";

const tiny = ["--threads", "2", "--processes", "3", "--sleep", "20"];

/** The demo's output in sections: each header with the lines under it, sorted, as workers race. */
function demoSections(stdout: string): { headers: string[]; lines: string[][]; last: string } {
  const all = stdout.trimEnd().split("\n");
  const last = all.pop()!;
  const headers: string[] = [];
  const lines: string[][] = [];
  for (const line of all) {
    if (line.startsWith("# ")) {
      headers.push(line);
      lines.push([]);
    } else {
      lines.at(-1)!.push(line);
    }
  }
  return { headers, lines: lines.map((section) => section.sort()), last };
}

function notebookLines(count: number): string[] {
  return Array.from({ length: count }, (_, i) => [`Thread ${i} was finished.`, `Working ${i} ...`])
    .flat().sort();
}

Deno.test("multiproc demo prints the notebook's lines for threads, then processes", async () => {
  const out = await runCli(["demo", ...tiny]);
  assertEquals(out.code, 0, out.stderrText);
  assertEquals(out.stderrText, "");
  const { headers, lines, last } = demoSections(out.stdoutText);
  assertEquals(headers, [
    "# 2 threads (worker threads run JavaScript in parallel)",
    "# 3 processes (start method: spawn)",
  ]);
  assertEquals(lines, [notebookLines(2), notebookLines(3)]);
  assertMatch(last, /^threads: \d+\.\d\d s wall, processes: \d+\.\d\d s wall$/);
});

Deno.test("multiproc demo --start-method forkserver prints the same lines", async () => {
  const [spawned, forked] = await Promise.all([
    runCli(["demo", ...tiny, "--start-method", "spawn"]),
    runCli(["demo", ...tiny, "--start-method", "forkserver"]),
  ]);
  assertEquals(forked.code, 0, forked.stderrText);
  assertEquals(spawned.code, 0, spawned.stderrText);
  const a = demoSections(spawned.stdoutText);
  const b = demoSections(forked.stdoutText);
  assertEquals(b.lines, a.lines);
  assertEquals(b.headers, a.headers.map((line) => line.replace("spawn", "forkserver")));
});

Deno.test("multiproc refuses bad commands, options and values with exit 2 and the usage", async () => {
  const cases: Array<[string[], string]> = [
    [[], "Missing command: expected 'demo', 'worker' or 'bench'"],
    [["launch"], "Unknown command 'launch'"],
    [["demo", "--bogus"], "Unknown option '--bogus'"],
    [["demo", "extra"], "Unexpected argument 'extra'"],
    [["demo", "--threads", "x"], "'--threads' must be a non-negative integer: received 'x'"],
    [["demo", "--sleep=-1"], "'--sleep' must be a non-negative integer: received '-1'"],
    [["demo", "--start-method", "fork"], "'--start-method' cannot be 'fork'"],
    [["demo", "--start-method", "thread"], "'--start-method' must be one of 'spawn', 'forkserver'"],
    [["bench"], "Missing benchmark: expected 'gil' or 'start'"],
    [["bench", "pools"], "Unknown benchmark 'pools'"],
    [["bench", "gil", "--tasks", "0"], "'--tasks' must be a positive integer: received '0'"],
    [["bench", "gil", "--work", "1e6"], "'--work' must be a positive integer: received '1e6'"],
    [["bench", "gil", "--svg"], "'--svg' needs a file name"],
    [["bench", "gil", "--threads", "2"], "Unknown option '--threads'"],
    [["bench", "start", "--counts", "1,x"], "'--counts' must be a comma-separated list"],
    [["worker"], "'multiproc worker' needs '--connection'"],
    [
      ["worker", "--connection", "/r.sock", "--threads", "1", "--processes", "1"],
      "Pass either '--processes' or '--threads'",
    ],
    [["worker", "--connection", "/r.sock", "--lease-ms", "0"], "'--lease-ms' must be a positive"],
  ];
  const outputs = await Promise.all(cases.map(([args]) => runCli(args)));
  for (const [i, [args, message]] of cases.entries()) {
    const out = outputs[i];
    const what = `multiproc ${args.join(" ")}`;
    assertEquals(out.code, 2, `${what}: ${out.stderrText}`);
    assertEquals(out.stdoutText, "", what);
    assertStringIncludes(out.stderrText, `multiproc: ${message}`, what);
    assertStringIncludes(out.stderrText, "Usage: multiproc <command> [options]", what);
  }
});

Deno.test("multiproc --version and -V print the version", async () => {
  for (const args of [["--version"], ["-V"], ["demo", "--version"]]) {
    const out = await runCli(args);
    assertEquals(out.code, 0, out.stderrText);
    assertEquals(out.stdoutText, `multiproc ${VERSION}\n`);
  }
});

Deno.test("multiproc --help prints the usage of every command to stdout", async () => {
  const [help, short, benchHelp] = await Promise.all([
    runCli(["--help"]),
    runCli(["-h"]),
    runCli(["bench", "gil", "--help"]),
  ]);
  assertEquals(help.code, 0, help.stderrText);
  assertEquals(help.stderrText, "");
  assertEquals(short.stdoutText, help.stdoutText);
  assertEquals(benchHelp.stdoutText, help.stdoutText);
  for (
    const expected of [
      "Usage: multiproc <command> [options]",
      "  demo ",
      "  bench gil ",
      "  bench start ",
      "  worker ",
      "--allow-source",
      "--start-method NAME",
      "spawn or forkserver",
      "--tasks N",
      "--python",
      "--counts LIST",
      "--json",
      "--svg FILE",
      "-V, --version",
    ]
  ) {
    assertStringIncludes(help.stdoutText, expected);
  }
  assert(help.stdoutText.split("\n").every((line) => line.length <= 100), "lines of 100 at most");
});
