/**
 * The parent side of one worker's life, whatever runs it: start it, talk to it, answer its shared
 * objects' calls, and learn how it ended. `Thread` and `Process` (through `Runner`) and both pools
 * (through `PoolEngine`) hold their children as {@linkcode ChildWorker}s; the child side of the
 * same life is `_worker_child.ts`.
 *
 * What differs between a worker thread and a child process is one {@linkcode WorkerKind} value,
 * never a flag tested along the way: a third kind (a worker on another machine) is one more such
 * value, with its own `launch` that returns a `ChildHandle` and a child that runs
 * `_worker_child.ts` behind a `ParentLink` of its own.
 *
 * @module
 */
import { allocateOwnerId } from "./_atomics.ts";
import { childExited, handleBrokerMessage } from "./_broker.ts";
import type { Destination } from "./_revive.ts";
import type { ChildHandle, ChildListeners } from "./_channel.ts";
import type { ChildMessage, TransferList } from "./_protocol.ts";
import { describeValue } from "./_checks.ts";
import { deserializeError } from "./_error_records.ts";
import { findUncloneableArgument, isSharedMemory } from "./_clone_check.ts";
import { OutOfMemoryError, WorkerCrashedError } from "./errors.ts";
import { constants } from "node:os";
import { mainModuleUrl, startThread, type WorkerPermissions } from "./_platform.deno.ts";
import type { ChildCommandOptions } from "./_permissions.ts";
import { inheritableStartMethod, launchProcess, type StartMethod } from "./_start_methods.ts";
import { getPreloadModules } from "./_forkserver.ts";
import { contextFor } from "./_process_context.ts";

/** What a kind of worker is: how one starts, and what follows from where it runs. */
export interface WorkerKind {
  /** `"Thread"` or `"Process"`: the public class, for messages. */
  readonly title: string;
  /** What a message calls the worker: `"worker"` or `"child process"`. */
  readonly noun: string;
  /**
   * How shared objects among arguments cross (see `_revive.ts`). `"thread"` also means that the
   * worker shares the parent's memory: buffers wrapped with `transfer()` move to it, and a pool
   * keeps the id of its running task in a shared slot.
   */
  readonly destination: Destination;
  /** What the target's uncaught error prints first on the child's stderr, as Python does. */
  tracebackHeader(name: string): string;
  /**
   * Whether the child ends by itself once it has sent the outcome of a one-shot run (a process);
   * otherwise the parent stops it (a thread, which a timer that the target left would keep).
   */
  readonly exitsAfterRun: boolean;
  /** The heap limit in megabytes, when one is set, for messages. */
  readonly maxHeapMb?: number;
  /**
   * Whether V8 over its heap limit ends the child with SIGTRAP or SIGABRT (a process); a worker
   * thread reports an `OutOfMemoryError` through its `error` event instead.
   */
  readonly heapDeathBySignal: boolean;
  /** Starts one worker. It must not keep the parent alive when `daemon` is true. */
  launch(options: { name: string; daemon: boolean }, listeners: ChildListeners): ChildHandle;
  /** The start method of a child process, which it inherits unless one is set here. */
  startMethod?(): StartMethod;
}

/** Worker threads: Web Workers or `node:worker_threads` workers (see `_platform.*.ts`). */
export function threadKind(
  options: { maxHeapMb?: number; permissions?: WorkerPermissions } = {},
): WorkerKind {
  return {
    title: "Thread",
    noun: "worker",
    destination: "thread",
    tracebackHeader: (name) => `Exception in thread ${name}:`,
    exitsAfterRun: false,
    maxHeapMb: options.maxHeapMb,
    heapDeathBySignal: false,
    launch: (launch, listeners) => startThread({ ...launch, ...options }, listeners),
  };
}

