import { parseVariant, NPB_KERNELS, PHP_LEVELS, type BenchCase, type Measurement } from '../../workflows/commands/bench';
import { phasesOf, estimateOf, type BaselineFigures, type Stats } from '../../workflows/claims/rules';
import { meanCi95, summarize } from '../../workflows/claims/stats';
import type { Experiment, Hypervisor } from '../../workflows/inputs';
import type { TimelineKind, TimelineSpan } from '../../workflows/timeline';
import { formatBytes } from './text';

/**
 * What the report's charts show, as plain data (pure): the paper's Figures 12 (E1), 13 (E2), 6 and
 * 7 (E3 network and storage) and our NPB runs, each point a mean with its 95% interval, from the
 * run's measurements and the GiantVM baseline file; and the run's timeline. charts.ts draws them.
 * A figure exists only when it has data: no empty chart.
 */

export interface ChartSeries {
  name: string;
  /** One per category; undefined where this series has no measurement. */
  points: (Stats | undefined)[];
}

export interface Figure {
  /** Unique in the report (an HTML id). */
  id: string;
  title: string;
  kind: 'bar' | 'line';
  categories: string[];
  xName: string;
  yName: string;
  /** A log scale when the values span orders of magnitude (Figure 6's sizes) and every interval is positive. */
  logY: boolean;
  series: ChartSeries[];
}

export type SectionKey = 'fig12' | 'fig13' | 'fig6' | 'fig7' | 'npb';

export interface FigureSection {
  key: SectionKey;
  title: string;
  caption: string;
  figures: Figure[];
}

export interface FigureInput {
  measurements: readonly Measurement[];
  baseline?: BaselineFigures;
  /** C3's network metric (claims settings c3.netMetric). */
  netMetric: 'requestsPerSecond' | 'transferRateKBps';
}

const HYPERVISOR_NAME: Record<Hypervisor, string> = { fragvisor: 'FragVisor', giantvm: 'GiantVM' };

/** Statistics of one side's repetitions: the claims' own (mean, sample stddev, Student's t interval). */
export function measuredStats(values: readonly number[]): Stats | undefined {
  if (values.length === 0) return undefined;
  if (values.length === 1) return { source: 'measured', n: 1, mean: values[0] };
  const s = summarize(values);
  return { source: 'measured', n: s.n, mean: s.mean, stddev: s.stddev, ci95: meanCi95(s) };
}

/** A baseline figure as the claims read it (estimateOf: exact without stddev, else a sample or one run's error). */
function baselineStats(e: BaselineFigures['measurements'][number]): Stats {
  const stats: Stats = { source: 'baseline', ...(e.repetitions !== undefined ? { n: e.repetitions } : {}), mean: e.value, ...(e.stddev !== undefined ? { stddev: e.stddev } : {}) };
  return { ...stats, ci95: meanCi95(estimateOf(stats)!) };
}

const scaled = (s: Stats | undefined, k: number): Stats | undefined =>
  s && { ...s, mean: s.mean * k, ...(s.stddev !== undefined ? { stddev: s.stddev * k } : {}), ...(s.ci95 ? { ci95: [s.ci95[0] * k, s.ci95[1] * k] as [number, number] } : {}) };

interface Classified {
  m: Measurement;
  c: BenchCase;
}

/** Measurements with their parsed variant; one that names nothing we run (an adopted oddity) is left out of the charts. */
function classify(measurements: readonly Measurement[]): Classified[] {
  return measurements.flatMap((m) => {
    try {
      return [{ m, c: parseVariant(m.key.experiment, m.key.variant, m.key.nodeCount) }];
    } catch {
      return [];
    }
  });
}

const uniqueSorted = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);
const nodesLabel = (n: number) => `${n} node${n === 1 ? '' : 's'}`;

/** Sources of numbers for one experiment: a hypervisor's measurements, or the baseline file. */
class Source {
  constructor(
    private readonly rows: readonly Classified[],
    private readonly baseline: BaselineFigures | undefined,
  ) {}

  values(h: Hypervisor, experiment: Experiment, nodeCount: number, variant: string, metric: string): number[] {
    return this.rows
      .filter(({ m }) => m.key.hypervisor === h && m.key.experiment === experiment && m.key.nodeCount === nodeCount && m.key.variant === variant)
      .flatMap(({ m }) => (typeof m.metrics[metric] === 'number' && Number.isFinite(m.metrics[metric]) ? [m.metrics[metric]] : []));
  }

