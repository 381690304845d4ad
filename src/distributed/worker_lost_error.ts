/**
 * {@linkcode WorkerLostError}: the one outcome of a `DistributedPool` task that leaves in doubt
 * whether it ran.
 *
 * @module
 */
import { registerErrorClassByName } from "../_error_records.ts";

/**
 * A task of a `DistributedPool` lost its worker: the node that held it died, was cut off or
 * stalled past its lease more often than the pool's `retries` allow, or the connection to Redis was
 * lost while the task was pending. The task may have partly run; its outcome is unknown.
 *
 * @example
 * ```ts
 * import { WorkerLostError } from "@multiproc/multiproc/distributed";
 *
 * const error = new WorkerLostError("The node running the task was lost; it may have partly run");
 * console.log(error.name); // "WorkerLostError"
 * ```
 */
export class WorkerLostError extends Error {
  /** Always `"WorkerLostError"`. */
  override name = "WorkerLostError";
}

registerErrorClassByName(WorkerLostError);
