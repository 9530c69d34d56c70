import type { Client } from '@temporalio/client';
import { temporal } from '@temporalio/proto';

const E = temporal.api.enums.v1.EventType;
type Event = temporal.api.history.v1.IHistoryEvent;

export interface ActivitySpan {
  type: string;
  /** The `node` field of the activity's input, when it has one. */
  node?: string;
  /** Epoch ms: scheduled, last attempt started, closed (completed, failed, timed out, cancelled). */
  scheduled: number;
  started?: number;
  closed?: number;
}

export interface HistoryStat {
  workflowId: string;
  type: string;
  events: number;
  /** The history's size as protobuf, what the server stores and replays. */
  bytes: number;
  start: number;
  close?: number;
  activities: ActivitySpan[];
}

// seconds is a Long or a number, depending on how the history was decoded.
const ms = (e: Event): number => Number(String(e.eventTime?.seconds ?? 0)) * 1000 + (e.eventTime?.nanos ?? 0) / 1e6;

/** `node` of a JSON payload (the default converter's json/plain), if any. */
function inputNode(data: Uint8Array | null | undefined): string | undefined {
  if (!data) return undefined;
  try {
    const v = JSON.parse(Buffer.from(data).toString('utf8')) as { node?: unknown };
    return typeof v?.node === 'string' ? v.node : undefined;
  } catch {
    return undefined;
  }
}

/** Activity spans of one history, in schedule order (pure). */
export function activitySpans(events: readonly Event[]): ActivitySpan[] {
  const byId = new Map<string, ActivitySpan>();
  for (const e of events) {
    const id = String(e.eventId);
    if (e.eventType === E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED) {
      const a = e.activityTaskScheduledEventAttributes;
      const node = inputNode(a?.input?.payloads?.[0]?.data);
      byId.set(id, { type: a?.activityType?.name ?? '?', ...(node ? { node } : {}), scheduled: ms(e) });
    }
    const ref =
      e.activityTaskStartedEventAttributes?.scheduledEventId ??
      e.activityTaskCompletedEventAttributes?.scheduledEventId ??
      e.activityTaskFailedEventAttributes?.scheduledEventId ??
      e.activityTaskTimedOutEventAttributes?.scheduledEventId ??
      e.activityTaskCanceledEventAttributes?.scheduledEventId;
    const span = ref != null ? byId.get(String(ref)) : undefined;
    if (!span) continue;
    if (e.eventType === E.EVENT_TYPE_ACTIVITY_TASK_STARTED) span.started = ms(e);
    else span.closed = ms(e);
  }
  return [...byId.values()];
}

type History = Awaited<ReturnType<ReturnType<Client['workflow']['getHandle']>['fetchHistory']>>;

/** The history of the run and of every child it started, recursively (depth first, in start order). */
export async function fetchHistoryTree(client: Client, workflowId: string, runId?: string): Promise<{ workflowId: string; history: History }[]> {
  const history = await client.workflow.getHandle(workflowId, runId).fetchHistory();
  const children = (history.events ?? []).filter((e) => e.eventType === E.EVENT_TYPE_CHILD_WORKFLOW_EXECUTION_STARTED).map((e) => e.childWorkflowExecutionStartedEventAttributes?.workflowExecution);
  const nested = await Promise.all(children.map((c) => fetchHistoryTree(client, c?.workflowId ?? '', c?.runId ?? undefined)));
  return [{ workflowId, history }, ...nested.flat()];
}

/** The run and every child it started, recursively: events, bytes and activity spans of each. */
export async function historyTree(client: Client, workflowId: string, runId?: string): Promise<HistoryStat[]> {
  return (await fetchHistoryTree(client, workflowId, runId)).map(({ workflowId: id, history }) => {
    const events = history.events ?? [];
    const first = events[0];
    const last = events[events.length - 1];
    const closed = last && last.eventType !== undefined && last.eventType !== null && [E.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, E.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED, E.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, E.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED, E.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT].includes(last.eventType);
    return {
      workflowId: id,
      type: first?.workflowExecutionStartedEventAttributes?.workflowType?.name ?? '?',
      events: events.length,
      bytes: temporal.api.history.v1.History.encode(history).finish().length,
      start: first ? ms(first) : NaN,
      ...(closed ? { close: ms(last) } : {}),
      activities: activitySpans(events),
    };
  });
}

/** The activity types that took longest, summed over their attempts' spans: `awaitGuest 8.0 s (6), ...`. */
export function topActivityTypes(spans: readonly ActivitySpan[], count = 5): string {
  const byType = new Map<string, { ms: number; n: number }>();
  for (const s of spans) {
    if (s.started === undefined || s.closed === undefined) continue;
    const t = byType.get(s.type) ?? { ms: 0, n: 0 };
    byType.set(s.type, { ms: t.ms + s.closed - s.started, n: t.n + 1 });
  }
  return [...byType]
    .sort((a, b) => b[1].ms - a[1].ms)
    .slice(0, count)
    .map(([type, t]) => `${type} ${(t.ms / 1000).toFixed(1)} s (${t.n})`)
    .join(', ');
}
