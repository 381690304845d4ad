/**
 * The runtime seam, parent side, for Deno. Its sibling `_platform.node.ts` has identical exports;
 * the npm build swaps one for the other, so nothing else in the library branches on the runtime.
 * What every runtime must provide is listed in `_runtime_seam.ts`.
 *
 * @module
 */
import { existsSync } from "node:fs";
import os from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CHILD_PROCESS_FLAG } from "./_protocol.ts";
import { type ChildHandle, type ChildListeners, SIGNAL_EXIT_CODES } from "./_channel.ts";
import { startNodeWorker } from "./_node_worker.ts";
import {
  type ChildCommand,
  type ChildCommandOptions,
  moduleReadScope,
  narrowEnvGrant,
  PERMISSION_NAMES,
  type PermissionName,
  resolveGrants,
  withChannelGrant,
} from "./_permissions.ts";
import type { PermissionsOption } from "./permissions.ts";
import { parentMainModule } from "./_process_context.ts";

/** URL of the module that the user ran, which children re-import to find exported targets. */
export function mainModuleUrl(): string | undefined {
  try {
    return Deno.mainModule;
  } catch {
    return undefined;
  }
}

/** The number of logical CPUs, at least 1. */
export function availableCpus(): number {
  return Math.max(1, navigator.hardwareConcurrency ?? os.availableParallelism?.() ?? 1);
}

const childEntry = new URL("./_child_main.ts", import.meta.url);
const relayEntry = new URL("./_relay_main.ts", import.meta.url);

/**
 * The modules that a child imports: its entry, and the program's main module, which a child passes
 * on to its own children (its own main module is the entry).
 */
function childModules(): Array<string | undefined> {
  return [childEntry.href, parentMainModule() ?? mainModuleUrl()];
}

/**
 * Whether worker threads take a heap limit. Deno's workers do not enforce one on a module worker:
 * a worker over the limit grows on instead of stopping.
 */
export const threadHeapLimits = false;

// The descriptor field that names one item of each kind, for asking whether the parent holds it.
const itemField: Record<PermissionName, string> = {
  read: "path",
  write: "path",
  net: "host",
  env: "variable",
  run: "command",
  ffi: "path",
  sys: "kind",
  import: "host",
};

function holds(descriptor: Deno.PermissionDescriptor): boolean {
  try {
    return Deno.permissions.querySync(descriptor).state === "granted";
  } catch {
    return false;
  }
}

/**
 * The command line that starts a child process running the child entry. The child gets the
 * permissions asked for, or by default those that the parent holds in full, and never more than
 * the parent holds.
 *
 * @throws {TypeError} When `permissions` asks for something that the parent does not hold.
 */
export function childProcessCommand(
  options: ChildCommandOptions = {},
  what = "Process",
  channelPath?: string,
): ChildCommand {
  checkCanStartChildren();
  const flags = permissionFlags(options.permissions ?? "inherit", what, options.env, channelPath);
  if (options.maxHeapMb !== undefined) {
    flags.push(`--v8-flags=--max-old-space-size=${options.maxHeapMb}`);
  }
  const runtime = [
    Deno.execPath(),
    "run",
    "--quiet",
    "--no-prompt",
    ...flags,
    childEntry.href,
    CHILD_PROCESS_FLAG,
    String(Deno.pid),
    ...(channelPath === undefined ? [] : [channelPath]),
  ];
  if (options.env === undefined) return { command: runtime[0], args: runtime.slice(1) };
  const unset = withOwnEnvironment(options.env, what);
  return { command: ENV_PROGRAM, args: [...unset, ...runtime], env: options.env };
}

/**
 * The command line of a channel relay (`_relay_main.ts`) that makes `folder` and listens at the
 * `sockets` in it: it may read and write that folder and listen at those sockets, and nothing else.
 * It runs only the library's own code.
 */
