/** The target that the start benchmark runs: it reports when its first line ran. */

/** Returns the wall-clock time, in milliseconds, at which the target began. */
export function firstLine(): number {
  return performance.timeOrigin + performance.now();
}
