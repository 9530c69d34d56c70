/**
 * The verdicts on claims C1-C3 (claims.json) from the run's measurements and, when the run used one,
 * GiantVM's baseline file; and which variants need more repetitions to turn an inconclusive point
 * into a verdict. Pure and deterministic: workflow code runs it too.
 */
import { compareMeasurementKeys, type Measurement, type MeasurementKey } from '../commands/bench';
import { estimateOf, ruleC1, ruleC2, ruleC3, sideOfThreshold, type BaselineFigures, type ClaimPoint, type InconclusiveReason, type Rule, type RuleResult, type Stats, type Verdict, type VariantRef } from './rules';
import type { ExtraRepetitionsRecord } from './extra';
import { claimSettings, type ClaimSettings, type ClaimSettingsInput } from './settings';
import { ratioCi95, type Estimate } from './stats';

export type ClaimId = 'C1' | 'C2' | 'C3';

/** The claims as ARTIFACT.md states them. */
export const CLAIM_STATEMENTS: Record<ClaimId, string> = {
  C1: 'FragVisor achieves higher throughput than GiantVM for longer requests (E1, LEMP, Fig. 12).',
  C2: 'FragVisor is faster than GiantVM in every phase of OpenLambda serverless computing (E2, Fig. 13).',
  C3: "With DSM bypass, FragVisor's I/O delegation achieves very high performance, offsetting the cost of distribution: the delegated case stays close to the local case (E3, Figs. 6 and 7).",
};

export interface Claim {
  id: ClaimId;
  statement: string;
  verdict: Verdict;
  why: string;
  rule: Rule;
  points: ClaimPoint[];
}

export interface ClaimsReport {
  claims: Claim[];
  /** The settings the verdicts used, defaults filled in. */
  settings: ClaimSettings;
  /** What the run added to narrow intervals (claims.json of a run that judged more than once). */
  extra?: ExtraRepetitionsRecord;
}

export interface JudgeClaimsInput {
  /** results.json's measurements. */
  measurements: readonly Measurement[];
  /** The GiantVM baseline file the run used instead of measuring GiantVM (the run store's baseline.json). */
  baseline?: BaselineFigures;
  settings?: ClaimSettingsInput;
}

const SHOWN = 3;
const list = (items: string[]) => (items.length > SHOWN ? `${items.slice(0, SHOWN).join('; ')}; and ${items.length - SHOWN} more` : items.join('; '));

/** How far a passing point's interval stays from its threshold, relative to the threshold. */
const clearance = (p: ClaimPoint) => (p.direction === 'above' ? p.ratio!.ci95![0] - p.threshold : p.threshold - p.ratio!.ci95![1]);

/** A claim passes when every point passes, fails when any point fails, and is inconclusive otherwise (or with nothing to compare). */
export function claimVerdict(result: Pick<RuleResult, 'points' | 'gaps'>): { verdict: Verdict; why: string } {
  const { points, gaps } = result;
  const of = (v: Verdict) => points.filter((p) => p.verdict === v);
  const failed = of('fail');
  if (failed.length > 0) return { verdict: 'fail', why: `${failed.length} of ${points.length} compared points fail: ${list(failed.map((p) => `${p.label}: ${p.why}`))}` };
  const open = of('inconclusive');
  if (gaps.length > 0 || open.length > 0 || points.length === 0) {
    const reasons = [...gaps, ...open.map((p) => `${p.label}: ${p.why}`)];
    const counts = points.length > 0 ? `${of('pass').length} of ${points.length} compared points pass, ${open.length} inconclusive: ` : '';
    return { verdict: 'inconclusive', why: `${counts}${list(reasons.length > 0 ? reasons : ['nothing to compare'])}` };
  }
  const closest = [...points].sort((a, b) => clearance(a) - clearance(b))[0];
  return { verdict: 'pass', why: `all ${points.length} compared points pass; the closest: ${closest.label}: ${closest.why}` };
}

export function judgeClaims(input: JudgeClaimsInput): ClaimsReport {
  const settings = claimSettings(input.settings);
  const ruleInput = { measurements: input.measurements, ...(input.baseline ? { baseline: input.baseline } : {}), settings };
  const rules: [ClaimId, RuleResult][] = [
    ['C1', ruleC1(ruleInput)],
    ['C2', ruleC2(ruleInput)],
    ['C3', ruleC3(ruleInput)],
  ];
  return {
    claims: rules.map(([id, result]) => ({ id, statement: CLAIM_STATEMENTS[id], ...claimVerdict(result), rule: result.rule, points: result.points })),
    settings,
  };
}

// ---- more repetitions ----

