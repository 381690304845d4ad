/**
 * Imports a module of this folder's program only when a command needs it, on Node and Bun. Its
 * sibling `_lazy_import.deno.ts` has identical exports.
 *
 * Rules this file keeps:
 * - Callers name modules by their `.ts` path, as the source tree has them; the npm build holds
 *   them as `.js`, and the specifier is computed, so the build cannot rewrite it: this does.
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
  return await import(new URL(path.replace(/\.ts$/, ".js"), base).href);
}
