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

const permissionNames = ["read", "write", "net", "env", "run", "ffi", "sys", "import"] as const;

/**
 * The command line that starts a child process running the child entry. The child gets the
 * permissions that the parent holds in full, and never more.
 */
export function childProcessCommand(): { command: string; args: string[] } {
  const flags: string[] = [];
  const granted = permissionNames.filter((name) => {
    try {
      return Deno.permissions.querySync({ name }).state === "granted";
    } catch {
      return false;
    }
  });
  if (granted.length === permissionNames.length) {
    flags.push("--allow-all");
  } else {
    for (const name of granted) flags.push(`--allow-${name}`);
    if (!granted.includes("read") && childEntry.protocol === "file:") {
      // Without read access the child could not import its own entry or the target's module.
      flags.push(`--allow-read`);
    }
  }
  return {
    command: Deno.execPath(),
    args: ["run", "--quiet", "--no-prompt", ...flags, childEntry.href, CHILD_PROCESS_FLAG],
  };
}

/**
 * Starts a worker thread running the child entry. Non-daemon threads are Web Workers; daemon ones
 * use `node:worker_threads`, because only those can stop holding the parent's event loop open.
 */
export function startThread(
  options: { daemon: boolean; name: string },
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
