import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { summarize } from '../../activities/cluster';
import { rebootActivities } from '../../activities/reboot';
import { SshPool } from '../../activities/ssh/pool';
import { runsDir } from '../../config/paths';
import { loadProfile } from '../../config/load';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import type { RebootFailure, RebootNodesInput, RebootNodesResult } from '../../workflows/rebootNodes';
import { operatorSignal, rebootProgressQuery } from '../../workflows/rebootSignals';
import type { Spawned } from '../helpers/processes';
import { waitUntil } from '../helpers/sim';
import { startTestWorker, startWorkerProcess, testClient, uniqueTaskQueue } from '../helpers/temporal';

/**
 * rebootNodes through a real worker, over real SSH to the simulated cluster, with the real ipmi_sim
 * BMCs and the real ipmitool. The sims run at time scale 1 with a short reboot: a node must really
 * be down for a while, or "seen down" could not be observed (at time scale 0 a reboot is instant).
 */

jest.setTimeout(120_000);

const DOWN_MS = 1500;
const taskQueue = uniqueTaskQueue('reboot');
let client: Client;
let closeClient: () => Promise<void>;
let stopWorker: () => Promise<void>;
const dirs: string[] = [];

beforeAll(async () => {
  ({ client, close: closeClient } = await testClient());
  ({ stop: stopWorker } = await startTestWorker(taskQueue));
});

