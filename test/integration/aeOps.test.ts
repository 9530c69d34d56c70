import { appendFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { TASK_QUEUE } from '../../config/constants';
import { clusterLease, leaseQuery, leaseWorkflowId } from '../../workflows/clusterLease';
import type { ReproduceClaimsInput } from '../../workflows/inputs';
import { runProgressQuery } from '../../workflows/progress';
import { spawnAe } from '../helpers/processes';
import { waitUntil } from '../helpers/sim';
import { startTestWorker, testAddress, testClient, uniqueTaskQueue } from '../helpers/temporal';

/**
 * `ae status`, `logs`, `cancel`, `pause`, `abort`, `resume` and `schedule` as a user runs them (a
 * separate process) against the test dev server and a real worker. The runs are cheap: dry runs of
 * the minimal fixture profile (no SSH at all), and runs kept waiting for the cluster lease, which a
 * stand-in holder (an open workflow nobody works on) keeps.
 */

jest.setTimeout(180_000);

const PROFILE = path.resolve(__dirname, '../fixtures/profiles/minimal.yaml');
const env = () => ({ TEMPORAL_ADDRESS: testAddress(), TEMPORAL_NAMESPACE: 'default', AE_UI_URL: 'http://ui.test' });
const unique = (name: string) => `ae-ops-${name}-${process.pid}-${Date.now()}`;
const ui = (id: string) => `http://ui.test/namespaces/default/workflows/${encodeURIComponent(id)}`;

async function ae(args: string[]): Promise<{ code: number | null; out: string }> {
  const p = spawnAe(args, env());
  const { code } = await p.exited;
  return { code, out: p.output() };
}

let client: Client;
let closeClient: () => Promise<void>;
let stopWorker: () => Promise<void>;
const taskQueue = uniqueTaskQueue('ae-ops');
/** Open workflows to terminate at the end. */
const leftovers: string[] = [];

/** reproduceClaims on the worker's queue, on the minimal profile's 2 nodes. */
const start = (workflowId: string, input: Partial<ReproduceClaimsInput>) =>
  client.workflow.start('reproduceClaims', { taskQueue, workflowId, args: [{ cluster: PROFILE, nodeCounts: [2], experiments: [], ...input }] });

/** The input a run was started with (its first history event). */
async function startedInput(id: string): Promise<Record<string, unknown>> {
  const history = await client.workflow.getHandle(id).fetchHistory();
  const payload = history.events![0].workflowExecutionStartedEventAttributes!.input!.payloads![0];
  return JSON.parse(Buffer.from(payload.data!).toString()) as Record<string, unknown>;
}

let dryRun: string;

beforeAll(async () => {
  ({ client, close: closeClient } = await testClient());
  ({ stop: stopWorker } = await startTestWorker(taskQueue));
  dryRun = unique('dry');
  await (await start(dryRun, { dryRun: true })).result();
}, 180_000);

afterAll(async () => {
  for (const id of leftovers) await client.workflow.getHandle(id).terminate('test cleanup').catch(() => undefined);
  await stopWorker?.();
  await closeClient?.();
});

describe('ae status', () => {
  it('a finished dry run: status, phase, cluster, the result, the run store and the link', async () => {
    const r = await ae(['status', dryRun]);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toMatch(new RegExp(`^run ${dryRun}: COMPLETED, started \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\dZ, took \\d+s$`));
    expect(lines[1]).toMatch(/^phase: dry run  cluster minimal, stage 1\/(\d+) fragvisor\/prepare-hosts \(pending\)$/);
    expect(r.out).toContain('paused: no');
    expect(r.out).toMatch(/\nstages:\n  1\/(\d+)  fragvisor\/prepare-hosts  pending\n/);
    expect(r.out).toContain(`result: dry run (plan only)\nrun store: ${path.join(process.env.AE_RUNS_DIR!, dryRun)}\n${ui(dryRun)}`);

    const json = JSON.parse((await ae(['status', dryRun, '--json'])).out) as Record<string, unknown>;
    expect(json).toMatchObject({
      workflowId: dryRun,
      status: 'COMPLETED',
      taskQueue,
      phase: 'dry run',
      cluster: 'minimal',
      paused: false,
      progress: { phase: 'dry run', cluster: 'minimal' },
      result: { runId: dryRun, dryRun: true, cluster: 'minimal' },
      ui: ui(dryRun),
    });
  });

  it('an unknown run: exit 4, saying where it looked', async () => {
    const r = await ae(['status', 'no-such-run-anywhere']);
    expect(r.code).toBe(4);
    expect(r.out).toMatch(/^ae status: no run "no-such-run-anywhere" in Temporal namespace default at 127\.0\.0\.1:\d+: `ae status` lists the recent runs\n$/);
  });

  it('without an id: the recent reproduceClaims runs with status and search attributes', async () => {
    let rows: { workflowId: string }[] = [];
    await waitUntil('the dry run in the list', async () => {
      const r = await ae(['status', '--limit', '200', '--json']);
      rows = JSON.parse(r.out) as { workflowId: string }[];
      return rows.some((x) => x.workflowId === dryRun);
    }, 30_000, 500);
    expect(rows.find((x) => x.workflowId === dryRun)).toEqual({ workflowId: dryRun, status: 'COMPLETED', phase: 'dry run', cluster: 'minimal', startTime: expect.any(String), closeTime: expect.any(String) });
    const starts = rows.map((x) => (x as unknown as { startTime: string }).startTime);
    expect(starts).toEqual([...starts].sort().reverse());
    const text = await ae(['status']);
    expect(text.code).toBe(0);
    expect(text.out).toMatch(/^RUN +STATUS +PHASE +CLUSTER +VERDICT +STARTED \(UTC\) +TOOK$/m);
    expect(text.out).toMatch(new RegExp(`^${dryRun} +COMPLETED +dry run +minimal +- +`, 'm'));
    const bad = await ae(['status', '--limit', '0']);
    expect(bad.code).toBe(2);
  });
});

describe('ae logs', () => {
  let open: WorkflowHandle;
  let dir: string;

  beforeAll(async () => {
    // An open run (nobody works on its queue) with a run store written by hand.
    open = await client.workflow.start('reproduceClaims', { taskQueue: uniqueTaskQueue('nobody'), workflowId: unique('logs'), args: [{ cluster: 'sim' }] });
    leftovers.push(open.workflowId);
    dir = path.join(process.env.AE_RUNS_DIR!, open.workflowId);
    for (const node of ['node0', 'node1']) mkdirSync(path.join(dir, 'logs', node), { recursive: true });
    writeFileSync(path.join(dir, 'logs/node0/fragvisor.source-sync.log'), 'node0 sync\n');
    writeFileSync(path.join(dir, 'logs/node1/fragvisor.source-sync.log'), 'node1 sync 1\nnode1 sync 2\n');
    writeFileSync(path.join(dir, 'logs/node1/fragvisor.build.log'), 'CC kernel/fork.o\n');
  });

  it('every node, a header per file, grouped by node then step', async () => {
    const r = await ae(['logs', open.workflowId]);
    expect(r.code).toBe(0);
    expect(r.out).toBe(
      [
        '==> logs/node0/fragvisor.source-sync.log <==',
        'node0 sync',
        '',
        '==> logs/node1/fragvisor.build.log <==',
        'CC kernel/fork.o',
        '',
        '==> logs/node1/fragvisor.source-sync.log <==',
        'node1 sync 1',
        'node1 sync 2',
        '',
      ].join('\n'),
    );
  });

  it('--node filters; --json is a line per log line; an unknown node or run is exit 4 saying where logs live', async () => {
    const r = await ae(['logs', open.workflowId, '--node', 'node0']);
    expect(r.out).toBe('==> logs/node0/fragvisor.source-sync.log <==\nnode0 sync\n');
    const json = await ae(['logs', open.workflowId, '--node', 'node1', '--json']);
    expect(json.out.trim().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual([
      { node: 'node1', file: 'logs/node1/fragvisor.build.log', line: 'CC kernel/fork.o' },
      { node: 'node1', file: 'logs/node1/fragvisor.source-sync.log', line: 'node1 sync 1' },
      { node: 'node1', file: 'logs/node1/fragvisor.source-sync.log', line: 'node1 sync 2' },
    ]);
    const unknownNode = await ae(['logs', open.workflowId, '--node', 'node9']);
    expect(unknownNode.code).toBe(4);
    expect(unknownNode.out).toContain('no logs for node node9 in');
    expect(unknownNode.out).toContain('(nodes with logs: node0, node1)');
    const unknownRun = await ae(['logs', 'never-ran-here']);
    expect(unknownRun.code).toBe(4);
    expect(unknownRun.out).toContain(`no run folder ${path.join(process.env.AE_RUNS_DIR!, 'never-ran-here')}: a run's logs live in the run store on the host of the worker`);
    expect(unknownRun.out).toContain('AE_RUNS_DIR');
  });

  it('--follow prints what is appended and new files of that node, and ends when the run closes', async () => {
    const p = spawnAe(['logs', open.workflowId, '--node', 'node1', '--follow'], env());
    await p.waitFor(/node1 sync 2\n/);
    appendFileSync(path.join(dir, 'logs/node1/fragvisor.source-sync.log'), 'node1 sync 3 (appended)\n');
    await p.waitFor(/node1 sync 3 \(appended\)\n/);
    appendFileSync(path.join(dir, 'logs/node0/fragvisor.source-sync.log'), 'node0 must not show\n');
    writeFileSync(path.join(dir, 'logs/node1/fragvisor.install.log'), 'installing\n');
    await p.waitFor(/==> logs\/node1\/fragvisor\.install\.log <==\ninstalling\n/);
    appendFileSync(path.join(dir, 'logs/node1/fragvisor.build.log'), 'LD vmlinux\n');
    await p.waitFor(/==> logs\/node1\/fragvisor\.build\.log <==\nLD vmlinux\n/);
    await open.terminate('the test ends it');
    const { code } = await p.exited;
    expect(code).toBe(0);
    expect(p.output()).toContain(`ae logs: run ${open.workflowId} has closed (TERMINATED)`);
    expect(p.output()).not.toContain('node0');
    // Each line once.
    expect(p.output().match(/node1 sync 3/g)).toHaveLength(1);
  });
});

describe('runs kept waiting for the cluster', () => {
  let holder: WorkflowHandle;
  let lease: WorkflowHandle;

  beforeAll(async () => {
    // The stand-in holder: open, signalable, never finishing. The lease hands the cluster to it first.
    holder = await client.workflow.start('reproduceClaims', { taskQueue: uniqueTaskQueue('holder'), workflowId: unique('holder'), args: [{ cluster: 'sim' }] });
    lease = await client.workflow.start(clusterLease, { taskQueue, workflowId: leaseWorkflowId(taskQueue, 'minimal'), args: [{ cluster: 'minimal', queue: [{ holder: holder.workflowId }] }] });
    leftovers.push(holder.workflowId, lease.workflowId);
  });

  const waiting = async (id: string) => {
    const h = await start(id, {});
    leftovers.push(id);
    await waitUntil(`${id} waiting for the cluster`, async () => (await h.query(runProgressQuery).catch(() => undefined))?.phase === 'waiting for the cluster', 60_000, 200);
    return h;
  };

  it('ae cancel --wait: the waiting run is cancelled and says so', async () => {
    const h = await waiting(unique('cancel'));
    expect((await lease.query(leaseQuery)).waiting).toContain(h.workflowId);
    const r = await ae(['cancel', h.workflowId, '--wait']);
    expect(r.out).toBe(`cancellation of ${h.workflowId} requested; waiting for it to close...\n${h.workflowId} cancelled\n`);
    expect(r.code).toBe(0);
    expect((await h.describe()).status.name).toBe('CANCELLED');
    // A cancelled run leaves the queue at once: it does not hold up the runs behind it.
    await waitUntil('the cancelled run to leave the queue', async () => !(await lease.query(leaseQuery)).waiting.includes(h.workflowId), 10_000, 100);
    const again = await ae(['cancel', h.workflowId]);
    expect(again.code).toBe(1);
    expect(again.out).toContain(`run ${h.workflowId} has already ended (CANCELLED): nothing to cancel`);
    expect((await ae(['cancel', 'no-such-run-anywhere'])).code).toBe(4);
  });

  it('ae pause, ae status (paused), ae resume (the update), ae abort --reason (the run fails Aborted with it), end to end', async () => {
    const h = await waiting(unique('control'));
    const paused = await ae(['pause', h.workflowId, '--json']);
    expect(paused.code).toBe(0);
    expect(JSON.parse(paused.out)).toEqual({ workflowId: h.workflowId, paused: true });
    const status = await ae(['status', h.workflowId]);
    expect(status.out).toContain('waiting for: resume (paused by an operator)');
    expect(status.out).toContain('paused: yes (ae resume to go on)');
    const resumed = await ae(['resume', h.workflowId]);
    expect(resumed.code).toBe(0);
    expect(resumed.out).toBe(`${h.workflowId} resumed\n`);
    expect((await h.query(runProgressQuery)).paused).toBeFalsy();
    const aborted = await ae(['abort', h.workflowId, '--reason', 'node1 needs a new disk']);
    expect(aborted.code).toBe(0);
    expect(aborted.out).toBe(`${h.workflowId} aborted: node1 needs a new disk\n`);
    await h.result().catch(() => undefined);
    const after = JSON.parse((await ae(['status', h.workflowId, '--json'])).out) as { status: string; failure: string };
    expect(after.status).toBe('FAILED');
    expect(after.failure).toContain('aborted by an operator: node1 needs a new disk');
  });

  it('ae resume of a run terminated while it waited for the cluster starts <id>-r1 afresh (nothing to resume from); an open, unpaused run is refused with exit 2', async () => {
    const h = await waiting(unique('term'));
    await h.terminate('the test pulls the plug half-way');
    const r = await ae(['resume', h.workflowId]);
    expect(r.code).toBe(0);
    const next = `${h.workflowId}-r1`;
    leftovers.push(next);
    expect(r.out).toBe(`started ${next} afresh: ${h.workflowId} (which ended TERMINATED) never started work on the cluster, so there is nothing to resume from\n  ${ui(next)}\n`);
    expect(await startedInput(next)).toEqual({ ...(await startedInput(h.workflowId)), repetitions: 3, hypervisors: ['fragvisor', 'giantvm'], buildJobs: 16, ifBusy: 'wait', dryRun: false });
    const d = await client.workflow.getHandle(next).describe();
    expect(d.taskQueue).toBe(taskQueue);
    // The new run is open and not paused (it waits for the cluster): resuming it is refused.
    await waitUntil(`${next} waiting`, async () => (await client.workflow.getHandle(next).query(runProgressQuery).catch(() => undefined))?.phase === 'waiting for the cluster', 60_000, 200);
    const refused = await ae(['resume', next]);
    expect(refused.code).toBe(2);
    expect(refused.out).toContain(`ae resume: run ${next} is running and not paused: nothing to resume`);
    // Out of the queue before the last test releases the cluster, which it would otherwise get first.
    await client.workflow.getHandle(next).cancel();
    await waitUntil(`${next} to leave the queue`, async () => !(await lease.query(leaseQuery)).waiting.includes(next), 30_000, 100);
  });

  it('ifBusy "refuse": the run fails at once with ClusterBusy naming the holder, and never queues', async () => {
    const id = unique('refuse');
    const h = await start(id, { ifBusy: 'refuse' });
    leftovers.push(id);
    const err = await h.result().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as { cause?: unknown }).cause).toMatchObject({ type: 'ClusterBusy', message: expect.stringContaining(`run ${holder.workflowId} holds it`) });
    expect((await lease.query(leaseQuery)).waiting).not.toContain(id);
  });

  // Last in this block: it takes the cluster from the stand-in holder.
  it('ae lease shows the holder and the queue; ae lease release takes the cluster from a stuck holder, the next run gets it', async () => {
    const next = await waiting(unique('next'));
    const shown = await ae(['lease', '--task-queue', taskQueue]);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(new RegExp(`^minimal +${holder.workflowId} +.*${next.workflowId}`, 'm'));
    const json = JSON.parse((await ae(['lease', '--cluster', 'minimal', '--task-queue', taskQueue, '--json'])).out) as { cluster: string; holder: string; waiting: string[] }[];
    expect(json).toEqual([expect.objectContaining({ cluster: 'minimal', holder: holder.workflowId, waiting: expect.arrayContaining([next.workflowId]) })]);
    expect((await ae(['lease', 'release', '--cluster', 'minimal', '--task-queue', taskQueue])).code).toBe(2); // no reason
    expect((await ae(['lease', '--cluster', 'nothing-here', '--task-queue', taskQueue])).code).toBe(4);

    const released = await ae(['lease', 'release', '--cluster', 'minimal', '--task-queue', taskQueue, '--reason', 'node2 was fixed by hand']);
    expect(released.code).toBe(0);
    expect(released.out).toContain(`released minimal from ${holder.workflowId} (node2 was fixed by hand)`);
    // The grant is read from the run's history, not from the lease's holder: the run soon fails on
    // the fixture's missing key and gives the cluster back, and a poll could miss the short hold.
    const events = async () => (await next.fetchHistory()).events ?? [];
    const granted = (e: Awaited<ReturnType<typeof events>>) => e.findIndex((x) => x.workflowExecutionSignaledEventAttributes?.signalName === 'leaseGranted');
    await waitUntil('the next run to get the cluster', async () => granted(await events()) >= 0, 45_000, 200);
    expect((await lease.query(leaseQuery)).forced).toEqual({ holder: holder.workflowId, reason: 'node2 was fixed by hand' });
    // Past the queue: it starts its first activity on the cluster.
    await waitUntil(`${next.workflowId} past the queue`, async () => {
      const e = await events();
      return e.slice(granted(e)).some((x) => Boolean(x.activityTaskScheduledEventAttributes));
    }, 30_000, 200);
  }, 120_000);
});

