/**
 * `multiproc worker`: a worker node of `DistributedPool`s. It serves one BullMQ queue on Redis and
 * runs the tasks in a local pool of processes (or threads) until SIGTERM or SIGINT, which drain
 * it: it takes no new jobs, finishes those it holds, and exits.
 *
 * @module
 */
import process from "node:process";
import type { WorkerNode, WorkerNodeOptions } from "../src/distributed/_node_options.ts";
import { lazyImport } from "./_lazy_import.deno.ts";
import { integerOption, type OptionSpec, type Settings, UsageError } from "./_options.ts";

/** The options of `multiproc worker`. */
export const workerOptions: OptionSpec[] = [
  {
    name: "connection",
    placeholder: "URL",
    description: "Redis: a redis:// or rediss:// URL, or a Unix socket's path (required)",
  },
  {
    name: "queue",
    placeholder: "NAME",
    description: "The queue to serve, as the pools' 'queue'",
    default: "multiproc",
  },
  {
    name: "root",
    placeholder: "DIR",
    description: "The directory that task modules are named relative to",
    default: ".",
  },
  {
    name: "processes",
    placeholder: "N",
    description: "Run tasks in a Pool of N processes (default: the number of CPUs)",
    parse: integerOption("processes", { min: 1, max: 1024 }),
  },
  {
    name: "threads",
    placeholder: "N",
    description: "Run tasks in a ThreadPool of N threads instead",
    parse: integerOption("threads", { min: 1, max: 1024 }),
  },
  {
    name: "allow-source",
    description: "Also run self-contained functions sent as source text",
  },
  {
    name: "lease-ms",
    placeholder: "MS",
    description: "How long a silent node keeps its jobs before they are lost",
    default: "30000",
    parse: integerOption("lease-ms", { min: 1, max: 86_400_000 }),
  },
  {
    name: "check-ms",
    placeholder: "MS",
    description: "Longest wait of a lost node's jobs once its lease lapsed",
    default: "30000",
    parse: integerOption("check-ms", { min: 1, max: 86_400_000 }),
  },
];

/**
 * Checks the settings of `multiproc worker`.
 *
 * @throws {UsageError} When `--connection` is missing, or both `--processes` and `--threads` are
 * given.
 */
export function checkWorkerSettings(settings: Settings): void {
  if (typeof settings.connection !== "string" || settings.connection === "") {
    throw new UsageError(
      "'multiproc worker' needs '--connection': a Redis URL or the path of a Unix socket",
    );
  }
  if (settings.processes !== undefined && settings.threads !== undefined) {
    throw new UsageError("Pass either '--processes' or '--threads', not both");
  }
}

/**
 * Runs a node until SIGTERM or SIGINT, then drains it.
 *
 * @param settings The parsed options.
 * @param cpus The default number of processes.
 */
export async function runWorker(settings: Settings, cpus: number): Promise<void> {
  // Loaded here, so that the other commands never load (nor download) bullmq and ioredis.
  const { startWorkerNode } = await lazyImport(
    "../src/distributed/_node_main.ts",
    import.meta.url,
  ) as {
    startWorkerNode(options: WorkerNodeOptions): Promise<WorkerNode>;
  };
  const threads = settings.threads as number | undefined;
  const node = await startWorkerNode({
    connection: settings.connection as string,
    queue: settings.queue as string,
    root: settings.root as string,
    threads,
    processes: threads === undefined
      ? (settings.processes as number | undefined) ?? cpus
      : undefined,
    allowSource: settings["allow-source"] === true,
    leaseMs: settings["lease-ms"] as number,
    checkMs: settings["check-ms"] as number,
    log: (line) => console.error(`multiproc worker: ${line}`),
  });
  const kind = threads === undefined ? "processes" : "threads";
  console.log(
    `multiproc worker: serving queue '${settings.queue}' with ${node.size} ${kind} (pid ${process.pid})`,
  );
  let onSignal!: (signal: string) => void;
  const received = new Promise<string>((resolve) => onSignal = resolve);
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const signal = await received;
  console.log(`multiproc worker: ${signal}: draining`);
  await node.drain();
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);
  console.log("multiproc worker: drained");
  // Drained: nothing of the node's is left to wait for. A connection that BullMQ still retries
  // (Redis is gone) must not hold the command open.
  process.exit(0);
}
