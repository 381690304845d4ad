/**
 * A worker thread on `node:worker_threads`, which both runtimes provide. Node uses it for every
 * thread; Deno for daemon threads, since only these can stop holding the event loop open.
 *
 * @module
 */
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { OutOfMemoryError } from "./errors.ts";
import { type ChildHandle, type ChildListeners, SIGNAL_EXIT_CODES } from "./_channel.ts";
import type { ChildMessage } from "./_protocol.ts";

/**
 * Starts a worker on `entry` and reports its messages and its exit. `preloads` are module URLs
 * that the worker imports first, in order: the loaders that the parent runs with.
 */
export function startNodeWorker(
  entry: URL,
  options: { daemon: boolean; name: string; maxHeapMb?: number; preloads?: readonly string[] },
  listeners: ChildListeners,
): ChildHandle {
  const url = workerEntry(entry, options.preloads ?? []);
  const worker = new Worker(
    url,
    {
      name: options.name,
      // A worker started on a `data:` module has no script in `process.argv`; the entry's path
      // keeps the `process.argv[1]` guard of the user's main module false there, as it should be.
      argv: url !== entry && entry.protocol === "file:" ? [fileURLToPath(entry)] : undefined,
      resourceLimits: options.maxHeapMb === undefined
        ? undefined
        : { maxOldGenerationSizeMb: options.maxHeapMb },
    } as ConstructorParameters<typeof Worker>[1],
  );
  let stoppedWith: "SIGTERM" | "SIGKILL" | undefined;
  worker.on("message", (message: ChildMessage) => listeners.message(message));
  worker.on("error", (error: unknown) => {
    if (stoppedWith) return;
    if ((error as { code?: string })?.code === "ERR_WORKER_OUT_OF_MEMORY") {
      listeners.error(
        new OutOfMemoryError(
          `Thread '${options.name}' ran out of memory under 'maxHeapMb' ${options.maxHeapMb}`,
          { exitCode: 1, cause: error },
        ),
      );
      return;
    }
    listeners.error(error instanceof Error ? error : new Error(String(error)));
  });
  worker.on("messageerror", () => {
    listeners.error(new TypeError("A message from the worker could not be deserialized"));
  });
  worker.on("exit", (code: number) => {
    listeners.exit(stoppedWith ? SIGNAL_EXIT_CODES[stoppedWith] : code);
  });
  if (options.daemon) worker.unref();
  return {
    send: (message, transfer) =>
      worker.postMessage(message, transfer as Parameters<Worker["postMessage"]>[1]),
    stop: (signal) => {
      stoppedWith ??= signal;
      void worker.terminate();
    },
    setRef: (ref) => ref ? worker.ref() : worker.unref(),
  };
}

/**
 * `node:worker_threads` takes only `file:` and `data:` URLs. A library imported over https, as JSR
 * serves it, starts its workers on a `data:` module that imports the entry from where it lives;
 * so does a worker with preloads, which that module imports first.
 */
function workerEntry(entry: URL, preloads: readonly string[]): URL {
  if (preloads.length === 0 && (entry.protocol === "file:" || entry.protocol === "data:")) {
    return entry;
  }
  const source = [...preloads, entry.href].map((url) => `import ${JSON.stringify(url)};`).join("");
  return new URL(`data:text/javascript,${encodeURIComponent(source)}`);
}
