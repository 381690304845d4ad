/**
 * {@linkcode Pipe}: a pair of connected endpoints, as Python's `multiprocessing.Pipe`. Each
 * direction is a queue in shared memory (or, in a child process, through the parent's broker), so
 * either end can be passed to a thread or process, and on from there.
 *
 * Rules this file keeps: an end is made only of its two queues (a plain kind of shared object,
 * see `_shared.ts`). As with a real pipe, an end is closed once no copy of it is open: the copy
 * here until `close()`, and those of the threads and processes that it was passed to until they
 * end. Its queues are then shut down, which the other end sees as {@linkcode EOFError} once it has
 * read what was sent.
 *
 * @module
 */
import { whenChildExits } from "./_broker.ts";
import {
  checkBoolean,
  checkInteger,
  checkOptions,
  checkTimeoutMs,
  describeValue,
} from "./_checks.ts";
import { handleOf, rejecting, Shared, type SharedKind } from "./_shared.ts";
import { EOFError, ShutDown } from "./errors.ts";
import { pollQueue, shutdownQueue, SimpleQueue } from "./queue.ts";

/** Options for {@linkcode Pipe}. */
export interface PipeOptions {
  /** When true (the default), both ends send and receive; when false, `a` only receives and `b` only sends. */
  duplex?: boolean;
}

type ConnectionConfig = { incoming?: SimpleQueue; outgoing?: SimpleQueue };
type ConnectionHandle = Shared<true, ConnectionConfig, Record<never, never>>;

/**
 * Which copies of an end are open, as the realm that has it knows: its own until `close()`, and
 * one in each thread or process that it sent the end to, until that child ends.
 */
interface Copies {
  here: boolean;
  children: Set<number>;
}

function copiesOf(handle: ConnectionHandle): Copies {
  return (handle.mirror ??= { here: true, children: new Set() }) as Copies;
}

/** When no copy is left open, the end is closed: the other end gets EOFError once it has read all. */
function closeIfUnused(handle: ConnectionHandle): void {
  const copies = copiesOf(handle);
  if (copies.here || copies.children.size > 0) return;
  const { outgoing } = handle.config;
  try {
    if (outgoing) shutdownQueue(outgoing, false);
  } catch {
    // Already gone with the process that kept them.
  }
}

const CONNECTION: SharedKind<true, ConnectionConfig, Record<never, never>> = {
  kind: "connection",
  type: { prototype: {} },
  share: () => true,
  attach: () => true,
  ops: {},
  plain: true,
  sent: (handle, ownerId) => {
    const copies = copiesOf(handle);
    if (copies.children.has(ownerId)) return;
    copies.children.add(ownerId);
    whenChildExits(ownerId, () => {
      copies.children.delete(ownerId);
      closeIfUnused(handle);
    });
  },
};

// Ends closed with close() in this realm.
const closed = new WeakSet<object>();

function queueOf(end: Connection, direction: "incoming" | "outgoing"): SimpleQueue {
  if (closed.has(end)) throw new Error("The connection is closed");
  const queue = handleOf<ConnectionHandle>(end).config[direction];
  if (!queue) {
    throw new Error(
      direction === "incoming"
        ? "This end of the pipe only sends (the pipe is not duplex)"
        : "This end of the pipe only receives (the pipe is not duplex)",
    );
  }
  return queue;
}

async function receive(end: Connection, options: { timeoutMs?: number } | undefined) {
  try {
    return await queueOf(end, "incoming").get(options);
  } catch (error) {
    if (error instanceof ShutDown) {
      throw new EOFError("The other end of the pipe was closed, and no message is left");
    }
    throw error;
  }
}

/**
 * One end of a {@linkcode Pipe}: `send()` to the other end, `recv()` from it.
 *
 * @typeParam T The type of the messages.
 */
export class Connection<T = unknown> {
  /**
   * Connections are made by {@linkcode Pipe}.
   *
   * @throws {TypeError} Always: call `Pipe()`.
   */
  constructor() {
    throw new TypeError("Connections are made by Pipe()");
  }

  /** Whether this end can receive. */
  get readable(): boolean {
    return handleOf<ConnectionHandle>(this).config.incoming !== undefined;
  }

  /** Whether this end can send. */
  get writable(): boolean {
    return handleOf<ConnectionHandle>(this).config.outgoing !== undefined;
  }

  /**
   * Sends a message to the other end.
   *
   * @param message Any value that structured clone accepts.
   * @returns A promise that resolves once the message is on its way.
   * @throws {Error} (as a rejection) When this end is closed (here, or everywhere it was
   * passed) or only receives.
   */
  async send(message: T): Promise<void> {
    try {
      await queueOf(this, "outgoing").put(message);
    } catch (error) {
      if (error instanceof ShutDown) throw new Error("This end of the pipe was closed");
      throw error;
    }
  }

  /**
   * Receives the next message from the other end, waiting for one.
   *
   * @param options `timeoutMs` to give up.
   * @returns The message.
   * @throws {EOFError} (as a rejection) When the other end was closed (or ended with its thread
   * or process) and no message is left.
   * @throws {TimeoutError} (as a rejection) When nothing arrived within `timeoutMs`.
   * @throws {Error} (as a rejection) When this end is closed or only sends.
   */
  async recv(options?: { timeoutMs?: number }): Promise<T> {
    return await receive(this, options) as T;
  }

