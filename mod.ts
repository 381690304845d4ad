/**
 * multiproc: Python's `threading`, `multiprocessing` and `concurrent.futures`, for TypeScript.
 *
 * @example Threads and processes, as in Python
 * ```ts
 * import { Process, Thread } from "@multiproc/multiproc";
 *
 * const square = (n: number) => n * n;
 * const t = new Thread({ target: square, args: [7] });
 * const p = new Process({ target: square, args: [8] });
 * t.start();
 * p.start();
 * await Promise.all([t.join(), p.join()]);
 * console.log(t.result, p.result); // 49 64
 * ```
 *
 * @module
 */
export * from "./src/context.ts";
export * from "./src/cpu_count.ts";
export * from "./src/current_process.ts";
export * from "./src/errors.ts";
export * from "./src/future.ts";
export * from "./src/pool.ts";
export * from "./src/permissions.ts";
export * from "./src/pipe.ts";
export * from "./src/process.ts";
export {
  JoinableQueue,
  Queue,
  type QueueOptions,
  type QueueShutdownOptions,
  type QueueWaitOptions,
  SimpleQueue,
} from "./src/queue.ts";
export * from "./src/shared_value.ts";
export * from "./src/synchronize.ts";
export * from "./src/thread.ts";
export * from "./src/transfer.ts";
export * from "./src/version.ts";
