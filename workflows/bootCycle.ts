import { ApplicationFailure, executeChild } from '@temporalio/workflow';
import type { Hypervisor } from './inputs';
import { messagingLayer, type MessagingLayerFailure } from './messagingLayer';
import type { RunPhase, StepState } from './progress';
import { rebootNodes } from './rebootNodes';
import { firstLine, rootFailure, rootMessage } from './failureCause';

/**
 * A boot cycle, the unit every FragVisor epoch starts from (ARTIFACT.md steps 3-4): reboot the nodes
 * into their host kernel (proven, escalating), then for FragVisor load the RDMA messaging layer on
 * them. A hung or half-connected layer is only cured by rebooting every node, so a `hang` or
 * `rdma-error` gets a fresh cycle and another attempt, at most `MSG_LAYER_RETRIES` times; any
 * other failure ends the cycle at once.
 */

/** Reboot cycles (and new attempts) the messaging layer gets after its first failure. */
export const MSG_LAYER_RETRIES = 2;

export interface CycleNode {
  name: string;
  rdmaIp: string;
  bmc: boolean;
}

export interface BootCycleInput {
  cluster: string;
  profileHash: string;
  runId: string;
  hypervisor: Hypervisor;
  /** The first n nodes, in node-id order. */
  nodes: CycleNode[];
  /** `uname -r` each node must come back with. */
  expectedRelease: Record<string, string>;
  reason: string;
  timeouts: { reboot: number; operator: number; messagingLayer: number };
  /** Prefix of the children's workflow ids, e.g. `<run>/fragvisor` or `<run>/fragvisor/E1-n4`. */
  idPrefix: string;
}

export interface BootCycleResult {
  bootIds: Record<string, string>;
  /** How each node came back from its last reboot (soft / bmc / operator). */
  reboots: Record<string, string>;
  messagingLayer?: { nodes: number; attempts: number };
}

/** What the caller shows while the cycle runs. */
export interface CycleReporter {
  phase(p: RunPhase, details: string): void;
  node(node: string, step: string, state: StepState, extra?: { detail?: string; child?: string }): void;
}

export async function bootCycle(input: BootCycleInput, report: CycleReporter, counter: { reboots: number }): Promise<BootCycleResult> {
  const { nodes } = input;
  const ref = { cluster: input.cluster, profileHash: input.profileHash, runId: input.runId };
  const reboot = async (reason: string): Promise<Pick<BootCycleResult, 'bootIds' | 'reboots'>> => {
    report.phase('reboot', reason);
    const child = `${input.idPrefix}/reboot/${++counter.reboots}`;
    for (const n of nodes) report.node(n.name, 'reboot', 'running', { child });
    try {
      const result = await executeChild(rebootNodes, {
        workflowId: child,
        args: [
          {
            ...ref,
            nodes: nodes.map((n) => n.name),
            bmcNodes: nodes.filter((n) => n.bmc).map((n) => n.name),
            expectedRelease: input.expectedRelease,
            reason,
            timeouts: { reboot: input.timeouts.reboot, operator: input.timeouts.operator },
          },
        ],
      });
      for (const n of nodes) report.node(n.name, 'reboot', 'done', { detail: `${result[n.name].kernelRelease} (${result[n.name].how})` });
      return {
        bootIds: Object.fromEntries(Object.entries(result).map(([n, r]) => [n, r.bootId])),
        reboots: Object.fromEntries(Object.entries(result).map(([n, r]) => [n, r.how])),
      };
    } catch (err) {
      for (const n of nodes) report.node(n.name, 'reboot', 'failed', { detail: firstLine(rootMessage(err)), child });
      throw err;
    }
  };

  let booted = await reboot(input.reason);
  if (input.hypervisor !== 'fragvisor') return booted;
  report.phase('messaging layer', `msg_rdma on ${nodes.length} node(s), insmod in node order`);
  for (let attempt = 1; ; attempt++) {
    const child = `${input.idPrefix}/msg-layer/${counter.reboots}`;
    for (const n of nodes) report.node(n.name, 'messaging layer', 'running', { child });
    try {
      const layer = await executeChild(messagingLayer, {
        workflowId: child,
        args: [{ ...ref, nodes: nodes.map((n) => ({ name: n.name, rdmaIp: n.rdmaIp })), bootIds: booted.bootIds, timeoutSeconds: input.timeouts.messagingLayer }],
      });
      for (const n of layer.nodes) report.node(n.node, 'messaging layer', 'done', { detail: `node ${n.nodeId}, ${n.joined.length} peer(s) joined` });
      return { ...booted, messagingLayer: { nodes: layer.nodes.length, attempts: attempt } };
    } catch (err) {
      const failure = rootFailure(err);
      const details = failure?.type === 'MessagingLayerFailed' ? (failure.details?.[0] as MessagingLayerFailure | undefined) : undefined;
      const curable = details && (details.kind === 'hang' || details.kind === 'rdma-error');
      for (const n of nodes) {
        const bad = details?.nodes.includes(n.name);
        report.node(n.name, 'messaging layer', bad ? 'failed' : 'pending', bad ? { detail: firstLine(details?.lines.at(-1) ?? rootMessage(err)) } : {});
      }
      if (!curable || attempt > MSG_LAYER_RETRIES) {
        const tried = attempt > 1 ? ` after ${attempt} attempts with a reboot cycle before each retry` : '';
        throw ApplicationFailure.nonRetryable(`messaging layer failed${tried}: ${rootMessage(err)}`, 'MessagingLayerFailed', details);
      }
      booted = await reboot(`messaging layer attempt ${attempt} failed (${details.kind} on ${details.nodes.join(', ')}): reboot before retrying`);
    }
  }
}
