/**
 * Imports a module of this folder's program only when a command needs it, on Deno. Its sibling
 * `_lazy_import.node.ts` has identical exports.
 *
 * Rules this file keeps:
 * - The specifier is computed, never a literal: Deno puts every literal `import()` in the module
 *   graph and downloads its npm packages before the program starts, so a first `deno task demo`
 *   would fetch bullmq and ioredis for `multiproc worker`, which it never runs.
 * - Callers name modules by their `.ts` path, as the source tree has them.
 *
 * @module
 */

/**
 * Imports a module by its path relative to `base`.
 *
 * @param path The module's `.ts` path, relative to `base`.
 * @param base The importing module's `import.meta.url`.
 * @returns The module's namespace.
 * @throws {Error} When the module cannot be loaded.
 */
export async function lazyImport(path: string, base: string): Promise<Record<string, unknown>> {
  return await import(new URL(path, base).href);
}
