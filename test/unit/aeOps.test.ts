import { ExitError, exitCodeOf } from '../../cli/exitError';
import { formatInterval, parseDuration } from '../../cli/duration';
import { runIdArg } from '../../cli/runs';
import { UsageError } from '../../cli/usageError';
import { checkReason } from '../../cli/commands/abort';
import { commandLine, formatResults, selectNodes, splitCommand, type NodeResult } from '../../cli/commands/exec';
import { fileHeader, sortLogFiles } from '../../cli/commands/logs';
import { resumeIds } from '../../cli/commands/resume';
import { everyMs, scheduleId, scheduleRow, schedulesTable } from '../../cli/commands/schedule';
import { newestFirst, renderStatus, runsTable, type RunStatus, type RunSummaryRow } from '../../cli/commands/status';
import type { ScheduleSummary } from '@temporalio/client';

/** The pure parts of ae status / logs / cancel / pause / resume / abort / exec / schedule. */

describe('durations (ae schedule --every, ae exec --timeout)', () => {
  it.each([
    ['7d', 7 * 86_400_000],
    ['12h', 12 * 3_600_000],
    ['1d12h', 36 * 3_600_000],
    ['30m', 1_800_000],
    ['90s', 90_000],
    ['2w', 14 * 86_400_000],
    ['1.5h', 5_400_000],
    ['45', 45_000],
    [' 7D ', 7 * 86_400_000],
  ])('%s -> %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', 'd', '7x', '7 d', '-1h', 'h7', '1d 2h'])('%j is refused with the expected forms', (text) => {
    const r = parseDuration(text);
    expect(r).toBeInstanceOf(Error);
    expect((r as Error).message).toContain('expected a duration like 7d, 12h, 1d12h');
  });

  it.each([
    [7 * 86_400_000, '7d'],
    [36 * 3_600_000, '1d12h'],
    [90_000, '1m30s'],
    [3_600_000, '1h'],
    [0, '0s'],
  ])('%d ms is written %s', (ms, text) => {
    expect(formatInterval(ms)).toBe(text);
  });

  it('--every: required, a duration, at least a minute', () => {
    expect(everyMs('7d')).toBe(604_800_000);
    expect(() => everyMs(undefined)).toThrow(/--every is required/);
    expect(() => everyMs('weekly')).toThrow(/--every weekly: expected a duration/);
    expect(() => everyMs('30s')).toThrow(/at least 1m/);
  });
});

describe('run ids on the command line', () => {
  it('one valid id is taken', () => {
    expect(runIdArg(['ae-sim-2026-11-26T10-00-00-000Z'])).toBe('ae-sim-2026-11-26T10-00-00-000Z');
  });
  it.each([
    [[], /expected one run id .* got 0/],
    [['a', 'b'], /got 2/],
    [['a/b'], /run id "a\/b": expected a workflow id of letters/],
    [['x..y'], /without "\.\."/],
  ])('%j is a usage error', (args, message) => {
    expect(() => runIdArg(args)).toThrow(UsageError);
    expect(() => runIdArg(args)).toThrow(message);
  });
});

describe('exit codes', () => {
  it('an ExitError carries its own; a gRPC UNAVAILABLE (also as a cause) is 3; anything else 1', () => {
    expect(exitCodeOf(new ExitError('gone', 4))).toBe(4);
    const unavailable = Object.assign(new Error('14 UNAVAILABLE: No connection established'), { code: 14, details: 'x', metadata: {} });
    expect(exitCodeOf(unavailable)).toBe(3);
    expect(exitCodeOf(new Error('wrapped', { cause: unavailable }))).toBe(3);
    expect(exitCodeOf(new Error('boom'))).toBe(1);
  });
});

describe('ae abort --reason', () => {
  it('is required, trimmed, at most 200 characters', () => {
    expect(checkReason('  node3 is on fire ')).toBe('node3 is on fire');
    expect(() => checkReason(undefined)).toThrow(/--reason is required/);
    expect(() => checkReason('   ')).toThrow(/--reason is required/);
    expect(checkReason('x'.repeat(200))).toHaveLength(200);
    expect(() => checkReason('x'.repeat(201))).toThrow("--reason: abort's reason is 201 characters; at most 200");
  });
});

describe('ae resume: the new run ids', () => {
  it.each([
    ['run-a', ['run-a-r1', 'run-a-r2', 'run-a-r3']],
    ['run-a-r1', ['run-a-r2', 'run-a-r3', 'run-a-r4']],
    ['run-a-r9', ['run-a-r10', 'run-a-r11', 'run-a-r12']],
    ['a-rx', ['a-rx-r1', 'a-rx-r2', 'a-rx-r3']],
  ])('%s -> %j', (id, ids) => {
    expect(resumeIds(id, 3)).toEqual(ids);
  });
  it('never offers an id the run store could not hold', () => {
    expect(resumeIds('x'.repeat(199), 3)).toEqual([]);
  });
});

