/**
 * The life of one Thread or Process: start once, run the target, learn the outcome, join.
 * `Thread` and `Process` each wrap a {@linkcode Runner} with their own way of starting a child.
 *
 * @module
 */
import {
  type ChildHandle,
  type ChildListeners,
  type ChildMessage,
  describeValue,
  deserializeThrown,
  findUncloneableArgument,
  type TargetSpec,
  type TransferList,
} from "./_protocol.ts";
import { describeTarget } from "./_target.ts";
import {
  checkArray,
  checkBoolean,
  checkMaxHeapMb,
  checkString,
  checkTimeoutMs,
  longDelay,
} from "./_checks.ts";
import { OutOfMemoryError } from "./errors.ts";
import { allocateOwnerId } from "./_atomics.ts";
import { childExited, handleBrokerMessage } from "./_broker.ts";
import { encodeArgs } from "./_revive.ts";
import { isTransfer } from "./_transfer_marker.ts";

/** Options shared by `Thread` and `Process`. */
export interface RunnerOptions {
  target: unknown;
  args?: readonly unknown[];
  name?: string;
  module?: string | URL;
  daemon?: boolean;
  maxHeapMb?: number;
}

/** Starts children of one kind: a worker thread or a child process. */
export type Launcher = (
  options: { name: string; daemon: boolean; maxHeapMb?: number },
  listeners: ChildListeners,
) => ChildHandle;

/** Runs one target once in one child. */
export class Runner {
  readonly kind: "Thread" | "Process";
  name: string;
  #daemon: boolean;
  #maxHeapMb: number | undefined;
  #target: TargetSpec;
  #args: unknown[];
  #launcher: Launcher;
  #child?: ChildHandle;
  #state: "initial" | "started" | "finished" = "initial";
  #finished: Promise<void>;
  #markFinished!: () => void;
  #outcomeReceived = false;
  // Who the child is to the locks it takes and to the parent's broker (see _revive.ts).
  #ownerId = 0;
  result: unknown = undefined;
  /** What the target threw: a rebuilt Error, or the value itself when it threw something else. */
  // deno-lint-ignore no-explicit-any
  error: any = undefined;
  exitCode: number | null = null;

  constructor(
    kind: "Thread" | "Process",
    options: RunnerOptions,
    defaultName: string,
    launcher: Launcher,
  ) {
    this.kind = kind;
    checkArray(options.args, "args", kind);
    checkString(options.name, "name", kind);
    checkBoolean(options.daemon, "daemon", kind);
    this.#target = describeTarget(options.target, { module: options.module }, kind);
    this.#args = [...(options.args ?? [])];
    this.name = options.name ?? defaultName;
    this.#daemon = options.daemon ?? false;
    this.#maxHeapMb = checkMaxHeapMb(options.maxHeapMb, kind);
    this.#launcher = launcher;
    this.#finished = new Promise((resolve) => this.#markFinished = resolve);
  }

  get daemon(): boolean {
    return this.#daemon;
  }

