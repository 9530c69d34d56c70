import { parseArgs } from 'node:util';
import { WorkflowFailedError, type WorkflowExecutionDescription, type WorkflowExecutionInfo } from '@temporalio/client';
import type { EpochProgress, RunProgress } from '../../workflows/progress';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import { CLUSTER, PHASE, VERDICT } from '../../workflows/searchAttributes';
import { uiLink, withTemporal, type Connected } from '../client';
import { formatDuration, printJson, table } from '../format';
import { describeRun, isOpen, queryEpochProgress, queryProgress, runIdArg } from '../runs';
import { UsageError } from '../usageError';
import { failureMessage, formatRows, progressRows } from './run';

export const usage = `ae status [runId] [--limit N] [--json]
  With a run id: its status, phase, cluster, hypervisor, whether it is paused, while it measures its
  epoch's progress, a line per node, the stages, the verdicts (or the failure) once it has closed,
  and its Web UI link.
  Without: the most recent reproduceClaims runs (open ones first), with status, phase, cluster and verdict.
  --limit N    how many runs to list (default 20)
  --json       machine-readable output
  exit codes: 0 ok, 2 usage, 3 Temporal unreachable, 4 no such run`;

/** The run's search attributes (set by the workflow as it goes). */
function attributes(info: Pick<WorkflowExecutionInfo, 'typedSearchAttributes'>): { phase?: string; cluster?: string; verdict?: string } {
  const a = info.typedSearchAttributes;
  return Object.fromEntries(Object.entries({ phase: a.get(PHASE), cluster: a.get(CLUSTER), verdict: a.get(VERDICT) }).filter(([, v]) => v !== undefined));
}

/** Wall time of a run so far (open) or in all (closed). */
function took(info: Pick<WorkflowExecutionInfo, 'startTime' | 'closeTime'>, now: Date): string {
  return formatDuration(((info.closeTime ?? now).getTime() - info.startTime.getTime()) / 1000);
}

const utc = (d: Date) => `${d.toISOString().slice(0, 19).replace('T', ' ')}Z`;

export interface RunSummaryRow {
  workflowId: string;
  status: string;
  phase?: string;
  cluster?: string;
  verdict?: string;
  startTime: string;
  closeTime?: string;
}

export function summaryRow(info: WorkflowExecutionInfo): RunSummaryRow {
  return { workflowId: info.workflowId, status: info.status.name, ...attributes(info), startTime: info.startTime.toISOString(), ...(info.closeTime ? { closeTime: info.closeTime.toISOString() } : {}) };
}

/** Newest first: the server lists open runs first, then by close time. */
export const newestFirst = (a: RunSummaryRow, b: RunSummaryRow): number => b.startTime.localeCompare(a.startTime);

export function runsTable(rows: readonly RunSummaryRow[], now: Date): string {
  return table(
    ['RUN', 'STATUS', 'PHASE', 'CLUSTER', 'VERDICT', 'STARTED (UTC)', 'TOOK'],
    rows.map((r) => [
      r.workflowId,
      r.status,
      r.phase ?? '-',
      r.cluster ?? '-',
      r.verdict ?? '-',
      utc(new Date(r.startTime)),
      took({ startTime: new Date(r.startTime), ...(r.closeTime ? { closeTime: new Date(r.closeTime) } : {}) }, now),
    ]),
  );
}

export interface RunStatus {
  workflowId: string;
  runId: string;
  status: string;
  taskQueue: string;
  startTime: string;
  closeTime?: string;
  phase?: string;
  cluster?: string;
  verdict?: string;
  paused?: boolean;
  /** The `progress` query; absent when no worker answered. */
  progress?: RunProgress;
  /** While it measures: its epoch child's progress. */
  epoch?: EpochProgress;
  result?: ReproduceClaimsResult;
  failure?: string;
  ui: string;
}

