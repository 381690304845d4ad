/**
 * Redis and worker nodes for the DistributedPool tests: a `redis-server` from the system (Debian's
 * package) on a Unix socket in a temporary folder, never a TCP port, and `multiproc worker`
 * processes started as a user would. Everything started here is stopped and removed by `stop()`.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { fileURLToPath } from "node:url";
import { runtime } from "./_runtime.deno.ts";

/** The repository root (on Node, the build directory that mirrors it). */
export const repoRoot: string = fileURLToPath(new URL("..", import.meta.url));

/**
 * Spawns a process that dies with the test run even when the run itself is killed: through
 * util-linux's `setpriv --pdeathsig SIGKILL` where it exists (it then runs the command, same pid).
 */
function spawnTied(
  command: string,
  args: string[],
  options: Parameters<typeof spawn>[2],
): ChildProcess {
  const setpriv = ["/usr/bin/setpriv", "/bin/setpriv"].find((path) => existsSync(path));
  return setpriv && process.platform === "linux"
    ? spawn(setpriv, ["--pdeathsig", "SIGKILL", "--", command, ...args], options)
    : spawn(command, args, options);
}

/** Sends a signal to a process that may have exited already. */
export function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch (error) {
    if ((error as { code?: string }).code !== "ESRCH") throw error;
  }
}

