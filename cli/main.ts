/**
 * The `multiproc` command. `multiproc demo` reproduces the notebook that the project starts from:
 * five threads, then five processes, each printing `Working i ...`, sleeping, and printing
 * `Thread i was finished.`. `multiproc bench gil` runs one CPU-bound loop sequentially, on threads
 * and on processes (and in CPython with `--python`); `multiproc bench start` measures start-up time
 * and memory of each start method. Every benchmark prints a table, or JSON with `--json`, and draws
 * an SVG chart with `--svg FILE`.
 *
 * ```sh
 * deno run --allow-read --allow-env --allow-run jsr:@multiproc/multiproc/cli demo
 * npx multiproc demo --threads 3 --processes 2 --start-method forkserver
 * npx multiproc bench gil --python --svg gil.svg
 * ```
 *
 * @module
 */
import { writeFile } from "node:fs/promises";
import process from "node:process";
import {
  type BenchCommand,
  type BenchReport,
  describeMachine,
  formatReport,
  machineInfo,
  reportToJson,
  terminalProgress,
} from "./_bench.ts";
import { benchCommands } from "./_bench_registry.ts";
import { renderChart } from "./_chart.ts";
import {
  fileOption,
  formatOptions,
  integerOption,
  type OptionSpec,
  parseOptions,
  type Settings,
  UsageError,
} from "./_options.ts";
import { demoModuleUrl, doSomething } from "./_demo.ts";
import { checkWorkerSettings, runWorker, workerOptions } from "./_worker.ts";
import { cpuCount } from "../src/cpu_count.ts";
import { checkStartMethod, mainModuleUrl } from "./_internals.ts";
import { getAllStartMethods, type StartMethod } from "../src/context.ts";
import { Process } from "../src/process.ts";
import { Thread } from "../src/thread.ts";
import { VERSION } from "../src/version.ts";

const demoOptions: OptionSpec[] = [
  {
    name: "threads",
    placeholder: "N",
    description: "Number of threads",
    default: "5",
    parse: integerOption("threads", { min: 0 }),
  },
  {
    name: "processes",
    placeholder: "N",
    description: "Number of processes",
    default: "5",
    parse: integerOption("processes", { min: 0 }),
  },
  {
    name: "sleep",
    placeholder: "MS",
    description: "How long each worker sleeps, in milliseconds",
    default: "150",
    parse: integerOption("sleep", { min: 0 }),
  },
  {
    name: "start-method",
    placeholder: "NAME",
    description: `How processes start: ${getAllStartMethods().join(" or ")}`,
    default: "spawn",
    parse: (text) => {
      try {
        return checkStartMethod(text, "'--start-method'");
      } catch (error) {
        throw new UsageError((error as Error).message);
      }
    },
  },
];

const reportOptions: OptionSpec[] = [
  { name: "json", description: "Print the results as JSON instead of a table" },
  {
    name: "svg",
    placeholder: "FILE",
    description: "Also draw the results as an SVG chart into FILE",
    parse: fileOption("svg"),
  },
];

function usage(): string {
  const commands = [
    ["demo", "Run the notebook's demo: threads, then processes"],
    ["worker", "Serve a DistributedPool's queue on Redis (a worker node)"],
    ...benchCommands.map((bench) => [`bench ${bench.name}`, bench.summary]),
  ];
  return [
    "Usage: multiproc <command> [options]",
    "",
    "Commands:",
    ...commands.map(([name, summary]) => `  ${name.padEnd(22)}${summary}`),
    "",
    "Options for demo:",
    ...formatOptions(demoOptions),
    "",
    "Options for worker:",
    ...formatOptions(workerOptions),
    ...benchCommands.flatMap((bench) => [
      "",
      `Options for bench ${bench.name}:`,
      ...formatOptions(bench.options),
    ]),
    "",
    "Options for every bench:",
    ...formatOptions(reportOptions),
    "",
    "Options:",
    `  ${"-h, --help".padEnd(22)}Show this help`,
    `  ${"-V, --version".padEnd(22)}Show the version`,
  ].join("\n");
}

type Invocation =
  | { kind: "help" }
  | { kind: "version" }
  | { kind: "demo"; settings: Settings }
  | { kind: "worker"; settings: Settings }
  | { kind: "bench"; bench: BenchCommand; settings: Settings };

const commandNames = `'demo', 'worker' or 'bench'`;
const benchNames = benchCommands.map((bench) => `'${bench.name}'`).join(" or ");

