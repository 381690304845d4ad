/**
 * The runtime's own error classes, so that an error that crosses from a child comes back as one of
 * them. Node's system errors are plain `Error`s with a `code`, which crosses as a field: there are
 * none to add. Its sibling `_runtime_errors.deno.ts` has identical exports.
 * What every runtime must provide is listed in `_runtime_seam.ts`.
 *
 * @module
 */

/** The runtime's error classes by name. */
export function runtimeErrorClasses(): Record<string, { prototype: Error }> {
  return {};
}
