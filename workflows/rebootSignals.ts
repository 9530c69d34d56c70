import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { NodeProgress } from './progress';

/**
 * The rebootNodes workflow's signal and query, in their own module so the CLI (and the parent run)
 * can import them without the workflow.
 */

export const OPERATOR_ACTIONS = ['power-cycled', 'give-up'] as const;

/** What an operator tells a reboot that waits for them: they power-cycled `node` by hand, or give up on it. */
export interface OperatorSignal {
  node: string;
  action: (typeof OPERATOR_ACTIONS)[number];
  /** Free text for the history, e.g. "reset from the rack". */
  note?: string;
}

/** E.g. `temporal workflow signal --workflow-id <rebootNodes id> --name operator --input '{"node":"echo4","action":"power-cycled"}'`. */
export const operatorSignal = defineSignal<[OperatorSignal]>('operator');

export interface RebootProgress {
  reason: string;
  /** Per node: the step (`read boot state`, `soft reboot`, `await boot`, `bmc power cycle`, `operator`, `rebooted`) and its state. */
  nodes: Record<string, NodeProgress>;
  /** Nodes that wait for an operator, with what to do: `node2: power-cycle it, then signal operator ...`. */
  waitingFor: string[];
}

export const rebootProgressQuery = defineQuery<RebootProgress>('progress');
