/**
 * Added repetitions (issue 6 item 5), the pure half: which claim settings a run uses (profile, then
 * input, field by field), how morePointsNeeded's asks become one extra epoch per (hypervisor,
 * experiment, node count), whether the time budget still allows one, and the per-variant tally the
 * report shows. Deterministic: the workflow runs it.
 */
import { z } from 'zod';
import { describeZodError } from '../../config/errors';
import type { Experiment, Hypervisor } from '../inputs';
import type { MoreRepetitions } from './claims';
import { sameVariant, type VariantRef } from './rules';
import { claimSettingsSchema, type ClaimSettings, type ClaimSettingsInput } from './settings';

const SECTIONS = ['c1', 'c2', 'c3'] as const;

/** The profile's `claims:` overridden by the input's `claims`, field by field (also inside c1, c2, c3). */
export function mergeClaimSettings(profile: ClaimSettingsInput | undefined, input: ClaimSettingsInput | undefined): ClaimSettingsInput {
  const out: Record<string, unknown> = { ...profile, ...input };
  for (const s of SECTIONS) {
    if (profile?.[s] || input?.[s]) out[s] = { ...profile?.[s], ...input?.[s] };
  }
  return out as ClaimSettingsInput;
}

const wrapped = z.strictObject({ claims: claimSettingsSchema });

/**
 * The settings the run judges with, defaults filled in; or the problems, each naming its field
 * (`claims.maxRepetitions: expected maxRepetitions at least minRepetitions`): each source is valid on
 * its own, but a merge can still break a rule that spans two fields.
 */
export function effectiveClaimSettings(profile: ClaimSettingsInput | undefined, input: ClaimSettingsInput | undefined): { settings: ClaimSettings } | { problems: string[] } {
  const parsed = wrapped.safeParse({ claims: mergeClaimSettings(profile, input) });
  return parsed.success ? { settings: parsed.data.claims } : { problems: describeZodError(parsed.error) };
}

/** One extra epoch: only these variants, these repetition numbers (after the highest recorded). */
export interface ExtraEpoch {
  hypervisor: Hypervisor;
  experiment: Experiment;
  nodeCount: number;
  only: { variant: string; repetitions: number[] }[];
}

/** morePointsNeeded's asks grouped into one epoch per (hypervisor, experiment, node count), in its order. */
export function extraEpochs(more: readonly MoreRepetitions[]): ExtraEpoch[] {
  const epochs: ExtraEpoch[] = [];
  for (const m of more) {
    if (m.repetitions.length === 0) continue;
    let e = epochs.find((x) => x.hypervisor === m.hypervisor && x.experiment === m.experiment && x.nodeCount === m.nodeCount);
    if (!e) epochs.push((e = { hypervisor: m.hypervisor, experiment: m.experiment, nodeCount: m.nodeCount, only: [] }));
    e.only.push({ variant: m.variant, repetitions: [...m.repetitions] });
  }
  return epochs;
}

/**
 * Whether another extra epoch may start: the budget (minutes of workflow time since the first one
 * could start) is not spent yet. A budget of 0 turns added repetitions off.
 */
export function withinBudget(startedMs: number, nowMs: number, budgetMinutes: number): boolean {
  return nowMs - startedMs < budgetMinutes * 60_000;
}

/** What a run added to one variant, for claims.json, run.json and the report. */
export interface AddedRepetitions extends VariantRef {
  added: number;
  /** The compared points that asked for them. */
  points: string[];
}

/** The tally after an extra epoch measured these repetitions (ids and counts only). */
export function tallyAdded(tally: readonly AddedRepetitions[], epoch: ExtraEpoch, asked: readonly MoreRepetitions[]): AddedRepetitions[] {
  const out = tally.map((t) => ({ ...t, points: [...t.points] }));
  for (const { variant, repetitions } of epoch.only) {
    const ref: VariantRef = { hypervisor: epoch.hypervisor, experiment: epoch.experiment, nodeCount: epoch.nodeCount, variant };
    const points = asked.find((a) => sameVariant(a, ref))?.points ?? [];
    const prev = out.find((t) => sameVariant(t, ref));
    if (prev) {
      prev.added += repetitions.length;
      for (const p of points) if (!prev.points.includes(p)) prev.points.push(p);
    } else out.push({ ...ref, added: repetitions.length, points: [...points] });
  }
  return out;
}

/** The run's added repetitions as claims.json records them (ids and counts only). */
export interface ExtraRepetitionsRecord {
  /** Rounds of extra epochs (each judged again after). */
  rounds: number;
  added: AddedRepetitions[];
  /** Why the run stopped adding: every point decided or reached maxRepetitions, the time budget, a failed epoch. */
  stopped: string;
}

/** Repetitions added to each side of one compared point (0 for a baseline figure). */
export function addedToPoint(tally: readonly AddedRepetitions[] | undefined, variants: { fragvisor: VariantRef; reference?: VariantRef }): { fragvisor: number; reference: number } {
  const of = (r: VariantRef | undefined) => (r ? (tally ?? []).find((t) => sameVariant(t, r))?.added ?? 0 : 0);
  return { fragvisor: of(variants.fragvisor), reference: of(variants.reference) };
}
