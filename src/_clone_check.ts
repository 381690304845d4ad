/**
 * Whether a value can cross to a worker or a child process, found before sending it, so that the
 * error names the argument and the place inside it that structured clone would refuse.
 *
 * Rules this file keeps:
 * - The walk clones nothing: a large buffer costs nothing to check.
 * - It imports nothing but the describer of values.
 *
 * @module
 */
import { describeValue } from "./_checks.ts";

/** Whether structured clone takes `value`, found by cloning it. */
export function isCloneable(value: unknown): boolean {
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}

/**
 * Finds the first argument that structured clone would refuse, without cloning anything: a walk
 * over the values that stops at leaves such as typed arrays, so a large buffer costs nothing.
 *
 * @param args The values, each checked with what it holds.
 * @param options `transferred`: objects that move rather than copy (a `MessagePort`), not walked
 * into; `sharedMemory: false` refuses `SharedArrayBuffer`s too, for a destination that cannot share
 * memory (a child process).
 * @returns The argument's index and where inside it the culprit sits, or undefined when all clone.
 */
export function findUncloneableArgument(
  args: readonly unknown[],
  options: { transferred?: readonly object[]; sharedMemory?: boolean } = {},
): { index: number; path: string; culprit: unknown } | undefined {
  const seen = new Set<object>(options.transferred);
  const noShared = options.sharedMemory === false;
  for (let index = 0; index < args.length; index++) {
    const found = findUncloneable(args[index], "", seen, noShared);
    if (found) return { index, ...found };
  }
  return undefined;
}

/** Whether `value` is a `SharedArrayBuffer` or a view over one. */
export function isSharedMemory(value: unknown): boolean {
  if (typeof SharedArrayBuffer === "undefined") return false;
  if (value instanceof SharedArrayBuffer) return true;
  return ArrayBuffer.isView(value) && value.buffer instanceof SharedArrayBuffer;
}

const refusedTypes = [WeakMap, WeakSet, WeakRef, Promise] as const;

function findUncloneable(
  value: unknown,
  path: string,
  seen: Set<object>,
  noShared = false,
): { path: string; culprit: unknown } | undefined {
  if (typeof value === "function" || typeof value === "symbol") return { path, culprit: value };
  if (typeof value !== "object" || value === null || seen.has(value)) return undefined;
  seen.add(value);
  if (noShared && isSharedMemory(value)) return { path, culprit: value };
  if (
    ArrayBuffer.isView(value) || value instanceof ArrayBuffer || value instanceof Date ||
    value instanceof RegExp || value instanceof Error
  ) return undefined;
  if (refusedTypes.some((type) => value instanceof type)) return { path, culprit: value };
  if (value instanceof Map) {
    for (const [key, entry] of value) {
      const found = findUncloneable(key, `${path}.keys()`, seen, noShared) ??
        findUncloneable(entry, `${path}.get(${describeValue(key)})`, seen, noShared);
      if (found) return found;
    }
    return undefined;
  }
  if (value instanceof Set) {
    for (const entry of value) {
      const found = findUncloneable(entry, `${path}.values()`, seen, noShared);
      if (found) return found;
    }
    return undefined;
  }
  if (Array.isArray(value)) {
    // By index: Object.keys() would make a string per element of a long array.
    for (let i = 0; i < value.length; i++) {
      const entry = value[i];
      if (typeof entry !== "object" && typeof entry !== "function" && typeof entry !== "symbol") {
        continue;
      }
      const found = findUncloneable(entry, `${path}[${i}]`, seen, noShared);
      if (found) return found;
    }
    return undefined;
  }
  for (const key of Object.keys(value)) {
    const found = findUncloneable(
      (value as Record<string, unknown>)[key],
      `${path}.${key}`,
      seen,
      noShared,
    );
    if (found) return found;
  }
  return undefined;
}
