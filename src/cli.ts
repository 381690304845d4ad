/**
 * The `multiproc` command. `multiproc demo` reproduces the notebook that the project starts from:
 * five threads, then five processes, each printing `Working i ...`, sleeping, and printing
 * `Thread i was finished.`.
 *
 * ```sh
 * deno run --allow-read --allow-env --allow-run jsr:@multiproc/multiproc/cli demo
 * npx multiproc demo --threads 3 --processes 2
 * ```
 *
 * @module
 */
import process from "node:process";
import { parseArgs } from "@std/cli/parse-args";
import { Process } from "./process.ts";
import { Thread } from "./thread.ts";
import { VERSION } from "./version.ts";
import { demoModuleUrl, doSomething } from "./_demo.ts";
import { mainModuleUrl } from "./_platform.deno.ts";

const usage = `Usage: multiproc <command> [options]

Commands:
  demo                  Run the notebook's demo: threads, then processes

Options for demo:
  --threads N           Number of threads (default 5)
  --processes N         Number of processes (default 5)
  --sleep MS            How long each worker sleeps, in milliseconds (default 150)
  --start-method NAME   How processes start: spawn (default spawn)

Options:
  -h, --help            Show this help
  -V, --version         Show the version`;

const startMethods = ["spawn"];

/** A command-line mistake: the CLI prints it with the usage and exits with code 2. */
class UsageError extends Error {
  override name = "UsageError";
}

function nonNegativeInteger(option: string, value: unknown): number {
  const text = String(value);
  if (!/^\d+$/.test(text)) {
    throw new UsageError(`'--${option}' must be a non-negative integer: received '${text}'`);
  }
  return Number(text);
}

interface DemoSettings {
  threads: number;
  processes: number;
  sleepMs: number;
  startMethod: string;
}

function parseDemoArgs(args: string[]): DemoSettings | "help" | "version" {
  const parsed = parseArgs(args, {
    string: ["threads", "processes", "sleep", "start-method"],
    boolean: ["help", "version"],
    alias: { h: "help", V: "version" },
    unknown: (arg: string) => {
      if (arg.startsWith("-")) throw new UsageError(`Unknown option '${arg}'`);
      return true;
    },
  });
  if (parsed.help) return "help";
  if (parsed.version) return "version";
  const [command, ...rest] = parsed._.map(String);
  if (command === undefined) throw new UsageError("Missing command: expected 'demo'");
  if (command !== "demo") throw new UsageError(`Unknown command '${command}': expected 'demo'`);
  if (rest.length > 0) throw new UsageError(`Unexpected argument '${rest[0]}'`);
  const startMethod = String(parsed["start-method"] ?? "spawn");
  if (!startMethods.includes(startMethod)) {
    throw new UsageError(
      `'--start-method' must be one of ${
        startMethods.map((m) => `'${m}'`).join(", ")
      }: received '${startMethod}'`,
    );
  }
  return {
    threads: nonNegativeInteger("threads", parsed.threads ?? 5),
    processes: nonNegativeInteger("processes", parsed.processes ?? 5),
    sleepMs: nonNegativeInteger("sleep", parsed.sleep ?? 150),
    startMethod,
  };
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

async function demo(settings: DemoSettings): Promise<void> {
  const indices = (n: number) => Array.from({ length: n }, (_, i) => i);
  const options = (i: number) => ({
    target: doSomething,
    args: [i, settings.sleepMs] as [number, number],
    module: demoModuleUrl,
  });
  console.log(`# ${settings.threads} threads (worker threads run JavaScript in parallel)`);
  const threadSeconds = await runAll(indices(settings.threads).map((i) => new Thread(options(i))));
  console.log(
    `# ${settings.processes} processes (start method: ${settings.startMethod})`,
  );
  const processSeconds = await runAll(
    indices(settings.processes).map((i) => new Process(options(i))),
  );
  console.log(
    `threads: ${threadSeconds.toFixed(2)} s wall, processes: ${processSeconds.toFixed(2)} s wall`,
  );
}

/**
 * Runs the `multiproc` command with `args` (without the program name) and returns its exit code:
 * 0 on success, 1 when a worker failed, 2 for a usage error, which is printed with the usage to
 * stderr.
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
  let settings: DemoSettings | "help" | "version";
  try {
    settings = parseDemoArgs(args);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`multiproc: ${error.message}\n\n${usage}`);
    return 2;
  }
  if (settings === "help") {
    console.log(usage);
    return 0;
  }
  if (settings === "version") {
    console.log(`multiproc ${VERSION}`);
    return 0;
  }
  try {
    await demo(settings);
    return 0;
  } catch (error) {
    console.error(`multiproc: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

if (import.meta.url === mainModuleUrl()) {
  process.exitCode = await main(process.argv.slice(2));
}
