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
