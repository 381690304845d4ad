/**
 * Loads Apache ECharts for `--svg`, on Deno. Its sibling `_echarts.node.ts` has identical exports.
 *
 * The specifier is full (`npm:` with its version), so that the command runs from a project whose
 * import map does not list it, and it is held in a variable, so that Deno leaves it out of the
 * module graph: a first `deno task demo` does not download a chart library that it never draws.
 *
 * @module
 */
import type { Echarts } from "./_chart.ts";

const ECHARTS = "npm:echarts@^6.1.0";

/**
 * Imports ECharts.
 *
 * @returns The module.
 * @throws {Error} When it cannot be downloaded or loaded.
 */
export async function loadEcharts(): Promise<Echarts> {
  return await import(ECHARTS);
}