/** Child processes, started with `method` (read when each one starts, when it is a function). */
export function processKind(
  method: StartMethod | (() => StartMethod),
  command: ChildCommandOptions,
  options: { keepStderrTail?: boolean } = {},
): WorkerKind {
  return {
    title: "Process",
    noun: "child process",
    destination: "process",
    tracebackHeader: (name) => `Process ${name}:`,
    exitsAfterRun: true,
    maxHeapMb: command.maxHeapMb,
    heapDeathBySignal: true,
    launch: (launch, listeners) =>
      launchProcess(
        typeof method === "function" ? method() : method,
        { daemon: launch.daemon, command, keepStderrTail: options.keepStderrTail },
        listeners,
      ),
    startMethod: () => typeof method === "function" ? method() : method,
  };
}

/**
 * Checks values bound for a worker of `kind` (a task's arguments, a pool's `initArgs`).
 *
 * @param values The values.
 * @param kind Where they go.
 * @param what What they are, for the message: `"Thread argument"`, `"Pool 'initArgs' argument"`.
 * @param transferred Objects that move whole (wrapped with `transfer()`), not walked into.
 * @throws {TypeError} Naming the first value that cannot go, where it sits, and the fix: a value
 * that structured clone refuses, or shared memory bound for a process, which cannot share it.
 */
export function checkSendable(
  values: readonly unknown[],
  kind: WorkerKind,
  what: string,
  transferred?: readonly object[],
): void {
  const bad = findUncloneableArgument(values, {
    transferred,
    sharedMemory: kind.destination === "thread",
  });
  if (!bad) return;
  const where = `${what} ${bad.index}${bad.path ? ` (at ${bad.path})` : ""}`;
  if (isSharedMemory(bad.culprit)) {
    throw new TypeError(
      `${where} cannot be sent to the ${kind.noun}: ${
        describeValue(bad.culprit)
      } holds a SharedArrayBuffer, and a ${kind.noun} shares no memory with the parent; use a Value or a SharedArray for data shared with processes, or a Thread`,
    );
  }
  throw new TypeError(
    `${where} cannot be sent to the ${kind.noun}: ${
      describeValue(bad.culprit)
    } is not cloneable; pass data that structured clone accepts`,
  );
}

/** What a worker's owner hears: its own messages (broker calls are answered here) and its end. */
export interface WorkerEvents {
  message(message: ChildMessage): void;
  exit(exitCode: number): void;
}

/** How a worker ended, as `ChildWorker.describeExit` reads its exit code. */
export interface ExitDescription {
  /** The signal's name when a signal ended it. */
  signal: string | null;
  /** Whether it died of its heap limit. */
  outOfMemory: boolean;
  /** A phrase for messages: "was killed by SIGKILL", "exited with code 3", … */
  how: string;
}

function signalName(exitCode: number): string | null {
  if (exitCode >= 0) return null;
  for (const [name, number] of Object.entries(constants.signals)) {
    if (number === -exitCode) return name;
  }
  return null;
}

/** One worker, from start to exit. */
export class ChildWorker {
  readonly kind: WorkerKind;
  readonly name: string;
  /** Who holds the shared locks that it acquires, for the broker and crash recovery. */
  readonly ownerId: number = allocateOwnerId();
  /** An error outside any task (its start-up, its heap), kept for the crash report. */
  error: Error | undefined = undefined;
  /** True once its exit has been seen. */
  exited = false;
  #handle: ChildHandle | undefined;
  #events: WorkerEvents | undefined;
  #referenced: boolean | undefined;
  #stopped = false;
  #reply = (answer: unknown) => this.trySend(answer);

  /** A child process's identity (see `nextIdentity`), which its own children's names extend. */
  readonly identity: number[] | undefined;

  constructor(kind: WorkerKind, name: string, identity?: number[]) {
    this.kind = kind;
    this.name = name;
    this.identity = identity;
  }