/** Reads the command line; `help` and `version` win wherever they stand. */
function parseCommandLine(args: string[]): Invocation {
  const [command, ...rest] = args;
  if (command === undefined || command.startsWith("-")) {
    const parsed = parseOptions(args, []);
    if (parsed.kind !== "run") return parsed;
    throw new UsageError(`Missing command: expected ${commandNames}`);
  }
  if (command === "demo") {
    const parsed = parseOptions(rest, demoOptions);
    if (parsed.kind !== "run") return parsed;
    if (parsed.positional.length > 0) {
      throw new UsageError(`Unexpected argument '${parsed.positional[0]}'`);
    }
    return { kind: "demo", settings: parsed.settings };
  }
  if (command === "worker") {
    const parsed = parseOptions(rest, workerOptions);
    if (parsed.kind !== "run") return parsed;
    if (parsed.positional.length > 0) {
      throw new UsageError(`Unexpected argument '${parsed.positional[0]}'`);
    }
    checkWorkerSettings(parsed.settings);
    return { kind: "worker", settings: parsed.settings };
  }
  if (command === "bench") {
    const [name, ...benchArgs] = rest;
    if (name === undefined || name.startsWith("-")) {
      const parsed = parseOptions(rest, []);
      if (parsed.kind !== "run") return parsed;
      throw new UsageError(`Missing benchmark: expected ${benchNames}`);
    }
    const bench = benchCommands.find((candidate) => candidate.name === name);
    if (!bench) throw new UsageError(`Unknown benchmark '${name}': expected ${benchNames}`);
    const parsed = parseOptions(benchArgs, [...bench.options, ...reportOptions]);
    if (parsed.kind !== "run") return parsed;
    if (parsed.positional.length > 0) {
      throw new UsageError(`Unexpected argument '${parsed.positional[0]}'`);
    }
    return { kind: "bench", bench, settings: parsed.settings };
  }
  throw new UsageError(`Unknown command '${command}': expected ${commandNames}`);
}

async function runAll(workers: Array<Thread | Process>): Promise<number> {
  const started = performance.now();
  for (const worker of workers) worker.start();
  for (const worker of workers) await worker.join();
  const failed = workers.find((worker) => worker.exitCode !== 0);
  if (failed) {
    throw new Error(`${failed.name} ended with exit code ${failed.exitCode}`, {
      cause: failed.error,
    });
  }
  return (performance.now() - started) / 1000;
}

async function demo(settings: Settings): Promise<void> {
  const threads = settings.threads as number;
  const processes = settings.processes as number;
  const startMethod = settings["start-method"] as StartMethod;
  const indices = (n: number) => Array.from({ length: n }, (_, i) => i);
  const options = (i: number) => ({
    target: doSomething,
    args: [i, settings.sleep as number] as [number, number],
    module: demoModuleUrl,
  });
  console.log(`# ${threads} threads (worker threads run JavaScript in parallel)`);
  const threadSeconds = await runAll(indices(threads).map((i) => new Thread(options(i))));
  console.log(`# ${processes} processes (start method: ${startMethod})`);
  const processSeconds = await runAll(
    indices(processes).map((i) => new Process({ ...options(i), startMethod })),
  );
  console.log(
    `threads: ${threadSeconds.toFixed(2)} s wall, processes: ${processSeconds.toFixed(2)} s wall`,
  );
}

async function bench(command: BenchCommand, settings: Settings): Promise<void> {
  const { json, svg, ...own } = settings;
  const { progress, done } = terminalProgress();
  let result;
  try {
    result = await command.run(own, progress);
  } finally {
    done();
  }
  const report: BenchReport = {
    command: `bench ${command.name}`,
    settings: own,
    machine: machineInfo(),
    ...result,
  };
  console.log(json ? reportToJson(report) : formatReport(report));
  if (typeof svg === "string") {
    const chart = await renderChart({
      ...report.chart,
      subtitle: report.chart.subtitle ?? describeMachine(report.machine),
    });
    await writeFile(svg, chart);
    console.error(`multiproc: wrote the chart to ${svg}`);
  }
}

/**
 * Runs the `multiproc` command with `args` (without the program name) and returns its exit code:
 * 0 on success, 1 when a worker or a benchmark failed, 2 for a usage error, which is printed with the
 * usage to stderr.
 *
 * @param args The command-line arguments, for example `["demo", "--threads", "3"]`.
 * @returns The exit code.
 * @throws Never: failures become the exit code and a message on stderr.
 * @example Run the demo with two threads and no processes
 * ```ts
 * import { main } from "@multiproc/multiproc/cli";
 *
 * const code = await main(["demo", "--threads", "2", "--processes", "0", "--sleep", "10"]);
 * console.log(code); // 0
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let invocation: Invocation;
  try {
    invocation = parseCommandLine(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`multiproc: ${error.message}\n\n${usage()}`);
    return 2;
  }
  try {
    switch (invocation.kind) {
      case "help":
        console.log(usage());
        break;
      case "version":
        console.log(`multiproc ${VERSION}`);
        break;
      case "demo":
        await demo(invocation.settings);
        break;
      case "bench":
        await bench(invocation.bench, invocation.settings);
        break;
      case "worker":
        await runWorker(invocation.settings, cpuCount());
        break;
    }
    return 0;
  } catch (error) {
    console.error(`multiproc: ${error instanceof Error ? error.message : String(error)}`);
    if (error instanceof Error && error.cause instanceof Error) {
      console.error(`  caused by ${error.cause.name}: ${error.cause.message}`);
    }
    return 1;
  }
}

if (import.meta.url === mainModuleUrl()) {
  process.exitCode = await main(process.argv.slice(2));
}
