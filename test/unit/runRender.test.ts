import path from 'node:path';
import { ApplicationFailure, WorkflowFailedError } from '@temporalio/client';
import { changedLines, failureMessage, formatRows, progressRows, ttyFrame } from '../../cli/commands/run';
import { workflowIdFor } from '../../cli/format';
import { absoluteClusterRef, buildRunInput, type RunInputFlags } from '../../cli/runInput';
import { UsageError } from '../../cli/usageError';
import type { RunProgress } from '../../workflows/progress';

const base: RunProgress = {
  runId: 'ae-sim-1',
  phase: 'prepare hosts',
  cluster: 'sim',
  simulated: true,
  hypervisor: 'fragvisor',
  stages: [
    { key: 'fragvisor/prepare-hosts', title: 'hosts', state: 'running' },
    { key: 'fragvisor/reboot', title: 'reboot', state: 'pending' },
  ],
  nodes: {
    node0: { step: 'host kernel: build', state: 'running', detail: 'CC kernel/fork.o' },
    node1: { step: 'host kernel: install', state: 'done' },
  },
};

describe('progressRows + formatRows: a phase line and a line per node', () => {
  it.each([
    {
      name: 'running',
      progress: base,
      lines: [
        'phase: prepare hosts  cluster sim (SIMULATED), fragvisor, stage 1/2 fragvisor/prepare-hosts (running)',
        '  node0  host kernel: build    running  CC kernel/fork.o',
        '  node1  host kernel: install  done',
      ],
    },
    {
      name: 'waiting for an operator, the node in a child',
      progress: {
        ...base,
        phase: 'reboot' as const,
        stages: [
          { key: 'fragvisor/prepare-hosts', title: 'hosts', state: 'done' as const },
          { key: 'fragvisor/reboot', title: 'reboot', state: 'waiting' as const },
        ],
        waitingFor: 'node1: power-cycle it by hand',
        nodes: { node0: { step: 'rebooted', state: 'done' as const }, node1: { step: 'operator', state: 'waiting' as const, detail: 'power-cycle it', child: 'ae-sim-1/reboot' } },
      },
      lines: [
        'phase: reboot  cluster sim (SIMULATED), fragvisor, stage 2/2 fragvisor/reboot (waiting)',
        'waiting for: node1: power-cycle it by hand',
        '  node0  rebooted  done',
        '  node1  operator  waiting  power-cycle it (in ae-sim-1/reboot)',
      ],
    },
    {
      name: 'failed, all stages done or skipped: the last stage shows',
      progress: {
        ...base,
        phase: 'failed' as const,
        error: 'messaging layer: node1: Unable to connect',
        stages: [
          { key: 'a', title: 'a', state: 'done' as const },
          { key: 'b', title: 'b', state: 'skipped' as const },
        ],
        nodes: {},
      },
      lines: ['phase: failed  cluster sim (SIMULATED), fragvisor, stage 2/2 b (skipped)', 'error: messaging layer: node1: Unable to connect'],
    },
    {
      name: 'validating: nothing known yet',
      progress: { runId: 'x', phase: 'validating' as const, stages: [], nodes: {} },
      lines: ['phase: validating'],
    },
  ])('$name', ({ progress, lines }) => {
    expect(formatRows(progressRows(progress))).toEqual(lines);
  });

  it.each([
    [{ phase: 'benchmarks' as const, done: 7, total: 42, current: 'net-1024-local rep 2' }, 'epoch fragvisor/E3-n4  benchmarks: 7/42 measurements (net-1024-local rep 2)'],
    [{ phase: 'vm' as const, done: 0, total: 42 }, 'epoch fragvisor/E3-n4  vm: 0/42 measurements'],
  ])('while measuring, a line for the epoch under the phase: %j', (epoch, line) => {
    const p: RunProgress = { ...base, phase: 'experiments', nodes: { node0: { step: 'E3 n=4', state: 'running', child: 'ae-sim-1/fragvisor/E3-n4' } } };
    expect(formatRows(progressRows(p, { epoch: 'fragvisor/E3-n4', nodes: {}, ...epoch }))).toEqual([
      'phase: experiments  cluster sim (SIMULATED), fragvisor, stage 1/2 fragvisor/prepare-hosts (running)',
      line,
      '  node0  E3 n=4  running  (in ae-sim-1/fragvisor/E3-n4)',
    ]);
  });
});

describe('ttyFrame: redraw in place', () => {
  it.each([
    { name: 'first frame: no cursor movement', previous: 0, lines: ['a', 'b'], columns: 80, out: '\x1b[2Ka\n\x1b[2Kb\n\x1b[J' },
    { name: 'next frame: up over the previous 3 lines, clear below', previous: 3, lines: ['a'], columns: 80, out: '\x1b[3F\x1b[2Ka\n\x1b[J' },
    { name: 'long lines are cut to the width so none wraps', previous: 1, lines: ['x'.repeat(30)], columns: 21, out: `\x1b[1F\x1b[2K${'x'.repeat(19)}…\n\x1b[J` },
  ])('$name', ({ previous, lines, columns, out }) => {
    expect(ttyFrame(previous, lines, columns)).toBe(out);
  });
});

