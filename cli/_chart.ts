/**
 * Draws a benchmark's {@linkcode ChartSpec} as SVG with Apache ECharts, rendered on the server side:
 * no DOM and no canvas, so it runs the same on Deno and on Node. ECharts is loaded (by `_echarts.*.ts`)
 * only when a chart is asked for, so that the library and the other commands never load it.
 *
 * @module
 */
import type { ChartSpec } from "./_bench.ts";
import { loadEcharts } from "./_echarts.deno.ts";

/** The part of ECharts that the charts use, so that its types need not be loaded to check them. */
export interface Echarts {
  init(
    dom: null,
    theme: null,
    options: { renderer: "svg"; ssr: true; width: number; height: number },
  ): {
    setOption(option: Record<string, unknown>): void;
    renderToSVGString(): string;
    dispose(): void;
  };
}

const WIDTH = 860;
const HEIGHT = 500;
const FONT = "Helvetica, Arial, sans-serif";

function formatValue(value: number): string {
  if (value >= 100) return value.toFixed(0);
  if (value >= 10) return value.toFixed(1);
  return value.toFixed(2);
}

/** The smallest of 1, 2, 2.5 or 5 times a power of ten that is at least `value`. */
function niceCeiling(value: number): number {
  const power = 10 ** Math.floor(Math.log10(value));
  const step = [1, 2, 2.5, 5, 10].find((factor) => factor * power >= value)!;
  return step * power;
}

/**
 * Renders `spec` to a standalone SVG document.
 *
 * @throws {Error} When ECharts cannot be loaded, saying how to install it.
 */
export async function renderChart(spec: ChartSpec): Promise<string> {
  const echarts = await loadEcharts();
  const chart = echarts.init(null, null, {
    renderer: "svg",
    ssr: true,
    width: WIDTH,
    height: HEIGHT,
  });
  const reference = spec.reference?.value;
  try {
    chart.setOption({
      animation: false,
      backgroundColor: "#ffffff",
      textStyle: { fontFamily: FONT },
      title: {
        text: spec.title,
        subtext: spec.subtitle,
        left: "center",
        textStyle: { fontSize: 16 },
      },
      legend: { top: spec.subtitle ? 62 : 36, itemGap: 40 },
      grid: { left: 80, right: 40, top: spec.subtitle ? 104 : 80, bottom: 70 },
      xAxis: {
        type: "category",
        data: spec.categories,
        name: spec.xLabel,
        nameLocation: "middle",
        nameGap: 36,
        nameTextStyle: { fontSize: 13 },
        axisLabel: { interval: 0 },
      },
      yAxis: {
        type: spec.logScale ? "log" : "value",
        name: spec.yLabel,
        nameLocation: "middle",
        nameGap: 52,
        nameTextStyle: { fontSize: 13 },
        // ECharts sizes the axis to the data alone; the reference line must fit as well.
        ...(reference === undefined ? {} : {
          max: (extent: { max: number }) => niceCeiling(Math.max(extent.max, reference) * 1.1),
        }),
      },
      series: spec.series.map((series, index) => ({
        type: spec.kind,
        name: series.name,
        data: series.values,
        label: {
          show: true,
          position: "top",
          fontSize: 11,
          formatter: (params: { value: unknown }) =>
            typeof params.value === "number" ? formatValue(params.value) : "",
        },
        ...(index === 0 && spec.reference
          ? {
            markLine: {
              silent: true,
              symbol: "none",
              lineStyle: { type: "dashed", color: "#555555" },
              label: { formatter: spec.reference.label, position: "insideEndTop" },
              data: [{ yAxis: spec.reference.value }],
            },
          }
          : {}),
      })),
    });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}
