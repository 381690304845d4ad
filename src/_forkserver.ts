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
import { type ChildProcessHandle, spawnChildProcess } from "./_process_parent.ts";
import { availableCpus, mainModuleUrl, unrefTimer } from "./_platform.deno.ts";
import { readModuleText } from "./_target.ts";
import type { ChildHandle, ChildListeners } from "./_channel.ts";
import type { ChildMessage } from "./_protocol.ts";
import type { ChildCommandOptions } from "./_permissions.ts";
import { inheritedPreloadModules } from "./_process_context.ts";

interface Spare {
  handle: ChildProcessHandle;
  ready: boolean;
}

/**
 * The spares of one kind of child: those started with the same permissions and heap limit, which
 * only a process that asks for the same can take.
 */
interface SparePool {
  command: ChildCommandOptions;
  spares: Spare[];
  // How many spares to keep: grows to the largest burst of starts seen, within a cap.
  wanted: number;
  burst: number;
  burstEnd?: ReturnType<typeof setTimeout>;
}

const pools = new Map<string, SparePool>();
// Until set here, the modules inherited from the parent.
let preloadModules: string[] | undefined;
const BURST_GAP_MS = 20;

function maxSpares(): number {
  return Math.max(8, 2 * availableCpus());
}

function poolFor(command: ChildCommandOptions): SparePool {
  const key = JSON.stringify([
    command.permissions ?? "inherit",
    command.maxHeapMb ?? null,
    command.env ?? null,
  ]);
  let pool = pools.get(key);
  if (!pool) pools.set(key, pool = { command, spares: [], wanted: 1, burst: 0 });
  return pool;
}

/**
 * Starts a spare. A spare made ahead of demand also imports the main module, as Python's forkserver
 * does; one made because no spare was ready is about to get its target, and importing a main
 * module that it may not need would only delay it.
 */
function spawnSpare(pool: SparePool, ahead: boolean): Spare {
  const spare = { ready: false } as Spare;
  const idle: ChildListeners = {
    message: (message: ChildMessage) => {
      if (message.type === "ready") spare.ready = true;
    },
    error: () => {},
    exit: () => {
      const index = pool.spares.indexOf(spare);
      if (index >= 0) pool.spares.splice(index, 1);
    },
  };
  // Any spare may become a pool worker, whose crash report quotes its stderr.
  spare.handle = spawnChildProcess(
    { ref: false, command: pool.command, keepStderrTail: true },
    idle,
  );
  const main = mainModuleUrl();
  // Like Python's forkserver, spares import the main module too, so that a target exported
  // there is ready; a main module that is no file (`deno eval`) is left out.
  const optional = ahead && main && readModuleText(main) !== null ? [main] : [];
  spare.handle.send({ type: "preload", modules: getPreloadModules(), optional });
  return spare;
}

/**
 * Counts a start towards the current burst; once no start has come for a moment, the burst is over
 * and the spares are refilled, so that new spawns do not compete with the burst's own children.
 */
function noteDemand(pool: SparePool): void {
  pool.burst++;
  pool.wanted = Math.min(maxSpares(), Math.max(pool.wanted, pool.burst));
  clearTimeout(pool.burstEnd);
  pool.burstEnd = setTimeout(() => {
    pool.burst = 0;
    while (pool.spares.length < pool.wanted) pool.spares.push(spawnSpare(pool, true));
  }, BURST_GAP_MS);
  unrefTimer(pool.burstEnd);
}

/**
 * Hands out a warm child for one process: a ready spare, else one still booting, else a new one.
 *
 * @param options A non-daemon child keeps the parent alive from now on; `command` chooses the
 * spares with those permissions and heap limit.
 * @param listeners Where the child's events go from now on.
 * @throws {TypeError} When the permissions ask for more than the parent holds.
 */
export function takeForkserverChild(
  options: { daemon: boolean; command?: ChildCommandOptions },
  listeners: ChildListeners,
): ChildHandle {
  const pool = poolFor(options.command ?? {});
  let index = pool.spares.findIndex((spare) => spare.ready && spare.handle.alive);
  if (index < 0) index = pool.spares.findIndex((spare) => spare.handle.alive);
  const spare = index >= 0 ? pool.spares.splice(index, 1)[0] : spawnSpare(pool, false);
  noteDemand(pool);
  spare.handle.setListeners(listeners);
  if (!options.daemon) spare.handle.setRef(true);
  return spare.handle;
}

function stopSpares(): void {
  for (const pool of pools.values()) {
    clearTimeout(pool.burstEnd);
    for (const spare of pool.spares.splice(0)) spare.handle.stop("SIGTERM");
  }
  pools.clear();
}

/**
 * Sets the modules that spares import before they are handed work. Spares made with other modules
 * are stopped; new ones are made on the next use.
 */
export function setPreloadModules(modules: string[]): void {
  preloadModules = [...modules];
  stopSpares();
}

/** The modules that spares import before they are handed work. */
export function getPreloadModules(): string[] {
  return [...preloadModules ?? inheritedPreloadModules()];
}

/**
 * How many spares are ready, how many are still booting, and how many the forkserver keeps;
 * benchmarks wait for the spares to be ready so that they time a start with a spare ready.
 */
export function spareCounts(): { ready: number; booting: number; wanted: number } {
  let ready = 0, booting = 0, wanted = 0;
  for (const pool of pools.values()) {
    const alive = pool.spares.filter((spare) => spare.handle.alive);
    const poolReady = alive.filter((spare) => spare.ready).length;
    ready += poolReady;
    booting += alive.length - poolReady;
    wanted += pool.wanted;
  }
  return { ready, booting, wanted };
}