describe('changedLines: for pipes and logs, only what changed, time-stamped', () => {
  it('prints every row first, then only rows whose content changed', () => {
    const seen = new Map<string, string>();
    const t = (s: string) => new Date(`2025-11-26T${s}.000Z`);
    expect(changedLines(seen, progressRows(base), t('12:00:00'))).toEqual([
      '12:00:00Z phase: prepare hosts  cluster sim (SIMULATED), fragvisor, stage 1/2 fragvisor/prepare-hosts (running)',
      '12:00:00Z   node0  host kernel: build  running  CC kernel/fork.o',
      '12:00:00Z   node1  host kernel: install  done',
    ]);
    expect(changedLines(seen, progressRows(base), t('12:00:01'))).toEqual([]);
    const next: RunProgress = { ...base, nodes: { ...base.nodes, node0: { step: 'host kernel: build', state: 'running', detail: 'LD vmlinux' } } };
    expect(changedLines(seen, progressRows(next), t('12:00:02'))).toEqual(['12:00:02Z   node0  host kernel: build  running  LD vmlinux']);
    const failed: RunProgress = { ...next, phase: 'failed', error: 'boom' };
    expect(changedLines(seen, progressRows(failed), t('12:00:03'))).toEqual([
      '12:00:03Z phase: failed  cluster sim (SIMULATED), fragvisor, stage 1/2 fragvisor/prepare-hosts (running)',
      '12:00:03Z error: boom',
    ]);
  });
});

describe('failureMessage: the root cause, level by level', () => {
  it.each([
    {
      name: 'an InvalidInput failure of the workflow',
      err: new WorkflowFailedError('Workflow execution failed', ApplicationFailure.nonRetryable('reproduceClaims: invalid input: nodeCounts: expected at most 4 nodes', 'InvalidInput'), 'NON_RETRYABLE_FAILURE'),
      message: 'reproduceClaims: invalid input: nodeCounts: expected at most 4 nodes',
    },
    {
      name: 'a chain of causes',
      err: new WorkflowFailedError('Workflow execution failed', ApplicationFailure.create({ message: 'reboot failed on node1', cause: new Error('no new boot_id within 1200 s') }), 'NON_RETRYABLE_FAILURE'),
      message: 'reboot failed on node1\n  caused by: no new boot_id within 1200 s',
    },
    { name: 'a failure without a cause', err: new WorkflowFailedError('Workflow execution terminated', undefined, 'NON_RETRYABLE_FAILURE'), message: 'Workflow execution terminated' },
  ])('$name', ({ err, message }) => {
    expect(failureMessage(err)).toBe(message);
  });
});

describe('workflowIdFor', () => {
  it.each([
    { cluster: 'sim', id: 'ae-sim-2025-11-26T12-30-05-123Z' },
    { cluster: '/etc/ae/lab.yaml', id: 'ae-lab-2025-11-26T12-30-05-123Z' },
    { cluster: 'config/clusters/echo.yml', id: 'ae-echo-2025-11-26T12-30-05-123Z' },
  ])('$cluster -> $id', ({ cluster, id }) => {
    expect(workflowIdFor('ae', cluster, new Date('2025-11-26T12:30:05.123Z'))).toBe(id);
  });
});

