/**
 * The rules of claims C1-C3 (ARTIFACT.md, "The claims") as pure functions of the run's measurements
 * (results.json) and, when the run used one, GiantVM's baseline file. Each rule lists its compared
 * points; a point compares FragVisor's mean of one metric with a reference's (GiantVM's, or C3's local
 * case) as a ratio with a 95% interval (stats.ts ratioCi95) against a threshold:
 * - pass: the interval lies entirely on the claimed side of the threshold;
 * - fail: it lies entirely on the other side;
 * - inconclusive: it touches or overlaps the threshold, a side is missing, or a side has fewer
 *   repetitions than minRepetitions (never judged either way, however the numbers look).
 */
import type { BaselineFile } from '../../config/baseline';
import { measurementKeyId, type Measurement } from '../commands/bench';
import type { Experiment, Hypervisor } from '../inputs';
import type { ClaimSettings } from './settings';
import { meanCi95, ratioCi95, summarize, type Estimate } from './stats';

export type BaselineEntry = BaselineFile['measurements'][number];
/** What the rules read of a GiantVM baseline file (the run store's baseline.json carries more). */
export type BaselineFigures = Pick<BaselineFile, 'source' | 'approximate' | 'measurements'> & { file?: string };

export type Verdict = 'pass' | 'fail' | 'inconclusive';
/** Why a point is inconclusive; more repetitions can cure only `too-few` and `too-wide`. */
export type InconclusiveReason = 'missing' | 'too-few' | 'too-wide' | 'invalid';

/** A measurement key without its repetition: one variant of one epoch. */
export interface VariantRef {
  hypervisor: Hypervisor;
  experiment: Experiment;
  nodeCount: number;
  variant: string;
}

/** One side of a compared point. All numbers are finite (claims.json is JSON). */
export interface Stats {
  source: 'measured' | 'baseline';
  /** Repetitions: measured; or what the baseline file says (absent when it says nothing). */
  n?: number;
  mean: number;
  /** Sample standard deviation; a baseline figure's when the file gives one. */
  stddev?: number;
  /** 95% interval of the mean; absent for a single repetition. A baseline figure without stddev is taken as exact. */
  ci95?: [number, number];
}

export interface ClaimPoint {
  /** e.g. `n4 php-500ms requestsPerSecond`. */
  label: string;
  metric: string;
  /** Evidence: the measurement ids of both sides (a baseline figure is `baselineEntry` instead). */
  keys: string[];
  /** FragVisor's side (C3: its delegated case). */
  fragvisor?: Stats;
  /** The reference: GiantVM (measured or from the baseline file), or C3's local case. */
  reference?: Stats;
  /** fragvisor.mean / reference.mean, its 95% interval (absent when unbounded) and the t df used (absent: normal). */
  ratio?: { estimate: number; ci95?: [number, number]; df?: number };
  /** The ratio's interval must lie entirely above (or below) this. */
  threshold: number;
  direction: 'above' | 'below';
  verdict: Verdict;
  reason?: InconclusiveReason;
  why: string;
  /** The variants each side was measured in (no reference variant: a baseline figure). */
  variants: { fragvisor: VariantRef; reference?: VariantRef };
  /** Index of the reference's entry in the baseline file's measurements. */
  baselineEntry?: number;
}

export interface Rule {
  compares: string;
  reference: string;
  /** C1, C2: the margin FragVisor must lead by; C3: how far below the local case the delegated case may fall. */
  tolerance: number;
  minRepetitions: number;
}

export interface RuleResult {
  rule: Rule;
  points: ClaimPoint[];
  /** What makes the claim inconclusive beyond its points: nothing measured to compare. */
  gaps: string[];
}

export interface RuleInput {
  measurements: readonly Measurement[];
  baseline?: BaselineFigures;
  settings: ClaimSettings;
}

// ---- sides and their statistics ----

type Side =
  | { kind: 'measured'; variant: VariantRef; values: number[]; keys: string[]; missing: string }
  | { kind: 'baseline'; entry: BaselineEntry; index: number }
  | { kind: 'absent'; missing: string };