afterAll(async () => {
  await stopWorker?.();
  await closeClient?.();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

async function sim(name: string, opts: { bmc: boolean }): Promise<SimCluster> {
  const dir = mkdtempSync(path.join(os.tmpdir(), `ae-sim-${name}-`));
  dirs.push(dir);
  return startSimCluster({ nodes: 4, stateDir: dir, rebootDownMs: DOWN_MS, timeScale: 1, bmc: opts.bmc });
}

/** The input the parent run builds from its ClusterSummary. */
function inputFor(s: SimCluster, nodes: string[], extra: Partial<RebootNodesInput> = {}): RebootNodesInput {
  const summary = summarize(loadProfile(s.profileFile));
  return {
    cluster: s.profileFile,
    profileHash: summary.hash,
    runId: `reboot-test-${Date.now()}`,
    nodes,
    bmcNodes: summary.nodes.filter((n) => n.bmc).map((n) => n.name),
    reason: 'test reboot',
    timeouts: { reboot: 5, operator: 60 },
    ...extra,
  };
}

const count = (s: SimCluster, node: string, what: string) => s.world.node(node).counters[what] ?? 0;
/** Soft reboots, BMC power cycles, and power cycles of any origin (a hung node's cycle has no `power-cycle` counter: it was not up). */
const counts = (s: SimCluster, node: string) => ({ reboot: count(s, node, 'reboot'), bmc: count(s, node, 'bmc:power-cycle'), cycle: s.node(node).stats.powerCycles });

async function failureOf(run: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

describe('with BMCs (ipmi_sim)', () => {
  let s: SimCluster;
  beforeAll(async () => {
    s = await sim('reboot-bmc', { bmc: true });
    expect(Object.keys(s.bmcs)).toHaveLength(4); // ipmi_sim is installed (docs/SIM-BMC.md)
    process.env[s.bmcPasswordEnv] = readFileSync(s.bmcPasswordFile!, 'utf8').trim();
  });
  afterAll(async () => {
    delete process.env[s?.bmcPasswordEnv];
    await s?.stop();
  });

  it('reboots 4 nodes in parallel, each once, with proof: new boot_id, seen down, the expected kernel', async () => {
    const nodes = ['node0', 'node1', 'node2', 'node3'];
    const before = Object.fromEntries(nodes.map((n) => [n, { bootId: s.node(n).state.bootId, ...counts(s, n) }]));
    let down = 0;
    let maxDown = 0;
    let lastBootAt = 0;
    const onDown = () => (maxDown = Math.max(maxDown, ++down));
    const onBoot = () => {
      down--;
      lastBootAt = Date.now();
    };
    for (const n of nodes) s.node(n).events.on('down', onDown).on('boot', onBoot);
    const expectedRelease = Object.fromEntries(nodes.map((n) => [n, s.node(n).state.kernelRelease]));
    const workflowId = `reboot-4-${Date.now()}`;
    const result = (await client.workflow.execute('rebootNodes', { taskQueue, workflowId, args: [inputFor(s, nodes, { expectedRelease })] })) as RebootNodesResult;
    const finishedAfterLastBootMs = Date.now() - lastBootAt;
    for (const n of nodes) s.node(n).events.off('down', onDown).off('boot', onBoot);

    expect(Object.keys(result).sort()).toEqual(nodes);
    for (const n of nodes) {
      const r = result[n];
      expect(r).toMatchObject({ node: n, bootIdBefore: before[n].bootId, how: 'soft', attempts: 1, sawDown: true, kernelRelease: expectedRelease[n] });
      expect(r.bootId).not.toBe(before[n].bootId);
      expect(r.bootId).toBe(s.node(n).state.bootId);
      expect(r.upAfterMs).toBeGreaterThanOrEqual(DOWN_MS - 500);
      expect(counts(s, n)).toEqual({ reboot: before[n].reboot + 1, bmc: before[n].bmc, cycle: before[n].cycle });
    }
    expect(maxDown).toBe(4); // all four were down at the same time: in parallel
    expect(finishedAfterLastBootMs).toBeLessThan(2000); // polls every 250 ms (target: < 1 s)
    const progress = await client.workflow.getHandle(workflowId).query(rebootProgressQuery);
    expect(Object.values(progress.nodes).map((p) => `${p.step}/${p.state}`)).toEqual(nodes.map(() => 'rebooted/done'));
  });

  it('a reboot that hangs is cured by one BMC power cycle, never a second soft reboot; other nodes are not held up', async () => {
    const before = { node1: counts(s, 'node1'), node2: counts(s, 'node2') };
    s.faults.add({ node: 'node2', step: 'reboot-hang' });
    const result = (await client.workflow.execute('rebootNodes', { taskQueue, workflowId: `reboot-hang-bmc-${Date.now()}`, args: [inputFor(s, ['node1', 'node2'], { timeouts: { reboot: 6, operator: 10 } })] })) as RebootNodesResult;
    expect(result.node1).toMatchObject({ how: 'soft', attempts: 1 });
    expect(result.node2).toMatchObject({ how: 'bmc', attempts: 2, sawDown: true });
    expect(result.node2.bootId).toBe(s.node('node2').state.bootId);
    expect(counts(s, 'node2')).toEqual({ reboot: before.node2.reboot + 1, bmc: before.node2.bmc + 1, cycle: before.node2.cycle + 1 });
    expect(counts(s, 'node1')).toEqual({ ...before.node1, reboot: before.node1.reboot + 1 });
  });

  it('a node back on the wrong kernel fails at once (no power cycle), expected vs found, with its serial console', async () => {
    const before = counts(s, 'node0');
    const runId = `reboot-wrong-kernel-${Date.now()}`;
    const found = s.node('node0').state.kernelRelease;
    const failure = await failureOf(client.workflow.execute('rebootNodes', { taskQueue, workflowId: runId, args: [inputFor(s, ['node0'], { runId, expectedRelease: { node0: '4.4.137-pop-hype-x' } })] }));
    expect(failure).toMatchObject({ type: 'RebootFailed', nonRetryable: true });
    expect(failure.message).toContain(`node0: node node0 rebooted (boot_id ${s.node('node0').state.bootId}) but runs kernel ${found}, expected 4.4.137-pop-hype-x`);
    expect(failure.message).toMatch(/\n {2}serial console: nothing in 5 s \(logs\/node0\/console\.log in the run store\)$/);
    expect(readFileSync(path.join(runsDir(), runId, 'logs/node0/console.log'), 'utf8')).toMatch(/ipmitool sol activate for 5 s/);
    expect(counts(s, 'node0')).toEqual({ ...before, reboot: before.reboot + 1 });
  });

  describe('activities called directly (what a retry does)', () => {
    let pool: SshPool;
    let acts: ReturnType<typeof rebootActivities>;
    let ref: (node: string) => { cluster: string; profileHash: string; node: string };
    beforeAll(() => {
      pool = new SshPool();
      acts = rebootActivities({ ssh: pool });
      const hash = loadProfile(s.profileFile).hash;
      ref = (node) => ({ cluster: s.profileFile, profileHash: hash, node });
    });
    afterAll(() => pool.close());

    it('requestSoftReboot twice for the same boot reboots once; again after the boot, not at all', async () => {
      const node = s.node('node3');
      const c0 = counts(s, 'node3');
      const before = await acts.readBootState(ref('node3'));
      expect(before).toEqual({ bootId: node.state.bootId, kernelRelease: node.state.kernelRelease });

      expect(await acts.requestSoftReboot({ ...ref('node3'), bootIdBefore: before.bootId })).toMatchObject({ issued: true });
      const again = await acts.requestSoftReboot({ ...ref('node3'), bootIdBefore: before.bootId });
      expect(again).toMatchObject({ issued: false, detail: expect.stringMatching(/does not answer \(going down\)|already rebooted/) });

      const proof = await acts.awaitBoot({ ...ref('node3'), bootIdBefore: before.bootId, timeoutSeconds: 20 });
      expect(proof).toMatchObject({ bootId: node.state.bootId, sawDown: true });
      expect(proof.downAfterMs).toBeLessThan(proof.upAfterMs);
      expect(await acts.requestSoftReboot({ ...ref('node3'), bootIdBefore: before.bootId })).toEqual({ issued: false, detail: `not rebooting again: node3 already rebooted (boot_id ${proof.bootId})` });

      await new Promise((r) => setTimeout(r, DOWN_MS + 500)); // long enough for a stray reboot to show
      expect(node.state.bootId).toBe(proof.bootId);
      expect(counts(s, 'node3')).toEqual({ ...c0, reboot: c0.reboot + 1 });

      // bmcPowerCycle, retried after the node is back, leaves it alone.
      expect(await acts.bmcPowerCycle({ ...ref('node3'), bootIdBefore: before.bootId })).toEqual({ cycled: false, detail: `not power-cycled: node3 is back (boot_id ${proof.bootId})` });
      expect(counts(s, 'node3').bmc).toBe(c0.bmc);
    });

    it('awaitBoot: a wrong kernel and a node that never went down are non-retryable failures that say why', async () => {
      const now = await acts.readBootState(ref('node0'));
      const wrong = await acts.awaitBoot({ ...ref('node0'), bootIdBefore: 'aaaaaaaa-0000-4000-8000-000000000000', expectedRelease: '4.4.137-pop-hype-not', timeoutSeconds: 5 }).catch((e: unknown) => e);
      expect(wrong).toMatchObject({ type: 'WrongKernel', nonRetryable: true });
      expect((wrong as Error).message).toContain(`runs kernel ${now.kernelRelease}, expected 4.4.137-pop-hype-not`);

      const started = Date.now();
      const timeout = await acts.awaitBoot({ ...ref('node0'), bootIdBefore: now.bootId, timeoutSeconds: 1 }).catch((e: unknown) => e);
      expect(Date.now() - started).toBeLessThan(5000);
      expect(timeout).toMatchObject({ type: 'RebootTimeout', nonRetryable: true });
      expect((timeout as Error).message).toMatch(/^node node0 did not come back with a new boot_id within 1 s .*seen down: no/);
      expect((timeout as Error).message).toContain(`still up with boot_id ${now.bootId}`);
    });

    it('captureConsole records the serial console of a reboot into the run store', async () => {
      const runId = `console-${Date.now()}`;
      const capture = acts.captureConsole({ ...ref('node1'), runId, seconds: 6 });
      await new Promise((r) => setTimeout(r, 1500)); // SOL attached
      await s.node('node1').reboot();
      const got = await capture;
      expect(got?.log).toBe('logs/node1/console.log');
      const file = path.join(runsDir(), runId, 'logs/node1/console.log');
      expect(existsSync(file)).toBe(true);
      expect(readFileSync(file, 'utf8')).toMatch(/SIMULATED node node1/);
      expect(got!.tail.join('\n')).toMatch(/login:/);
      expect(readFileSync(file, 'utf8')).not.toContain(process.env[s.bmcPasswordEnv]!);
    });

    it('requestSoftReboot where sudo wants a password fails non-retryably, naming the node and the fix, and reboots nothing', async () => {
      const node = s.node('node2');
      const c0 = counts(s, 'node2');
      node.requireSudoPassword(true);
      try {
        const err = await acts.requestSoftReboot({ ...ref('node2'), bootIdBefore: node.state.bootId }).catch((e: unknown) => e);
        expect(err).toMatchObject({ type: 'SudoPasswordRequired', nonRetryable: true });
        expect((err as Error).message).toMatch(/^node node2: sudo asks for a password for `sudo -n systemctl reboot`.*ae ALL=\(ALL\) NOPASSWD: ALL/);
      } finally {
        node.requireSudoPassword(false);
      }
      expect(node.up).toBe(true);
      expect(counts(s, 'node2')).toEqual(c0);
    });

    it('bmcPowerCycle without the password variable fails at once, naming the variable and how to set it', async () => {
      const saved = process.env[s.bmcPasswordEnv];
      delete process.env[s.bmcPasswordEnv];
      try {
        const err = await acts.bmcPowerCycle({ ...ref('node2'), bootIdBefore: 'aaaaaaaa-0000-4000-8000-000000000000' }).catch((e: unknown) => e);
        expect(err).toMatchObject({ type: 'BmcPasswordMissing', nonRetryable: true });
        expect((err as Error).message).toContain(`export ${s.bmcPasswordEnv}="$(cat ${s.bmcPasswordFile})"`);
      } finally {
        process.env[s.bmcPasswordEnv] = saved;
      }
    });
  });

  it('a worker SIGKILLed while awaitBoot runs: the retry on a new worker resumes the wait, the node reboots once', async () => {
    const queue = uniqueTaskQueue('reboot-kill');
    const workers: Spawned[] = [];
    const startWorker = async () => {
      const w = await startWorkerProcess(queue);
      workers.push(w);
      return w;
    };
    const c0 = counts(s, 'node3');
    // awaitBoot's heartbeat timeout, shorter than its 15 s default: the dead worker's attempt is given up sooner.
    const heartbeat = 5;
    s.faults.add({ node: 'node3', step: 'slow', factor: 4 }); // down for 6 s
    try {
      const first = await startWorker();
      const handle = await client.workflow.start('rebootNodes', { taskQueue: queue, workflowId: `reboot-kill-${Date.now()}`, args: [inputFor(s, ['node3'], { timeouts: { reboot: 90, operator: 60, heartbeat } })] });
      await waitUntil(
        'awaitBoot to run while node3 is down',
        async () => !s.node('node3').up && ((await handle.describe()).raw.pendingActivities ?? []).some((a) => a.activityType?.name === 'awaitBoot'),
        30_000,
        100,
      );
      first.child.kill('SIGKILL');
      await first.exited;
      await startWorker();
      const result = ((await handle.result()) as RebootNodesResult).node3;
      expect(result).toMatchObject({ how: 'soft', attempts: 1, bootId: s.node('node3').state.bootId });
      // Measured from the first attempt's start: the retry (after the heartbeat timeout) resumed its deadline.
      expect(result.upAfterMs).toBeGreaterThan(heartbeat * 1000);
      const history = await handle.fetchHistory();
      const started = (history.events ?? []).filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt);
      expect(started).toContain(2);
      expect(counts(s, 'node3')).toEqual({ ...c0, reboot: c0.reboot + 1 });
    } finally {
      s.faults.clear('node3', 'slow');
      for (const w of workers) w.child.kill('SIGKILL');
    }
  });
});

describe('without BMCs', () => {
  let s: SimCluster;
  beforeAll(async () => {
    s = await sim('reboot-nobmc', { bmc: false });
    expect(s.bmcs).toEqual({});
  });
  afterAll(() => s?.stop());

  it('a hung node waits for the operator; after their power cycle and signal the run completes', async () => {
    const before = counts(s, 'node1');
    s.faults.add({ node: 'node1', step: 'reboot-hang' });
    const workflowId = `reboot-operator-${Date.now()}`;
    const input = inputFor(s, ['node0', 'node1'], { timeouts: { reboot: 2, operator: 60 } });
    expect(input.bmcNodes).toEqual([]);
    const handle = await client.workflow.start('rebootNodes', { taskQueue, workflowId, args: [input] });
    await waitUntil('node1 to wait for the operator', async () => (await handle.query(rebootProgressQuery)).nodes.node1?.state === 'waiting', 30_000, 200);
    const progress = await handle.query(rebootProgressQuery);
    expect(progress.nodes.node1).toMatchObject({ step: 'operator', detail: expect.stringContaining('node1 waits for an operator: power-cycle it by hand, then signal operator {"node":"node1","action":"power-cycled"}') });
    expect(progress.waitingFor).toEqual([expect.stringMatching(/^node1 waits for an operator/)]);
    expect(s.node('node1').state.power).toBe('hung');

    await handle.signal(operatorSignal, { node: 'node7', action: 'power-cycled' }); // not in this reboot: ignored
    await s.node('node1').powerCycle();
    await handle.signal(operatorSignal, { node: 'node1', action: 'power-cycled', note: 'reset by the test' });
    const result = (await handle.result()) as RebootNodesResult;
    expect(result.node0).toMatchObject({ how: 'soft', attempts: 1 });
    expect(result.node1).toMatchObject({ how: 'operator', attempts: 2, bootId: s.node('node1').state.bootId });
    expect(counts(s, 'node1')).toEqual({ reboot: before.reboot + 1, bmc: 0, cycle: before.cycle + 1 });
  });

  it('an operator deadline that passes fails the run, naming the node with its last answers; the healthy node is still rebooted', async () => {
    s.faults.add({ node: 'node2', step: 'reboot-hang' });
    const started = Date.now();
    try {
      const failure = await failureOf(client.workflow.execute('rebootNodes', { taskQueue, workflowId: `reboot-deadline-${Date.now()}`, args: [inputFor(s, ['node2', 'node3'], { reason: 'boot the FragVisor kernel', timeouts: { reboot: 2, operator: 2 } })] }));
      expect(Date.now() - started).toBeLessThan(30_000);
      expect(failure).toMatchObject({ type: 'RebootFailed', nonRetryable: true });
      expect(failure.message).toMatch(/^reboot \(boot the FragVisor kernel\) failed on node2:\nnode2: no operator answer within the 2 s deadline; last error, after the soft reboot: node node2 did not come back with a new boot_id within 2 s/);
      expect(failure.message).toMatch(/last answers:\n {2}\+\d+\.\d s: node node2: cannot connect to .*ECONNREFUSED/);
      expect(failure.message).not.toMatch(/node3:/);
      const [details] = failure.details as [{ failed: RebootFailure[]; rebooted: { node: string }[] }];
      expect(details.failed.map((f) => f.node)).toEqual(['node2']);
      expect(details.failed[0].console).toBeUndefined(); // no BMC, no serial console
      expect(details.rebooted.map((r) => r.node)).toEqual(['node3']);
    } finally {
      await s.node('node2').powerCycle();
    }
  });
});
