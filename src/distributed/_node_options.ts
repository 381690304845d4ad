/**
 * The options and the handle of a worker node of `DistributedPool`s. Worker side.
 *
 * Rules this file keeps:
 * - It imports nothing, so the command line may name these types without loading bullmq and
 *   ioredis, which `_node_main.ts` imports.
 *
 * @module
 */

/** How a node is started. */
export interface WorkerNodeOptions {
  /** Redis: a URL or a socket path, as `DistributedPool`'s `connection`. */
  connection: string;
  /** The queue to serve. */
  queue: string;
  /** The directory that task modules are named relative to. */
  root: string;
  /** Run tasks in a `Pool` of this many processes (the default), or… */
  processes?: number;
  /** …in a `ThreadPool` of this many threads. */
  threads?: number;
  /** Run self-contained functions sent as source text. */
  allowSource?: boolean;
  /** How long a job's lock lasts without renewal: a node silent for longer is taken for lost. */
  leaseMs?: number;
  /**
   * The longest that a lost node's jobs wait after their lock lapsed: the node looks for them twice
   * per interval.
   */
  checkMs?: number;
  /** Where the node reports what it does. */
  log?: (line: string) => void;
}

/** A running node. */
export interface WorkerNode {
  /** Takes no new jobs, finishes those it holds, then ends its pool and connections. */
  drain(): Promise<void>;
  /** How many processes or threads run tasks. */
  size: number;
}
