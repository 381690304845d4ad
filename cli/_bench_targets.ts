/**
 * The targets that `multiproc bench` runs in threads and child processes. They live in a module of
 * their own, importing nothing, so that a child pays for loading them as little as it can.
 *
 * @module
 */

/** URL of this module, passed as `module` so that children can import it. */
export const benchTargetsUrl: string = import.meta.url;

/**
 * The CPU-bound loop of `bench gil`: pure arithmetic, no allocation, no I/O. The Python side runs
 * the very same loop, and both return the same checksum for the same `iterations`.
 */
export function spin(iterations: number): number {
  let x = 0;
  for (let i = 0; i < iterations; i++) x = (x + i * i) % 1000003;
  return x;
}

/** The wall-clock time, in milliseconds since the epoch, at which this target began. */
export function firstLine(): number {
  return performance.timeOrigin + performance.now();
}

/** Stays alive for `ms` after it began, so that the parent can measure the child's memory. */
export async function hold(ms: number): Promise<number> {
  const began = performance.timeOrigin + performance.now();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return began;
}
