import { ActivityFailure, ApplicationFailure, TimeoutFailure, condition, isCancellation, log, proxyActivities, setCurrentDetails, setHandler } from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import type { BmcPowerCycleResult, ConsoleCapture } from '../activities/reboot';
import { nodeName } from '../config/schema';
import { NON_RETRYABLE_SETUP, parseInput } from './failures';
import { clusterRef, runId } from './inputs';
import type { StepState } from './progress';
import { OPERATOR_ACTIONS, operatorSignal, rebootProgressQuery, type OperatorSignal, type RebootProgress } from './rebootSignals';

/**
 * rebootNodes (a child of the run): reboots nodes in parallel, each with proof (boot_id before, seen
 * down, back with a new boot_id and the expected kernel) and escalation: soft reboot, then a BMC
 * power cycle when the node has a BMC, then an operator (signal `operator`) until a deadline. Never
 * a second soft reboot: a hung reboot is not cured by asking again.
 */

const seconds = (what: string) => z.number({ error: `expected ${what} in seconds (a number)` }).positive(`expected ${what} greater than 0 seconds`);

export const rebootNodesInput = z
  .strictObject({
    cluster: clusterRef,
    /** The profile hash from loadClusterProfile: activities refuse a profile edited under the run. */
    profileHash: z.string({ error: 'expected the profile hash (a string)' }).regex(/^[0-9a-f]{64}$/, 'expected the profile hash loadClusterProfile returned (64 hex digits)'),
    runId,
    nodes: z
      .array(nodeName, { error: 'expected a list of node names' })
      .min(1, 'expected at least one node to reboot')
      .refine((xs) => new Set(xs).size === xs.length, 'expected each node at most once'),
    /** Nodes with a BMC (ClusterSummary.nodes[].bmc): only they are power-cycled remotely. */
    bmcNodes: z.array(nodeName, { error: 'expected a list of node names' }).default([]),
    /** `uname -r` each node must come back with (e.g. after `make install`); absent: any. */
    expectedRelease: z.record(nodeName, z.string().regex(/^\S{1,128}$/, 'expected a kernel release like 4.4.137-pop-hype')).optional(),
    /** Why, for the UI and the failure message: `boot the FragVisor kernel`. */
    reason: z.string({ error: 'expected a reason (a string)' }).min(1).max(200),
    /** ClusterSummary.timeouts.reboot and .operator; heartbeat (default 15): how long awaitBoot may go silent before a retry takes over (a dead worker). */
    timeouts: z.strictObject({ reboot: seconds('the reboot timeout'), operator: seconds('the operator deadline'), heartbeat: seconds('the heartbeat timeout').optional() }),
  })
  .refine((i) => Object.keys(i.expectedRelease ?? {}).every((n) => i.nodes.includes(n)), { message: 'expected kernel releases only for nodes being rebooted', path: ['expectedRelease'] });

export type RebootNodesInput = z.input<typeof rebootNodesInput>;

export interface RebootedNode {
  node: string;
  bootIdBefore: string;
  bootId: string;
  kernelRelease: string;
  /** What brought it back: the soft reboot, a BMC power cycle, or an operator. */
  how: 'soft' | 'bmc' | 'operator';
  /** Reboots it took: 1 (soft), +1 per BMC power cycle, +1 per operator power cycle. */
  attempts: number;
  /** The last wait found the node down before it came back. */
  sawDown: boolean;
  /** From the start of the last wait to the answer with the new boot_id. */
  upAfterMs: number;
}

export type RebootNodesResult = Record<string, RebootedNode>;

/** One failed node, in the RebootFailed failure's details. */
export interface RebootFailure {
  node: string;
  error: string;
  console?: ConsoleCapture;
}

const NON_RETRYABLE = [...NON_RETRYABLE_SETUP, 'RebootTimeout', 'WrongKernel', 'NoBmc', 'BmcPasswordMissing', 'IpmitoolMissing'];

/** Seconds of serial console captured for a node that failed. */
const CONSOLE_SECONDS = 5;

const { readBootState, requestSoftReboot } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  // Both are safe to repeat: requestSoftReboot does nothing on a node that left the boot it was given.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '15 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