  /**
   * Sends raw bytes, as Python's `send_bytes(buffer, offset, size)`.
   *
   * @param buffer The bytes: a typed array, a `DataView` or an `ArrayBuffer`.
   * @param offset Where in `buffer` to start, in bytes; 0 by default.
   * @param size How many bytes to send; the rest of `buffer` by default.
   * @returns A promise that resolves once the bytes are on their way.
   * @throws {TypeError} When `buffer` holds no bytes.
   * @throws {RangeError} When `offset` or `size` lie outside `buffer`.
   */
  sendBytes(buffer: ArrayBufferView | ArrayBuffer, offset = 0, size?: number): Promise<void> {
    return rejecting(() => {
      const bytes = bytesOf(buffer);
      checkInteger(offset, "offset", { max: bytes.length, what: "Connection.sendBytes()" });
      const length = checkInteger(size, "size", {
        max: bytes.length - offset,
        what: "Connection.sendBytes()",
      }) ?? bytes.length - offset;
      return this.send(bytes.slice(offset, offset + length) as T);
    });
  }

  /**
   * Receives a message sent with {@linkcode Connection.prototype.sendBytes}, as Python's
   * `recv_bytes(maxlength)`.
   *
   * @param maxLength The longest message accepted, in bytes; no limit by default.
   * @returns The bytes.
   * @throws {EOFError} (as a rejection) When the other end was closed and no message is left.
   * @throws {RangeError} (as a rejection) When the message is longer than `maxLength`; it is
   * dropped, as Python's connection is unusable after that.
   * @throws {TypeError} (as a rejection) When the message was not sent as bytes.
   */
  recvBytes(maxLength?: number): Promise<Uint8Array> {
    return rejecting(async () => {
      checkInteger(maxLength, "maxLength", { what: "Connection.recvBytes()" });
      const message = await receive(this, undefined);
      if (!(message instanceof Uint8Array)) {
        throw new TypeError(
          `The message received is not bytes: received ${
            describeValue(message)
          }; send it with sendBytes(), or receive it with recv()`,
        );
      }
      if (maxLength !== undefined && message.length > maxLength) {
        throw new RangeError(
          `The message is longer than 'maxLength' ${maxLength}: received ${message.length} bytes`,
        );
      }
      return message;
    });
  }

  /**
   * Whether a message is waiting, as Python's `poll(timeout)`; also true once the other end was
   * closed, as then `recv()` does not wait either.
   *
   * @param timeoutMs How long to wait for one; 0 (the default) to check at once.
   * @returns True when `recv()` would not wait.
   * @throws {Error} (as a rejection) When this end is closed or only sends.
   * @throws {RangeError} (as a rejection) When `timeoutMs` is negative.
   */
  poll(timeoutMs = 0): Promise<boolean> {
    return rejecting(() => {
      checkTimeoutMs(timeoutMs, "Connection.poll()");
      return pollQueue(queueOf(this, "incoming"), timeoutMs);
    });
  }

  /**
   * Closes this copy of the end: its later calls throw. Once no copy is open (this one closed, and
   * every thread and process that it was passed to ended), the other end's `recv()` ends with
   * {@linkcode EOFError} after the messages left, as in Python.
   */
  close(): void {
    if (closed.has(this)) return;
    closed.add(this);
    const handle = handleOf<ConnectionHandle>(this);
    copiesOf(handle).here = false;
    closeIfUnused(handle);
  }
}

CONNECTION.type = Connection;
Shared.define(CONNECTION);

function bytesOf(buffer: ArrayBufferView | ArrayBuffer): Uint8Array {
  if (buffer instanceof ArrayBuffer) return new Uint8Array(buffer);
  if (ArrayBuffer.isView(buffer)) {
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }
  throw new TypeError(
    `'buffer' must be a typed array, a DataView or an ArrayBuffer: received ${
      describeValue(buffer)
    }`,
  );
}

function connection<T>(config: ConnectionConfig): Connection<T> {
  const end = Object.create(Connection.prototype) as Connection<T>;
  Shared.create(end, CONNECTION, config, true);
  return end;
}

/**
 * Creates a pair of connected endpoints, as Python's `multiprocessing.Pipe()`. Messages arrive
 * in the order sent, each exactly once.
 *
 * @typeParam T The type of the messages.
 * @param options `duplex: false` (or Python's `Pipe(false)`) for a one-way pipe, where `a`
 * receives what `b` sends.
 * @returns The two ends, `[a, b]`.
 * @throws {TypeError} When `duplex` is not a boolean, or for an unknown option.
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
export function Pipe<T = unknown>(
  options: PipeOptions | boolean = {},
): [Connection<T>, Connection<T>] {
  const duplex = typeof options === "boolean"
    ? options
    : checkBoolean(checkOptions(options, "Pipe()", ["duplex"]).duplex, "duplex", "Pipe()") ?? true;
  const aToB = new SimpleQueue();
  const bToA = new SimpleQueue();
  if (!duplex) return [connection({ incoming: bToA }), connection({ outgoing: bToA })];
  return [
    connection({ incoming: bToA, outgoing: aToB }),
    connection({ incoming: aToB, outgoing: bToA }),
  ];
}
