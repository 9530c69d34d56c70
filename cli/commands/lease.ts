import { parseArgs } from 'node:util';
import { WorkflowNotFoundError } from '@temporalio/client';
import { TASK_QUEUE } from '../../config/constants';
import { forceReleaseSignal, leaseQuery, leaseWorkflowId, type LeaseState } from '../../workflows/clusterLease';
import { clusterRef } from '../../workflows/inputs';
import { withTemporal, type Connected } from '../client';
import { EXIT, ExitError } from '../exitError';
import { clusterName, printJson, table } from '../format';
import { UsageError } from '../usageError';

export const usage = `ae lease [--cluster NAME] [--task-queue Q] [--json]
ae lease release --cluster NAME --reason "..." [--task-queue Q] [--json]
  One run per cluster: the lease shows which run holds each cluster and which runs wait, in order.
  \`release\` takes the cluster from its holder by force, for a holder that is stuck but still open
  (a terminated holder loses it by itself within a minute): cancel or terminate that run first if
  it may still be using the nodes. The next run in the queue gets the cluster.
  exit codes: 0 ok, 1 the named run no longer holds the cluster, 2 usage, 3 Temporal unreachable,
  4 no lease for that cluster (nothing holds it)`;

interface LeaseRow extends LeaseState {
  leaseId: string;
}

/** The open leases of the task queue (one per cluster in use), or only `cluster`'s. */
async function leases({ client }: Connected, taskQueue: string, cluster?: string): Promise<LeaseRow[]> {
  const ids: string[] = [];
  if (cluster !== undefined) ids.push(leaseWorkflowId(taskQueue, cluster));
  else {
    for await (const w of client.workflow.list({ query: `WorkflowType = "clusterLease" AND ExecutionStatus = "Running" AND TaskQueue = "${taskQueue}"` })) ids.push(w.workflowId);
  }
  const rows: LeaseRow[] = [];
  for (const leaseId of ids) {
    try {
      rows.push({ leaseId, ...(await client.workflow.getHandle(leaseId).query(leaseQuery)) });
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
    }
  }
  return rows.sort((a, b) => a.cluster.localeCompare(b.cluster));
}

export function leasesTable(rows: readonly LeaseRow[]): string {
  if (rows.length === 0) return 'no cluster is leased: every cluster is free';
  return table(
    ['cluster', 'holder', 'waiting (in order)', 'last forced release'],
    rows.map((r) => [r.cluster, r.holder ?? '(free)', r.waiting.join(', ') || '-', r.forced ? `${r.forced.holder}: ${r.forced.reason}` : '-']),
  );
}

function clusterOption(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const parsed = clusterRef.safeParse(value);
  if (!parsed.success) throw new UsageError(`--cluster ${value}: ${parsed.error.issues[0].message}`);
  return clusterName(value);
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { cluster: { type: 'string' }, reason: { type: 'string' }, 'task-queue': { type: 'string', default: TASK_QUEUE }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const [action, ...rest] = positionals;
  if (rest.length > 0 || (action !== undefined && action !== 'release')) throw new UsageError(`unknown arguments: ${positionals.join(' ')} (expected nothing, or release)`);
  const cluster = clusterOption(values.cluster);
  const taskQueue = values['task-queue'];

  if (action === undefined) {
    return withTemporal(async (t) => {
      const rows = await leases(t, taskQueue, cluster);
      if (cluster !== undefined && rows.length === 0) throw new ExitError(`no lease for cluster ${cluster} on task queue ${taskQueue}: nothing holds it`, EXIT.notFound);
      if (values.json) printJson(rows);
      else console.log(leasesTable(rows));
      return EXIT.ok;
    });
  }

  if (cluster === undefined) throw new UsageError('ae lease release needs --cluster NAME');
  const reason = values.reason?.trim() ?? '';
  if (reason === '' || reason.length > 200) throw new UsageError('ae lease release needs --reason "<why>" (1 to 200 characters): it is recorded with the lease');
  return withTemporal(async (t) => {
    const [lease] = await leases(t, taskQueue, cluster);
    if (!lease?.holder) throw new ExitError(`no run holds cluster ${cluster} on task queue ${taskQueue}: nothing to release`, lease ? EXIT.failed : EXIT.notFound);
    const handle = t.client.workflow.getHandle(lease.leaseId);
    await handle.signal(forceReleaseSignal, { holder: lease.holder, reason });
    // The signal is taken in the lease's next workflow task: look until it has been.
    let after = await handle.query(leaseQuery);
    for (let i = 0; i < 50 && after.holder === lease.holder; i++) {
      await new Promise((r) => setTimeout(r, 100));
      after = await handle.query(leaseQuery);
    }
    if (values.json) printJson({ cluster, released: lease.holder, reason, holder: after.holder ?? null, waiting: after.waiting });
    else console.log(`released ${cluster} from ${lease.holder} (${reason}); ${after.holder ? `${after.holder} holds it now` : after.waiting.length > 0 ? `${after.waiting[0]} gets it next` : 'it is free'}`);
    return EXIT.ok;
  });
}
