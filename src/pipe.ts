/**
 * {@linkcode Pipe}: a pair of connected endpoints, as Python's `multiprocessing.Pipe`. Each
 * direction is a queue in shared memory (or, in a child process, through the parent's broker), so
 * either end can be passed to a thread or process.
 *
 * @module
 */
import { checkBoolean, checkOptions } from "./_checks.ts";
import {
  type Descriptor,
  type Destination,
  encodeOne,
  newObjectId,
  registerReviver,
  rememberInstance,
  reviveOnce,
  toDescriptor,
} from "./_revive.ts";
import { pollQueue, SimpleQueue } from "./queue.ts";

/** Options for {@linkcode Pipe}. */
export interface PipeOptions {
  /** When true (the default), both ends send and receive; when false, `a` only receives and `b` only sends. */
  duplex?: boolean;
}

interface ConnectionState {
  id: string;
  incoming?: SimpleQueue;
  outgoing?: SimpleQueue;
}

let attaching: ConnectionState | undefined;

/**
 * One end of a {@linkcode Pipe}: `send()` to the other end, `recv()` from it.
 *
 * @typeParam T The type of the messages.
 */
export class Connection<T = unknown> {
  #state: ConnectionState;
  #closed = false;

  /**
   * Connections are made by {@linkcode Pipe}.
   *
   * @throws {TypeError} When called directly.
   */
  constructor() {
    if (!attaching) throw new TypeError("Connections are made by Pipe()");
    this.#state = attaching;
    attaching = undefined;
    rememberInstance(this.#state.id, this);
  }

  #check(direction: "incoming" | "outgoing"): SimpleQueue {
    if (this.#closed) throw new Error("The connection is closed");
    const queue = this.#state[direction];
    if (!queue) {
      throw new Error(
        direction === "incoming"
          ? "This end of the pipe only sends (the pipe is not duplex)"
          : "This end of the pipe only receives (the pipe is not duplex)",
      );
    }
    return queue;
  }

  /** Whether this end can receive. */
  get readable(): boolean {
    return this.#state.incoming !== undefined;
  }

  /** Whether this end can send. */
  get writable(): boolean {
    return this.#state.outgoing !== undefined;
  }

  /**
   * Sends a message to the other end.
   *
   * @param message Any value that structured clone accepts.
   * @returns A promise that resolves once the message is on its way.
   * @throws {Error} (as a rejection) When this end is closed or only receives.
   */
  async send(message: T): Promise<void> {
    await this.#check("outgoing").put(message);
  }

  /**
   * Receives the next message from the other end, waiting for one.
   *
   * @param options `timeoutMs` to give up.
   * @returns The message.
   * @throws {TimeoutError} (as a rejection) When nothing arrived within `timeoutMs`.
   * @throws {Error} (as a rejection) When this end is closed or only sends.
   */
  async recv(options?: { timeoutMs?: number }): Promise<T> {
    return await this.#check("incoming").get(options) as T;
  }

  /**
   * Whether a message is waiting, as Python's `poll(timeout)`.
   *
   * @param timeoutMs How long to wait for one; 0 (the default) to check at once.
   * @returns True when `recv()` would not wait.
   * @throws {Error} (as a rejection) When this end is closed or only sends.
   */
  async poll(timeoutMs = 0): Promise<boolean> {
    return await pollQueue(this.#check("incoming"), timeoutMs);
  }

  /** Closes this end: its later calls throw. */
  close(): void {
    this.#closed = true;
  }

  /**
   * The crossing to a child; called by multiproc when the connection is passed on.
   *
   * @param destination Where it goes.
   * @param ownerId The owner id of the child.
   * @returns The descriptor.
   * @ignore
   */
  [toDescriptor](destination: Destination, ownerId: number): Descriptor {
    const { id, incoming, outgoing } = this.#state;
    const encode = (queue?: SimpleQueue) =>
      queue ? encodeOne(queue, { destination, ownerId }) : undefined;
    return {
      kind: "connection",
      data: { id, incoming: encode(incoming), outgoing: encode(outgoing) },
    };
  }
}

registerReviver("connection", (data, context) => {
  const { id, incoming, outgoing } = data as { id: string; incoming?: unknown; outgoing?: unknown };
  return reviveOnce(id, () => {
    attaching = {
      id,
      incoming: incoming === undefined ? undefined : context.revive(incoming) as SimpleQueue,
      outgoing: outgoing === undefined ? undefined : context.revive(outgoing) as SimpleQueue,
    };
    return new Connection();
  });
});

function connection<T>(state: ConnectionState): Connection<T> {
  attaching = state;
  return new Connection<T>();
}

/**
 * Creates a pair of connected endpoints, as Python's `multiprocessing.Pipe()`. Messages arrive
 * in the order sent, each exactly once.
 *
 * @typeParam T The type of the messages.
 * @param options `duplex: false` for a one-way pipe, where `a` receives what `b` sends.
 * @returns The two ends, `[a, b]`.
 * @throws {TypeError} When `duplex` is not a boolean.
 * @example
 * ```ts
 * import { Pipe, Thread } from "@multiproc/multiproc";
 *
 * const [parentEnd, childEnd] = Pipe<string>();
 * const t = new Thread({
 *   target: async (end: typeof childEnd) => await end.send(`echo: ${await end.recv()}`),
 *   args: [childEnd],
 * });
 * t.start();
 * await parentEnd.send("hi");
 * console.log(await parentEnd.recv()); // "echo: hi"
 * await t.join();
 * ```
 */
export function Pipe<T = unknown>(options: PipeOptions = {}): [Connection<T>, Connection<T>] {
  checkOptions(options, "Pipe()", ["duplex"]);
  const duplex = checkBoolean(options.duplex, "duplex") ?? true;
  const aToB = new SimpleQueue();
  const bToA = new SimpleQueue();
  if (!duplex) {
    return [
      connection({ id: newObjectId(), incoming: bToA }),
      connection({ id: newObjectId(), outgoing: bToA }),
    ];
  }
  return [
    connection({ id: newObjectId(), incoming: bToA, outgoing: aToB }),
    connection({ id: newObjectId(), incoming: aToB, outgoing: bToA }),
  ];
}
