import { ActivityFailure, ApplicationFailure, proxyActivities, setCurrentDetails, setHandler, upsertSearchAttributes } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { NodeProbe, ProbeSummary } from '../activities/probeTypes';
import { NON_RETRYABLE_SETUP, parseInput } from './failures';
import { probeClusterInput, type ProbeClusterInput } from './inputs';
import { probeProgressQuery, type ProbeProgress } from './queries';
import { CLUSTER, PHASE } from './searchAttributes';


const { loadClusterProfile } = proxyActivities<Activities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_SETUP },
});

/** Why a node could not be probed, for the summary: the root cause, not the wrapper. */
function reason(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * probeCluster: per node, in parallel, whether it answers over SSH, its boot_id, kernel release,
 * uptime and whether the FragVisor tree is there. A node that is rebooting is retried until the
 * profile's probe timeout; a node that stays away is reported, not fatal.
 */
export async function probeCluster(rawInput: ProbeClusterInput): Promise<ProbeSummary> {
  const input = parseInput(probeClusterInput, rawInput, 'probeCluster');
  const progress: ProbeProgress = { phase: 'loading profile', nodes: {} };
  setHandler(probeProgressQuery, () => progress);

  const cluster = await loadClusterProfile({ cluster: input.cluster });
  upsertSearchAttributes([
    { key: CLUSTER, value: cluster.name },
    { key: PHASE, value: 'probe' },
  ]);
  for (const node of cluster.nodes) progress.nodes[node.name] = 'pending';
  progress.phase = 'probing';
  setCurrentDetails(`Probing ${cluster.nodes.length} nodes of **${cluster.name}**${cluster.simulated ? ' (SIMULATED)' : ''}`);

  const { probeNode } = proxyActivities<Activities>({
    startToCloseTimeout: `${cluster.ssh.connectTimeoutSeconds + 30} seconds`,
    scheduleToCloseTimeout: `${cluster.timeouts.probe} seconds`,
    heartbeatTimeout: '10 seconds',
    // A rebooting node refuses connections: keep knocking at a short, bounded interval.
    retry: { initialInterval: '500 milliseconds', backoffCoefficient: 1.5, maximumInterval: '5 seconds', nonRetryableErrorTypes: NON_RETRYABLE_SETUP },
  });

  const nodes: NodeProbe[] = await Promise.all(
    cluster.nodes.map(async (node): Promise<NodeProbe> => {
      try {
        const probe = await probeNode({ cluster: input.cluster, node: node.name, profileHash: cluster.hash });
        progress.nodes[node.name] = 'reachable';
        return probe;
      } catch (err) {
        if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === 'InvalidConfigError') throw err;
        progress.nodes[node.name] = 'unreachable';
        return { node: node.name, origin: node.origin, reachable: false, error: reason(err) };
      }
    }),
  );

  progress.phase = 'done';
  const reachable = nodes.filter((n) => n.reachable).length;
  upsertSearchAttributes([{ key: PHASE, value: 'done' }]);
  setCurrentDetails(`${reachable}/${nodes.length} nodes reachable on **${cluster.name}**`);
  return { cluster: cluster.name, simulated: cluster.simulated, reachable, total: nodes.length, nodes };
}