  /**
   * Starts the worker.
   *
   * @throws What the kind's launch throws; the worker is then not started.
   */
  start(daemon: boolean, events: WorkerEvents): void {
    this.#events = events;
    this.#referenced = !daemon;
    this.#handle = this.kind.launch({ name: this.name, daemon }, {
      message: (message) => this.#onMessage(message),
      error: (error) => {
        if (!this.#stopped) this.error ??= error;
      },
      exit: (exitCode) => this.#onExit(exitCode),
    });
    // Before anything else: who the child is, and the start method and preload it inherits.
    this.#handle.send(
      contextFor(
        this.kind.destination,
        this.name,
        daemon,
        this.identity,
        inheritableStartMethod() ?? this.kind.startMethod?.(),
        getPreloadModules(),
        mainModuleUrl(),
      ),
    );
  }

  #onMessage(message: ChildMessage): void {
    // A worker that is being stopped is owed nothing more, and its outcomes are not wanted.
    if (this.#stopped || this.exited) return;
    if (handleBrokerMessage(message, { ownerId: this.ownerId, reply: this.#reply })) return;
    // The worker's own report of the error that ends it; its exit follows.
    if (message.type === "uncaught") this.error ??= deserializeError(message.error);
    this.#events!.message(message);
  }

  #onExit(exitCode: number): void {
    if (this.exited) return;
    this.exited = true;
    // Locks that it held are released, marked abandoned, before anyone hears of the exit.
    childExited(this.ownerId);
    this.#events!.exit(exitCode);
  }

  /** The process id, for a child process. */
  get pid(): number | undefined {
    return this.#handle?.pid;
  }

  /** Whether it was told to stop. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /**
   * Sends a message.
   *
   * @throws {Error} When the message cannot be cloned, or the worker is gone.
   */
  send(message: unknown, transfers?: TransferList): void {
    this.#handle!.send(message, transfers);
  }

  /** Sends a message that a gone worker does not need: false when it could not be sent. */
  trySend(message: unknown): boolean {
    if (this.exited || this.#stopped) return false;
    try {
      this.#handle!.send(message);
      return true;
    } catch {
      // Gone meanwhile; its exit cleans up after it.
      return false;
    }
  }

  /** Stops it; its exit follows. Nothing it sends after this is heard. */
  stop(signal: "SIGTERM" | "SIGKILL"): void {
    this.#stopped = true;
    if (!this.exited) this.#handle?.stop(signal);
  }

  /** Whether it holds the parent's event loop open. */
  setRef(ref: boolean): void {
    if (this.#referenced === ref) return;
    this.#referenced = ref;
    try {
      this.#handle?.setRef?.(ref);
    } catch {
      // A child killed from outside, its exit not yet seen: its resources are gone already
      // (Deno: "Bad resource ID"). The exit follows and settles its tasks.
    }
  }

  /** Reads what an exit code says about how the worker ended. */
  describeExit(exitCode: number): ExitDescription {
    const signal = signalName(exitCode);
    const outOfMemory = this.error instanceof OutOfMemoryError ||
      (this.kind.heapDeathBySignal && this.kind.maxHeapMb !== undefined &&
        (exitCode === -5 || exitCode === -6));
    const how = outOfMemory
      ? `ran out of memory under 'maxHeapMb' ${this.kind.maxHeapMb}`
      : signal
      ? `was killed by ${signal}`
      : `exited with code ${exitCode}`;
    return { signal, outOfMemory, how };
  }

  /**
   * The error for a worker that ended without an outcome: an `OutOfMemoryError` when its heap
   * limit killed it, a `WorkerCrashedError` otherwise, with `subject` and `suffix` around how.
   */
  crashError(
    exitCode: number,
    subject: string,
    suffix = "",
  ): WorkerCrashedError | OutOfMemoryError {
    const { signal, outOfMemory, how } = this.describeExit(exitCode);
    return new (outOfMemory ? OutOfMemoryError : WorkerCrashedError)(`${subject} ${how}${suffix}`, {
      exitCode,
      signal,
      stderrTail: this.#handle?.stderrTail?.() ?? "",
      cause: this.error,
    });
  }
}
