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
   * A thread worker's claim words over shared memory, one per task sent ahead: the parent writes
   * the task's id there, and the worker swaps it for minus the id as it starts the task, or skips
   * the task when the parent has taken the word back first. So either side knows, without a
   * message, whether a task has started; a task taken back never starts.
   */
  claims?: Int32Array;
  /** Beside `claims`: when each claimed task started, as `performance.timeOrigin + now()`. */
  startTimes?: Float64Array;
  /** Whether results are sent in batches (threads) or one by one (processes). */
  batchResults: boolean;
  /** How many tasks that await may run at once (`concurrentTasksPerWorker`); 1 by default. */
  concurrency?: number;
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
 * claim, …]` so that a batch costs one array; `claim` is the index of the task's claim word, or
 * -1 for a worker without claims (a process).
 */
export interface PoolTasksMessage {
  type: "tasks";
  tasks: unknown[];
}

/**
 * Parent to pool worker: tasks that were sent ahead but are cancelled, or wanted elsewhere; the
 * worker skips those that have not started. With `reply`, it answers with the ids that it will
 * skip (a `skipped` message), so that the parent may give them to another worker.
 */
export interface PoolSkipMessage {
  type: "skip";
  ids: number[];
  reply?: boolean;
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
  process: {
    name: string;
    daemon: boolean;
    pid?: number;
    /**
     * The process's place in the tree, as Python's `_identity`: its parent's identity and its
     * own count there (`[2, 1]` for the first process that `Process-2` starts). Its children's
     * default names come from it. Absent for a pool worker, whose children count from 1 afresh.
     */
    identity?: number[];
    /**
     * For a worker thread: the counter of the processes started from that process, shared by all
     * its threads, so that each `Process` gets a count of its own wherever it is made.
     */
    counter?: Int32Array;
  };
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
 * Worker thread to parent: an error thrown outside any task (a timer's, an unhandled rejection),
 * which ends the worker. The worker catches it itself, so that the runtime prints nothing.
 */
export interface UncaughtMessage {
  type: "uncaught";
  error: SerializedError;
}

/**
 * Worker to parent (a one-shot run's worker too): finished tasks, in the order they ran, flattened as `[taskId, ok, value,
 * …]` where `ok` is 1 for a result and 0 for a {@linkcode SerializedError}.
 */
export interface PoolDoneMessage {
  type: "done";
  results: unknown[];
  /** A process worker: the task that it begins next, at once (see {@linkcode PoolBeganMessage}). */
  began?: number;
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

/** Pool worker to parent: the ids of tasks that a `skip` with `reply` took back before they began. */
export interface PoolSkippedMessage {
  type: "skipped";
  ids: number[];
  /** The ids that the `skip` asked for; those not in `ids` had begun. */
  asked: number[];
}

/**
 * Process pool worker to parent: it begins the task `id`, sent before the task runs, so that the
 * parent knows which of its tasks a dying worker had started (a thread shows it in its claims).
 */
export interface PoolBeganMessage {
  type: "began";
  id: number;
}

/** Every message that a child sends to its parent. */
export type ChildMessage =
  | ExitMessage
  | UncaughtMessage
  | ReadyMessage
  | PoolDoneMessage
  | PoolInitFailedMessage
  | PoolSkipFailedMessage
  | PoolSkippedMessage
  | PoolBeganMessage;

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