describe('ae exec arguments', () => {
  it('splits options from the command at the first --', () => {
    expect(splitCommand(['--cluster', 'sim', '--', 'echo', '--', 'x'])).toEqual({ options: ['--cluster', 'sim'], command: ['echo', '--', 'x'] });
    expect(() => splitCommand(['--cluster', 'sim', 'uname'])).toThrow(/expected the command after --/);
    expect(() => splitCommand(['--cluster', 'sim', '--'])).toThrow(/expected the command after --/);
  });
  it.each([
    [['uname -r; hostname'], 'uname -r; hostname'],
    [['echo', '$HOME', 'a b'], "echo '$HOME' 'a b'"],
    [['sh', '-c', 'exit 3'], "sh -c 'exit 3'"],
    [['X=1', 'env'], "'X=1' env"],
  ])('%j runs as %s', (argv, line) => {
    expect(commandLine(argv)).toBe(line);
  });
  it('--nodes keeps profile order and names unknown nodes', () => {
    const all = ['node0', 'node1', 'node2', 'node3'];
    expect(selectNodes(all)).toEqual(all);
    expect(selectNodes(all, 'node3, node1')).toEqual(['node1', 'node3']);
    expect(() => selectNodes(all, 'node1,node9')).toThrow('--nodes node1,node9: unknown node(s) node9; the profile has node0, node1, node2, node3');
    expect(() => selectNodes(all, ',')).toThrow(/no node named/);
  });
  it('output: per node its exit, stdout then stderr, in the order given; a summary naming the failed', () => {
    const results: NodeResult[] = [
      { node: 'node0', exitCode: 0, stdout: 'a\nb', stderr: '', ms: 12 },
      { node: 'node1', exitCode: 2, stdout: 'out\n', stderr: 'bad\n', ms: 30 },
      { node: 'node2', exitCode: null, stdout: '', stderr: '', ms: 5, error: 'node node2: host key of 127.0.0.1:2222 is not in /k' },
    ];
    expect(formatResults(results)).toBe(
      [
        '=== node0 (exit 0, 12 ms)',
        'a',
        'b',
        '=== node1 (exit 2, 30 ms)',
        'out',
        '--- node1 stderr',
        'bad',
        '=== node2 (failed: node node2: host key of 127.0.0.1:2222 is not in /k, 5 ms)',
        '',
        '3 node(s): 1 ok, 2 failed (node1, node2)',
        '',
      ].join('\n'),
    );
    expect(formatResults([results[0]])).toMatch(/\n1 node\(s\): 1 ok\n$/);
  });
});

describe('ae logs layout', () => {
  it('node by node in natural order, files by name; tail-style headers', () => {
    const f = (node: string, name: string) => ({ node, relative: `logs/${node}/${name}`, size: 1 });
    expect(sortLogFiles([f('node10', 'a.log'), f('node2', 'b.log'), f('guest', 'x.log'), f('node2', 'a.log')]).map((x) => x.relative)).toEqual([
      'logs/guest/x.log',
      'logs/node2/a.log',
      'logs/node2/b.log',
      'logs/node10/a.log',
    ]);
    expect(fileHeader('logs/node0/x.log')).toBe('==> logs/node0/x.log <==');
  });
});