  measured(h: Hypervisor, experiment: Experiment, nodeCount: number, variant: string, metric: string): Stats | undefined {
    return measuredStats(this.values(h, experiment, nodeCount, variant, metric));
  }

  fromBaseline(experiment: Experiment, nodeCount: number, variant: string, metric: string): Stats | undefined {
    const e = this.baseline?.measurements.find((x) => x.experiment === experiment && x.nodeCount === nodeCount && x.variant === variant && x.metric === metric);
    return e && baselineStats(e);
  }

  hypervisors(experiment: Experiment): Hypervisor[] {
    return (['fragvisor', 'giantvm'] as const).filter((h) => this.rows.some(({ m }) => m.key.hypervisor === h && m.key.experiment === experiment));
  }

  nodeCounts(experiment: Experiment, h?: Hypervisor): number[] {
    return uniqueSorted(this.rows.filter(({ m }) => m.key.experiment === experiment && (!h || m.key.hypervisor === h)).map(({ m }) => m.key.nodeCount));
  }

  baselineName(): string {
    return `GiantVM (baseline file${this.baseline?.approximate ? ', approximate' : ''})`;
  }
}

/** Series without a single point are dropped; a figure without series is not drawn. */
function figure(f: Omit<Figure, 'logY' | 'series'> & { series: ChartSeries[]; logScale?: boolean }): Figure[] {
  const series = f.series.filter((s) => s.points.some((p) => p !== undefined));
  if (series.length === 0) return [];
  const all = series.flatMap((s) => s.points.filter((p): p is Stats => p !== undefined));
  const low = Math.min(...all.map((p) => Math.min(p.mean, p.ci95?.[0] ?? p.mean)));
  const high = Math.max(...all.map((p) => Math.max(p.mean, p.ci95?.[1] ?? p.mean)));
  const { logScale, ...rest } = f;
  return [{ ...rest, series, logY: Boolean(logScale) && low > 0 && high / low > 30 }];
}

/** Figure 12: E1 requests per second per PHP level, x = node count, FragVisor vs GiantVM (measured, or the baseline file's). */
function fig12(src: Source, rows: readonly Classified[]): Figure[] {
  const levels = PHP_LEVELS.map((l) => l.label).filter((label) => rows.some(({ c }) => c.kind === 'php' && c.level === label));
  const counts = src.nodeCounts('E1');
  const metric = 'requestsPerSecond';
  return levels.flatMap((level) => {
    const variant = `php-${level}`;
    const series: ChartSeries[] = src.hypervisors('E1').map((h) => ({ name: HYPERVISOR_NAME[h], points: counts.map((n) => src.measured(h, 'E1', n, variant, metric)) }));
    series.push({ name: src.baselineName(), points: counts.map((n) => src.fromBaseline('E1', n, variant, metric)) });
    return figure({ id: `fig12-${variant}`, title: `LEMP, PHP level ${level}`, kind: 'bar', categories: counts.map(nodesLabel), xName: 'nodes', yName: 'requests/s', series });
  });
}

/** Figure 13: E2 per node count, x = the phases the lambdas report, their total and the burst's wall time, all in ms. */
function fig13(src: Source, rows: readonly Classified[]): Figure[] {
  return src.nodeCounts('E2').flatMap((n) => {
    const here = rows.filter(({ m, c }) => c.kind === 'openlambda' && m.key.nodeCount === n);
    const phases = [...new Set(here.flatMap(({ m }) => phasesOf(m.metrics)))];
    const hasTotal = here.some(({ m }) => 'lambdaTotalMs' in m.metrics) || src.fromBaseline('E2', n, 'openlambda', 'lambdaTotalMs') !== undefined;
    const metrics = [...phases.map((p) => ({ label: p, metric: `${p}Ms`, k: 1 })), ...(hasTotal ? [{ label: 'lambda total', metric: 'lambdaTotalMs', k: 1 }] : []), { label: 'burst wall', metric: 'wallSeconds', k: 1000 }];
    const series: ChartSeries[] = src.hypervisors('E2').map((h) => ({ name: HYPERVISOR_NAME[h], points: metrics.map((x) => scaled(src.measured(h, 'E2', n, 'openlambda', x.metric), x.k)) }));
    series.push({ name: src.baselineName(), points: metrics.map((x) => scaled(src.fromBaseline('E2', n, 'openlambda', x.metric), x.k)) });
    return figure({ id: `fig13-n${n}`, title: `OpenLambda on ${nodesLabel(n)}`, kind: 'bar', categories: metrics.map((x) => x.label), xName: 'phase', yName: 'ms', series });
  });
}