const where = (r: VariantRef) => `${r.experiment} n${r.nodeCount} ${r.variant}`;
const fmt = (x: number) => String(Number(x.toPrecision(4)));
/** The same variant of the same epoch (repetitions aside). */
export const sameVariant = (a: VariantRef, b: VariantRef) => a.hypervisor === b.hypervisor && a.experiment === b.experiment && a.nodeCount === b.nodeCount && a.variant === b.variant;

/** The repetitions of one variant that carry `metric`, in repetition order. */
function measuredSide(measurements: readonly Measurement[], variant: VariantRef, metric: string, name: string): Side {
  const rows = measurements
    .filter((m) => sameVariant(m.key, variant) && typeof m.metrics[metric] === 'number' && Number.isFinite(m.metrics[metric]))
    .sort((a, b) => a.key.repetition - b.key.repetition);
  return { kind: 'measured', variant, values: rows.map((m) => m.metrics[metric]), keys: rows.map((m) => measurementKeyId(m.key)), missing: `no ${name} measurement of ${where(variant)} with ${metric}` };
}

/** GiantVM's figure: the baseline file's entry when the run used one, else its measurements. */
function giantvmSide(input: RuleInput, experiment: Experiment, nodeCount: number, variant: string, metric: string): Side {
  const { baseline } = input;
  if (baseline) {
    const index = baseline.measurements.findIndex((e) => e.experiment === experiment && e.nodeCount === nodeCount && e.variant === variant && e.metric === metric);
    return index < 0
      ? { kind: 'absent', missing: `the baseline file has no GiantVM figure for ${experiment} n${nodeCount} ${variant} ${metric}` }
      : { kind: 'baseline', entry: baseline.measurements[index], index };
  }
  if (!input.measurements.some((m) => m.key.hypervisor === 'giantvm')) {
    return { kind: 'absent', missing: `no GiantVM figure for ${experiment} n${nodeCount} ${variant} ${metric}: GiantVM was not measured and no baseline file was given` };
  }
  return measuredSide(input.measurements, { hypervisor: 'giantvm', experiment, nodeCount, variant }, metric, 'GiantVM');
}

function statsOf(side: Side): Stats | undefined {
  if (side.kind === 'absent' || (side.kind === 'measured' && side.values.length === 0)) return undefined;
  if (side.kind === 'measured') {
    if (side.values.length === 1) return { source: 'measured', n: 1, mean: side.values[0] };
    const s = summarize(side.values);
    return { source: 'measured', n: s.n, mean: s.mean, stddev: s.stddev, ci95: meanCi95(s) };
  }
  const { value, repetitions, stddev } = side.entry;
  const stats: Stats = { source: 'baseline', ...(repetitions !== undefined ? { n: repetitions } : {}), mean: value, ...(stddev !== undefined ? { stddev } : {}) };
  return { ...stats, ci95: meanCi95(estimateOf(stats)!) };
}

/**
 * The estimate behind a side's statistics (undefined below two measured repetitions). A baseline
 * figure is used as its file gives it: with stddev and repetitions as a sample of that size; with a
 * stddev alone, the stddev bounds the mean's error (conservative: it is the error of one run); with
 * neither, taken as exact.
 */
export function estimateOf(s: Stats): Estimate | undefined {
  if (s.source === 'measured') return s.n !== undefined && s.n >= 2 && s.stddev !== undefined ? { mean: s.mean, se: s.stddev / Math.sqrt(s.n), df: s.n - 1 } : undefined;
  if (s.stddev === undefined) return { mean: s.mean, se: 0, df: Infinity };
  if (s.n !== undefined && s.n >= 2) return { mean: s.mean, se: s.stddev / Math.sqrt(s.n), df: s.n - 1 };
  return { mean: s.mean, se: s.stddev, df: Infinity };
}

/** Where the ratio's interval lies against the threshold; undefined when unbounded. */
export function sideOfThreshold(ci: [number, number] | undefined, threshold: number, direction: 'above' | 'below'): 'clears' | 'wrong' | 'overlaps' | undefined {
  if (!ci) return undefined;
  const [lo, hi] = ci;
  if (direction === 'above') return lo > threshold ? 'clears' : hi < threshold ? 'wrong' : 'overlaps';
  return hi < threshold ? 'clears' : lo > threshold ? 'wrong' : 'overlaps';
}

