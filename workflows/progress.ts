import { defineQuery } from '@temporalio/workflow';
import type { Hypervisor } from './inputs';

/**
 * What a run is doing now, for `ae run --wait`, `ae status` and the UI (the `progress` query). Small
 * and flat: a line per node with its current step. Children (kernel installs, reboots, the messaging
 * layer) have their own `progress` query; `child` names the one a node is in, for a closer look.
 */

export type RunPhase = 'validating' | 'waiting for the cluster' | 'planning' | 'prepare hosts' | 'reboot' | 'messaging layer' | 'experiments' | 'report' | 'done' | 'failed' | 'dry run';

export type StepState = 'pending' | 'running' | 'done' | 'skipped' | 'waiting' | 'failed';

export interface NodeProgress {
  /** The step in the artifact's words: `host kernel: build`, `reboot`, `messaging layer: insmod`. */
  step: string;
  state: StepState;
  /** One short line: a log's last line, the operator action awaited, the error. */
  detail?: string;
  /** Workflow id of the child the node is in now. */
  child?: string;
}

export interface RunProgress {
  runId: string;
  phase: RunPhase;
  cluster?: string;
  simulated?: boolean;
  hypervisor?: Hypervisor;
  /** Absolute folder of the run store on the worker host. */
  runDir?: string;
  /** Stage keys of the plan with their state, in plan order. */
  stages: { key: string; title: string; state: StepState }[];
  nodes: Record<string, NodeProgress>;
  /** Paused by an operator (`pause` update): the step in flight finishes, the next waits for `resume`. */
  paused?: boolean;
  /** Who the run waits for: the run holding the cluster, an operator. */
  waitingFor?: string;
  /** Last error, when phase is failed. */
  error?: string;
}

export const runProgressQuery = defineQuery<RunProgress>('progress');

/** The `progress` of an epoch child (workflows/epoch.ts): what it measures now. */
export interface EpochProgress {
  epoch: string;
  phase: RunPhase | 'vm' | 'guest setup' | 'benchmarks';
  nodes: Record<string, NodeProgress>;
  /** Measurements done / planned. */
  done: number;
  total: number;
  current?: string;
}

export const epochProgressQuery = defineQuery<EpochProgress>('progress');

/** A node's step while an epoch runs on it (the run's progress). */
export const epochStep = (experiment: string, nodeCount: number): string => `${experiment} n=${nodeCount}`;

/** The epoch child the run's nodes are in now (workflow id `<run>/<hv>/<experiment>-n<count>`, or `.../extra-<round>`). */
export function currentEpochChild(run: RunProgress): string | undefined {
  if (run.phase !== 'experiments') return undefined;
  return Object.values(run.nodes).find((n) => n.state === 'running' && n.child && /\/E\d+-n\d+(\/extra-\d+)?$/.test(n.child))?.child;
}

/** One line for an epoch's progress: `benchmarks: 7/42 measurements (net-1024-local rep 2)`. */
export function epochSummary(p: Pick<EpochProgress, 'phase' | 'done' | 'total' | 'current'>): string {
  return `${p.phase}: ${p.done}/${p.total} measurements${p.current ? ` (${p.current})` : ''}`;
}