const { bmcPowerCycle } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  // A failed ipmitool may still have cycled: the activity first checks whether the node is back.
  retry: { initialInterval: '5 seconds', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
});

const { captureConsole } = proxyActivities<Activities>({
  startToCloseTimeout: `${CONSOLE_SECONDS + 60} seconds`,
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 2, nonRetryableErrorTypes: NON_RETRYABLE },
});

/** The root cause's message, not the ActivityFailure wrapper's. */
function why(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/** The node did not come back in time (as opposed to a wrong kernel or a configuration error). */
function notBack(err: unknown): boolean {
  if (!(err instanceof ActivityFailure)) return false;
  return err.cause instanceof TimeoutFailure || (err.cause instanceof ApplicationFailure && err.cause.type === 'RebootTimeout');
}

function validOperatorSignal(msg: unknown, nodes: readonly string[]): msg is OperatorSignal {
  const m = msg as Partial<OperatorSignal> | null;
  return typeof m?.node === 'string' && nodes.includes(m.node) && OPERATOR_ACTIONS.includes(m.action as OperatorSignal['action']) && (m.note === undefined || typeof m.note === 'string');
}

export async function rebootNodes(rawInput: RebootNodesInput): Promise<RebootNodesResult> {
  const input = parseInput(rebootNodesInput, rawInput, 'rebootNodes');
  const bmc = new Set(input.bmcNodes);
  const progress: RebootProgress = { reason: input.reason, nodes: {}, waitingFor: [] };
  const answers = new Map<string, OperatorSignal>();
  setHandler(rebootProgressQuery, () => progress);
  setHandler(operatorSignal, (msg) => {
    // A signal cannot be refused; a malformed one must not fail the workflow either.
    if (!validOperatorSignal(msg, input.nodes)) {
      log.warn('ignoring an operator signal that names no node of this reboot or no known action', { signal: msg, nodes: input.nodes, actions: OPERATOR_ACTIONS });
      return;
    }
    answers.set(msg.node, msg);
  });

  const show = () =>
    setCurrentDetails(
      [`**Reboot** (${input.reason}) of ${input.nodes.length} node(s)`, ...input.nodes.map((n) => `- ${n}: ${progress.nodes[n].step} (${progress.nodes[n].state})${progress.nodes[n].detail ? `: ${progress.nodes[n].detail}` : ''}`)].join('\n'),
    );
  const step = (node: string, name: string, state: StepState, detail?: string) => {
    progress.nodes[node] = { step: name, state, ...(detail ? { detail } : {}) };
    show();
  };
  for (const n of input.nodes) progress.nodes[n] = { step: 'reboot', state: 'pending' };
  show();

  const { awaitBoot } = proxyActivities<Activities>({
    startToCloseTimeout: (input.timeouts.reboot + 60) * 1000,
    heartbeatTimeout: (input.timeouts.heartbeat ?? 15) * 1000,
    // A retry (e.g. the worker died) resumes the first attempt's deadline from its last heartbeat.
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  });

  async function rebootOne(node: string): Promise<RebootedNode> {
    const ref = { cluster: input.cluster, profileHash: input.profileHash, node };
    step(node, 'read boot state', 'running');
    const before = await readBootState(ref);
    step(node, 'soft reboot', 'running', `boot_id before ${before.bootId}`);
    const soft = await requestSoftReboot({ ...ref, bootIdBefore: before.bootId });
    let attempts = 1;
    const expected = input.expectedRelease?.[node];
    const back = async (how: RebootedNode['how'], requireDown: boolean, detail: string): Promise<RebootedNode> => {
      step(node, 'await boot', 'running', detail);
      const proof = await awaitBoot({ ...ref, bootIdBefore: before.bootId, ...(expected ? { expectedRelease: expected } : {}), timeoutSeconds: input.timeouts.reboot, requireDown });
      step(node, 'rebooted', 'done', `${how}: boot_id ${proof.bootId}, kernel ${proof.kernelRelease}`);
      return { node, bootIdBefore: before.bootId, bootId: proof.bootId, kernelRelease: proof.kernelRelease, how, attempts, sawDown: proof.sawDown, upAfterMs: proof.upAfterMs };
    };

    /** The last error, and after what: for the operator and the failure message. */
    let last: string;
    try {
      return await back('soft', false, soft.detail);
    } catch (err) {
      if (!notBack(err)) throw err;
      last = `after the soft reboot: ${why(err)}`;
    }

    if (bmc.has(node)) {
      step(node, 'bmc power cycle', 'running', `not back within ${input.timeouts.reboot} s of the soft reboot`);
      let cycle: BmcPowerCycleResult | undefined;
      try {
        cycle = await bmcPowerCycle({ ...ref, bootIdBefore: before.bootId });
      } catch (err) {
        last = `the BMC power cycle failed: ${why(err)}`; // the operator can still power-cycle it by hand
      }
      if (cycle) {
        if (cycle.cycled) attempts++;
        try {
          return await back(cycle.cycled ? 'bmc' : 'soft', cycle.cycled, cycle.detail);
        } catch (err) {
          if (!notBack(err)) throw err;
          last = `after the BMC power cycle: ${why(err)}`;
        }
      }
    }

    const deadline = Date.now() + input.timeouts.operator * 1000;
    for (;;) {
      const left = deadline - Date.now();
      const ask = `${node} waits for an operator: power-cycle it by hand, then signal operator {"node":"${node}","action":"power-cycled"} (or "give-up") within ${Math.ceil(left / 1000)} s`;
      step(node, 'operator', 'waiting', `${ask}; last error, ${last}`);
      progress.waitingFor.push(ask);
      const answered = left > 0 && (await condition(() => answers.has(node), left));
      progress.waitingFor = progress.waitingFor.filter((w) => w !== ask);
      if (!answered) throw new Error(`no operator answer within the ${input.timeouts.operator} s deadline; last error, ${last}`);
      const answer = answers.get(node)!;
      answers.delete(node);
      const note = answer.note ? ` (${answer.note})` : '';
      if (answer.action === 'give-up') throw new Error(`the operator gave up on ${node}${note}; last error, ${last}`);
      attempts++;
      try {
        return await back('operator', false, `the operator power-cycled it${note}`);
      } catch (err) {
        if (!notBack(err)) throw err;
        last = `after the operator's power cycle: ${why(err)}`;
      }
    }
  }

  const outcomes = await Promise.all(
    input.nodes.map(async (node): Promise<RebootedNode | RebootFailure> => {
      try {
        return await rebootOne(node);
      } catch (err) {
        if (isCancellation(err)) throw err;
        step(node, progress.nodes[node].step, 'failed', why(err));
        const console = bmc.has(node) ? await captureConsole({ cluster: input.cluster, profileHash: input.profileHash, node, runId: input.runId, seconds: CONSOLE_SECONDS }).catch(() => undefined) : undefined;
        return { node, error: why(err), ...(console ? { console } : {}) };
      }
    }),
  );

  const failed = outcomes.filter((o): o is RebootFailure => 'error' in o);
  const rebooted = outcomes.filter((o): o is RebootedNode => !('error' in o));
  if (failed.length > 0) {
    const lines = failed.map((f) => {
      const console = f.console
        ? f.console.tail.length > 0
          ? `\n  serial console (${f.console.log} in the run store), last lines:\n    ${f.console.tail.join('\n    ')}`
          : `\n  serial console: nothing in ${CONSOLE_SECONDS} s (${f.console.log} in the run store)`
        : '';
      return `${f.node}: ${f.error}${console}`;
    });
    setCurrentDetails(`**Reboot failed** (${input.reason}) on ${failed.map((f) => f.node).join(', ')}`);
    throw ApplicationFailure.create({
      type: 'RebootFailed',
      nonRetryable: true,
      message: `reboot (${input.reason}) failed on ${failed.map((f) => f.node).join(', ')}:\n${lines.join('\n')}`,
      details: [{ failed, rebooted }],
    });
  }
  setCurrentDetails(`**Rebooted** (${input.reason}): ${rebooted.map((r) => `${r.node} (${r.how})`).join(', ')}`);
  return Object.fromEntries(rebooted.map((r) => [r.node, r]));
}
