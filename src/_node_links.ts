/**
 * A child's line to its parent over Node's channels, which both runtimes provide: the IPC channel
 * of a child process, and the `parentPort` of a `node:worker_threads` worker.
 *
 * @module
 */
import { readSync } from "node:fs";
import process from "node:process";
import type { MessagePort } from "node:worker_threads";
import type { ParentLink } from "./_channel.ts";
import { connectUnix } from "./_unix_socket.node.ts";
import { channelArguments, sealedLink } from "./_channel_child.ts";
import { ipcToken, readToEnd } from "./_frames.ts";

const LIFELINE_CHECK_MS = 250;

/**
 * The line of a child process: its sealed channel, or Node's IPC channel where the parent could
 * not make one. The child exits when the parent is gone.
 */
export function connectViaProcess(): Promise<ParentLink> {
  const { parentPid, path } = channelArguments(process.argv);
  return path === undefined
    ? Promise.resolve(connectViaIpc(parentPid))
    : connectViaSocket(path, parentPid);
}

/**
 * Joins the sealed channel at `path` with the token from stdin. Node (libuv) makes its sockets
 * close-on-exec, so that no program this child runs inherits it.
 */
function connectViaSocket(path: string, parentPid: number): Promise<ParentLink> {
  const exit = (code: number) => process.exit(code);
  // A parent killed while this child was still booting leaves it an orphan: its parent pid shows.
  // Once joined, the socket is the lifeline (see `sealedLink`).
  if (parentPid > 0 && process.ppid !== parentPid) exit(1);
  const token = readStdin();
  // A failure to join means the parent is gone or closed the channel: nobody is left to report to.
  return connectUnix(path).then(
    (stream) => sealedLink(stream, token, exit, exitAfterOutput),
    () => exit(1),
  );
}

/** All of stdin, which the parent closes after writing the token. */
function readStdin(): Uint8Array {
  return readToEnd((buffer) => {
    for (;;) {
      try {
        const read = readSync(0, buffer);
        return read === 0 ? null : read;
      } catch (error) {
        // A stdin that the runtime made non-blocking has nothing yet: try again.
        if ((error as { code?: string }).code !== "EAGAIN") throw error;
      }
    }
  });
}

/**
 * The line of a child process over Node's IPC channel. The programs that this child runs inherit
 * the channel, so each message goes beside the token from stdin, which they cannot read: the
 * parent hears only messages that carry it (see `ipcChannel` in `_process_parent.ts`).
 */
function connectViaIpc(parentPid: number): ParentLink {
  const send = process.send?.bind(process);
  if (!send) {
    throw new Error("This module is the entry of a multiproc child and must be started by one");
  }
  const proof = ipcToken(readStdin());
  // The channel closes when the parent exits or is killed: this is the child's lifeline.
  process.on("disconnect", () => process.exit(1));
  // A parent killed while this child was still booting may close the channel before anyone
  // listens, with no event to follow; then the child is an orphan, and its parent pid shows it.
  const orphaned = () => !process.connected || (parentPid > 0 && process.ppid !== parentPid);
  if (orphaned()) process.exit(1);
  setInterval(() => {
    if (orphaned()) process.exit(1);
  }, LIFELINE_CHECK_MS);
  return {
    kind: "process",
    onMessage: (listener) => process.on("message", listener),
    send: (message) =>
      new Promise<void>((resolve, reject) => {
        send([proof, message], undefined, undefined, (error: Error | null) =>
          error ? reject(error) : resolve());
      }),
    finish: (code) => exitAfterOutput(code),
  };
}

/**
 * Ends the process once what it wrote to stdout and stderr is out: Bun writes to a pipe in the
 * background, and `exit()` drops what is still pending. A stream that never answers does not
 * hold the exit for more than a moment.
 */
function exitAfterOutput(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const exit = () => {
    if (--pending === 0) process.exit(code);
  };
  process.stdout.write("", exit);
  process.stderr.write("", exit);
  setTimeout(() => process.exit(code), 1000).unref();
}

/** The line of a `node:worker_threads` worker. */
export function connectViaPort(port: MessagePort): ParentLink {
  return {
    kind: "thread",
    onMessage: (listener) => port.on("message", listener),
    send: (message, transfer) => {
      port.postMessage(message, transfer as Parameters<MessagePort["postMessage"]>[1]);
      return Promise.resolve();
    },
    // The parent stops the worker once it has the outcome.
    finish: () => {},
  };
}
