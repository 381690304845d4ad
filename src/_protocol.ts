/**
 * The messages between a parent and its workers and child processes: what each side sends, as
 * plain data. Types and constants only; how errors become records is `_error_records.ts`, the two
 * ends of the channel are `_channel.ts`.
 *
 * Rules this file keeps:
 * - It imports nothing, so that both sides of the channel and every layer may use it.
 * - Every message is plain data that structured clone carries unchanged.
 *
 * @module
 */

/**
 * Objects moved rather than copied to a worker (array buffers, message ports). The runtime's own
 * type differs between Deno and Node, so the seam files narrow it.
 */
export type TransferList = readonly object[];

/** The argument that tells the child entry that it runs in a child process, not a worker. */
export const CHILD_PROCESS_FLAG = "--multiproc-child-process";

/** How a target function travels: by module and export name, or by source text. */
export interface TargetSpec {
  /** URL of the module that exports the function, when known. */
  module?: string;
  /** When true, failing to import `module` is an error; otherwise the source text is tried. */
  importRequired?: boolean;
  /** The function's own name (`fn.name`); it is tried first as the export name. */
  name: string;
  /** The function's source text, used to confirm an export and to rebuild a self-contained function. */
  source: string;
  /** An expression that evaluates to the function, or undefined when it uses outside names. */
  evalText?: string;
}

/** Parent to child: run a target once. */
export interface RunMessage {
  type: "run";
  target: TargetSpec;
  args: unknown[];
  /** The Thread or Process name, for error reports. */
  name: string;
  /** What the child prints on stderr before the target's uncaught error. */
  header: string;
}

/** Parent to a forkserver spare: import these modules before any target. */
export interface PreloadMessage {
  type: "preload";
  /** Modules to import, in order; a failure fails the child's target. */
  modules: string[];
  /** Modules to import afterwards whose failure is ignored: the main module, as Python does. */
  optional: string[];
}

/** Parent to a new pool worker: become a pool worker, run the initializer, then wait for tasks. */
export interface PoolStartMessage {
  type: "pool";
  /** The worker's name, for error reports. */
  name: string;
  initializer?: TargetSpec;
  initArgs: unknown[];
  /**
   * A thread worker's slot (an `Int32Array` over shared memory) where it keeps the id of the task
   * that it runs, so that the parent can tell which task a dying worker was running.
   */
  runningSlot?: Int32Array;
  /** Whether results are sent in batches (threads) or one by one (processes). */
  batchResults: boolean;
}

/** Parent to pool worker: the target that tasks with this id run. Sent once per worker. */
export interface PoolTargetMessage {
  type: "target";
  id: number;
  target: TargetSpec;
}

/**
 * How a pool task calls its target: `Apply`, with `payload` as the argument list; `Map`, with a
 * chunk of items, giving the list of `target(item)`; `Starmap`, with a chunk of argument lists,
 * giving the list of `target(...args)`.
 */
export const TaskMode = { Apply: 0, Map: 1, Starmap: 2 } as const;

/** One of the {@linkcode TaskMode} values. */
export type TaskMode = typeof TaskMode[keyof typeof TaskMode];

/**
 * Parent to pool worker: tasks to run in order, flattened as `[taskId, targetId, mode, payload,
 * …]` so that a batch costs one array.
 */
export interface PoolTasksMessage {
  type: "tasks";
  tasks: unknown[];
}

/**
 * Parent to pool worker: tasks that were sent ahead but are cancelled; the worker skips them and
 * reports nothing for them.
 */
export interface PoolSkipMessage {
  type: "skip";
  ids: number[];
}

/** A process as a child knows its parent: its name and pid. */
export interface ProcessRecord {
  name: string;
  pid: number;
}

/** Parent to child, before anything else: who the child is, and what it inherits. */
export interface ContextMessage {
  type: "context";
  /**
   * The process that the child belongs to: for a worker thread, its parent's own process (pid
   * included); for a child process, the new process, whose pid the child reads itself.
   */
  process: { name: string; daemon: boolean; pid?: number };
  /** That process's parent, or null when it is the main process. */
  parent: ProcessRecord | null;
  /** The start method that the child's own children use unless told otherwise. */
  startMethod?: "spawn" | "forkserver";
  /** The forkserver preload modules, as URLs. */
  preload: string[];
  /** The URL of the program's main module, which the child may import to find its target. */
  mainModule?: string;
}

/** Every message that a parent sends to a child. */
export type ParentMessage =
  | ContextMessage
  | RunMessage
  | PreloadMessage
  | PoolStartMessage
  | PoolTargetMessage
  | PoolTasksMessage
  | PoolSkipMessage;

/** Child to parent: a forkserver spare has imported its preload modules and waits for work. */
export interface ReadyMessage {
  type: "ready";
}

/** Child to parent: the child called `Deno.exit()` / `process.exit()` itself. */
export interface ExitMessage {
  type: "exit";
  code: number;
}

/**
 * Worker to parent (a one-shot run's worker too): finished tasks, in the order they ran, flattened as `[taskId, ok, value,
 * …]` where `ok` is 1 for a result and 0 for a {@linkcode SerializedError}.
 */
export interface PoolDoneMessage {
  type: "done";
  results: unknown[];
}

/** Pool worker to parent: the pool's initializer threw; the worker exits. */
export interface PoolInitFailedMessage {
  type: "init-failed";
  error: SerializedError;
}

/**
 * Pool worker to parent: a task that the parent asked it to skip has already started; only
 * stopping the worker stops it.
 */
export interface PoolSkipFailedMessage {
  type: "skip-failed";
  id: number;
}

/** Every message that a child sends to its parent. */
export type ChildMessage =
  | ExitMessage
  | ReadyMessage
  | PoolDoneMessage
  | PoolInitFailedMessage
  | PoolSkipFailedMessage;

/** An error as plain data. */
export interface SerializedError {
  /** Marks the record, so that a thrown plain object is not mistaken for it. */
  multiprocError: true;
  name: string;
  message: string;
  stack?: string;
  cause?: SerializedError | { value: unknown };
  /** Own enumerable fields of the error (for example `code`), when they can be cloned. */
  fields?: Record<string, unknown>;
  /**
   * Set when the thrown value was not an Error at all: the value itself when structured clone
   * takes it (`cloned`), else its text.
   */
  thrown?: { value: unknown; cloned?: boolean };
}
