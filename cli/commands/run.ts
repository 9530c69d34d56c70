import { parseArgs } from 'node:util';
import { WorkflowExecutionAlreadyStartedError, WorkflowFailedError, type Client, type WorkflowHandle, type WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import { TASK_QUEUE } from '../../config/constants';
import { runId as runIdSchema } from '../../workflows/inputs';
import { epochSummary, runProgressQuery, type EpochProgress, type RunProgress } from '../../workflows/progress';
import { connectClient, requireWorker, uiLink } from '../client';
import { workflowIdFor } from '../format';
import { RUN_INPUT_OPTIONS, RUN_INPUT_USAGE, runInputFromArgs } from '../runInput';
import { queryEpochProgress } from '../runs';
import { UsageError } from '../usageError';
import { verdictSummary } from '../verdicts';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';

export const usage = `ae run --cluster <name|path.yaml> [options] [--workflow-id ID] [--wait] [--json]
  Starts the reproduceClaims workflow (task queue ${TASK_QUEUE}) and prints its id and Web UI link.
  \`ae plan\` with the same options prints every step it will run.
  ${RUN_INPUT_USAGE}
  --workflow-id ID             default ae-<cluster>-<UTC time>; also the run's folder in the run store
  --wait                       follow the run: the phase and a live line per node, then the result
  --json                       machine-readable output (with --wait, the live lines go to stderr)
  exit codes: 0 started (with --wait: succeeded), 1 the run failed, 2 usage, 3 Temporal or a worker unreachable`;

/** How often --wait asks the run for its progress. */
const POLL_MS = 500;

/** One line of the live view: `key` identifies it across polls (the phase line, a node). */
export interface ProgressRow {
  key: string;
  cells: string[];
}

/** The stage the run is at: the first not finished, else the last. */
function currentStage(p: RunProgress): string {
  const i = p.stages.findIndex((s) => s.state !== 'done' && s.state !== 'skipped');
  const at = i < 0 ? p.stages.length - 1 : i;
  if (at < 0) return '';
  const s = p.stages[at];
  return `stage ${at + 1}/${p.stages.length} ${s.key} (${s.state})`;
}

/**
 * Progress -> rows: the phase, what the epoch in progress measures (when there is one), what the run
 * waits for, the error, then a row per node (node, step, state, detail).
 */
export function progressRows(p: RunProgress, epoch?: EpochProgress): ProgressRow[] {
  const where = [p.cluster ? `cluster ${p.cluster}${p.simulated ? ' (SIMULATED)' : ''}` : '', p.hypervisor ?? '', currentStage(p)].filter(Boolean).join(', ');
  const rows: ProgressRow[] = [{ key: 'phase', cells: [`phase: ${p.phase}`, where] }];
  if (epoch) rows.push({ key: 'epoch', cells: [`epoch ${epoch.epoch}`, epochSummary(epoch)] });
  if (p.waitingFor) rows.push({ key: 'waiting', cells: [`waiting for: ${p.waitingFor}`] });
  if (p.error) rows.push({ key: 'error', cells: [`error: ${p.error}`] });
  for (const [node, n] of Object.entries(p.nodes)) {
    rows.push({ key: `node:${node}`, cells: [node, n.step, n.state, [n.detail, n.child ? `(in ${n.child})` : ''].filter(Boolean).join(' ')] });
  }
  return rows;
}

/** Node rows as aligned columns (the phase and message rows as they are). */
export function formatRows(rows: ProgressRow[]): string[] {
  const nodes = rows.filter((r) => r.key.startsWith('node:'));
  const widths = [0, 1, 2].map((i) => Math.max(0, ...nodes.map((r) => r.cells[i].length)));
  return rows.map((r) =>
    r.key.startsWith('node:')
      ? `  ${r.cells.map((c, i) => (i < 3 ? c.padEnd(widths[i]) : c)).join('  ').trimEnd()}`
      : r.cells.filter(Boolean).join('  '),
  );
}

/**
 * A terminal frame that replaces the previous one in place: cursor up `previousLines` lines, the new
 * lines (cut to the width so none wraps and the count stays right), then clear what is left below.
 */
export function ttyFrame(previousLines: number, lines: string[], columns = 120): string {
  const width = Math.max(columns - 1, 10);
  const up = previousLines > 0 ? `\x1b[${previousLines}F` : '';
  const body = lines.map((l) => `\x1b[2K${l.length > width ? `${l.slice(0, width - 1)}…` : l}\n`).join('');
  return `${up}${body}\x1b[J`;
}

/**
 * For logs and pipes: only rows whose content changed since `seen` (updated in place), each with a
 * UTC time stamp. A row that disappears prints nothing.
 */
export function changedLines(seen: Map<string, string>, rows: ProgressRow[], now: Date): string[] {
  const stamp = now.toISOString().slice(11, 19);
  const out: string[] = [];
  for (const row of rows) {
    const text = row.cells.filter(Boolean).join('  ');
    if (seen.get(row.key) === text) continue;
    seen.set(row.key, text);
    out.push(`${stamp}Z ${row.key.startsWith('node:') ? `  ${text}` : text}`);
  }
  return out;
}

/** The root cause of a failed run, one message per level: `reproduceClaims: invalid input: ...`. */
export function failureMessage(err: unknown): string {
  const messages: string[] = [];
  let e: unknown = err instanceof WorkflowFailedError ? (err.cause ?? err) : err;
  while (e instanceof Error && messages.length < 5) {
    if (!messages.includes(e.message)) messages.push(e.message);
    e = (e as { cause?: unknown }).cause;
  }
  return messages.join('\n  caused by: ');
}

/** The live view on one stream: redraw in place on a terminal, changed lines with time stamps otherwise. */
export function liveView(stream: NodeJS.WriteStream): (p: RunProgress, epoch?: EpochProgress) => void {
  let drawn: string[] = [];
  const seen = new Map<string, string>();
  return (p, epoch) => {
    const rows = progressRows(p, epoch);
    if (stream.isTTY) {
      const lines = formatRows(rows);
      if (lines.join('\n') === drawn.join('\n')) return;
      stream.write(ttyFrame(drawn.length, lines, stream.columns));
      drawn = lines;
    } else {
      for (const line of changedLines(seen, rows, new Date())) stream.write(`${line}\n`);
    }
  };
}

/**
 * Follows the run until it closes, drawing its progress (and, while it measures, its epoch child's);
 * resolves with its result or rejects with its failure.
 */
export async function follow(handle: WorkflowHandle, draw: (p: RunProgress, epoch?: EpochProgress) => void): Promise<unknown> {
  let settled = false;
  const result = handle.result().finally(() => (settled = true));
  const poll = async () => {
    try {
      const p = await handle.query(runProgressQuery);
      draw(p, await queryEpochProgress(handle.client, p));
    } catch {
      // Not answerable yet (no worker picked up its first task) or a passing hiccup: ask again.
    }
  };
  while (!settled) {
    await poll();
    await Promise.race([result.catch(() => undefined), new Promise((r) => setTimeout(r, POLL_MS))]);
  }
  await poll(); // the final state (done / failed) for the last frame
  return result;
}

async function start(client: Client, workflowId: string, input: unknown): Promise<WorkflowHandleWithFirstExecutionRunId> {
  try {
    // The id is also the run-store folder: never a second run with the same id, even a finished one.
    return await client.workflow.start('reproduceClaims', { taskQueue: TASK_QUEUE, workflowId, args: [input], workflowIdReusePolicy: 'REJECT_DUPLICATE' });
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) throw new UsageError(`--workflow-id ${workflowId}: a run with this id exists already; choose another id (or leave the default)`);
    throw err;
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { ...RUN_INPUT_OPTIONS, 'workflow-id': { type: 'string' }, wait: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
    strict: true,
  });
  const { 'workflow-id': givenId, wait, json, ...flags } = values;
  const { config } = runInputFromArgs(flags);
  const workflowId = givenId ?? workflowIdFor('ae', config.cluster, new Date());
  const id = runIdSchema.safeParse(workflowId);
  if (!id.success) throw new UsageError(`--workflow-id ${workflowId}: ${id.error.issues[0].message}`);

  let connected: Awaited<ReturnType<typeof connectClient>>;
  try {
    connected = await connectClient();
  } catch (err) {
    console.error(`ae run: ${(err as Error).message}`);
    return 3;
  }
  const { client, close, namespace } = connected;
  try {
    try {
      await requireWorker(client, namespace, TASK_QUEUE);
    } catch (err) {
      console.error(`ae run: ${(err as Error).message}`);
      return 3;
    }
    const handle = await start(client, workflowId, config);
    const ui = uiLink(namespace, workflowId);
    if (!json) console.log(`started ${workflowId} on cluster ${config.cluster}\n  ${ui}`);
    if (!wait) {
      if (json) console.log(JSON.stringify({ workflowId, runId: handle.firstExecutionRunId, ui }, null, 2));
      return 0;
    }
    try {
      const result = await follow(handle, liveView(json ? process.stderr : process.stdout));
      if (json) console.log(JSON.stringify({ workflowId, ui, status: 'completed', result }, null, 2));
      else console.log(`\n${workflowId} completed:\n${JSON.stringify(result, null, 2)}\n\n${verdictSummary(result as ReproduceClaimsResult).join('\n')}`);
      return 0;
    } catch (err) {
      if (!(err instanceof WorkflowFailedError)) throw err;
      if (json) console.log(JSON.stringify({ workflowId, ui, status: 'failed', error: failureMessage(err) }, null, 2));
      else console.error(`\n${workflowId} failed: ${failureMessage(err)}\n  ${ui}`);
      return 1;
    }
  } finally {
    await close();
  }
}