export function relayProcessCommand(folder: string, sockets: readonly string[]): ChildCommand {
  return {
    command: Deno.execPath(),
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      `--allow-read=${folder}`,
      `--allow-write=${folder}`,
      `--allow-net=${sockets.map((path) => `unix:${path}`).join(",")}`,
      relayEntry.href,
      folder,
    ],
  };
}

/**
 * Checks, when a Process or Pool is made, that its children can start as asked: the parent may
 * start children, holds every grant asked for, and may run what an `env` option needs.
 *
 * @throws {TypeError} When a grant asks for more than the parent holds, or `env` cannot be given.
 * @throws {Deno.errors.NotCapable} When the parent may not start children at all.
 */
export function checkChildCommand(options: ChildCommandOptions, what: string): void {
  checkCanStartChildren();
  resolveGrants(options.permissions ?? "inherit", what, holdsPermission, childModules());
  if (options.env !== undefined) withOwnEnvironment(options.env, what);
}

const ENV_PROGRAM = "/usr/bin/env";

// What Deno reads from its environment to find its cache; the child's own code cannot read them
// (its env grant names the variables of the `env` option only).
const runtimeVariables = /^(HOME|XDG_CACHE_HOME|DENO_.*)$/;

/**
 * The arguments of `env` that give the child exactly `env`, with what Deno itself needs. Deno's
 * `node:child_process` adds the parent's environment to the one it is given, so the parent's other
 * variables are taken out by name through `env -u`: names only, so that values, which may be
 * secrets, never appear on a command line.
 *
 * @throws {TypeError} When this process may not run `env`.
 */
function withOwnEnvironment(env: Record<string, string>, what: string): string[] {
  if (!mayRunProgram(ENV_PROGRAM)) {
    throw new TypeError(
      `${what} 'env' needs ${ENV_PROGRAM} on Deno, which this process may not run: start the parent with --allow-run (or add ${ENV_PROGRAM} to --allow-run's list)`,
    );
  }
  return [
    ...Object.keys(Deno.env.toObject())
      .filter((name) => !(name in env) && !runtimeVariables.test(name))
      .flatMap((name) => ["-u", name]),
    "--",
  ];
}

/**
 * A child process is a `deno` started through `node:child_process`, which needs the run grant for
 * the binary and the whole environment (it copies it), and a child needs to read its entry. Without
 * them the start would fail deep inside the runtime with a message that names none of the flags.
 *
 * @throws {Deno.errors.NotCapable} Naming each missing flag.
 */
function checkCanStartChildren(): void {
  const missing: string[] = [];
  if (!holds({ name: "run", command: Deno.execPath() })) missing.push("--allow-run");
  if (!holds({ name: "env" })) missing.push("--allow-env");
  const entryScope = moduleReadScope(childEntry.href);
  if (entryScope !== undefined && !canRead(entryScope)) missing.push(`--allow-read`);
  if (missing.length === 0) return;
  throw new Deno.errors.NotCapable(
    `Starting a child process needs ${
      missing.join(" and ")
    }: run deno with --allow-read --allow-env --allow-run (or --allow-run=${Deno.execPath()})`,
  );
}

function permissionFlags(
  permissions: PermissionsOption,
  what: string,
  env: Record<string, string> | undefined,
  channelPath: string | undefined,
): string[] {
  // The folders of the child's modules are granted whole, less the secrets beside the modules.
  const secrets: string[] = [];
  let grants = resolveGrants(permissions, what, holdsPermission, childModules(), secrets);
  if (env !== undefined) grants = narrowEnvGrant(grants, env);
  if (channelPath !== undefined) grants = withChannelGrant(grants, channelPath);
  if (grants === "all") return ["--allow-all"];
  // Each item was checked to hold no comma, so that Deno cannot split it into more than was checked.
  const flags = [...grants].map(([name, grant]) =>
    grant === true ? `--allow-${name}` : `--allow-${name}=${grant.join(",")}`
  );
  if (secrets.length > 0) flags.push(`--deny-read=${[...new Set(secrets)].join(",")}`);
  return flags;
}