// ---- one compared point ----

interface PointSpec {
  label: string;
  metric: string;
  threshold: number;
  direction: 'above' | 'below';
  /** FragVisor's side: always measured. */
  subject: Side & { kind: 'measured' };
  reference: Side;
  names: { subject: string; reference: string };
}

function judgePoint(spec: PointSpec, minRepetitions: number): ClaimPoint {
  const { subject, reference, names, threshold, direction, metric } = spec;
  const fragvisor = statsOf(subject);
  const ref = statsOf(reference);
  const base = {
    label: spec.label,
    metric,
    keys: [...subject.keys, ...(reference.kind === 'measured' ? reference.keys : [])],
    ...(fragvisor ? { fragvisor } : {}),
    ...(ref ? { reference: ref } : {}),
    threshold,
    direction,
    variants: { fragvisor: subject.variant, ...(reference.kind === 'measured' ? { reference: reference.variant } : {}) },
    ...(reference.kind === 'baseline' ? { baselineEntry: reference.index } : {}),
  };
  const inconclusive = (reason: InconclusiveReason, why: string, extra: Partial<ClaimPoint> = {}): ClaimPoint => ({ ...base, ...extra, verdict: 'inconclusive', reason, why });
  const gap = [subject, reference].find((s) => s.kind === 'absent' || (s.kind === 'measured' && s.values.length === 0));
  if (gap) return inconclusive('missing', (gap as { missing: string }).missing);
  if (!fragvisor || !ref) throw new Error('judgePoint: a side without statistics');
  if (!(fragvisor.mean > 0 && ref.mean > 0)) {
    return inconclusive('invalid', `${metric}: a mean that is not positive (${names.subject} ${fmt(fragvisor.mean)}, ${names.reference} ${fmt(ref.mean)}) gives no ratio`);
  }

  const a = estimateOf(fragvisor);
  const b = estimateOf(ref);
  const r = a && b ? ratioCi95(a, b) : undefined;
  const ratio = r ? { estimate: r.estimate, ...(r.ci95 ? { ci95: r.ci95 } : {}), ...(Number.isFinite(r.df) ? { df: r.df } : {}) } : undefined;
  const withRatio = ratio ? { ratio } : {};
  const ratioText = `${names.subject}/${names.reference} ${metric} ${fmt(ratio?.estimate ?? fragvisor.mean / ref.mean)}${ratio?.ci95 ? ` (95% CI ${fmt(ratio.ci95[0])}..${fmt(ratio.ci95[1])})` : ''}`;
  const exactNote = ref.source === 'baseline' && ref.stddev === undefined ? `; ${names.reference}'s figure has no stddev in the baseline file and is taken as exact` : '';

  const short = [
    ...(fragvisor.n! < minRepetitions ? [`${names.subject} ${fragvisor.n}`] : []),
    ...(ref.n !== undefined && ref.n < minRepetitions ? [`${names.reference} ${ref.n}${ref.source === 'baseline' ? ' (baseline file)' : ''}`] : []),
  ];
  if (short.length > 0) return inconclusive('too-few', `too few repetitions: ${short.join(', ')} (at least ${minRepetitions}); ${ratioText}`, withRatio);

  const side = sideOfThreshold(ratio?.ci95, threshold, direction);
  if (side === undefined) return inconclusive('too-wide', `${ratioText}: the interval is unbounded (${names.reference}'s mean cannot be told from 0)`, withRatio);
  if (side === 'overlaps') return inconclusive('too-wide', `${ratioText} overlaps ${fmt(threshold)}${exactNote}`, withRatio);
  const other = direction === 'above' ? 'below' : 'above';
  return side === 'clears'
    ? { ...base, ...withRatio, verdict: 'pass', why: `${ratioText} lies ${direction} ${fmt(threshold)}${exactNote}` }
    : { ...base, ...withRatio, verdict: 'fail', why: `${ratioText} lies entirely ${other} ${fmt(threshold)}${exactNote}` };
}

// ---- the claims ----