describe('ae status views', () => {
  const now = new Date('2026-11-26T12:00:00Z');
  it('the list: newest first, search attributes or -, how long it took or runs', () => {
    const rows: RunSummaryRow[] = [
      { workflowId: 'old', status: 'COMPLETED', phase: 'done', cluster: 'sim', verdict: 'pass', startTime: '2026-11-26T10:00:00.000Z', closeTime: '2026-11-26T10:05:30.000Z' },
      { workflowId: 'new', status: 'RUNNING', startTime: '2026-11-26T11:59:00.000Z' },
    ];
    const lines = runsTable([...rows].sort(newestFirst), now).split('\n');
    expect(lines[0]).toMatch(/^RUN +STATUS +PHASE +CLUSTER +VERDICT +STARTED \(UTC\) +TOOK$/);
    expect(lines[2]).toMatch(/^new +RUNNING +- +- +- +2026-11-26 11:59:00Z +1m00s$/);
    expect(lines[3]).toMatch(/^old +COMPLETED +done +sim +pass +2026-11-26 10:00:00Z +5m30s$/);
  });

  const base: RunStatus = { workflowId: 'r1', runId: 'x', status: 'RUNNING', taskQueue: 'q', startTime: '2026-11-26T11:00:00.000Z', ui: 'http://ui/r1' };
  it('one open run: phase line, paused, a line per node, the stages, the link', () => {
    const text = renderStatus(
      {
        ...base,
        paused: true,
        progress: {
          runId: 'r1',
          phase: 'prepare hosts',
          cluster: 'sim',
          simulated: true,
          hypervisor: 'fragvisor',
          runDir: '/runs/r1',
          stages: [
            { key: 'fragvisor/prepare-hosts', title: 'p', state: 'running' },
            { key: 'fragvisor/E1-n4', title: 'e', state: 'pending' },
          ],
          nodes: { node0: { step: 'host kernel: build', state: 'running', detail: 'CC fork.o' }, node1: { step: 'host kernel: build', state: 'done' } },
        },
      },
      now,
    );
    expect(text.split('\n')).toEqual([
      'run r1: RUNNING, started 2026-11-26 11:00:00Z, running for 1h00m',
      'phase: prepare hosts  cluster sim (SIMULATED), fragvisor, stage 1/2 fragvisor/prepare-hosts (running)',
      '  node0  host kernel: build  running  CC fork.o',
      '  node1  host kernel: build  done',
      'paused: yes (ae resume to go on)',
      'stages:',
      '  1/2  fragvisor/prepare-hosts  running',
      '  2/2  fragvisor/E1-n4  pending',
      'run store: /runs/r1',
      'http://ui/r1',
    ]);
  });
  it('an open run that measures: the line of its epoch under the phase', () => {
    const text = renderStatus(
      {
        ...base,
        progress: { runId: 'r1', phase: 'experiments', stages: [], nodes: { node0: { step: 'E1 n=2', state: 'running', child: 'r1/fragvisor/E1-n2' } } },
        epoch: { epoch: 'fragvisor/E1-n2', phase: 'benchmarks', done: 3, total: 12, current: 'php-250ms rep 2', nodes: {} },
      },
      now,
    );
    expect(text.split('\n').slice(1, 4)).toEqual(['phase: experiments', 'epoch fragvisor/E1-n2  benchmarks: 3/12 measurements (php-250ms rep 2)', '  node0  E1 n=2  running  (in r1/fragvisor/E1-n2)']);
  });
  it('a closed run without a worker: the search attributes, the verdicts, the failure', () => {
    const text = renderStatus(
      {
        ...base,
        status: 'COMPLETED',
        closeTime: '2026-11-26T11:30:00.000Z',
        phase: 'done',
        cluster: 'sim',
        result: {
          runId: 'r1',
          cluster: 'sim',
          simulated: true,
          runDir: '/runs/r1',
          planHash: 'h',
          dryRun: false,
          prepared: [],
          epochs: [],
          measurements: 12,
          baseline: { kind: 'measured' },
          verdicts: [{ id: 'C1', verdict: 'pass', why: 'faster' }],
        },
      },
      now,
    );
    expect(text).toContain('run r1: COMPLETED, started 2026-11-26 11:00:00Z, took 30m00s');
    expect(text).toContain('phase: done  cluster sim  (no worker answered the progress query');
    expect(text).toContain('result: 0 epoch(s), 12 measurement(s), SIMULATED');
    expect(text).toMatch(/C1 +PASS +faster/);
    expect(renderStatus({ ...base, status: 'FAILED', closeTime: base.startTime, failure: 'boom' }, now)).toContain('failure: boom');
  });
});

describe('ae schedule', () => {
  it('--id: default recheck-<cluster name>; a run-id prefix; not too long', () => {
    expect(scheduleId(undefined, 'sim')).toBe('recheck-sim');
    expect(scheduleId(undefined, '/abs/lab.yaml')).toBe('recheck-lab');
    expect(scheduleId('weekly.sim', 'sim')).toBe('weekly.sim');
    expect(() => scheduleId('a b', 'sim')).toThrow(/--id a b: expected a workflow id/);
    expect(() => scheduleId('x'.repeat(151), 'sim')).toThrow(/at most 150 characters/);
  });
  it('list rows from schedule summaries', () => {
    const summary = {
      scheduleId: 'recheck-sim',
      spec: { intervals: [{ every: 604_800_000, offset: 0 }] },
      action: { type: 'startWorkflow', workflowType: 'reproduceClaims' },
      memo: { cluster: 'sim', every: '7d' },
      state: { paused: false },
      info: {
        nextActionTimes: [new Date('2026-12-03T00:00:00Z')],
        recentActions: [{ scheduledAt: new Date(), takenAt: new Date(), action: { type: 'startWorkflow', workflow: { workflowId: 'recheck-sim-2026-11-26T00:00:00Z', firstExecutionRunId: 'x' } } }],
      },
    } as unknown as ScheduleSummary;
    const row = scheduleRow(summary);
    expect(row).toEqual({ id: 'recheck-sim', cluster: 'sim', every: '7d', paused: false, nextRun: '2026-12-03T00:00:00.000Z', lastRun: 'recheck-sim-2026-11-26T00:00:00Z' });
    expect(schedulesTable([row]).split('\n')[2]).toMatch(/^recheck-sim +sim +7d +2026-12-03 00:00:00 +recheck-sim-2026-11-26T00:00:00Z +no$/);
  });
});
