/**
 * `@multiproc/multiproc/distributed`: {@linkcode DistributedPool}, the pool API of `ThreadPool`
 * and `Pool` with its work done by worker nodes on other machines, through a BullMQ queue on
 * Redis. Start a node with `multiproc worker --connection URL --queue NAME --root DIR`.
 *
 * This entry alone loads `bullmq` and `ioredis`; the main entry never does.
 *
 * @example
 * ```ts
 * import { DistributedPool, WorkerLostError } from "@multiproc/multiproc/distributed";
 *
 * const pool = new DistributedPool({ connection: "redis://localhost:6379", retries: 1 });
 * console.log(pool.queue, new WorkerLostError("lost").name); // multiproc WorkerLostError
 * await pool.terminate();
 * ```
 *
 * @module
 */
export * from "./src/distributed/distributed_pool.ts";
export * from "./src/distributed/worker_lost_error.ts";
