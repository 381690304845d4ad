/**
 * `node:v8`'s structured-clone serializer, for Deno. A child process loads it only when a message
 * needs it: one whose messages JSON keeps exactly never boots Node's compatibility layer, which
 * would add about a third to its start. Everywhere else it starts loading at once, in the
 * background, as a static import would have loaded it. Its sibling `_v8.node.ts` has identical
 * exports.
 *
 * @module
 */
import type * as NodeV8 from "node:v8";
import { CHILD_PROCESS_FLAG } from "./_protocol.ts";

/** What is used of `node:v8`. */
export type V8Serializer = Pick<typeof NodeV8, "serialize" | "deserialize">;

let loaded: V8Serializer | undefined;
let loading: Promise<V8Serializer> | undefined;

/** Loads the serializer without blocking, where the caller can wait for it. */
export function loadV8(): Promise<V8Serializer> {
  return loading ??= import("node:v8").then((module) => loaded ??= module);
}

const childProcessMain = !("WorkerGlobalScope" in globalThis) &&
  Deno.args.includes(CHILD_PROCESS_FLAG);
if (!childProcessMain) loadV8().catch(() => {});

/** The serializer if it is loaded, else undefined. */
export function loadedV8(): V8Serializer | undefined {
  return loaded;
}

/**
 * The serializer, loaded now if it is not yet (through Node's `process.getBuiltinModule`, which
 * costs a few milliseconds once where nothing of Node's layer was used before).
 */
export function v8(): V8Serializer {
  return loaded ??=
    (globalThis as unknown as { process: { getBuiltinModule(name: string): V8Serializer } })
      .process.getBuiltinModule("node:v8");
}
