/**
 * The life of one Thread or Process: start once, run the target, learn the outcome, join.
 * `Thread` and `Process` each wrap a {@linkcode Runner} over their own {@linkcode WorkerKind}; the
 * worker itself, its channel and how its exit reads, is a `ChildWorker` as in the pools.
 *
 * @module
 */
import type { ChildMessage, SerializedError, TargetSpec, TransferList } from "./_protocol.ts";
import { deserializeThrown } from "./_error_records.ts";
import { describeTarget } from "./_target.ts";
import { checkArray, checkBoolean, checkString, checkTimeoutMs, longDelay } from "./_checks.ts";
import { encodeArgs } from "./_revive.ts";
import { isTransfer } from "./_transfer_marker.ts";
import { checkSendable, ChildWorker, type WorkerKind } from "./_worker_parent.ts";

/** Options shared by `Thread` and `Process`. */
export interface RunnerOptions {
  target: unknown;
  args?: readonly unknown[];
  name?: string;
  module?: string | URL;
  daemon?: boolean;
}

/** Runs one target once in one child: a worker of `kind` with a single task. */
export class Runner {
  readonly kind: WorkerKind;
  name: string;
  #daemon: boolean;
  #target: TargetSpec;
  #args: unknown[];
  #worker?: ChildWorker;
  // How many join() calls wait on a daemon now: while any does, it keeps the program alive.
  #joiners = 0;
  #state: "initial" | "started" | "finished" = "initial";
  #finished: Promise<void>;
  #markFinished!: () => void;
  #outcomeReceived = false;
  result: unknown = undefined;
  /** What the target threw: a rebuilt Error, or the value itself when it threw something else. */
  // deno-lint-ignore no-explicit-any
  error: any = undefined;
  exitCode: number | null = null;

  /** A process's identity (see `nextIdentity`); undefined for a thread. */
  readonly #identity: number[] | undefined;

  constructor(
    kind: WorkerKind,
    options: RunnerOptions,
    defaultName: string,
    identity?: number[],
  ) {
    this.kind = kind;
    this.#identity = identity;
    checkArray(options.args, "args", kind.title);
    checkString(options.name, "name", kind.title);
    checkBoolean(options.daemon, "daemon", kind.title);
    this.#target = describeTarget(options.target, { module: options.module }, kind.title);
    this.#args = [...(options.args ?? [])];
    this.name = options.name ?? defaultName;
    this.#daemon = options.daemon ?? false;
    this.#finished = new Promise((resolve) => this.#markFinished = resolve);
  }

  get daemon(): boolean {
    return this.#daemon;
  }

  set daemon(value: boolean) {
    if (this.#state !== "initial") {
      // An operation that the object's state refuses is a TypeError, as Node's ERR_INVALID_STATE.
      throw new TypeError(
        `Cannot set 'daemon' of ${this.kind.title} '${this.name}': it has already started; set it before start()`,
      );
    }
    this.#daemon = checkBoolean(value, "daemon", undefined, false)!;
  }

  get pid(): number | undefined {
    return this.#worker?.pid;
  }