/** Per hypervisor and node count of E3: the figures of one kind of E3 variant. */
function perEpoch(src: Source, rows: readonly Classified[], kind: BenchCase['kind'], make: (h: Hypervisor, n: number, here: Classified[]) => Figure[]): Figure[] {
  return src.hypervisors('E3').flatMap((h) =>
    src.nodeCounts('E3', h).flatMap((n) => {
      const here = rows.filter(({ m, c }) => c.kind === kind && m.key.hypervisor === h && m.key.nodeCount === n);
      return here.length > 0 ? make(h, n, here) : [];
    }),
  );
}

const PINNING_NAME = { local: 'local (vCPU 0)', delegated: 'delegated (vCPU 1)' } as const;

/** Figure 6: E3 network throughput vs page size, local vs delegated worker. */
function fig6(src: Source, rows: readonly Classified[], metric: FigureInput['netMetric']): Figure[] {
  return perEpoch(src, rows, 'net', (h, n, here) => {
    const sizes = uniqueSorted(here.flatMap(({ c }) => (c.kind === 'net' ? [c.bytes] : [])));
    const series = (['local', 'delegated'] as const).map((p) => ({ name: PINNING_NAME[p], points: sizes.map((b) => src.measured(h, 'E3', n, `net-${b}-${p}`, metric)) }));
    return figure({
      id: `fig6-${h}-n${n}`,
      title: `${HYPERVISOR_NAME[h]} nginx on ${nodesLabel(n)}`,
      kind: 'line',
      categories: sizes.map(formatBytes),
      xName: 'response size',
      yName: metric === 'requestsPerSecond' ? 'requests/s' : 'KiB/s',
      series,
      logScale: true,
    });
  });
}

/** Figure 7 (our reconstruction): E3 storage throughput, local vs delegated dd. */
function fig7(src: Source, rows: readonly Classified[]): Figure[] {
  return perEpoch(src, rows, 'disk', (h, n, here) => {
    const ops = ['read', 'write'].filter((op) => here.some(({ m }) => `${op}MBps` in m.metrics));
    const series = (['local', 'delegated'] as const).map((p) => ({ name: PINNING_NAME[p], points: ops.map((op) => src.measured(h, 'E3', n, `disk-${p}`, `${op}MBps`)) }));
    return figure({ id: `fig7-${h}-n${n}`, title: `${HYPERVISOR_NAME[h]} virtio disk on ${nodesLabel(n)}`, kind: 'bar', categories: ops, xName: 'dd', yName: 'MB/s', series });
  });
}

/** NPB (our reconstruction): each kernel's time on each vCPU. */
function npb(src: Source, rows: readonly Classified[]): Figure[] {
  const order = (k: string) => {
    const i = (NPB_KERNELS as readonly string[]).indexOf(k);
    return i < 0 ? NPB_KERNELS.length : i;
  };
  return perEpoch(src, rows, 'npb', (h, n, here) => {
    const kernels = [...new Set(here.flatMap(({ c }) => (c.kind === 'npb' ? [c.kernel] : [])))].sort((a, b) => order(a) - order(b) || a.localeCompare(b));
    const vcpus = uniqueSorted(here.flatMap(({ c }) => (c.kind === 'npb' ? [c.vcpu] : [])));
    const series = vcpus.map((v) => ({ name: `vCPU ${v}${v === 0 ? ' (origin)' : ''}`, points: kernels.map((k) => src.measured(h, 'E3', n, `npb-${k}-vcpu${v}`, 'seconds')) }));
    return figure({ id: `npb-${h}-n${n}`, title: `${HYPERVISOR_NAME[h]} NPB on ${nodesLabel(n)}`, kind: 'bar', categories: kernels, xName: 'kernel', yName: 's', series });
  });
}