  set daemon(value: boolean) {
    if (this.#state !== "initial") {
      throw new Error(`Cannot set 'daemon' of ${this.name}: it has already started`);
    }
    this.#daemon = checkBoolean(value, "daemon", undefined, false)!;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  start(): void {
    if (this.#state !== "initial") {
      throw new Error(`${this.kind} '${this.name}' can only be started once`);
    }
    const ownerId = allocateOwnerId();
    // Arguments wrapped with transfer() move to a thread; a process gets a copy either way.
    const transfers: object[] = [];
    const unwrapped = this.#args.map((arg) => {
      if (!isTransfer(arg)) return arg;
      if (this.kind === "Thread") transfers.push(...arg.list);
      return arg.value;
    });
    const args = encodeArgs(unwrapped, {
      destination: this.kind === "Thread" ? "thread" : "process",
      ownerId,
    });
    const bad = findUncloneableArgument(args);
    if (bad) {
      throw new TypeError(
        `${this.kind} argument ${bad.index}${
          bad.path ? ` (at ${bad.path})` : ""
        } cannot be sent to the ${this.kind === "Thread" ? "worker" : "child process"}: ${
          describeValue(bad.culprit)
        } is not cloneable; pass data that structured clone accepts`,
      );
    }
    this.#state = "started";
    this.#ownerId = ownerId;
    // Events of a child that failed to take its run message are not this runner's any more.
    const current = () => this.#child === child;
    let child: ChildHandle;
    try {
      child = this.#launcher({
        name: this.name,
        daemon: this.#daemon,
        maxHeapMb: this.#maxHeapMb,
      }, {
        message: (message) => current() && this.#onMessage(message),
        exit: (exitCode) => current() && this.#finish(this.#crashed(exitCode)),
        error: (error) => {
          if (current()) this.error ??= error;
        },
      });
    } catch (error) {
      this.#state = "initial";
      throw error;
    }
    this.#child = child;
    try {
      child.send(
        { type: "run", target: this.#target, args, name: this.name },
        transfers.length > 0 ? transfers as TransferList : undefined,
      );
    } catch (error) {
      // Values that the walk lets through but the runtime still refuses, such as host objects.
      this.#child = undefined;
      child.stop("SIGKILL");
      this.#state = "initial";
      throw new TypeError(
        `${this.kind} arguments cannot be sent: ${
          error instanceof Error ? error.message : String(error)
        }; pass data that structured clone accepts`,
        { cause: error },
      );
    }
  }

  #onMessage(message: ChildMessage): void {
    const reply = (answer: unknown) => {
      // A child that has gone needs no answer; its exit cleans up after it.
      if (this.#state !== "started") return;
      try {
        this.#child?.send(answer);
      } catch {
        // Gone meanwhile.
      }
    };
    if (handleBrokerMessage(message, { ownerId: this.#ownerId, reply })) return;
    if (message.type !== "result" && message.type !== "error") return;
    this.#outcomeReceived = true;
    if (message.type === "result") this.result = message.value;
    else this.error = deserializeThrown(message.error);
    // A process exits by itself once it has sent its outcome; a worker is stopped, as a thread
    // ends when its target returns, whatever timers the target left behind.
    if (this.kind === "Thread") {
      this.#finish(message.type === "result" ? 0 : 1);
      this.#child?.stop("SIGTERM");
    }
  }

  /** Notes an out-of-memory death: V8 ends a runtime over its heap limit with SIGTRAP or SIGABRT. */
  #crashed(exitCode: number): number {
    if (
      this.kind === "Process" && this.#maxHeapMb !== undefined && !this.#outcomeReceived &&
      (exitCode === -5 || exitCode === -6)
    ) {
      this.error ??= new OutOfMemoryError(
        `Process '${this.name}' ran out of memory under 'maxHeapMb' ${this.#maxHeapMb}`,
        { exitCode, signal: exitCode === -5 ? "SIGTRAP" : "SIGABRT" },
      );
    }
    return exitCode;
  }

  #finish(exitCode: number): void {
    if (this.#state === "finished") return;
    this.#state = "finished";
    this.exitCode = exitCode;
    childExited(this.#ownerId);
    this.#markFinished();
  }

  /** True once the child has sent its result or error. */
  get outcomeReceived(): boolean {
    return this.#outcomeReceived;
  }

  isAlive(): boolean {
    return this.#state === "started";
  }

  async join(timeoutMs?: number): Promise<void> {
    if (this.#state === "initial") {
      throw new Error(`Cannot join ${this.kind} '${this.name}' before it is started`);
    }
    checkTimeoutMs(timeoutMs, `${this.kind}.join()`);
    if (timeoutMs === undefined || this.#state === "finished") return this.#finished;
    const timeout = longDelay(timeoutMs);
    try {
      await Promise.race([this.#finished, timeout.done]);
    } finally {
      timeout.timer.clear();
    }
  }

  stop(signal: "SIGTERM" | "SIGKILL"): void {
    if (this.#state === "started") this.#child?.stop(signal);
  }
}