  start(): void {
    const title = this.kind.title;
    if (this.#state !== "initial") {
      throw new TypeError(
        `${title} '${this.name}' can only be started once: make a new ${title} to run the target again`,
      );
    }
    const worker = new ChildWorker(this.kind, this.name, this.#identity);
    // Arguments wrapped with transfer() move to a thread; a process gets a copy either way.
    const transfers: object[] = [];
    const unwrapped = this.#args.map((arg) => {
      if (!isTransfer(arg)) return arg;
      if (this.kind.destination === "thread") transfers.push(...arg.list);
      return arg.value;
    });
    const args = encodeArgs(unwrapped, {
      destination: this.kind.destination,
      ownerId: worker.ownerId,
    });
    checkSendable(args, this.kind, `${title} argument`);
    this.#state = "started";
    try {
      worker.start(this.#daemon, {
        message: (message) => this.#onMessage(message),
        exit: (exitCode) => this.#onExit(exitCode),
      });
    } catch (error) {
      this.#state = "initial";
      throw error;
    }
    this.#worker = worker;
    try {
      worker.send(
        {
          type: "run",
          target: this.#target,
          args,
          name: this.name,
          header: this.kind.tracebackHeader(this.name),
        },
        transfers.length > 0 ? transfers as TransferList : undefined,
      );
    } catch (error) {
      // Values that the walk lets through but the runtime still refuses, such as host objects.
      // Stopped, the worker is heard no more.
      this.#worker = undefined;
      worker.stop("SIGKILL");
      this.#state = "initial";
      throw new TypeError(
        `${title} arguments cannot be sent: ${
          error instanceof Error ? error.message : String(error)
        }; pass data that structured clone accepts`,
        { cause: error },
      );
    }
  }

  #onMessage(message: ChildMessage): void {
    if (message.type === "uncaught") {
      // An error that a timer or a forgotten promise of the target threw ends the thread: it is
      // the thread's uncaught error as much as the target's own. The worker has recorded it, and
      // the exit that follows reads it from there.
      if (!this.#outcomeReceived) this.#printTraceback(this.#worker?.error);
      return;
    }
    if (message.type !== "done" || this.#outcomeReceived) return;
    this.#outcomeReceived = true;
    // One task: [id, ok, value or error].
    const [, ok, value] = message.results;
    if (ok === 1) this.result = value;
    else {
      this.error = deserializeThrown(value as SerializedError);
      this.#printTraceback(this.error);
    }
    // A process exits by itself once it has sent its outcome; a thread is stopped, as a thread
    // ends when its target returns, whatever timers the target left behind.
    if (!this.kind.exitsAfterRun) {
      this.#finish(ok === 1 ? 0 : 1);
      this.#worker?.stop("SIGTERM");
    }
  }

  /**
   * Python's traceback for an uncaught exception in a thread, printed by this side of the thread,
   * which shares its stderr: it goes through this realm's console like the rest. A process prints
   * its own, on its own stderr.
   */
  #printTraceback(error: unknown): void {
    if (this.kind.destination !== "thread") return;
    console.error(this.kind.tracebackHeader(this.name));
    console.error(error);
  }

  #onExit(exitCode: number): void {
    const worker = this.#worker;
    if (!worker) return;
    // A thread's out-of-memory death comes as an error event; a process's as its exit code.
    this.error ??= worker.error;
    if (!this.#outcomeReceived && worker.describeExit(exitCode).outOfMemory) {
      this.error ??= worker.crashError(exitCode, `${this.kind.title} '${this.name}'`);
    }
    this.#finish(exitCode);
  }

  #finish(exitCode: number): void {
    if (this.#state === "finished") return;
    this.#state = "finished";
    this.exitCode = exitCode;
    this.#markFinished();
  }

  isAlive(): boolean {
    return this.#state === "started";
  }

  /** Settles when the worker has finished: for the library's own bookkeeping, which holds nothing. */
  get finished(): Promise<void> {
    return this.#finished;
  }

  async join(timeoutMs?: number): Promise<void> {
    if (this.#state === "initial") {
      throw new TypeError(
        `Cannot join ${this.kind.title} '${this.name}' before it is started: call start() first`,
      );
    }
    checkTimeoutMs(timeoutMs, `${this.kind.title}.join()`);
    if (this.#state === "finished") return this.#finished;
    // A daemon does not keep the program alive by itself, but a join() waiting on it does, as a
    // Python thread blocked in join() does: without this the program could end mid-await.
    const worker = this.#daemon ? this.#worker : undefined;
    if (worker && this.#joiners++ === 0) worker.setRef(true);
    const timeout = timeoutMs === undefined ? undefined : longDelay(timeoutMs);
    try {
      await (timeout ? Promise.race([this.#finished, timeout.done]) : this.#finished);
    } finally {
      timeout?.timer.clear();
      if (worker && --this.#joiners === 0 && this.#state === "started") worker.setRef(false);
    }
  }

  stop(signal: "SIGTERM" | "SIGKILL"): void {
    if (this.#state === "started") this.#worker?.stop(signal);
  }
}
