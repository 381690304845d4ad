/**
 * A worker thread on `node:worker_threads`, which both runtimes provide. Node uses it for every
 * thread; Deno for daemon threads, since only these can stop holding the event loop open.
 *
 * @module
 */
import { Worker } from "node:worker_threads";
import type { WorkerHandle, WorkerListeners } from "./_protocol.ts";

/** Starts a worker on `entry` and reports its messages and any exit that the parent did not ask for. */
export function startNodeWorker(
  entry: URL,
  options: { daemon: boolean; name: string },
  listeners: WorkerListeners,
): WorkerHandle {
  const worker = new Worker(
    entry,
    { name: options.name } as ConstructorParameters<typeof Worker>[1],
  );
  let stopped = false;
  worker.on("message", (message: unknown) => listeners.message(message));
  worker.on("error", (error: unknown) => {
    if (!stopped) listeners.error(error instanceof Error ? error : new Error(String(error)));
  });
  worker.on("messageerror", () => {
    listeners.error(new TypeError("A message from the worker could not be deserialized"));
  });
  worker.on("exit", (code: number) => {
    if (!stopped) listeners.exit(code);
  });
  if (options.daemon) worker.unref();
  return {
    postMessage: (message, transfer) =>
      worker.postMessage(message, transfer as Parameters<Worker["postMessage"]>[1]),
    terminate: () => {
      stopped = true;
      void worker.terminate();
    },
  };
}
