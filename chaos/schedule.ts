import { uniform } from '../sim/model/prng';
import type { Experiment, Hypervisor } from '../workflows/inputs';
import { EXPERIMENT_ORDER, HYPERVISOR_ORDER, rank, type EpochPhase, type Position } from './position';

/**
 * The seeded fault plan of each chaos run (pure: same seed, same plan). Worker kills are spread
 * over the kill categories across all runs (every category before any repeats); every run also
 * gets a dev-server restart and its share of the simulator's faults.
 */

export const KILL_CATEGORIES = ['prepare', 'reboot', 'messaging layer', 'E1', 'E2', 'E3', 'report'] as const;
export type KillCategory = (typeof KILL_CATEGORIES)[number];

export const SIM_FAULT_KINDS = ['ssh-drop', 'reboot-hang', 'insmod-hang', 'guest-boot', 'slow'] as const;
export type SimFaultKind = (typeof SIM_FAULT_KINDS)[number];

export type FaultKind = 'worker-kill' | 'server-restart' | SimFaultKind;

export interface PlannedFault {
  kind: FaultKind;
  /** Fires at the first observed position at or after this one. */
  at: Position;
  /** Then waits this long (ms) before acting. */
  delayMs: number;
  /** Sim faults: the node it is armed on (it fires at that node's next such step). */
  node?: string;
  /** worker-kill: the phase category it was drawn for. */
  category?: KillCategory;
  /** slow: cleared when the run reaches this position. */
  until?: Position;
}

export interface PlanOptions {
  seed: number;
  runs: number;
  killsPerRun: number;
  /** Sim faults per run (the kinds rotate over runs so each appears about equally often). */
  simFaultsPerRun: number;
  nodes: readonly string[];
}

/** A seeded draw for one named decision. */
const draw = (seed: number, key: string) => uniform(seed, key);
const pick = <T>(seed: number, key: string, xs: readonly T[]): T => xs[Math.floor(draw(seed, key) * xs.length)];
const between = (seed: number, key: string, lo: number, hi: number) => Math.round(lo + draw(seed, key) * (hi - lo));

/** A seeded permutation (Fisher-Yates over keyed draws). */
export function shuffled<T>(xs: readonly T[], seed: number, key: string): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(draw(seed, `${key}#${i}`) * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** `count` items from rounds of seeded permutations of `xs`: each item appears once per round. */
export function rotation<T>(xs: readonly T[], count: number, seed: number, key: string): T[] {
  const out: T[] = [];
  for (let round = 0; out.length < count; round++) out.push(...shuffled(xs, seed, `${key}/${round}`));
  return out.slice(0, count);
}

const epochAt = (hypervisor: Hypervisor, experiment: Experiment, phase: EpochPhase): Position => ({ stage: 'epoch', hypervisor, experiment, phase });

/** Where a kill of `category` happens (seeded details: hypervisor, experiment, phase, delay). */
export function killPoint(category: KillCategory, seed: number, key: string): Pick<PlannedFault, 'at' | 'delayMs'> {
  const h = pick(seed, `${key}/h`, HYPERVISOR_ORDER);
  const e = pick(seed, `${key}/e`, EXPERIMENT_ORDER);
  switch (category) {
    case 'prepare':
      // Builds last seconds: anywhere in them.
      return { at: { stage: 'prepare', hypervisor: h }, delayMs: between(seed, `${key}/d`, 200, 6000) };
    case 'reboot':
      return { at: epochAt(h, e, 'reboot'), delayMs: between(seed, `${key}/d`, 0, 400) };
    case 'messaging layer':
      return { at: epochAt('fragvisor', e, 'messaging layer'), delayMs: between(seed, `${key}/d`, 0, 1500) };
    case 'report':
      return { at: { stage: 'report' }, delayMs: between(seed, `${key}/d`, 0, 300) };
    default: {
      const phase = pick<EpochPhase>(seed, `${key}/p`, ['vm', 'guest setup', 'benchmarks', 'benchmarks']);
      // E2's benchmarks are a few bursts of curls (under a second at small time scales): a longer delay lands in the next epoch.
      const longest = phase !== 'benchmarks' ? 500 : category === 'E2' ? 300 : 3000;
      return { at: epochAt(h, category, phase), delayMs: between(seed, `${key}/d`, 0, longest) };
    }
  }
}

/** A sim fault of `kind`: armed early enough that the step it breaks is still to come. */
export function simFault(kind: SimFaultKind, seed: number, key: string, nodes: readonly string[]): PlannedFault {
  const h = pick(seed, `${key}/h`, HYPERVISOR_ORDER);
  const e = pick(seed, `${key}/e`, EXPERIMENT_ORDER);
  const node = pick(seed, `${key}/n`, nodes);
  switch (kind) {
    case 'reboot-hang':
      // Armed while the hosts are prepared: fires at that hypervisor's first epoch reboot.
      return { kind, node, at: { stage: 'prepare', hypervisor: h }, delayMs: 0 };
    case 'insmod-hang':
      return { kind, node, at: epochAt('fragvisor', e, 'reboot'), delayMs: 0 };
    case 'guest-boot':
      return { kind, node, at: epochAt(h, e, h === 'fragvisor' ? 'messaging layer' : 'reboot'), delayMs: 0 };
    case 'ssh-drop':
      // A command that runs more than a second on that node after this point gets its connection cut.
      return { kind, node, at: pick(seed, `${key}/at`, [{ stage: 'prepare', hypervisor: h } as Position, epochAt(h, e, 'benchmarks')]), delayMs: between(seed, `${key}/d`, 0, 2000) };
    case 'slow': {
      const from = epochAt(h, e, 'reboot');
      const later = EXPERIMENT_ORDER.indexOf(e) + 1;
      const until = later < EXPERIMENT_ORDER.length ? epochAt(h, EXPERIMENT_ORDER[later], 'reboot') : h === 'fragvisor' ? ({ stage: 'prepare', hypervisor: 'giantvm' } as Position) : ({ stage: 'report' } as Position);
      return { kind, node, at: from, delayMs: 0, until };
    }
  }
}

/** Every run's faults, in the order they fire. */
export function planRuns(opts: PlanOptions): PlannedFault[][] {
  const kills = rotation(KILL_CATEGORIES, opts.runs * opts.killsPerRun, opts.seed, 'kills');
  const sims = rotation(SIM_FAULT_KINDS, opts.runs * opts.simFaultsPerRun, opts.seed, 'sim');
  return Array.from({ length: opts.runs }, (_, r) => {
    const faults: PlannedFault[] = [];
    for (const [i, category] of kills.slice(r * opts.killsPerRun, (r + 1) * opts.killsPerRun).entries()) {
      faults.push({ kind: 'worker-kill', category, ...killPoint(category, opts.seed, `run${r}/kill${i}`) });
    }
    // The server restart: anywhere before the report.
    const restart = killPoint(pick(opts.seed, `run${r}/restart`, KILL_CATEGORIES.slice(0, -1)), opts.seed, `run${r}/restart`);
    faults.push({ kind: 'server-restart', ...restart });
    // Distinct kinds within a run (a rotation window may repeat one across its rounds: drop the repeat).
    const kinds = [...new Set(sims.slice(r * opts.simFaultsPerRun, (r + 1) * opts.simFaultsPerRun))];
    for (const kind of kinds) faults.push(simFault(kind, opts.seed, `run${r}/${kind}`, opts.nodes));
    return faults.sort((a, b) => rank(a.at) - rank(b.at) || a.delayMs - b.delayMs);
  });
}