/** The text view of one run. */
export function renderStatus(s: RunStatus, now: Date): string {
  const p = s.progress;
  const lines = [`run ${s.workflowId}: ${s.status}, started ${utc(new Date(s.startTime))}, ${s.closeTime ? 'took' : 'running for'} ${took({ startTime: new Date(s.startTime), ...(s.closeTime ? { closeTime: new Date(s.closeTime) } : {}) }, now)}`];
  if (p) {
    lines.push(...formatRows(progressRows(p, s.epoch)));
    if (s.paused !== undefined) lines.push(`paused: ${s.paused ? 'yes (ae resume to go on)' : 'no'}`);
    if (p.stages.length > 0) {
      lines.push('stages:');
      lines.push(...p.stages.map((st, i) => `  ${i + 1}/${p.stages.length}  ${st.key}  ${st.state}`));
    }
  } else {
    lines.push(`phase: ${s.phase ?? '-'}  cluster ${s.cluster ?? '-'}  (no worker answered the progress query: start one with \`npx ae worker\` for the per-node view)`);
  }
  if (s.result) {
    const r = s.result;
    lines.push(`result: ${r.dryRun ? 'dry run (plan only)' : `${r.epochs.length} epoch(s), ${r.measurements} measurement(s)`}${r.simulated ? ', SIMULATED' : ''}`);
    if (r.verdicts?.length) lines.push(table(['claim', 'verdict', 'why'], r.verdicts.map((v) => [v.id, v.verdict.toUpperCase(), v.why])));
    lines.push(`run store: ${r.runDir}`);
  } else if (p?.runDir) lines.push(`run store: ${p.runDir}`);
  if (s.failure) lines.push(`failure: ${s.failure}`);
  lines.push(s.ui);
  return lines.join('\n');
}

/** How a closed run ended: its result, or its failure's messages. */
async function outcome(t: Connected, d: WorkflowExecutionDescription): Promise<{ result?: ReproduceClaimsResult; failure?: string }> {
  if (isOpen(d)) return {};
  try {
    return { result: (await t.client.workflow.getHandle(d.workflowId, d.runId).result()) as ReproduceClaimsResult };
  } catch (err) {
    if (err instanceof WorkflowFailedError) return { failure: failureMessage(err) };
    throw err;
  }
}

async function oneRun(t: Connected, id: string): Promise<RunStatus> {
  const d = await describeRun(t, id);
  const [progress, ended] = await Promise.all([queryProgress(t.client, id), outcome(t, d)]);
  const epoch = progress && isOpen(d) ? await queryEpochProgress(t.client.workflow, progress) : undefined;
  return {
    workflowId: d.workflowId,
    runId: d.runId,
    status: d.status.name,
    taskQueue: d.taskQueue,
    startTime: d.startTime.toISOString(),
    ...(d.closeTime ? { closeTime: d.closeTime.toISOString() } : {}),
    ...attributes(d),
    ...(progress ? { progress, paused: progress.paused ?? false } : {}),
    ...(epoch ? { epoch } : {}),
    ...ended,
    ui: uiLink(t.namespace, d.workflowId),
  };
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { limit: { type: 'string' }, json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  const id = positionals.length > 0 ? runIdArg(positionals) : undefined;
  const limit = Number(values.limit ?? 20);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw new UsageError(`--limit ${values.limit}: expected a whole number from 1 to 1000`);
  if (id !== undefined && values.limit !== undefined) throw new UsageError('--limit applies to the list of runs, not to one run');
  return withTemporal(async (t) => {
    if (id !== undefined) {
      const s = await oneRun(t, id);
      if (values.json) printJson(s);
      else console.log(renderStatus(s, new Date()));
      return 0;
    }
    const rows: RunSummaryRow[] = [];
    for await (const info of t.client.workflow.list({ query: `WorkflowType = 'reproduceClaims'`, pageSize: limit })) {
      rows.push(summaryRow(info));
      if (rows.length >= limit) break;
    }
    rows.sort(newestFirst);
    if (values.json) printJson(rows);
    else console.log(rows.length === 0 ? `no reproduceClaims runs in namespace ${t.namespace} (start one: ae run --cluster sim)` : runsTable(rows, new Date()));
    return 0;
  });
}