/** A Redis server of the tests' own. */
export class RedisServer {
  readonly dir: string;
  readonly socket: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> | undefined;
  #log: string[] = [];

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), "multiproc-redis-"));
    this.socket = join(this.dir, "redis.sock");
  }

  /** Starts the server and waits until it answers on its socket. */
  async start(): Promise<void> {
    const child = spawnTied("redis-server", [
      "--port",
      "0",
      "--unixsocket",
      this.socket,
      "--unixsocketperm",
      "700",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      this.dir,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    const failed = new Promise<never>((_, reject) => {
      child.on("error", (error) =>
        reject(
          new Error(
            "redis-server could not start: install it with 'apt-get install redis-server'",
            { cause: error },
          ),
        ));
    });
    failed.catch(() => {});
    this.#exited = new Promise((resolve) => child.on("exit", () => resolve()));
    child.stdout!.on("data", (chunk) => this.#log.push(String(chunk)));
    child.stderr!.on("data", (chunk) => this.#log.push(String(chunk)));
    const deadline = Date.now() + 10_000;
    while (!/ready to accept connections/i.test(this.#log.join(""))) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `redis-server exited at start (install it with 'apt-get install redis-server'):\n${
            this.#log.join("")
          }`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(`redis-server did not start within 10 s:\n${this.#log.join("")}`);
      }
      await Promise.race([new Promise((resolve) => setTimeout(resolve, 20)), failed]);
    }
  }

  /** Sends `signal` to the server (SIGSTOP makes it fall silent, SIGCONT wakes it). */
  signal(signal: NodeJS.Signals): void {
    if (this.#child?.pid !== undefined) signalPid(this.#child.pid, signal);
  }

  /** Stops the server (SIGTERM, then SIGKILL), without removing its folder. */
  async halt(): Promise<void> {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    signalPid(child.pid!, "SIGTERM");
    const timer = setTimeout(() => signalPid(child.pid!, "SIGKILL"), 5000);
    await this.#exited;
    clearTimeout(timer);
  }

  /** Stops the server and removes its folder. */
  async stop(): Promise<void> {
    await this.halt();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** A `multiproc worker` process. */
export class WorkerNodeProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  stdout = "";
  stderr = "";

  /**
   * @param args The node's options.
   * @param onDeno Run the node on Deno from the sources even when the tests run on Node or Bun, to
   * pair runtimes; the build script says where Deno and the sources are.
   */
  constructor(args: string[], onDeno = false) {
    let command: string;
    let base: string[];
    if (runtime === "deno" || onDeno) {
      const deno = runtime === "deno" ? process.execPath : process.env.MULTIPROC_TEST_DENO;
      const sources = runtime === "deno" ? repoRoot : process.env.MULTIPROC_TEST_SOURCE_ROOT;
      if (!deno || !sources) {
        throw new Error(
          "A Deno worker node needs MULTIPROC_TEST_DENO and MULTIPROC_TEST_SOURCE_ROOT: run the tests through scripts/build_npm.ts --test",
        );
      }
      command = deno;
      base = ["run", "--quiet", "-A", join(sources, "cli", "main.ts")];
    } else {
      command = process.execPath;
      base = [fileURLToPath(new URL("../cli/main.js", import.meta.url))];
    }
    this.child = spawnTied(command, [...base, "worker", ...args], {
      stdio: ["ignore", "pipe", "pipe"],
      cwd: repoRoot,
    });
    this.child.stdout!.on("data", (chunk) => this.stdout += String(chunk));
    this.child.stderr!.on("data", (chunk) => this.stderr += String(chunk));
    this.exited = new Promise((resolve) =>
      this.child.on("exit", (code, signal) => resolve({ code, signal }))
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Waits until the node serves its queue. */
  async ready(): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!this.stdout.includes("serving queue")) {
      if (this.child.exitCode !== null || this.child.signalCode !== null) {
        throw new Error(`The worker node exited before serving:\n${this.stdout}\n${this.stderr}`);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `The worker node did not start within 30 s:\n${this.stdout}\n${this.stderr}`,
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /**
   * Sends `signal` to the node. By pid, because Deno's `ChildProcess.kill()` sends one signal only:
   * after it, the object counts the child as killed and ignores later calls.
   */
  signal(signal: NodeJS.Signals): void {
    signalPid(this.pid, signal);
  }

  /** Sends `signal` and waits for the exit. */
  async stop(
    signal: NodeJS.Signals = "SIGTERM",
  ): Promise<{ code: number | null; signal: string | null }> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      // A suspended node must run to see the signal.
      this.signal("SIGCONT");
      this.signal(signal);
    }
    const timer = setTimeout(() => this.signal("SIGKILL"), 5_000);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }
}

/** Options of {@linkcode withCluster}. */
export interface ClusterOptions {
  /** Worker nodes to start. */
  nodes?: number;
  /** Extra arguments of each node. */
  nodeArgs?: string[];
  /** The queue; a fresh name by default. */
  queue?: string;
}

let queueCount = 0;

/** A Redis server and its nodes, for one test. */
export interface Cluster {
  redis: RedisServer;
  queue: string;
  nodes: WorkerNodeProcess[];
  /** Starts another node on the same queue; `onDeno` as for {@linkcode WorkerNodeProcess}. */
  startNode(args?: string[], onDeno?: boolean): Promise<WorkerNodeProcess>;
}

/**
 * Starts Redis and worker nodes, runs `fn`, and stops them all, whatever `fn` does.
 */
export async function withCluster(
  options: ClusterOptions,
  fn: (cluster: Cluster) => Promise<void>,
): Promise<void> {
  const redis = new RedisServer();
  const queue = options.queue ?? `q${process.pid}-${++queueCount}`;
  const nodes: WorkerNodeProcess[] = [];
  const startNode = async (args = options.nodeArgs ?? [], onDeno = false) => {
    const node = new WorkerNodeProcess([
      "--connection",
      redis.socket,
      "--queue",
      queue,
      "--root",
      repoRoot,
      ...args,
    ], onDeno);
    nodes.push(node);
    await node.ready();
    return node;
  };
  try {
    await redis.start();
    await Promise.all(Array.from({ length: options.nodes ?? 1 }, () => startNode()));
    await fn({ redis, queue, nodes, startNode });
  } finally {
    await Promise.all(nodes.map((node) => node.stop()));
    await redis.stop();
  }
  if (existsSync(redis.dir)) throw new Error(`The Redis folder was left behind: ${redis.dir}`);
}
