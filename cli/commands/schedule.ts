import { parseArgs } from 'node:util';
import { ScheduleAlreadyRunning, ScheduleNotFoundError, ScheduleOverlapPolicy, type ScheduleSummary } from '@temporalio/client';
import { TASK_QUEUE } from '../../config/constants';
import { runId as runIdSchema } from '../../workflows/inputs';
import { requireWorker, withTemporal } from '../client';
import { formatInterval, parseDuration } from '../duration';
import { EXIT, ExitError } from '../exitError';
import { clusterName, printJson, table } from '../format';
import { RUN_INPUT_OPTIONS, RUN_INPUT_USAGE, runInputFromArgs } from '../runInput';
import { UsageError } from '../usageError';

export const usage = `ae schedule --cluster <name|path.yaml> --every 7d [options] [--id NAME] [--json]
ae schedule list [--json]
ae schedule delete <id> [--json]
  A periodic re-check: a Temporal Schedule that starts reproduceClaims (task queue ${TASK_QUEUE}, the
  same input as \`ae run\` with these options) every interval. A re-check that comes due while the
  previous one still runs is skipped (overlap policy SKIP), never queued behind it. Each run's id is
  <id>-<UTC time>. The schedule shows in the Web UI under Schedules.
  --every D                    the interval: 7d, 12h, 1d12h, 30m (at least 1m)
  --id NAME                    the schedule's id (default recheck-<cluster>); letters, digits, _ . : @ + -
  ${RUN_INPUT_USAGE}
  --json                       machine-readable output
  exit codes: 0 ok, 2 usage (or the id is taken), 3 Temporal unreachable, 4 no such schedule`;

/** Shorter intervals would only fight over the cluster lease. */
const MIN_EVERY_MS = 60_000;
/** Temporal appends `-<RFC 3339 time>` (21 characters) to the id for each run; run ids stay <= 200. */
const MAX_ID = 150;

/** `--every`, checked: milliseconds. */
export function everyMs(text: string | undefined): number {
  if (text === undefined) throw new UsageError('--every is required: how often to re-check, e.g. --every 7d');
  const ms = parseDuration(text);
  if (ms instanceof Error) throw new UsageError(`--every ${text}: ${ms.message}`);
  if (ms < MIN_EVERY_MS) throw new UsageError(`--every ${text}: at least 1m`);
  return ms;
}

/** `--id`, or recheck-<cluster>: it prefixes run ids, so it must be one. */
export function scheduleId(given: string | undefined, cluster: string): string {
  const id = given ?? `recheck-${clusterName(cluster)}`;
  const parsed = runIdSchema.safeParse(id);
  if (!parsed.success) throw new UsageError(`--id ${id}: ${parsed.error.issues[0].message}`);
  if (id.length > MAX_ID) throw new UsageError(`--id: at most ${MAX_ID} characters (its runs' ids add a time stamp)`);
  return id;
}

export interface ScheduleRow {
  id: string;
  cluster?: string;
  every?: string;
  paused: boolean;
  nextRun?: string;
  lastRun?: string;
}

export function scheduleRow(s: ScheduleSummary): ScheduleRow {
  const every = s.spec?.intervals?.[0]?.every;
  const next = s.info.nextActionTimes[0];
  const last = s.info.recentActions.at(-1);
  const cluster = s.memo?.cluster;
  return {
    id: s.scheduleId,
    ...(typeof cluster === 'string' ? { cluster } : {}),
    ...(every !== undefined ? { every: formatInterval(every) } : {}),
    paused: s.state.paused,
    ...(next ? { nextRun: next.toISOString() } : {}),
    ...(last ? { lastRun: last.action.workflow.workflowId } : {}),
  };
}

export function schedulesTable(rows: readonly ScheduleRow[]): string {
  return table(
    ['SCHEDULE', 'CLUSTER', 'EVERY', 'NEXT RUN (UTC)', 'LAST RUN', 'PAUSED'],
    rows.map((r) => [r.id, r.cluster ?? '-', r.every ?? '-', r.nextRun?.slice(0, 19).replace('T', ' ') ?? '-', r.lastRun ?? '-', r.paused ? 'yes' : 'no']),
  );
}

async function create(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { ...RUN_INPUT_OPTIONS, every: { type: 'string' }, id: { type: 'string' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')}: the subcommands are list and delete <id>; create takes only options`);
  const { every, id: givenId, json, ...flags } = values;
  const ms = everyMs(every);
  const { config } = runInputFromArgs(flags);
  const id = scheduleId(givenId, config.cluster);
  return withTemporal(async ({ client, namespace }) => {
    try {
      await client.schedule.create({
        scheduleId: id,
        spec: { intervals: [{ every: ms }] },
        action: { type: 'startWorkflow', workflowType: 'reproduceClaims', taskQueue: TASK_QUEUE, workflowId: id, args: [config] },
        policies: { overlap: ScheduleOverlapPolicy.SKIP },
        memo: { cluster: config.cluster, every: formatInterval(ms) },
      });
    } catch (err) {
      if (err instanceof ScheduleAlreadyRunning) throw new ExitError(`a schedule ${id} exists already: ae schedule delete ${id} first, or pass another --id`, EXIT.usage);
      throw err;
    }
    const worker = await requireWorker(client, namespace, TASK_QUEUE).then(
      () => undefined,
      (err: Error) => err.message,
    );
    if (json) printJson({ scheduleId: id, every: formatInterval(ms), taskQueue: TASK_QUEUE, input: config });
    else console.log(`schedule ${id}: reproduceClaims on ${config.cluster} every ${formatInterval(ms)} (a due run is skipped while the previous one runs)`);
    // Not an error: the schedule is for later, but its runs will wait until a worker polls.
    if (worker) console.error(`note: ${worker}`);
    return EXIT.ok;
  });
}

async function list(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, strict: true });
  return withTemporal(async ({ client, namespace }) => {
    const rows: ScheduleRow[] = [];
    for await (const s of client.schedule.list()) if (s.action?.workflowType === 'reproduceClaims') rows.push(scheduleRow(s));
    rows.sort((a, b) => a.id.localeCompare(b.id));
    if (values.json) printJson(rows);
    else console.log(rows.length === 0 ? `no reproduceClaims schedules in namespace ${namespace} (create one: ae schedule --cluster sim --every 7d)` : schedulesTable(rows));
    return EXIT.ok;
  });
}

async function remove(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError('expected one schedule id: ae schedule delete <id> (ae schedule list shows them)');
  const [id] = positionals;
  return withTemporal(async ({ client, namespace }) => {
    try {
      await client.schedule.getHandle(id).delete();
    } catch (err) {
      if (err instanceof ScheduleNotFoundError) throw new ExitError(`no schedule ${id} in namespace ${namespace} (ae schedule list shows them)`, EXIT.notFound);
      throw err;
    }
    if (values.json) printJson({ scheduleId: id, deleted: true });
    else console.log(`schedule ${id} deleted (runs it started are not affected)`);
    return EXIT.ok;
  });
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'list') return list(rest);
  if (sub === 'delete') return remove(rest);
  return create(sub === 'create' ? rest : argv);
}
