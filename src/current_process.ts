/**
 * {@linkcode currentProcess}, {@linkcode parentProcess} and {@linkcode activeChildren}, as in
 * Python's `multiprocessing`: which process runs this code, which process started it, and which
 * of the processes that it started are still running.
 *
 * Rules this file keeps:
 * - A worker thread belongs to the process that started it: there, `currentProcess()` is that
 *   process, as in Python, where threads share their process.
 * - The objects describe; they control nothing: a process cannot start, join or stop itself or
 *   its parent here.
 *
 * @module
 */
import { checkString } from "./_checks.ts";
import {
  currentRecord,
  liveChildren,
  parentAlive,
  parentRecord,
  type ProcessRecord,
  renameCurrent,
} from "./_process_context.ts";
import type { Process } from "./process.ts";

/** A process as {@linkcode currentProcess} and {@linkcode parentProcess} describe it. */
export interface ProcessInfo {
  /**
   * `"MainProcess"` for the program that the user ran; the `Process` name (or the pool worker's
   * name) in a child. The current process's name can be changed, as in Python; its children then
   * know their parent by the new name.
   */
  name: string;
  /** Its process id. */
  readonly pid: number;
  /** Whether it is a daemon process; false for the main process. */
  readonly daemon: boolean;
  /** `null`: the process is running, since it is this one or this one's parent. */
  readonly exitCode: number | null;
  /**
   * Whether it is running: always true for the current process; for the parent, whether this
   * process's parent is still that process.
   */
  isAlive(): boolean;
}

class CurrentProcess implements ProcessInfo {
  get name(): string {
    return currentRecord().name;
  }

  set name(value: string) {
    renameCurrent(checkString(value, "name", "currentProcess()", false)!);
  }

  get pid(): number {
    return currentRecord().pid;
  }

  get daemon(): boolean {
    return currentRecord().daemon;
  }

  get exitCode(): null {
    return null;
  }

  isAlive(): boolean {
    return true;
  }

  get [Symbol.toStringTag](): string {
    return `ProcessInfo ${this.name}`;
  }
}

class ParentProcess implements ProcessInfo {
  #record: ProcessRecord;

  constructor(record: ProcessRecord) {
    this.#record = record;
  }

  get name(): string {
    return this.#record.name;
  }

  set name(_value: string) {
    throw new TypeError(
      `The parent process's name cannot be changed here: set currentProcess().name in the parent`,
    );
  }

  get pid(): number {
    return this.#record.pid;
  }

  get daemon(): boolean {
    return false;
  }

  get exitCode(): number | null {
    return null;
  }

  isAlive(): boolean {
    return parentAlive(this.#record);
  }

  get [Symbol.toStringTag](): string {
    return `ProcessInfo ${this.name}`;
  }
}

const current = new CurrentProcess();
let parent: ParentProcess | null | undefined;

/**
 * The process that runs this code, as Python's `current_process()`: in the program that the user
 * ran, `"MainProcess"` with its pid; in a child process, that child's name and pid; in a worker
 * thread, the process that the thread belongs to.
 *
 * @returns The same object at every call.
 * @throws Never.
 * @example
 * ```ts
 * import { currentProcess } from "@multiproc/multiproc";
 *
 * const me = currentProcess();
 * console.log(me.name, me.daemon, me.isAlive(), me.exitCode); // "MainProcess" false true null
 * ```
 */
export function currentProcess(): ProcessInfo {
  return current;
}

/**
 * The process that started this one, as Python's `parent_process()`: `null` in the main process
 * (and in its worker threads); in a child process, its parent's name and pid.
 *
 * @returns The parent, or null.
 * @throws Never.
 * @example
 * ```ts
 * import { parentProcess } from "@multiproc/multiproc";
 *
 * console.log(parentProcess()); // null in the program that the user ran
 * ```
 */
export function parentProcess(): ProcessInfo | null {
  const record = parentRecord();
  if (record === null) return null;
  if (parent?.pid !== record.pid || parent.name !== record.name) {
    parent = new ParentProcess(record);
  }
  return parent;
}

/**
 * The `Process` objects started here that are still running, as Python's `active_children()`.
 *
 * @returns A new array of the running processes, in the order they started.
 * @throws Never.
 * @example
 * ```ts
 * import { activeChildren, Process } from "@multiproc/multiproc";
 *
 * const child = new Process({ target: () => new Promise((resolve) => setTimeout(resolve, 200)) });
 * child.start();
 * console.log(activeChildren().includes(child)); // true
 * await child.join();
 * console.log(activeChildren().includes(child)); // false
 * ```
 */
export function activeChildren(): Process[] {
  return liveChildren() as Process[];
}