const unique = (xs: number[]) => [...new Set(xs)].sort((a, b) => a - b);
const nodeCountsOf = (measurements: readonly Measurement[], experiment: Experiment, hypervisors: readonly Hypervisor[]) =>
  unique(measurements.filter((m) => m.key.experiment === experiment && hypervisors.includes(m.key.hypervisor)).map((m) => m.key.nodeCount));

/** Node counts to compare: FragVisor's, and measured GiantVM's (a baseline file's entries do not say what this run measured). */
const comparedNodeCounts = (input: RuleInput, experiment: Experiment) => nodeCountsOf(input.measurements, experiment, input.baseline ? ['fragvisor'] : ['fragvisor', 'giantvm']);

function giantvmReference(baseline: BaselineFigures | undefined): string {
  if (!baseline) return 'GiantVM measured in this run (hypervisor giantvm)';
  return `GiantVM's figures from the baseline file${baseline.file ? ` ${baseline.file}` : ''} (source: ${baseline.source})${baseline.approximate ? ', read off a plot (approximate)' : ''}`;
}

const notMeasured = (input: RuleInput, experiment: Experiment, what: string) =>
  nodeCountsOf(input.measurements, experiment, ['fragvisor']).length === 0 ? [`${experiment} (${what}) was not measured on FragVisor`] : [];

/** C1 (E1 LEMP, Fig. 12): FragVisor serves more PHP requests per second than GiantVM at the longer levels, at every node count measured. */
export function ruleC1(input: RuleInput): RuleResult {
  const { settings } = input;
  const { longerLevels, margin } = settings.c1;
  const threshold = 1 + margin;
  const metric = 'requestsPerSecond';
  const points = comparedNodeCounts(input, 'E1').flatMap((nodeCount) =>
    longerLevels.map((level) => {
      const variant = `php-${level}`;
      return judgePoint(
        {
          label: `n${nodeCount} ${variant} ${metric}`,
          metric,
          threshold,
          direction: 'above',
          subject: measuredSide(input.measurements, { hypervisor: 'fragvisor', experiment: 'E1', nodeCount, variant }, metric, 'FragVisor') as PointSpec['subject'],
          reference: giantvmSide(input, 'E1', nodeCount, variant, metric),
          names: { subject: 'FragVisor', reference: 'GiantVM' },
        },
        settings.minRepetitions,
      );
    }),
  );
  return {
    rule: {
      compares: `FragVisor's mean ${metric} (ab, E1 LEMP) over GiantVM's at PHP levels ${longerLevels.join(', ')} and every node count measured; the ratio's 95% interval must lie above ${fmt(threshold)}`,
      reference: giantvmReference(input.baseline),
      tolerance: margin,
      minRepetitions: settings.minRepetitions,
    },
    points,
    gaps: notMeasured(input, 'E1', 'LEMP'),
  };
}

/** OpenLambda phases a measurement carries: `<phase>Ms` with its `<phase>MaxMs` (activities' judgeBurst), not the lambda's total. */
export function phasesOf(metrics: Record<string, number>): string[] {
  return Object.keys(metrics).flatMap((name) => {
    const m = /^(.+)Ms$/.exec(name);
    return m && m[1] !== 'lambdaTotal' && `${m[1]}MaxMs` in metrics ? [m[1]] : [];
  });
}

/** C2 (E2 OpenLambda, Fig. 13): FragVisor takes less time than GiantVM in every phase the responses carry, and in wall time. */
export function ruleC2(input: RuleInput): RuleResult {
  const { settings } = input;
  const threshold = 1 - settings.c2.margin;
  const carriers: Hypervisor[] = input.baseline ? ['fragvisor'] : ['fragvisor', 'giantvm'];
  const points = comparedNodeCounts(input, 'E2').flatMap((nodeCount) => {
    const burst = input.measurements.filter((m) => m.key.experiment === 'E2' && m.key.nodeCount === nodeCount && m.key.variant === 'openlambda' && carriers.includes(m.key.hypervisor));
    const phases = [...new Set(burst.flatMap((m) => phasesOf(m.metrics)))];
    return ['wallSeconds', ...phases.map((p) => `${p}Ms`)].map((metric) =>
      judgePoint(
        {
          label: `n${nodeCount} openlambda ${metric}`,
          metric,
          threshold,
          direction: 'below',
          subject: measuredSide(input.measurements, { hypervisor: 'fragvisor', experiment: 'E2', nodeCount, variant: 'openlambda' }, metric, 'FragVisor') as PointSpec['subject'],
          reference: giantvmSide(input, 'E2', nodeCount, 'openlambda', metric),
          names: { subject: 'FragVisor', reference: 'GiantVM' },
        },
        settings.minRepetitions,
      ),
    );
  });
  return {
    rule: {
      compares: `FragVisor's mean time (E2 OpenLambda: wallSeconds and each phase <phase>Ms the lambdas' responses carry) over GiantVM's at every node count measured; the ratio's 95% interval must lie below ${fmt(threshold)}`,
      reference: giantvmReference(input.baseline),
      tolerance: settings.c2.margin,
      minRepetitions: settings.minRepetitions,
    },
    points,
    gaps: notMeasured(input, 'E2', 'OpenLambda'),
  };
}

