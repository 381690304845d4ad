/**
 * `node:v8`'s structured-clone serializer, for Node and Bun, where it costs nothing to load. Its
 * sibling `_v8.deno.ts` has identical exports.
 *
 * @module
 */
import { deserialize, serialize } from "node:v8";

/** What is used of `node:v8`. */
export type V8Serializer = { serialize: typeof serialize; deserialize: typeof deserialize };

const loaded: V8Serializer = { serialize, deserialize };

/** The serializer. */
export function v8(): V8Serializer {
  return loaded;
}

/** The serializer, loaded from the start. */
export function loadedV8(): V8Serializer | undefined {
  return loaded;
}

/** The serializer, as a promise, for callers that wait for it on Deno. */
export function loadV8(): Promise<V8Serializer> {
  return Promise.resolve(loaded);
}
