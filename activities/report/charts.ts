import type * as echarts from 'echarts';
import type { Figure, TimelineData } from './figures';
import { xmlChars } from './text';

/**
 * The report's charts as SVG strings, drawn by Apache ECharts' server-side renderer (no DOM, no
 * browser): the report embeds them inline and needs no script or network to show them. Error bars
 * are a custom series over the bars or points (ECharts has no error-bar series of its own).
 * ECharts escapes the markup characters of every label; characters XML forbids are replaced here.
 */

/** Unquoted: zrender writes it into a double-quoted style attribute without escaping it. */
const FONT = 'system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Arial, sans-serif';

/** Fixed colours for the names that recur, so FragVisor is the same colour in every chart. */
const NAMED: [RegExp, string][] = [
  [/^FragVisor$/, '#1f6fb2'],
  [/^GiantVM$/, '#e07b24'],
  [/^GiantVM \(baseline/, '#8c8c8c'],
  [/^local/, '#2e9d57'],
  [/^delegated/, '#8b4fc9'],
];
const PALETTE = ['#1f6fb2', '#e07b24', '#2e9d57', '#8b4fc9', '#c23b3b', '#8c6d31', '#17a2b8', '#d45fa6'];

function colours(names: readonly string[]): string[] {
  let next = 0;
  return names.map((name) => NAMED.find(([re]) => re.test(name))?.[1] ?? PALETTE[next++ % PALETTE.length]);
}

/** One chart as an SVG string; the instance is disposed whatever happens (a live one keeps the process running). */
export function renderSvg(option: echarts.EChartsCoreOption, width: number, height: number): string {
  // Loaded when a report is drawn, not when the worker starts: echarts is ~19 MiB of the worker's memory.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { init } = require('echarts') as typeof echarts;
  const chart = init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption({ animation: false, textStyle: { fontFamily: FONT }, ...option });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

type RenderItem = (params: unknown, api: echarts.CustomSeriesRenderItemAPI) => echarts.CustomSeriesRenderItemReturn;

const BAR_GAP = '12%';
const BAR_CATEGORY_GAP = '28%';

/** The error bars of series `index` of `count`: a vertical line with caps at each interval's ends, centred on its bar or point. */
function errorBars(fig: Figure, index: number, colour: string): echarts.SeriesOption {
  const s = fig.series[index];
  const data = s.points.flatMap((p, i) => (p?.ci95 && p.ci95[0] !== p.ci95[1] ? [[i, p.ci95[0], p.ci95[1]]] : []));
  const renderItem: RenderItem = (_params, api) => {
    const [category, lo, hi] = [api.value(0), api.value(1), api.value(2)] as number[];
    const bar = fig.kind === 'bar' ? api.barLayout({ count: fig.series.length, barGap: BAR_GAP, barCategoryGap: BAR_CATEGORY_GAP })?.[index] : undefined;
    const [x, yLo] = api.coord([category, lo]);
    const [, yHi] = api.coord([category, hi]);
    const cx = x + (bar?.offsetCenter ?? 0);
    const cap = bar ? Math.max(2, Math.min(6, bar.width / 3)) : 4;
    const line = (x1: number, y1: number, x2: number, y2: number) => ({ type: 'line' as const, shape: { x1, y1, x2, y2 }, style: { stroke: '#222', lineWidth: 1.2 } });
    return { type: 'group', children: [line(cx, yLo, cx, yHi), line(cx - cap, yLo, cx + cap, yLo), line(cx - cap, yHi, cx + cap, yHi)] };
  };
  // Same name as its series: the legend shows one entry and toggles both.
  return { type: 'custom', name: xmlChars(s.name), color: colour, z: 10, silent: true, encode: { x: 0, y: [1, 2] }, data, renderItem } as echarts.SeriesOption;
}

/** A figure of figures.ts as an SVG string. */
export function figureSvg(fig: Figure): string {
  const palette = colours(fig.series.map((s) => s.name));
  const main = fig.series.map((s, i): echarts.SeriesOption => {
    const data = s.points.map((p) => (p ? p.mean : null));
    return fig.kind === 'bar'
      ? { type: 'bar', name: xmlChars(s.name), color: palette[i], data, barGap: BAR_GAP, barCategoryGap: BAR_CATEGORY_GAP }
      : { type: 'line', name: xmlChars(s.name), color: palette[i], data, symbol: 'circle', symbolSize: 7, connectNulls: true };
  });
  const width = Math.max(440, Math.min(900, 160 + fig.categories.length * (fig.kind === 'bar' ? 36 * fig.series.length + 24 : 52)));
  return renderSvg(
    {
      title: { text: xmlChars(fig.title), left: 'center', textStyle: { fontSize: 14 } },
      legend: { bottom: 0, itemGap: 22, textStyle: { fontSize: 11 } },
      grid: { left: 70, right: 24, top: 48, bottom: 72 },
      xAxis: { type: 'category', data: fig.categories.map(xmlChars), name: fig.xName, nameLocation: 'middle', nameGap: 28, axisLabel: { interval: 0, fontSize: 11, hideOverlap: false } },
      yAxis: { type: fig.logY ? 'log' : 'value', name: fig.yName, nameLocation: 'middle', nameGap: 54, scale: false, axisLabel: { fontSize: 11 } },
      series: [...main, ...fig.series.map((_s, i) => errorBars(fig, i, palette[i]))],
    },
    width,
    340,
  );
}

/** Hours for a long run, minutes otherwise. */
function timeUnit(totalMs: number): { name: string; ms: number } {
  return totalMs >= 3 * 3_600_000 ? { name: 'hours since the run started', ms: 3_600_000 } : { name: 'minutes since the run started', ms: 60_000 };
}

/**
 * The run's timeline as a Gantt chart: one row per span, coloured by kind (one custom series per
 * kind, so the legend names them); a failed span has a red outline, a span still open a dashed one.
 */
/** Outline by outcome (the data's 4th value): none when it ended well, red when it failed, dashed while open. */
const MARKS = [{}, { stroke: '#c0392b', lineWidth: 2 }, { stroke: '#333', lineWidth: 1, lineDash: [4, 3] }];

export function timelineSvg(data: TimelineData): string {
  const unit = timeUnit(data.totalMs);
  const kinds = [...new Set(data.rows.map((r) => r.what))];
  const palette = colours(kinds);
  const renderItem: RenderItem = (_params, api) => {
    const row = api.value(0) as number;
    const [x0, y] = api.coord([api.value(1), row]);
    const [x1] = api.coord([api.value(2), row]);
    const height = Math.max(4, (api.size!([0, 1]) as number[])[1] * 0.62);
    const mark = MARKS[api.value(3) as number];
    return { type: 'rect', shape: { x: x0, y: y - height / 2, width: Math.max(2, x1 - x0), height }, style: { fill: api.visual('color') as string, ...mark } };
  };
  const series = kinds.map((what, k): echarts.SeriesOption => ({
    type: 'custom',
    name: what,
    color: palette[k],
    encode: { x: [1, 2], y: 0 },
    renderItem,
    data: data.rows.flatMap((r, i) => (r.what === what ? [[i, r.startMs / unit.ms, r.endMs / unit.ms, r.outcome === 'failed' ? 1 : r.open ? 2 : 0]] : [])),
  }) as echarts.SeriesOption);
  const longest = Math.max(...data.rows.map((r) => r.key.length));
  return renderSvg(
    {
      title: { text: 'Where the time went', left: 'center', textStyle: { fontSize: 14 } },
      legend: { bottom: 0, itemGap: 22, textStyle: { fontSize: 11 } },
      grid: { left: Math.min(320, 24 + longest * 6.5), right: 30, top: 40, bottom: 70 },
      xAxis: { type: 'value', name: unit.name, nameLocation: 'middle', nameGap: 28, min: 0, ...(data.totalMs > 0 ? { max: data.totalMs / unit.ms } : {}), axisLabel: { fontSize: 11 } },
      yAxis: { type: 'category', data: data.rows.map((r) => xmlChars(r.key)), inverse: true, axisLabel: { fontSize: 11, interval: 0 }, axisTick: { show: false } },
      series,
    },
    920,
    Math.max(200, 120 + data.rows.length * 20),
  );
}