/** C3 (E3, Figs. 6 and 7): FragVisor's delegated case stays within the tolerance of its local case, network sizes and storage. */
export function ruleC3(input: RuleInput): RuleResult {
  const { settings } = input;
  const { tolerance, netMetric } = settings.c3;
  const threshold = 1 - tolerance;
  const fv = input.measurements.filter((m) => m.key.hypervisor === 'fragvisor' && m.key.experiment === 'E3');
  const measured = unique(fv.map((m) => m.key.nodeCount));
  const remote = measured.filter((n) => n >= 2);
  const gaps = [
    ...notMeasured(input, 'E3', 'network and storage'),
    ...(measured.length > 0 && remote.length === 0 ? [`the delegated case needs a remote vCPU (2 nodes or more); E3 was measured on ${measured.join(', ')} node(s) only`] : []),
  ];
  const side = (nodeCount: number, variant: string, metric: string, name: string) => measuredSide(input.measurements, { hypervisor: 'fragvisor', experiment: 'E3', nodeCount, variant }, metric, name);
  const point = (nodeCount: number, label: string, delegated: string, local: string, metric: string) =>
    judgePoint(
      {
        label: `n${nodeCount} ${label} delegated/local ${metric}`,
        metric,
        threshold,
        direction: 'above',
        subject: side(nodeCount, delegated, metric, 'FragVisor delegated-case') as PointSpec['subject'],
        reference: side(nodeCount, local, metric, 'FragVisor local-case'),
        names: { subject: 'delegated', reference: 'local' },
      },
      settings.minRepetitions,
    );
  const points: ClaimPoint[] = [];
  for (const nodeCount of remote) {
    const here = fv.filter((m) => m.key.nodeCount === nodeCount);
    const sizes = unique(here.flatMap((m) => {
      const net = /^net-(\d+)-(?:local|delegated)$/.exec(m.key.variant);
      return net ? [Number(net[1])] : [];
    }));
    // Figure 6 is C3's core: without it the claim is not shown, whatever storage says.
    if (sizes.length === 0) gaps.push(`E3 n${nodeCount}: no network measurements (net-<bytes>-local/delegated)`);
    const disk = here.filter((m) => /^disk-(?:local|delegated)$/.test(m.key.variant));
    const ops = ['read', 'write'].filter((op) => disk.some((m) => `${op}MBps` in m.metrics));
    points.push(
      ...sizes.map((bytes) => point(nodeCount, `net-${bytes}`, `net-${bytes}-delegated`, `net-${bytes}-local`, netMetric)),
      ...ops.map((op) => point(nodeCount, 'disk', 'disk-delegated', 'disk-local', `${op}MBps`)),
    );
  }
  return {
    rule: {
      compares: `FragVisor's delegated case (nginx worker / dd on vCPU 1, I/O delegated to the origin) over its local case (vCPU 0): mean ${netMetric} per E3 page size, and readMBps / writeMBps of storage when measured, at every node count of 2 or more; the ratio's 95% interval must lie above ${fmt(threshold)}`,
      reference: "FragVisor's local case (vCPU 0, I/O local to the origin) in the same epoch",
      tolerance,
      minRepetitions: settings.minRepetitions,
    },
    points,
    gaps,
  };
}
