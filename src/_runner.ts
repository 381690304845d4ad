/**
 * The life of one Thread or Process: start once, run the target, learn the outcome, join.
 * `Thread` and `Process` each wrap a {@linkcode Runner} with their own way of starting a child.
 *
 * @module
 */
import {
  type ChildMessage,
  describeValue,
  deserializeError,
  findUncloneableArgument,
  type RunMessage,
  type TargetSpec,
} from "./_protocol.ts";
import { describeTarget } from "./_target.ts";

/** Options shared by `Thread` and `Process`. */
export interface RunnerOptions {
  target: unknown;
  args?: readonly unknown[];
  name?: string;
  module?: string | URL;
  daemon?: boolean;
}

/** What a started child reports back to its runner. */
export interface ChildEvents {
  message(message: ChildMessage): void;
  /** The child is gone: its exit code, or minus the signal number. */
  exit(exitCode: number): void;
  /** A failure outside the target, such as the child not starting at all. */
  error(error: Error): void;
}

/** A started child, as its runner sees it. */
export interface LaunchedChild {
  /** Sends the run message; throws when it cannot be cloned. */
  send(message: RunMessage): void;
  /** Stops the child with SIGTERM or SIGKILL (or their worker equivalent). */
  stop(signal: "SIGTERM" | "SIGKILL"): void;
  /** Ends the child once it has sent its outcome, for children that do not exit by themselves. */
  release(): void;
  readonly pid?: number;
}

/** Starts children of one kind. */
export type Launcher = (
  options: { name: string; daemon: boolean },
  events: ChildEvents,
) => LaunchedChild;

/** Exit code given to a worker thread that `terminate()` stopped, as for a process and SIGTERM. */
const SIGTERM_EXIT = -15;
const SIGKILL_EXIT = -9;

/** Runs one target once in one child. */
export class Runner {
  readonly kind: "Thread" | "Process";
  name: string;
  #daemon: boolean;
  #target: TargetSpec;
  #args: unknown[];
  #launcher: Launcher;
  #child?: LaunchedChild;
  #state: "initial" | "started" | "finished" = "initial";
  #finished: Promise<void>;
  #markFinished!: () => void;
  #outcomeReceived = false;
  result: unknown = undefined;
  error: Error | undefined = undefined;
  exitCode: number | null = null;

  constructor(
    kind: "Thread" | "Process",
    options: RunnerOptions,
    defaultName: string,
    launcher: Launcher,
  ) {
    this.kind = kind;
    if (typeof options !== "object" || options === null) {
      throw new TypeError(
        `${kind} options must be an object with a 'target' function: received ${
          describeValue(options)
        }`,
      );
    }
    if (options.args !== undefined && !Array.isArray(options.args)) {
      throw new TypeError(
        `${kind} 'args' must be an array of arguments: received ${describeValue(options.args)}`,
      );
    }
    if (options.name !== undefined && typeof options.name !== "string") {
      throw new TypeError(
        `${kind} 'name' must be a string: received ${describeValue(options.name)}`,
      );
    }
    if (options.daemon !== undefined && typeof options.daemon !== "boolean") {
      throw new TypeError(
        `${kind} 'daemon' must be a boolean: received ${describeValue(options.daemon)}`,
      );
    }
    this.#target = describeTarget(options.target, { module: options.module }, kind);
    this.#args = [...(options.args ?? [])];
    this.name = options.name ?? defaultName;
    this.#daemon = options.daemon ?? false;
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
    if (typeof value !== "boolean") {
      throw new TypeError(`'daemon' must be a boolean: received ${describeValue(value)}`);
    }
    this.#daemon = value;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  start(): void {
    if (this.#state !== "initial") {
      throw new Error(`${this.kind} '${this.name}' can only be started once`);
    }
    const bad = findUncloneableArgument(this.#args);
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
    const child = this.#launcher({ name: this.name, daemon: this.#daemon }, {
      message: (message) => this.#onMessage(message),
      exit: (exitCode) => this.#finish(exitCode),
      error: (error) => {
        this.error ??= error;
      },
    });
    this.#child = child;
    try {
      child.send({ type: "run", target: this.#target, args: this.#args, name: this.name });
    } catch (error) {
      // Values that the walk lets through but the runtime still refuses, such as host objects.
      child.stop("SIGKILL");
      this.#state = "initial";
      this.#child = undefined;
      throw new TypeError(
        `${this.kind} arguments cannot be sent: ${
          error instanceof Error ? error.message : String(error)
        }; pass data that structured clone accepts`,
        { cause: error },
      );
    }
  }

  #onMessage(message: ChildMessage): void {
    switch (message.type) {
      case "result":
        this.#outcomeReceived = true;
        this.result = message.value;
        this.#child?.release();
        if (this.kind === "Thread") this.#finish(0);
        break;
      case "error":
        this.#outcomeReceived = true;
        this.error = deserializeError(message.error);
        this.#child?.release();
        if (this.kind === "Thread") this.#finish(1);
        break;
      case "exit":
        this.#child?.release();
        this.#finish(message.code);
        break;
    }
  }

  #finish(exitCode: number): void {
    if (this.#state === "finished") return;
    this.#state = "finished";
    this.exitCode = exitCode;
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
    if (timeoutMs === undefined || this.#state === "finished") return this.#finished;
    if (typeof timeoutMs !== "number" || Number.isNaN(timeoutMs) || timeoutMs < 0) {
      throw new RangeError(
        `'timeoutMs' must be a non-negative number of milliseconds: received ${
          describeValue(timeoutMs)
        }`,
      );
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<void>((resolve) => timer = setTimeout(resolve, timeoutMs));
    try {
      await Promise.race([this.#finished, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  stop(signal: "SIGTERM" | "SIGKILL"): void {
    if (this.#state !== "started" || !this.#child) return;
    this.#child.stop(signal);
    // A worker thread has no exit of its own to report after being stopped.
    if (this.kind === "Thread") this.#finish(signal === "SIGKILL" ? SIGKILL_EXIT : SIGTERM_EXIT);
  }
}
