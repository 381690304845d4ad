/**
 * Loads Apache ECharts for `--svg`, on Node. Its sibling `_echarts.deno.ts` has identical exports.
 *
 * ECharts is an optional peer dependency of the npm package: a user of `Thread` does not download a
 * chart library. It is imported by a name held in a variable, so that the npm build does not make
 * it a dependency, and it resolves from the user's project.
 *
 * @module
 */
import type { Echarts } from "./_chart.ts";

const ECHARTS = "echarts";

/**
 * Imports ECharts.
 *
 * @returns The module.
 * @throws {Error} When it is not installed, saying how to install it.
 */
export async function loadEcharts(): Promise<Echarts> {
  try {
    return await import(ECHARTS);
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code !== "ERR_MODULE_NOT_FOUND" && code !== "MODULE_NOT_FOUND") throw error;
    throw new Error(
      "'--svg' draws its chart with Apache ECharts, an optional dependency that is not installed: run npm install echarts",
      { cause: error },
    );
  }
}