/** Every figure section that has data, in the report's order (C1, C2, C3, then NPB). */
export function reportFigures(input: FigureInput): FigureSection[] {
  const rows = classify(input.measurements);
  const src = new Source(rows, input.baseline);
  const errorBars = 'Error bars: 95% confidence interval of the mean (Student t); none where a point has one repetition or an exact figure.';
  const sections: FigureSection[] = [
    { key: 'fig12', title: 'Figure 12: LEMP throughput (E1, claim C1)', caption: `ab requests per second per PHP work level and node count. ${errorBars}`, figures: fig12(src, rows) },
    { key: 'fig13', title: 'Figure 13: OpenLambda times (E2, claim C2)', caption: `Mean time per phase over the workers, the lambdas' own total and the burst's wall time. ${errorBars}`, figures: fig13(src, rows) },
    { key: 'fig6', title: 'Figure 6: network I/O delegation (E3, claim C3)', caption: `ab throughput against the response size, nginx worker local to the origin or on a remote vCPU. ${errorBars}`, figures: fig6(src, rows, input.netMetric) },
    { key: 'fig7', title: 'Figure 7: storage I/O delegation (E3, claim C3; our reconstruction)', caption: `O_DIRECT dd on the virtio disk from vCPU 0 or vCPU 1. ${errorBars}`, figures: fig7(src, rows) },
    { key: 'npb', title: 'NPB kernels per vCPU (E3; our reconstruction)', caption: `Each kernel's own time pinned to each vCPU. ${errorBars}`, figures: npb(src, rows) },
  ];
  return sections.filter((s) => s.figures.length > 0);
}

// ---- timeline ----

export interface TimelineRow {
  key: string;
  what: TimelineKind;
  /** Milliseconds since the run's first span started. */
  startMs: number;
  endMs: number;
  /** Still open when the timeline was recorded (drawn to the last moment known). */
  open: boolean;
  outcome?: TimelineSpan['outcome'];
}

export interface TimelineData {
  /** ISO time of the first span's start. */
  t0: string;
  /** From the first start to the last moment known. */
  totalMs: number;
  rows: TimelineRow[];
  /** Per kind: wall time while at least one span of it was open (parallel spans count once), spans, failed spans. */
  byKind: { what: TimelineKind; wallMs: number; spans: number; failed: number }[];
}

/** The spans on one time axis; undefined when there is none with a readable start. */
export function timelineData(spans: readonly TimelineSpan[]): TimelineData | undefined {
  const timed = spans
    .map((s) => ({ s, start: Date.parse(s.start), end: s.end === undefined ? undefined : Date.parse(s.end) }))
    .filter((x) => Number.isFinite(x.start) && (x.end === undefined || Number.isFinite(x.end)))
    .sort((a, b) => a.start - b.start);
  if (timed.length === 0) return undefined;
  const t0 = timed[0].start;
  const last = Math.max(...timed.map((x) => Math.max(x.start, x.end ?? x.start)));
  const rows: TimelineRow[] = timed.map(({ s, start, end }) => ({
    key: s.key,
    what: s.what,
    startMs: start - t0,
    endMs: Math.max(start, end ?? last) - t0,
    open: end === undefined,
    ...(s.outcome ? { outcome: s.outcome } : {}),
  }));
  const kinds = [...new Set(rows.map((r) => r.what))];
  const byKind = kinds.map((what) => {
    const mine = rows.filter((r) => r.what === what);
    return { what, wallMs: unionLength(mine), spans: mine.length, failed: mine.filter((r) => r.outcome === 'failed').length };
  });
  return { t0: new Date(t0).toISOString(), totalMs: last - t0, rows, byKind: byKind.sort((a, b) => b.wallMs - a.wallMs) };
}

/** Length of the union of [startMs, endMs] intervals. */
function unionLength(rows: readonly TimelineRow[]): number {
  let total = 0;
  let [from, to] = [-Infinity, -Infinity];
  for (const r of [...rows].sort((a, b) => a.startMs - b.startMs)) {
    if (r.startMs > to) {
      if (to > from) total += to - from;
      [from, to] = [r.startMs, r.endMs];
    } else to = Math.max(to, r.endMs);
  }
  return total + (to > from ? to - from : 0);
}