describe('buildRunInput: flags (and an input file) through the workflow schema', () => {
  it.each<{ name: string; flags: RunInputFlags; file?: unknown; expected: Record<string, unknown> }>([
    { name: 'defaults', flags: { cluster: 'sim' }, expected: { cluster: 'sim', experiments: ['E1', 'E2', 'E3'], nodeCounts: [4], repetitions: 3, hypervisors: ['fragvisor', 'giantvm'], buildJobs: 16, ifBusy: 'wait', dryRun: false } },
    { name: 'if-busy refuse', flags: { cluster: 'sim', 'if-busy': 'refuse' }, expected: { ifBusy: 'refuse' } },
    { name: 'experiments none', flags: { cluster: 'sim', experiments: 'none' }, expected: { experiments: [] } },
    { name: 'experiments in any case, with spaces', flags: { cluster: 'sim', experiments: 'e1, E3' }, expected: { experiments: ['E1', 'E3'] } },
    { name: 'experiments all over a file that names one', flags: { cluster: 'sim', experiments: 'all' }, file: { experiments: ['E2'] }, expected: { experiments: ['E1', 'E2', 'E3'] } },
    { name: 'node counts and hypervisors', flags: { cluster: 'echo', 'node-counts': '2,4', hypervisors: 'GiantVM,fragvisor' }, expected: { nodeCounts: [2, 4], hypervisors: ['giantvm', 'fragvisor'] } },
    { name: 'numbers', flags: { cluster: 'echo', repetitions: '5', jobs: '32' }, expected: { repetitions: 5, buildJobs: 32 } },
    { name: 'commit, lower-cased', flags: { cluster: 'echo', commit: 'ABCDEF1' }, expected: { kernelCommit: 'abcdef1' } },
    { name: 'kvmtool commit, lower-cased', flags: { cluster: 'echo', 'kvmtool-commit': ` ${'AB'.repeat(20)} ` }, expected: { kvmtoolCommit: 'ab'.repeat(20) } },
    { name: 'a file, flags win', flags: { 'node-counts': '2' }, file: { cluster: 'sim', nodeCounts: [4], repetitions: 1 }, expected: { cluster: 'sim', nodeCounts: [2], repetitions: 1 } },
    { name: 'a relative .yaml path is made absolute', flags: { cluster: 'lab/x.yaml' }, expected: { cluster: '/work/lab/x.yaml' } },
  ])('$name', ({ flags, file, expected }) => {
    const { config } = buildRunInput(flags, file === undefined ? undefined : { name: 'run.json', json: file }, '/work');
    expect(config).toMatchObject(expected);
  });

  it.each<{ name: string; flags: RunInputFlags; file?: unknown; error: string | RegExp }>([
    { name: 'no cluster', flags: {}, error: /^--cluster is required/ },
    { name: 'no cluster in the file either', flags: {}, file: { nodeCounts: [2] }, error: /^--cluster is required \(run.json has no "cluster"\)/ },
    { name: 'an unknown experiment', flags: { cluster: 'sim', experiments: 'E1,E4' }, error: '--experiments E1,E4: experiments[1]: expected one of E1, E2, E3' },
    { name: 'a node count that is no number', flags: { cluster: 'sim', 'node-counts': '2,x' }, error: '--node-counts 2,x: nodeCounts[1]: expected a node count (a number)' },
    { name: 'zero nodes', flags: { cluster: 'sim', 'node-counts': '0' }, error: '--node-counts 0: nodeCounts[0]: expected at least 1 node' },
    { name: 'if-busy neither wait nor refuse', flags: { cluster: 'sim', 'if-busy': 'later' }, error: '--if-busy later: ifBusy: expected "wait" (queue behind the run that holds the cluster) or "refuse" (fail at once)' },
    { name: 'a repeated hypervisor', flags: { cluster: 'sim', hypervisors: 'fragvisor,fragvisor' }, error: '--hypervisors fragvisor,fragvisor: hypervisors: expected each hypervisor at most once' },
    { name: 'repetitions not a whole number', flags: { cluster: 'sim', repetitions: '2.5' }, error: '--repetitions 2.5: repetitions: expected a number of repetitions' },
    { name: 'a commit that is no hash', flags: { cluster: 'sim', commit: 'main' }, error: '--commit main: kernelCommit: expected a git commit hash: 7 to 40 lower-case hex digits' },
    { name: 'an abbreviated kvmtool commit', flags: { cluster: 'sim', 'kvmtool-commit': 'abcdef1' }, error: '--kvmtool-commit abcdef1: kvmtoolCommit: expected a full git commit hash: 40 lower-case hex digits (`git rev-parse <ref>` prints it)' },
    { name: 'a cluster with shell characters', flags: { cluster: 'echo;reboot' }, error: /^--cluster echo;reboot: cluster: expected a profile name/ },
    { name: 'a misspelt field in the file', flags: { cluster: 'sim' }, file: { nodecounts: [2] }, error: /^--input run.json: nodecounts: unknown field/ },
    { name: 'a wrong type in the file', flags: {}, file: { cluster: 'sim', repetitions: '3' }, error: '--input run.json: repetitions: expected a number of repetitions' },
    { name: 'a file that is no object', flags: { cluster: 'sim' }, file: ['sim'], error: /^--input run.json: expected a JSON object/ },
  ])('$name: a UsageError naming the flag or file and the field', ({ flags, file, error }) => {
    let err: unknown;
    try {
      buildRunInput(flags, file === undefined ? undefined : { name: 'run.json', json: file }, '/work');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    if (typeof error === 'string') expect((err as Error).message).toBe(error);
    else expect((err as Error).message).toMatch(error);
  });

  it('where(): the source of each field, for errors found later (the plan against the profile)', () => {
    const input = buildRunInput({ 'node-counts': '8' }, { name: 'run.json', json: { cluster: 'echo', repetitions: 2 } }, '/work');
    expect(input.where('nodeCounts')).toBe('--node-counts 8');
    expect(input.where('repetitions')).toBe('--input run.json');
    expect(input.where('hypervisors')).toBe('the default');
  });

  it.each([
    { ref: 'sim', cwd: '/x', out: 'sim' },
    { ref: 'a/b.yaml', cwd: '/x', out: path.resolve('/x', 'a/b.yaml') },
    { ref: '/etc/lab.yml', cwd: '/x', out: '/etc/lab.yml' },
    { ref: '~/lab.yaml', cwd: '/x', out: '~/lab.yaml' },
    { ref: 42, cwd: '/x', out: 42 },
  ])('absoluteClusterRef($ref)', ({ ref, cwd, out }) => {
    expect(absoluteClusterRef(ref, cwd)).toBe(out);
  });
});
