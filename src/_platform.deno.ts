/**
 * The runtime seam, parent side, for Deno. Its sibling `_platform.node.ts` has identical exports;
 * the npm build swaps one for the other, so nothing else in the library branches on the runtime.
 *
 * @module
 */
import os from "node:os";
import {
  CHILD_PROCESS_FLAG,
  type ChildHandle,
  type ChildListeners,
  SIGNAL_EXIT_CODES,
} from "./_protocol.ts";
import { startNodeWorker } from "./_node_worker.ts";
import { type ChildCommandOptions, moduleReadScope, PERMISSION_NAMES } from "./_permissions.ts";
import type { PermissionsOption } from "./permissions.ts";

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

/**
 * Whether worker threads take a heap limit. Deno's workers do not enforce one on a module worker:
 * a worker over the limit grows on instead of stopping.
 */
export const threadHeapLimits = false;

type PermissionName = typeof PERMISSION_NAMES[number];

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
): { command: string; args: string[] } {
  const flags = permissionFlags(options.permissions ?? "inherit");
  if (options.maxHeapMb !== undefined) {
    flags.push(`--v8-flags=--max-old-space-size=${options.maxHeapMb}`);
  }
  return {
    command: Deno.execPath(),
    args: [
      "run",
      "--quiet",
      "--no-prompt",
      ...flags,
      childEntry.href,
      CHILD_PROCESS_FLAG,
      String(Deno.pid),
    ],
  };
}

function permissionFlags(permissions: PermissionsOption): string[] {
  const flags: string[] = [];
  let readGranted = false;
  let readList: string[] = [];
  if (permissions === "inherit") {
    const granted = PERMISSION_NAMES.filter((name) => holds({ name }));
    if (granted.length === PERMISSION_NAMES.length) return ["--allow-all"];
    for (const name of granted) if (name !== "read") flags.push(`--allow-${name}`);
    readGranted = granted.includes("read");
  } else if (permissions !== "none") {
    for (const name of PERMISSION_NAMES) {
      const grant = permissions[name];
      if (grant === true) {
        if (!holds({ name })) throw moreThanHeld(name, "true", `--allow-${name}`);
        if (name === "read") readGranted = true;
        else flags.push(`--allow-${name}`);
      } else if (Array.isArray(grant) && grant.length > 0) {
        for (const item of grant) {
          const descriptor = { name, [itemField[name]]: item } as Deno.PermissionDescriptor;
          if (!holds(descriptor)) throw moreThanHeld(name, `'${item}'`, `--allow-${name}=${item}`);
        }
        if (name === "read") readList = grant;
        else flags.push(`--allow-${name}=${grant.join(",")}`);
      }
    }
  }
  if (readGranted) {
    flags.push("--allow-read");
  } else {
    // The child must read its entry and the main module to import them. It may read them only
    // where the parent may: never more than the parent holds.
    const moduleDirectories = [childEntry.href, Deno.mainModule]
      .map(moduleReadScope)
      .filter((path): path is string => path !== undefined && canRead(path));
    const paths = [...new Set([...readList, ...moduleDirectories])];
    if (paths.length > 0) flags.push(`--allow-read=${paths.join(",")}`);
  }
  return flags;
}

function moreThanHeld(name: string, value: string, flag: string): TypeError {
  return new TypeError(
    `Process 'permissions.${name}' asks for more than this process holds: ${value}; start the parent with ${flag} first`,
  );
}

function canRead(path: string): boolean {
  return holds({ name: "read", path });
}

/**
 * Starts a worker thread running the child entry. Non-daemon threads are Web Workers; daemon ones
 * use `node:worker_threads`, because only those can stop holding the parent's event loop open.
 */
export function startThread(
  options: { daemon: boolean; name: string; maxHeapMb?: number },
  listeners: ChildListeners,
): ChildHandle {
  if (options.daemon) {
    return startNodeWorker(new URL("./_child_main.ts", import.meta.url), options, listeners);
  }
  const worker = new Worker(childEntry, { type: "module", name: options.name });
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

/** Runs `hook` once when the parent process exits, normally or through `Deno.exit()`. */
export function onParentExit(hook: () => void): void {
  globalThis.addEventListener("unload", hook);
}

/** Lets a timer fire without keeping the process alive for it. */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  Deno.unrefTimer(timer);
}
