/**
 * How a target function is found again inside a worker or child process.
 *
 * Rules this file keeps:
 * - It runs in the child, and tries the export before the source text: an exported function keeps
 *   its module's imports and state.
 *
 * @module
 */
import type { TargetSpec } from "./_protocol.ts";
import { importingMainModule, MainModuleGuardError, parentMainModule } from "./_process_context.ts";

type AnyFunction = (...args: unknown[]) => unknown;

/**
 * Finds the function that `spec` describes: the module's export of that name with the same source,
 * else any export with the same source, else the self-contained source text.
 *
 * @throws {TypeError} When the function can be found neither way.
 */
export async function resolveTarget(spec: TargetSpec): Promise<AnyFunction> {
  let importError: unknown;
  if (spec.module) {
    let namespace: Record<string, unknown> | undefined;
    try {
      // The main module's own code, run again here, must not start threads, processes or pools.
      namespace = spec.module === parentMainModule()
        ? await importingMainModule(() => import(spec.module!))
        : await import(spec.module);
    } catch (error) {
      // The guard's error is the answer, not a reason to try the source text instead.
      if (error instanceof MainModuleGuardError) throw error;
      importError = error;
    }
    if (namespace) {
      const found = findExport(namespace, spec);
      if (found) return found;
    }
  }
  if (spec.evalText !== undefined && (importError === undefined || !spec.importRequired)) {
    // Indirect eval runs in the global scope, so the function sees globals and nothing else.
    return (0, eval)(spec.evalText) as AnyFunction;
  }
  const label = spec.name ? `'${spec.name}'` : "(anonymous)";
  if (importError !== undefined) {
    throw new TypeError(
      `Cannot import the module of target ${label}: '${spec.module}'`,
      { cause: importError },
    );
  }
  throw new TypeError(
    `Target ${label} is not exported by '${spec.module}' and uses names from outside its body: export it from that module, or make it self-contained`,
  );
}

function findExport(namespace: Record<string, unknown>, spec: TargetSpec): AnyFunction | undefined {
  const sameSource = (value: unknown): value is AnyFunction =>
    typeof value === "function" && Function.prototype.toString.call(value) === spec.source;
  if (spec.name && sameSource(namespace[spec.name])) return namespace[spec.name] as AnyFunction;
  for (const value of Object.values(namespace)) if (sameSource(value)) return value;
  return undefined;
}