/** Whether this process holds a whole permission kind, or one item of it. */
function holdsPermission(name: PermissionName, item?: string): boolean {
  if (item === undefined) return holds({ name });
  return holds({ name, [itemField[name]]: item } as Deno.PermissionDescriptor);
}

function canRead(path: string): boolean {
  return holds({ name: "read", path });
}

/**
 * Permissions for one worker thread, as the runtime's workers take them: a grant per kind.
 */
export type WorkerPermissions = Record<string, boolean | string[]>;

const workerOptionsFlag = "--unstable-worker-options";

/**
 * Turns a thread's `permissions` option into what a Deno Web Worker takes. Deno grants a worker
 * its own permissions only under `--unstable-worker-options`, and ends the whole process when a
 * worker asks without it; the flag cannot be queried, so it is looked for where this process can
 * see it, and a thread is refused unless it is found.
 *
 * @returns Undefined for `"inherit"`: the worker holds what the parent holds.
 * @throws {TypeError} When the flag is not seen, or a grant asks for more than the parent holds.
 */
export function threadPermissions(
  value: PermissionsOption | undefined,
  what: string,
): WorkerPermissions | undefined {
  if (value === undefined || value === "inherit") return undefined;
  const seen = workerOptionsEnabled();
  if (seen !== true) {
    const how = seen === false
      ? ""
      : ", which this process cannot see without --allow-all or --allow-run=ps";
    throw new TypeError(
      `${what} 'permissions' need Deno's ${workerOptionsFlag} flag${how}: run deno with ${workerOptionsFlag}, or add "worker-options" to "unstable" in deno.json; or run the target in a Process with 'permissions' (received ${
        JSON.stringify(value)
      })`,
    );
  }
  const grants = resolveGrants(value, what, holdsPermission, childModules());
  if (grants === "all") return undefined;
  const permissions: WorkerPermissions = {};
  for (const name of PERMISSION_NAMES) permissions[name] = grants.get(name) ?? false;
  return permissions;
}

let workerOptionsCache: boolean | undefined;

/** Whether `--unstable-worker-options` is in force: true, false, or undefined when unseen. */
function workerOptionsEnabled(): boolean | undefined {
  if (workerOptionsCache !== undefined) return workerOptionsCache;
  const commandLine = ownCommandLine();
  if (commandLine === undefined) return configEnablesWorkerOptions(undefined) || undefined;
  // The script's own arguments come last; only the runtime's flags before them count.
  const runtimeWords = commandLine.slice(0, commandLine.length - Deno.args.length);
  if (runtimeWords.includes(workerOptionsFlag)) return workerOptionsCache = true;
  if (runtimeWords.includes("--no-config")) return workerOptionsCache = false;
  let config: string | undefined;
  runtimeWords.forEach((word, i) => {
    if (word === "--config" || word === "-c") config = runtimeWords[i + 1];
    else if (word.startsWith("--config=")) config = word.slice("--config=".length);
  });
  return workerOptionsCache = configEnablesWorkerOptions(config);
}

/** This process's command line, where it may be read: /proc needs --allow-all, `ps` a run grant. */
function ownCommandLine(): string[] | undefined {
  try {
    const words = Deno.readTextFileSync("/proc/self/cmdline").split("\0");
    return words.at(-1) === "" ? words.slice(0, -1) : words;
  } catch {
    // Read without --allow-all is refused; try ps below.
  }
  if (!holds({ name: "run", command: "ps" })) return undefined;
  try {
    const output = new Deno.Command("ps", {
      args: ["-o", "args=", "-p", String(Deno.pid)],
      stdout: "piped",
      stderr: "null",
    }).outputSync();
    if (!output.success) return undefined;
    return new TextDecoder().decode(output.stdout).trim().split(/\s+/);
  } catch {
    return undefined;
  }
}

/**
 * Whether the deno.json(c) in force lists "worker-options" under "unstable": the one that
 * `--config` names, else the nearest one above the main module or the working directory, where
 * Deno looks for it.
 */