export interface MoreRepetitions extends VariantRef {
  /** Repetitions recorded so far. */
  have: number;
  /** How many to add: have + more <= maxRepetitions. */
  more: number;
  /** The repetition numbers to measure, after the highest recorded. */
  repetitions: number[];
  /** The compared points that ask for them (`C1 n4 php-500ms requestsPerSecond`). */
  points: string[];
}

export interface MorePointsOptions {
  /** The keys recorded so far (activities' listMeasurements). */
  already: readonly MeasurementKey[];
  /** Default: the report's settings.maxRepetitions. */
  maxRepetitions?: number;
  /**
   * The inconclusive points to act on (default both). A run passes `['too-wide']`: a side short of
   * minRepetitions is what its input asked for, not for the run to override.
   */
  reasons?: readonly ('too-few' | 'too-wide')[];
}

/** A side measured with `n` repetitions, as it would look with `n` of them and the same mean and spread. */
const projected = (s: Stats, n: number): Estimate => ({ mean: s.mean, se: s.stddev! / Math.sqrt(n), df: n - 1 });

/**
 * The repetitions every measured side of a point needs: the smallest count from minRepetitions up
 * to maxRepetitions at which the interval, projected with the same means and standard deviations,
 * would decide (clear the threshold or lie on its wrong side); maxRepetitions when none would (the
 * means may still move); minRepetitions when a side has no spread yet (one repetition).
 */
function targetRepetitions(p: ClaimPoint, have: (r: VariantRef) => number, min: number, max: number): number {
  const sides = [
    { stats: p.fragvisor!, variant: p.variants.fragvisor },
    { stats: p.reference!, variant: p.variants.reference },
  ];
  if (sides.some((s) => s.variant && s.stats.stddev === undefined)) return min;
  for (let n = min; n <= max; n++) {
    const [a, b] = sides.map((s) => (s.variant ? projected(s.stats, Math.max(n, have(s.variant))) : estimateOf(s.stats)!));
    const side = sideOfThreshold(ratioCi95(a, b).ci95, p.threshold, p.direction);
    if (side === 'clears' || side === 'wrong') return n;
  }
  return max;
}

/**
 * Which variants need how many more repetitions so that a second judgement can decide: the points
 * of undecided (inconclusive) claims that are inconclusive only for too few repetitions or too wide
 * an interval, never for missing data; a baseline figure's own repetitions cannot be added to, so a
 * point short on those is left alone. A variant shared by several points gets the largest need.
 * Ordered as results.json.
 */
export function morePointsNeeded(report: ClaimsReport, options: MorePointsOptions): MoreRepetitions[] {
  const { minRepetitions } = report.settings;
  const max = options.maxRepetitions ?? report.settings.maxRepetitions;
  const reasons: readonly (InconclusiveReason | undefined)[] = options.reasons ?? ['too-few', 'too-wide'];
  const recorded = (r: VariantRef) => options.already.filter((k) => k.hypervisor === r.hypervisor && k.experiment === r.experiment && k.nodeCount === r.nodeCount && k.variant === r.variant);
  const have = (r: VariantRef, s: Stats) => Math.max(recorded(r).length, s.n ?? 0);
  const wanted = new Map<string, MoreRepetitions>();
  for (const claim of report.claims.filter((c) => c.verdict === 'inconclusive')) {
    for (const p of claim.points.filter((q) => reasons.includes(q.reason))) {
      const ref = p.reference!;
      if (!p.variants.reference && ref.n !== undefined && ref.n < minRepetitions) continue;
      const measured = [
        { variant: p.variants.fragvisor, stats: p.fragvisor! },
        ...(p.variants.reference ? [{ variant: p.variants.reference, stats: ref }] : []),
      ];
      const haveOf = (r: VariantRef) => have(r, measured.find((s) => s.variant === r)!.stats);
      const target = targetRepetitions(p, haveOf, minRepetitions, max);
      for (const { variant, stats } of measured) {
        const n = have(variant, stats);
        if (target <= n) continue;
        const id = `${variant.hypervisor}.${variant.experiment}.n${variant.nodeCount}.${variant.variant}`;
        const label = `${claim.id} ${p.label}`;
        const prev = wanted.get(id);
        const more = Math.max(prev?.more ?? 0, target - n);
        const last = Math.max(n, ...recorded(variant).map((k) => k.repetition));
        wanted.set(id, { ...variant, have: n, more, repetitions: Array.from({ length: more }, (_, i) => last + 1 + i), points: [...(prev?.points ?? []), label] });
      }
    }
  }
  return [...wanted.values()].sort((a, b) => compareMeasurementKeys({ ...a, repetition: 1 }, { ...b, repetition: 1 }));
}
