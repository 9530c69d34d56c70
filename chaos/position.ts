import type { EpochProgress, RunProgress } from '../workflows/progress';
import type { Experiment, Hypervisor } from '../workflows/inputs';

/**
 * Where a run is, from its `progress` query and its current epoch's: a point on the run's own
 * timeline (per hypervisor: prepare hosts, then per experiment its epoch's reboot, messaging layer,
 * VM, guest setup, benchmarks; then the report). Faults are planned against positions and fire at
 * the first observed position at or after theirs, so a short phase missed between two polls does
 * not lose its fault.
 */

export const HYPERVISOR_ORDER: readonly Hypervisor[] = ['fragvisor', 'giantvm'];
export const EXPERIMENT_ORDER: readonly Experiment[] = ['E1', 'E2', 'E3'];
export const EPOCH_PHASES = ['reboot', 'messaging layer', 'vm', 'guest setup', 'benchmarks'] as const;
export type EpochPhase = (typeof EPOCH_PHASES)[number];

export type Position =
  | { stage: 'prepare'; hypervisor: Hypervisor }
  | { stage: 'epoch'; hypervisor: Hypervisor; experiment: Experiment; phase: EpochPhase }
  | { stage: 'report' }
  | { stage: 'done' };

/** A number that orders positions along the run. */
export function rank(p: Position): number {
  if (p.stage === 'done') return 10_000;
  if (p.stage === 'report') return 9_000;
  const h = HYPERVISOR_ORDER.indexOf(p.hypervisor) * 1000;
  if (p.stage === 'prepare') return h;
  return h + 100 * (EXPERIMENT_ORDER.indexOf(p.experiment) + 1) + EPOCH_PHASES.indexOf(p.phase);
}

export function describe(p: Position): string {
  if (p.stage === 'prepare') return `${p.hypervisor} prepare hosts`;
  if (p.stage === 'epoch') return `${p.hypervisor} ${p.experiment} ${p.phase}`;
  return p.stage;
}

/** The position of a run from its progress and (in an epoch) its epoch's progress; undefined before prepare. */
export function positionOf(run: RunProgress, epoch?: EpochProgress): Position | undefined {
  if (run.phase === 'done') return { stage: 'done' };
  if (run.phase === 'report') return { stage: 'report' };
  if (run.phase === 'prepare hosts' && run.hypervisor) return { stage: 'prepare', hypervisor: run.hypervisor };
  if (run.phase !== 'experiments' || !epoch) return undefined;
  const m = /^(fragvisor|giantvm)\/(E\d)-n\d+$/.exec(epoch.epoch);
  const phase = EPOCH_PHASES.find((x) => x === epoch.phase);
  if (!m || !phase) return undefined;
  return { stage: 'epoch', hypervisor: m[1] as Hypervisor, experiment: m[2] as Experiment, phase };
}
