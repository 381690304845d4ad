/**
 * The runtime seam, parent side, for Node. Its sibling `_platform.deno.ts` has identical exports;
 * the npm build swaps one for the other, so nothing else in the library branches on the runtime.
 *
 * @module
 */
import { realpathSync } from "node:fs";
import os from "node:os";
import process from "node:process";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CHILD_PROCESS_FLAG, type ChildHandle, type ChildListeners } from "./_protocol.ts";
import { startNodeWorker } from "./_node_worker.ts";

/** URL of the script that the user ran, which children re-import to find exported targets. */
export function mainModuleUrl(): string | undefined {
  const script = process.argv[1];
  if (!script) return undefined;
  try {
    return pathToFileURL(realpathSync(script)).href;
  } catch {
    return pathToFileURL(script).href;
  }
}

/** The number of logical CPUs, at least 1. */
export function availableCpus(): number {
  return Math.max(1, os.availableParallelism?.() ?? os.cpus().length);
}

const childEntry = new URL("./_child_main.js", import.meta.url);

// Flags that belong to the parent's own run and would change what a child does.
const parentOnlyFlags =
  /^--(test|inspect|debug|eval|print|input-type|watch|prof|cpu-prof|heap-prof)|^-[ep]$/;

/**
 * The command line that starts a child process running the child entry, with the parent's Node
 * flags (loaders such as `--import tsx` included) so that the child can import the same modules.
 */
export function childProcessCommand(): { command: string; args: string[] } {
  const execArgv: string[] = [];
  for (let i = 0; i < process.execArgv.length; i++) {
    const flag = process.execArgv[i];
    if (parentOnlyFlags.test(flag)) {
      // A flag such as `-e code` takes the next word as its value.
      if (/^-[ep]$|^--(eval|print|input-type)$/.test(flag)) i++;
      continue;
    }
    execArgv.push(flag);
  }
  return {
    command: process.execPath,
    args: [...execArgv, fileURLToPath(childEntry), CHILD_PROCESS_FLAG],
  };
}

/** Starts a worker thread running the child entry. */
export function startThread(
  options: { daemon: boolean; name: string },
  listeners: ChildListeners,
): ChildHandle {
  return startNodeWorker(childEntry, options, listeners);
}

/** Runs `hook` once when the parent process exits, normally or through `process.exit()`. */
export function onParentExit(hook: () => void): void {
  process.once("exit", hook);
}

/** Lets a timer fire without keeping the process alive for it. */
export function unrefTimer(timer: ReturnType<typeof setTimeout>): void {
  (timer as unknown as { unref(): void }).unref();
}
