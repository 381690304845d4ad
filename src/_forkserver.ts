/**
 * The forkserver: warm child processes kept ready, with the runtime booted and the preload modules
 * imported, so that starting a process costs a message instead of a runtime boot.
 *
 * A JavaScript runtime cannot fork, so the "server" is the parent itself keeping spares: each
 * spare is a real child process with its own pid, signals, stdout and stderr, and the same
 * lifeline as any other child. Spares do not keep the parent alive, and none exists before the
 * forkserver is first used.
 *
 * @module
 */
import { type ChildProcessHandle, spawnChildProcess } from "./_child_process.ts";
import { availableCpus, mainModuleUrl, unrefTimer } from "./_platform.deno.ts";
import { readModuleText } from "./_target.ts";
import type { ChildHandle, ChildListeners, ChildMessage } from "./_protocol.ts";

interface Spare {
  handle: ChildProcessHandle;
  ready: boolean;
}

const spares: Spare[] = [];
let preloadModules: string[] = [];
// How many spares to keep: grows to the largest burst of starts seen, within a cap.
let wanted = 1;
let burst = 0;
let burstEnd: ReturnType<typeof setTimeout> | undefined;
const BURST_GAP_MS = 20;

function maxSpares(): number {
  return Math.max(8, 2 * availableCpus());
}

function spawnSpare(): Spare {
  const spare = { ready: false } as Spare;
  const idle: ChildListeners = {
    message: (message: ChildMessage) => {
      if (message.type === "ready") spare.ready = true;
    },
    error: () => {},
    exit: () => {
      const index = spares.indexOf(spare);
      if (index >= 0) spares.splice(index, 1);
    },
  };
  // Any spare may become a pool worker, whose crash report quotes its stderr.
  spare.handle = spawnChildProcess({ ref: false, keepStderrTail: true }, idle);
  const main = mainModuleUrl();
  // Like Python's forkserver, spares import the main module too, so that a target exported
  // there is ready; a main module that is no file (`deno eval`) is left out.
  const optional = main && readModuleText(main) !== null ? [main] : [];
  spare.handle.send({ type: "preload", modules: preloadModules, optional });
  return spare;
}

/**
 * Counts a start towards the current burst; once no start has come for a moment, the burst is over
 * and the spares are refilled, so that new spawns do not compete with the burst's own children.
 */
function noteDemand(): void {
  burst++;
  wanted = Math.min(maxSpares(), Math.max(wanted, burst));
  clearTimeout(burstEnd);
  burstEnd = setTimeout(() => {
    burst = 0;
    while (spares.length < wanted) spares.push(spawnSpare());
  }, BURST_GAP_MS);
  unrefTimer(burstEnd);
}

/**
 * Hands out a warm child for one process: a ready spare, else one still booting, else a new one.
 *
 * @param options A non-daemon child keeps the parent alive from now on.
 * @param listeners Where the child's events go from now on.
 */
export function takeForkserverChild(
  options: { daemon: boolean },
  listeners: ChildListeners,
): ChildHandle {
  noteDemand();
  let index = spares.findIndex((spare) => spare.ready && spare.handle.alive);
  if (index < 0) index = spares.findIndex((spare) => spare.handle.alive);
  const spare = index >= 0 ? spares.splice(index, 1)[0] : spawnSpare();
  spare.handle.setListeners(listeners);
  if (!options.daemon) spare.handle.setRef(true);
  return spare.handle;
}

/**
 * Sets the modules that spares import before they are handed work. Spares made with other modules
 * are stopped; new ones are made on the next use.
 */
export function setPreloadModules(modules: string[]): void {
  preloadModules = [...modules];
  for (const spare of spares.splice(0)) spare.handle.stop("SIGTERM");
}

/** The modules that spares import before they are handed work. */
export function getPreloadModules(): string[] {
  return [...preloadModules];
}

/** Stops every spare; the next use of the forkserver starts afresh. */
export function stopForkserver(): void {
  for (const spare of spares.splice(0)) spare.handle.stop("SIGTERM");
  clearTimeout(burstEnd);
  wanted = 1;
  burst = 0;
}
