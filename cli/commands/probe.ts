import path from 'node:path';
import { parseArgs } from 'node:util';
import { TASK_QUEUE } from '../../config/constants';
import type { ProbeSummary } from '../../activities/probeTypes';
import { connectClient, requireWorker, uiLink } from '../client';
import { formatDuration, table, workflowIdFor } from '../format';
import { UsageError } from '../usageError';

export const usage = `ae probe --cluster <name|path.yaml> [--json]
  Runs the probeCluster workflow: per node, reachability, boot_id, kernel release, uptime and
  whether the FragVisor tree exists. Needs a worker (npm start, or npx ae worker).`;

export function probeTable(summary: ProbeSummary): string {
  const rows = summary.nodes.map((n, id) => [
    String(id),
    n.node,
    n.origin ? 'origin' : '',
    n.reachable ? 'yes' : 'NO',
    n.kernelRelease ?? '-',
    n.bootId ?? '-',
    n.uptimeSeconds === undefined ? '-' : formatDuration(n.uptimeSeconds),
    n.fragvisorTree === undefined ? '-' : n.fragvisorTree ? 'yes' : 'no',
    n.error ?? '',
  ]);
  const title = `cluster ${summary.cluster}${summary.simulated ? ' (SIMULATED)' : ''}: ${summary.reachable}/${summary.total} nodes reachable`;
  return `${title}\n${table(['ID', 'NODE', 'ROLE', 'UP', 'KERNEL', 'BOOT_ID', 'UPTIME', 'FRAGVISOR', 'ERROR'], rows)}`;
}

/** Workflow IDs carry the cluster's name, so runs are easy to find in the UI. */
export function probeWorkflowId(cluster: string, now: Date): string {
  return workflowIdFor('probe', cluster, now);
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { cluster: { type: 'string' }, json: { type: 'boolean', default: false } }, strict: true });
  if (!values.cluster) throw new UsageError('--cluster is required (a profile name like sim or echo, or a path to a .yaml profile)');
  const cluster = values.cluster.endsWith('.yaml') || values.cluster.endsWith('.yml') ? path.resolve(values.cluster) : values.cluster;
  const { client, close, namespace } = await connectClient();
  try {
    await requireWorker(client, namespace, TASK_QUEUE);
    const workflowId = probeWorkflowId(cluster, new Date());
    const handle = await client.workflow.start('probeCluster', { taskQueue: TASK_QUEUE, workflowId, args: [{ cluster }] });
    const summary = (await handle.result()) as ProbeSummary;
    const ui = uiLink(namespace, workflowId);
    if (values.json) console.log(JSON.stringify({ workflowId, ui, ...summary }, null, 2));
    else console.log(`${probeTable(summary)}\n\nworkflow ${workflowId}: ${ui}`);
    return summary.reachable === summary.total ? 0 : 3;
  } finally {
    await close();
  }
}
