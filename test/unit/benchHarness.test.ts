import { temporal } from '@temporalio/proto';
import { activitySpans, topActivityTypes } from '../../bench/history';
import { fmt, markdown, verdict, type Machine, type Row } from '../../bench/report';
import { meets, quantile, spread, unionLength } from '../../bench/stats';

/** The pure parts of `npm run bench` (bench/): summaries, verdicts, the critical-path bound, the table, history spans. */

describe('quantile and spread', () => {
  it.each([
    [[1], 0.5, 1],
    [[1, 2], 0.5, 1.5],
    [[1, 2, 3, 4], 0.25, 1.75],
    [[1, 2, 3, 4], 0.95, 3.85],
    [[10, 20, 30], 1, 30],
    [[10, 20, 30], 0, 10],
  ])('quantile(%j, %d) = %d', (xs, q, want) => {
    expect(quantile(xs, q)).toBeCloseTo(want, 10);
  });

  it('sorts before summarising and reports the IQR', () => {
    expect(spread([5, 1, 4, 2, 3])).toEqual({ n: 5, median: 3, min: 1, max: 5, q1: 2, q3: 4 });
  });

  it('is empty-safe', () => {
    const s = spread([]);
    expect(s.n).toBe(0);
    expect(Number.isNaN(s.median)).toBe(true);
  });
});

describe('targets', () => {
  it.each([
    [{ op: '<', value: 30 } as const, 29.9, true],
    [{ op: '<', value: 30 } as const, 30, false],
    [{ op: '<=', value: 0 } as const, 0, true],
    [{ op: '>=', value: 0.95 } as const, 0.949, false],
    [{ op: '>=', value: 0.95 } as const, 0.95, true],
    [{ op: '>=', value: 0.95 } as const, NaN, false],
  ])('%j on %d -> %s', (t, v, want) => {
    expect(meets(t, v)).toBe(want);
  });

  const row = (values: number[], target?: Row['target']): Row => ({ figure: '2. overhead', what: 'x', unit: 'ms', values, ...(target ? { target } : {}), command: 'c', load: [1, 1, 1] });
  it.each([
    [row([10, 40, 20], { op: '<', value: 30 }), 'pass'],
    [row([40, 50, 20], { op: '<', value: 30 }), 'miss'],
    [row([], { op: '<', value: 30 }), 'n/a'],
    [row([1]), 'n/a'],
    [row([1], { text: '<= 0.5 x pssh', pass: false }), 'miss'],
  ])('verdict %#', (r, want) => {
    expect(verdict(r)).toBe(want);
  });
});

describe('unionLength: time at least one activity ran', () => {
  it.each([
    [[], 0],
    [[[0, 10]], 10],
    [[[0, 10], [20, 25]], 15], // two sequential stages
    [[[0, 10], [0, 7], [2, 9]], 10], // parallel nodes: the longest
    [[[0, 10], [5, 15], [30, 31]], 16], // overlapping, then a gap
    [[[5, 5], [3, 1]], 0], // empty and reversed spans count for nothing
    [[[20, 25], [0, 10]], 15], // any order
  ] as [[number, number][], number][])('%j -> %d', (spans, want) => {
    expect(unionLength(spans)).toBe(want);
  });
});

describe('topActivityTypes: where the time of a run goes', () => {
  const span = (type: string, started?: number, closed?: number) => ({ type, scheduled: 0, ...(started !== undefined ? { started } : {}), ...(closed !== undefined ? { closed } : {}) });
  it.each([
    ['longest first, summed per type, with counts', [span('a', 0, 1000), span('b', 0, 3000), span('a', 0, 2500)], 5, 'a 3.5 s (2), b 3.0 s (1)'],
    ['only the top ones', [span('a', 0, 100), span('b', 0, 200), span('c', 0, 300)], 2, 'c 0.3 s (1), b 0.2 s (1)'],
    ['spans not started or not closed do not count', [span('a', 0), span('b'), span('c', 10, 60)], 5, 'c 0.1 s (1)'],
    ['nothing ran', [], 5, ''],
  ])('%s', (_what, spans, count, want) => {
    expect(topActivityTypes(spans, count)).toBe(want);
  });
});

describe('markdown table', () => {
  const machine: Machine = { cpu: 'Xeon', cores: 2, memoryGiB: 23.5, node: 'v20.20.2', kernel: '6.1', loadAtStart: [2.5, 1, 0.5], date: '2026-11-26T16:00:00.000Z' };
  it('one row per figure, median with unit, spread, verdict, load, command (pipes escaped)', () => {
    const md = markdown(machine, [{ figure: '2. overhead', what: 'wall / activities', unit: 'ms', values: [12, 10, 14, 11], target: { op: '<', value: 30 }, command: 'npm run bench -- --only overhead | tee x', load: [3, 2, 1] }], 'bench');
    expect(md).toContain('Machine: Xeon, 2 cores, 23.5 GiB, Node v20.20.2');
    expect(md).toContain('| 2. overhead | wall / activities | < 30 ms | 11.5 ms | 10..14, IQR 10.8..12.5 (n=4) | pass | 3 2 1 |  | `npm run bench -- --only overhead \\| tee x` |');
  });

  it('a figure without values says not measured', () => {
    const md = markdown(machine, [{ figure: '1. fan-out', what: 'pssh', unit: 'ms', values: [], note: 'not measured: no pssh', command: 'c', load: [0, 0, 0] }], 'bench');
    expect(md).toContain('| not measured | - | n/a |');
  });

  it.each([
    [1234.4, '1234'],
    [99.94, '99.9'],
    [0.95123, '0.951'],
    [NaN, '-'],
  ])('fmt(%d) = %s', (x, want) => {
    expect(fmt(x)).toBe(want);
  });
});

describe('activitySpans', () => {
  const E = temporal.api.enums.v1.EventType;
  const at = (s: number) => ({ seconds: s, nanos: 500_000_000 });
  const payload = (v: unknown) => ({ payloads: [{ data: Buffer.from(JSON.stringify(v)) }] });
  it('joins scheduled, started and closed by scheduledEventId, with the input node', () => {
    const events = [
      { eventId: 5, eventType: E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, eventTime: at(1), activityTaskScheduledEventAttributes: { activityType: { name: 'awaitBoot' }, input: payload({ node: 'node1' }) } },
      { eventId: 6, eventType: E.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED, eventTime: at(1), activityTaskScheduledEventAttributes: { activityType: { name: 'loadClusterProfile' }, input: payload('x') } },
      { eventId: 7, eventType: E.EVENT_TYPE_ACTIVITY_TASK_STARTED, eventTime: at(2), activityTaskStartedEventAttributes: { scheduledEventId: 5 } },
      { eventId: 8, eventType: E.EVENT_TYPE_ACTIVITY_TASK_COMPLETED, eventTime: at(4), activityTaskCompletedEventAttributes: { scheduledEventId: 5 } },
      { eventId: 9, eventType: E.EVENT_TYPE_ACTIVITY_TASK_FAILED, eventTime: at(3), activityTaskFailedEventAttributes: { scheduledEventId: 6 } },
    ].map((e) => temporal.api.history.v1.HistoryEvent.fromObject(e));
    expect(activitySpans(events)).toEqual([
      { type: 'awaitBoot', node: 'node1', scheduled: 1500, started: 2500, closed: 4500 },
      { type: 'loadClusterProfile', scheduled: 1500, closed: 3500 },
    ]);
  });
});