describe('ae resume of a completed dry run', () => {
  it('starts <id>-r1, then <id>-r2 (--json), each with the same input plus resumeFrom, run by the worker', async () => {
    const r = await ae(['resume', dryRun]);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`started ${dryRun}-r1, resuming ${dryRun} (which ended COMPLETED)`);
    const result = (await client.workflow.getHandle(`${dryRun}-r1`).result()) as { dryRun: boolean; runId: string };
    expect(result).toMatchObject({ dryRun: true, runId: `${dryRun}-r1` });
    expect(await startedInput(`${dryRun}-r1`)).toMatchObject({ cluster: PROFILE, dryRun: true, resumeFrom: dryRun });
    const second = await ae(['resume', dryRun, '--json']);
    expect(second.code).toBe(0);
    expect(JSON.parse(second.out)).toEqual({ mode: 'new-run', workflowId: `${dryRun}-r2`, runId: expect.any(String), resumeFrom: dryRun, previousStatus: 'COMPLETED', ui: ui(`${dryRun}-r2`) });
    await client.workflow.getHandle(`${dryRun}-r2`).result();
  });

  it('resuming a resumed run counts on: x-r1 -> x-r3 (x-r2 is taken)', async () => {
    const r = await ae(['resume', `${dryRun}-r1`, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toMatchObject({ mode: 'new-run', workflowId: `${dryRun}-r3`, resumeFrom: `${dryRun}-r1` });
    expect(await startedInput(`${dryRun}-r3`)).toMatchObject({ resumeFrom: `${dryRun}-r1` });
    await client.workflow.getHandle(`${dryRun}-r3`).result();
  });
});

describe('ae pause and ae abort: arguments and error paths', () => {
  it.each([
    ['pause without an id', ['pause'], 2, 'ae pause: expected one run id'],
    ['pause a/b', ['pause', 'a/b'], 2, 'ae pause: run id "a/b": expected a workflow id'],
    ['pause an unknown run', ['pause', 'no-such-run-anywhere'], 4, 'ae pause: no run "no-such-run-anywhere" in Temporal'],
    ['abort without --reason', ['abort', 'x'], 2, 'ae abort: --reason is required'],
    ['abort with a 201-character reason', ['abort', 'x', '--reason', 'y'.repeat(201)], 2, "ae abort: --reason: abort's reason is 201 characters; at most 200"],
    ['abort an unknown run', ['abort', 'no-such-run-anywhere', '--reason', 'why not'], 4, 'ae abort: no run "no-such-run-anywhere"'],
    ['resume an unknown run', ['resume', 'no-such-run-anywhere'], 4, 'ae resume: no run "no-such-run-anywhere"'],
  ])('ae %s', async (_label, args, code, message) => {
    const r = await ae(args as string[]);
    expect(r.code).toBe(code);
    expect(r.out).toContain(message);
  });

  it('a closed run: exit 1, saying it has ended', async () => {
    const pause = await ae(['pause', dryRun]);
    expect(pause.code).toBe(1);
    expect(pause.out).toContain(`ae pause: run ${dryRun} has ended (COMPLETED): pause applies to a running run`);
    const abort = await ae(['abort', dryRun, '--reason', 'too late']);
    expect(abort.code).toBe(1);
    expect(abort.out).toContain(`ae abort: run ${dryRun} has ended (COMPLETED): abort applies to a running run`);
  });

  it('Temporal unreachable: exit 3', async () => {
    const p = spawnAe(['pause', 'some-run'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect((await p.exited).code).toBe(3);
    expect(p.output()).toContain('ae pause: cannot reach Temporal at 127.0.0.1:1');
  });
});

describe('ae schedule', () => {
  it('create (SKIP overlap, the ae run input, task queue fragvisor-ae), list, a taken id refused, delete, delete again -> 4', async () => {
    const id = unique('sched');
    const r = await ae(['schedule', '--cluster', PROFILE, '--node-counts', '2', '--experiments', 'none', '--every', '1d12h', '--id', id, '--json']);
    expect(r.code).toBe(0);
    const input = { cluster: PROFILE, experiments: [], nodeCounts: [2], repetitions: 3, hypervisors: ['fragvisor', 'giantvm'], buildJobs: 16, ifBusy: 'wait', dryRun: false };
    // (stderr, in the same capture, notes that no worker polls fragvisor-ae in this test)
    expect(JSON.parse(r.out.replace(/^note: .*\n/m, ''))).toEqual({ scheduleId: id, every: '1d12h', taskQueue: TASK_QUEUE, input });

    const d = await client.schedule.getHandle(id).describe();
    expect(d.spec.intervals?.map((i) => i.every)).toEqual([36 * 3_600_000]);
    expect(d.policies.overlap).toBe('SKIP');
    expect(d.action).toMatchObject({ type: 'startWorkflow', workflowType: 'reproduceClaims', taskQueue: TASK_QUEUE, workflowId: id, args: [input] });

    let listed: { id: string }[] = [];
    await waitUntil('the schedule in the list', async () => {
      listed = JSON.parse((await ae(['schedule', 'list', '--json'])).out) as { id: string }[];
      return listed.some((s) => s.id === id);
    }, 30_000, 500);
    expect(listed.find((s) => s.id === id)).toEqual({ id, cluster: PROFILE, every: '1d12h', paused: false, nextRun: expect.any(String) });
    expect((await ae(['schedule', 'list'])).out).toMatch(new RegExp(`^${id} +${PROFILE.replace(/[./]/g, '\\$&')} +1d12h +\\d{4}-`, 'm'));

    const taken = await ae(['schedule', '--cluster', PROFILE, '--every', '7d', '--id', id]);
    expect(taken.code).toBe(2);
    expect(taken.out).toContain(`a schedule ${id} exists already`);

    const del = await ae(['schedule', 'delete', id]);
    expect(del.code).toBe(0);
    expect(del.out).toBe(`schedule ${id} deleted (runs it started are not affected)\n`);
    const again = await ae(['schedule', 'delete', id]);
    expect(again.code).toBe(4);
    expect(again.out).toContain(`no schedule ${id} in namespace default`);
  });
});