function configEnablesWorkerOptions(configPath: string | undefined): boolean {
  if (configPath !== undefined) return listsWorkerOptions(readText(configPath));
  const starts: string[] = [];
  try {
    starts.push(dirname(fileURLToPath(Deno.mainModule)));
  } catch {
    // No main module on disk.
  }
  try {
    starts.push(Deno.cwd());
  } catch {
    // The working directory is not readable without a read grant.
  }
  return starts.some((start) => {
    for (let dir = start;; dir = dirname(dir)) {
      for (const name of ["deno.json", "deno.jsonc"]) {
        const text = readText(join(dir, name));
        if (text !== undefined) return listsWorkerOptions(text);
      }
      if (dirname(dir) === dir) return false;
    }
  });
}

function readText(path: string): string | undefined {
  try {
    return Deno.readTextFileSync(path);
  } catch {
    return undefined;
  }
}

function listsWorkerOptions(config: string | undefined): boolean {
  const unstable = config === undefined ? null : /"unstable"\s*:\s*\[([^\]]*)\]/.exec(config);
  return unstable !== null && unstable[1].includes('"worker-options"');
}

/**
 * Starts a worker thread running the child entry. Non-daemon threads are Web Workers; daemon ones
 * use `node:worker_threads`, because only those can stop holding the parent's event loop open,
 * unless they have permissions of their own, which only a Web Worker takes.
 */
export function startThread(
  options: { daemon: boolean; name: string; maxHeapMb?: number; permissions?: WorkerPermissions },
  listeners: ChildListeners,
): ChildHandle {
  // Only a Web Worker takes its own permissions, and it holds the event loop even as a daemon.
  if (options.daemon && options.permissions === undefined) {
    return startNodeWorker(new URL("./_child_main.ts", import.meta.url), options, listeners);
  }
  const worker = new Worker(childEntry, {
    type: "module",
    name: options.name,
    ...(options.permissions ? { deno: { permissions: options.permissions } } : {}),
  });
  let exited = false;
  // A Web Worker has no exit event: the exits are the ones that the parent causes or sees.
  const exit = (exitCode: number) => {
    if (exited) return;
    exited = true;
    worker.terminate();
    listeners.exit(exitCode);
  };
  worker.onmessage = (event: MessageEvent) => {
    listeners.message(event.data);
    // Deno.exit() in the worker closes it silently; the child entry reports the code first.
    if (event.data?.type === "exit") exit(event.data.code);
  };
  worker.onerror = (event: ErrorEvent) => {
    // Without preventDefault an error in a worker would end the whole parent process.
    event.preventDefault();
    if (exited) return;
    listeners.error(event.error instanceof Error ? event.error : new Error(event.message));
    exit(1);
  };
  worker.onmessageerror = () => {
    listeners.error(new TypeError("A message from the worker could not be deserialized"));
  };
  return {
    send: (message, transfer) =>
      worker.postMessage(message, { transfer: (transfer ?? []) as Transferable[] }),
    stop: (signal) => exit(SIGNAL_EXIT_CODES[signal]),
  };
}

/** Whether this process may start the program at `path`, and it exists. */
export function mayRunProgram(path: string): boolean {
  if (!holds({ name: "run", command: path })) return false;
  try {
    return existsSync(path);
  } catch {
    // Looking needs a read grant; without it the program is not used.
    return false;
  }
}

/**
 * Whether this process may make a folder in `folder` and listen on a Unix socket at `path` in it:
 * Deno asks for write access to the folder, and read, write and net access to the socket's path.
 */
export function mayListenAt(path: string, folder: string): boolean {
  return holds({ name: "write", path: folder }) && holds({ name: "read", path }) &&
    holds({ name: "write", path }) && holds({ name: "net", host: `unix:${path}` });
}

/** Runs `hook` once when the parent process exits, normally or through `Deno.exit()`. */
export function onParentExit(hook: () => void): void {
  globalThis.addEventListener("unload", hook);
}

/** Lets a timer fire without keeping the process alive for it. */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  Deno.unrefTimer(timer);
}
