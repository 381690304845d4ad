/**
 * What the client of a `DistributedPool` and a worker node agree on: the shape of a job, of a
 * result, the Redis keys of each pool, and how a `connection` string becomes ioredis options.
 *
 * Rules this file keeps:
 * - Only plain data crosses: BullMQ stores job data as JSON, and results travel as JSON text on a
 *   stream that belongs to one client.
 * - It imports neither bullmq nor ioredis, so both sides and the tests may read it freely.
 *
 * @module
 */
import { describeValue } from "../_checks.ts";

/** How a target travels to a node: by module path under the node's root, or by source. */
export interface WireTarget {
  /** The function's name, tried first as the export name. */
  name: string;
  /** The function's source text, to confirm an export and to rebuild a self-contained function. */
  source: string;
  /** An expression that evaluates to the function, when it is self-contained. */
  evalText?: string;
  /** The module's path relative to the root, with `/` separators, when it is exported. */
  path?: string;
  /** SHA-256 of the module's text, hex: a node whose file differs refuses the task. */
  hash?: string;
  /** When true, a module that cannot be used is an error; otherwise the source is tried. */
  importRequired: boolean;
}

/** One task of a job: its id on the client, its target's index, mode, arguments and items. */
export type WireTask = [id: number, target: number, mode: number, args: string, items: number];

/** The data of a BullMQ job: a batch of tasks of one client. */
export interface JobData {
  /** The client's stream, where results go. */
  stream: string;
  /** The client's set of cancelled task ids. */
  cancelled: string;
  /** How many times a task may run again after its node was lost. */
  retries: number;
  targets: WireTarget[];
  tasks: WireTask[];
}

/** What became of a task. */
export const Outcome = { Value: 0, Thrown: 1, Lost: 2 } as const;
/** The kind of an outcome. */
export type Outcome = typeof Outcome[keyof typeof Outcome];

/**
 * One task's outcome on the results stream: its id, the kind, the encoded value (for `Lost`, the
 * message) and how long it ran on the node, in milliseconds.
 */
export type WireOutcome = [id: number, kind: Outcome, payload: string, runMs: number];

/** The field of a stream entry that holds a JSON array of {@linkcode WireOutcome}s. */
export const OUTCOMES_FIELD = "o";

/**
 * The field of a stream entry that holds a JSON array of the ids of tasks that a node has handed to
 * one of its local workers: from then on they run (one after another within their group), and a
 * cancellation no longer stops them. It always precedes their outcomes on the stream.
 */
export const STARTED_FIELD = "s";

/** How often a node reports its size and busy workers, in milliseconds. */
export const HEARTBEAT_MS = 1000;

/** A node's report is dropped by Redis this long after it was written: the node is gone. */
export const HEARTBEAT_TTL_MS = 3 * HEARTBEAT_MS;

/** What a node reports about itself in its heartbeat key: its local pool's figures. */
export interface NodeReport {
  /** How many processes or threads may run its tasks. */
  size: number;
  /** How many of them are started. */
  workers: number;
  /** How many of them run a task now. */
  busy: number;
}

/** How long a client's keys live after their last write, in seconds: a dead client's are swept. */
export const KEY_TTL_S = 24 * 3600;

/** The keys of one client of one queue. */
export function clientKeys(queue: string, clientId: string): { stream: string; cancelled: string } {
  return {
    stream: `multiproc:${queue}:results:${clientId}`,
    cancelled: `multiproc:${queue}:cancelled:${clientId}`,
  };
}

/** The set of the ids of a queue's nodes; each has a key of its own while it lives. */
export function nodesKey(queue: string): string {
  return `multiproc:${queue}:nodes`;
}

/** The key of one node's {@linkcode NodeReport}, which expires unless the node renews it. */
export function nodeKey(queue: string, nodeId: string): string {
  return `multiproc:${queue}:node:${nodeId}`;
}

/** The key of the set of task ids of a job whose outcome is on its stream. */
export function doneKey(queue: string, jobId: string): string {
  return `multiproc:${queue}:done:${jobId}`;
}

/** Where Redis is: a URL, or the path of a Unix socket. */
export type RedisTarget = { url: string } | { path: string };

/**
 * Reads a `connection` option: a `redis://` or `rediss://` URL, a `unix://` URL, or a socket path.
 *
 * @throws {TypeError} When it is none of these.
 */
export function parseConnection(value: unknown, what: string): RedisTarget {
  if (typeof value !== "string" || value === "") {
    throw new TypeError(
      `${what} 'connection' must be a Redis URL or the path of a Redis Unix socket: received ${
        describeValue(value)
      }; pass "redis://localhost:6379" or "/run/redis/redis.sock"`,
    );
  }
  if (/^rediss?:\/\//i.test(value)) return { url: value };
  if (/^unix:\/\//i.test(value)) return { path: decodeURIComponent(new URL(value).pathname) };
  if (/^[a-z][a-z0-9+.-]+:/i.test(value)) {
    throw new TypeError(
      `${what} 'connection' has an unknown scheme: '${value}'; pass a redis:// or rediss:// URL, or the path of a Unix socket`,
    );
  }
  return { path: value };
}

/** The connection as a user reads it in messages, without a password. */
export function describeConnection(target: RedisTarget): string {
  if ("path" in target) return target.path;
  try {
    const url = new URL(target.url);
    if (url.password) url.password = "***";
    return url.href;
  } catch {
    return target.url;
  }
}

/** Checks a queue name: BullMQ refuses `:` in it, and Redis keys are built from it. */
export function checkQueueName(value: unknown, what: string): string {
  if (value === undefined) return "multiproc";
  if (typeof value !== "string" || !/^[\w.-]+$/.test(value)) {
    throw new TypeError(
      `${what} 'queue' must be a name of letters, digits, '.', '_' or '-': received ${
        describeValue(value)
      }`,
    );
  }
  return value;
}

/**
 * Parses a text read from Redis, or gives undefined when it is not JSON: a key or stream entry
 * that another version (or another program) wrote is skipped rather than allowed to throw inside
 * a reader loop.
 *
 * @param text The text as read.
 * @returns The parsed value, typed as the caller expects it, or undefined.
 */
export function parseWireJson<T>(text: string): T | undefined {
  try {
    return JSON.parse(text) as T;
  } catch {
    return undefined;
  }
}
