/**
 * The runtime's own error classes, so that an error that crosses from a child comes back as one of
 * them: a `NotCapable` from a child past its permissions is a `Deno.errors.NotCapable` in the
 * parent. Its sibling `_runtime_errors.node.ts` has identical exports.
 * What every runtime must provide is listed in `_runtime_seam.ts`.
 *
 * @module
 */

/** The runtime's error classes by name. */
export function runtimeErrorClasses(): Record<string, { prototype: Error }> {
  const classes: Record<string, { prototype: Error }> = {};
  for (const [name, value] of Object.entries(Deno.errors)) {
    if (typeof value === "function") classes[name] = value;
  }
  return classes;
}
