/**
 * Who the process that runs this realm is, and what a child inherits from its parent: the
 * process's name and its parent's (for `currentProcess()` and `parentProcess()`), the start method
 * and the forkserver preload modules. A parent sends one {@linkcode ContextMessage} to every child
 * before anything else; a worker thread belongs to its parent's process, a child process is a
 * process of its own.
 *
 * Rules this file keeps:
 * - It imports nothing but types, so that every child, a Web Worker included, loads it at no cost.
 * - Inherited values are defaults: a child that sets its own start method or preload replaces
 *   them without an error, as the inherited method was not set by the child.
 *
 * @module
 */
import type { ContextMessage, ProcessRecord } from "./_protocol.ts";

export type { ContextMessage, ProcessRecord };

interface Runtime {
  Deno?: { pid: number; ppid: number };
  process?: { pid: number; ppid: number };
}

/** This runtime's pid and parent pid, without importing `node:process`. */
function pids(): { pid: number; ppid: number } {
  const runtime = globalThis as Runtime;
  const source = runtime.Deno ?? runtime.process;
  return { pid: source?.pid ?? 0, ppid: source?.ppid ?? 0 };
}

let current: { name: string; daemon: boolean; pid: number; identity: number[] } = {
  name: "MainProcess",
  daemon: false,
  pid: pids().pid,
  identity: [],
};
// How many processes this process has made, counted across its threads (see `nextIdentity`).
let counter: Int32Array | undefined;
let parent: ProcessRecord | null = null;
let inheritedStartMethod: "spawn" | "forkserver" | undefined;
let inheritedPreload: string[] = [];

/** The process that runs this realm: its name, pid and daemon flag. */
export function currentRecord(): { name: string; daemon: boolean; pid: number } {
  return current;
}

/**
 * The identity of a new `Process`, as Python's `BaseProcess._identity`: this process's identity
 * with the next count of the processes made here. Its default name is `Process-` and the counts
 * joined by `:` (`Process-2:1` for the first process that `Process-2` makes).
 */
export function nextIdentity(): number[] {
  counter ??= new Int32Array(new SharedArrayBuffer(4));
  return [...current.identity, Atomics.add(counter, 0, 1) + 1];
}

/** Renames the process that runs this realm, as `current_process().name = …` does. */
export function renameCurrent(name: string): void {
  current = { ...current, name };
}

/** The parent of the process that runs this realm, or null in the main process. */
export function parentRecord(): ProcessRecord | null {
  return parent;
}

/** Whether the process that this realm belongs to still has `record` for its parent. */
export function parentAlive(record: ProcessRecord): boolean {
  return pids().ppid === record.pid;
}

/** The start method inherited from the parent, if it sent one. */
export function inheritedMethod(): "spawn" | "forkserver" | undefined {
  return inheritedStartMethod;
}

/** The forkserver preload modules inherited from the parent. */
export function inheritedPreloadModules(): string[] {
  return [...inheritedPreload];
}

/**
 * What a parent tells a new child.
 *
 * @param destination `"thread"` for a worker thread, `"process"` for a child process.
 * @param name The child's name: a child process is known by it.
 * @param daemon Whether the child is a daemon.
 * @param identity A child process's identity (see {@linkcode nextIdentity}), if it has one.
 * @param startMethod The start method in force here, or the one the child was started with.
 * @param preload The forkserver preload modules in force here.
 * @param main This realm's main module, for a realm that is not a child.
 */
export function contextFor(
  destination: "thread" | "process",
  name: string,
  daemon: boolean,
  identity: number[] | undefined,
  startMethod: "spawn" | "forkserver" | undefined,
  preload: string[],
  main: string | undefined,
): ContextMessage {
  if (destination === "thread") counter ??= new Int32Array(new SharedArrayBuffer(4));
  return {
    type: "context",
    process: destination === "thread" ? { ...current, counter } : { name, daemon, identity },
    parent: destination === "thread" ? parent : { name: current.name, pid: current.pid },
    startMethod,
    preload,
    // A child's own children import the same main module: the user's program.
    mainModule: mainModule ?? main,
  };
}

/** Takes on what the parent sent: called by the child entry before any task. */
export function adoptContext(message: ContextMessage): void {
  current = {
    name: message.process.name,
    daemon: message.process.daemon,
    pid: message.process.pid ?? pids().pid,
    identity: message.process.identity ?? [],
  };
  // A thread counts with the rest of its process; a new process counts from 1, as in Python.
  counter = message.process.counter;
  parent = message.parent;
  inheritedStartMethod = message.startMethod;
  inheritedPreload = [...message.preload];
  mainModule = message.mainModule;
}

const children = new Set<object>();

/** Counts `process` among the running children until `finished` settles. */
export function registerChild(process: object, finished: Promise<unknown>): void {
  children.add(process);
  const forget = () => children.delete(process);
  finished.then(forget, forget);
}

/** The running children, in the order they started. */
export function liveChildren(): object[] {
  return [...children];
}

const nonDaemon = new Set<Promise<unknown>>();

/** Counts a non-daemon thread or process started here until `finished` settles. */
export function registerNonDaemon(finished: Promise<unknown>): void {
  const tracked = finished.then(() => {}, () => {});
  nonDaemon.add(tracked);
  tracked.then(() => nonDaemon.delete(tracked));
}

/**
 * Resolves once every non-daemon thread and process started here has ended, those started
 * meanwhile included: a child process waits for them before it exits, as Python's does.
 */
export async function nonDaemonChildrenDone(): Promise<void> {
  while (nonDaemon.size > 0) await Promise.all([...nonDaemon]);
}

// ---------------------------------------------------------------------------------------------
// The main module imported again in a child

let mainModule: string | undefined;
let importingMain = 0;

/** The parent's main module, when the child has been told it. */
export function parentMainModule(): string | undefined {
  return mainModule;
}

/** Records the parent's main module, which this child may import to find its target. */
export function setParentMainModule(url: string | undefined): void {
  mainModule = url;
}

/**
 * Runs `load` (the import of the main module in a child) with the guard armed: starting a thread,
 * process or pool meanwhile throws a {@linkcode MainModuleGuardError}.
 */
export async function importingMainModule<T>(load: () => Promise<T>): Promise<T> {
  importingMain++;
  try {
    return await load();
  } finally {
    importingMain--;
  }
}

/**
 * A thread, process or pool started by the main module's own code while a child imports it to find
 * its target: the code that the main module runs when started lacks its `if (import.meta.main)`
 * guard, and would run again in every child.
 */
export class MainModuleGuardError extends Error {}

/**
 * Throws when this realm is a child that is still importing the main module, as Python's spawn
 * raises a RuntimeError that explains `if __name__ == '__main__':`.
 *
 * @param what What was asked: `"a Thread"`, `"a Process"`, `"a Pool"`.
 * @throws {MainModuleGuardError} While the main module is being imported by this child.
 */
export function checkNotImportingMain(what: string): void {
  if (importingMain === 0) return;
  throw new MainModuleGuardError(
    `Cannot start ${what} while this child is importing the main module${
      mainModule ? ` '${mainModule}'` : ""
    } to find its target: the main module's code that starts threads, processes or pools runs again in every child unless it sits inside \`if (import.meta.main) { ... }\` (on Node 20, which lacks \`import.meta.main\`: \`if (import.meta.url === pathToFileURL(process.argv[1]).href) { ... }\`), as Python's \`if __name__ == '__main__':\`. Move the program's main code under that guard`,
  );
}
