/**
 * The number of logical CPUs that this process may use.
 *
 * @module
 */
import { availableCpus } from "./_platform.deno.ts";

/**
 * Returns the number of logical CPUs, as Python's `os.cpu_count()` does. It is the default size of
 * the pools and a good upper bound for CPU-bound parallelism.
 *
 * @returns The number of logical CPUs, at least 1.
 * @throws Never.
 * @example Size work by the CPU count
 * ```ts
 * import { cpuCount } from "@multiproc/multiproc";
 *
 * const n = cpuCount();
 * console.log(`${n} CPUs`);
 * ```
 */
export function cpuCount(): number {
  return availableCpus();
}
