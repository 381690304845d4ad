/**
 * The runtime seam, child side, for Node: how a worker or child process reaches its parent. Its
 * sibling `_child_link.deno.ts` has identical exports.
 * What every runtime must provide is listed in `_runtime_seam.ts`.
 *
 * @module
 */
import { parentPort } from "node:worker_threads";
import type { ParentLink } from "./_channel.ts";
import { connectViaPort, connectViaProcess } from "./_node_links.ts";

/** Connects to the parent, whether this is a worker thread or a child process. */
export function connectToParent(): Promise<ParentLink> {
  return parentPort ? Promise.resolve(connectViaPort(parentPort)) : connectViaProcess();
}
