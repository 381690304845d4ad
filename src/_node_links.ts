/**
 * A child's line to its parent over Node's channels, which both runtimes provide: the IPC channel
 * of a child process, and the `parentPort` of a `node:worker_threads` worker.
 *
 * @module
 */
import process from "node:process";
import type { MessagePort } from "node:worker_threads";
import type { ParentLink } from "./_protocol.ts";

/** The line of a child process: its IPC channel. The child exits when the parent is gone. */
export function connectViaIpc(): ParentLink {
  const send = process.send?.bind(process);
  if (!send) {
    throw new Error("This module is the entry of a multiproc child and must be started by one");
  }
  // The channel closes when the parent exits or is killed: this is the child's lifeline.
  process.on("disconnect", () => process.exit(1));
  return {
    kind: "process",
    onMessage: (listener) => process.on("message", listener),
    send: (message) =>
      new Promise<void>((resolve, reject) => {
        send(message, undefined, undefined, (error: Error | null) =>
          error ? reject(error) : resolve());
      }),
    finish: (code) => process.exit(code),
  };
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
