/**
 * The two ends of the channel between a parent and a child (a worker thread or a child process):
 * the parent's {@linkcode ChildHandle} with its {@linkcode ChildListeners}, and the child's
 * {@linkcode ParentLink}. Each start method and runtime provides them; the engines use only these.
 *
 * Rules this file keeps:
 * - Interfaces and constants only, over the messages of `_protocol.ts`.
 *
 * @module
 */
import type { ChildMessage, TransferList } from "./_protocol.ts";

/** What the parent learns from a worker thread or child process. */
export interface ChildListeners {
  /** A message from the child entry. */
  message(message: ChildMessage): void;
  /** An error outside any task, for example in the child's own start-up. */
  error(error: Error): void;
  /**
   * The child is gone, reported exactly once: its exit code, or minus the number of the signal
   * that ended it (a stopped worker thread reports `-15` or `-9` as if it had been signalled).
   */
  exit(exitCode: number): void;
}

/** The parent's hold on a worker thread or child process. */
export interface ChildHandle {
  /** The process id; undefined for a worker thread. */
  readonly pid?: number;
  /** Sends a message; throws when it cannot be cloned. */
  send(message: unknown, transfer?: TransferList): void;
  /** Stops the child; `exit` follows. */
  stop(signal: "SIGTERM" | "SIGKILL"): void;
  /**
   * Whether the child keeps the parent's event loop alive; absent where it always does (a Web
   * Worker).
   */
  setRef?(ref: boolean): void;
  /** The last lines that a child process wrote to stderr, where they are kept. */
  stderrTail?(): string;
}

/** Exit codes that a stopped worker thread reports, as for a process ended by these signals. */
export const SIGNAL_EXIT_CODES = { SIGTERM: -15, SIGKILL: -9 } as const;

/** A child's line to its parent, whatever carries it. */
export interface ParentLink {
  /** Whether the child is a worker thread or a child process. */
  kind: "thread" | "process";
  /** Calls `listener` with each message from the parent. */
  onMessage(listener: (message: unknown) => void): void;
  /** Sends a message; rejects (or throws) when it cannot be cloned or sent. */
  send(message: unknown, transfer?: TransferList): Promise<void>;
  /** Ends the child with `code` once its outcome has been sent. */
  finish(code: number): void;
}

/** A listener that does not keep the event loop alive. */
export interface UnixListener {
  /** Stops listening; connections already made stay open. */
  close(): void;
}

/**
 * A connected Unix socket of a sealed channel, on either side, as each runtime provides it
 * (`_unix_socket.*.ts`).
 */
export interface ByteStream {
  /** Writes the buffers in order after any earlier ones; resolves once they are all out. */
  write(buffers: Uint8Array[]): Promise<void>;
  /**
   * Starts reading: each chunk to `onChunk`, which must use it before it returns, then `onEnd`
   * once, when the socket is closed or broken.
   */
  read(onChunk: (chunk: Uint8Array) => void, onEnd: () => void): void;
  /** Whether the socket keeps the event loop alive. */
  setRef(ref: boolean): void;
  /** Closes the socket. */
  close(): void;
}
