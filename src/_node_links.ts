/**
 * A child's line to its parent over Node's channels, which both runtimes provide: the IPC channel
 * of a child process, and the `parentPort` of a `node:worker_threads` worker.
 *
 * @module
 */
import process from "node:process";
import type { MessagePort } from "node:worker_threads";
import { CHILD_PROCESS_FLAG } from "./_protocol.ts";
import type { ParentLink } from "./_channel.ts";

const LIFELINE_CHECK_MS = 250;

/** The line of a child process: its IPC channel. The child exits when the parent is gone. */
export function connectViaIpc(): ParentLink {
  const send = process.send?.bind(process);
  if (!send) {
    throw new Error("This module is the entry of a multiproc child and must be started by one");
  }
  // The channel closes when the parent exits or is killed: this is the child's lifeline.
  process.on("disconnect", () => process.exit(1));
  // A parent killed while this child was still booting may close the channel before anyone
  // listens, with no event to follow; then the child is an orphan, and its parent pid shows it.
  const parentPid = Number(process.argv[process.argv.indexOf(CHILD_PROCESS_FLAG) + 1]);
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
        send(message, undefined, undefined, (error: Error | null) =>
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
