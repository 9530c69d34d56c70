import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { parseMarker } from '../../activities/kernelOutput';
import { loadProfile } from '../../config/load';
import { runsDir } from '../../config/paths';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { bootedKernelIdentity, kernelImage } from '../../sim/fragvisor';
import type { BuildGuestKernelInput, BuildGuestKernelResult } from '../../workflows/guestKernel';
import type { InstallHostKernelInput, InstallHostKernelResult, KernelProgress } from '../../workflows/installHostKernel';
import type { Spawned } from '../helpers/processes';
import { openssh, waitUntil } from '../helpers/sim';
import { activityFailure, startTestWorker, startWorkerProcess, testClient, uniqueTaskQueue } from '../helpers/temporal';

/**
 * installHostKernel and buildGuestKernel through real workers, over real SSH to 4 simulated nodes:
 * all nodes in parallel, the origin flag on the origin only, the marker, the skip after a reboot,
 * GiantVM's tree, a failed build, a worker killed and an SSH link dropped mid-build (the retry
 * reattaches: one make per node), and the guest kernel in its own worktree.
 *
 * One simulator for all of it, at a small time scale rather than 0: a build must take real time for
 * a worker to be killed under it (a -j16 build is 712 simulated seconds = 1.4 s here; the `slow`
 * fault stretches the one that is interrupted).
 */

jest.setTimeout(240_000);

const TIME_SCALE = 0.002;
const RELEASE = '4.4.137-pop-hype';
const TREE = '/home/ae/FragVisor/fragvisor-linux';
const NODES = ['node0', 'node1', 'node2', 'node3'];
const taskQueue = uniqueTaskQueue('kernel');

let dir: string;
let sim: SimCluster;
let client: Client;
let closeClient: () => Promise<void>;
let stopWorker: () => Promise<void>;
let profileHash: string;
let timeouts: { kernelBuild: number; kernelInstall: number };
const spawned: Spawned[] = [];

const counters = (node: string) => sim.world.node(node).counters;
const count = (node: string, what: string) => counters(node)[what] ?? 0;
const sh = async (node: string, command: string) => {
  const r = await openssh(sim, node, command);
  expect(r).toMatchObject({ code: 0 });
  return r.stdout;
};
let runs = 0;
const newRunId = (what: string) => `kernel-${what}-${Date.now()}-${++runs}`;

const hostInput = (runId: string, node: string, over: Partial<InstallHostKernelInput> = {}): InstallHostKernelInput => ({
  cluster: sim.profileFile,
  profileHash,
  runId,
  node,
  origin: node === 'node0',
  flavour: 'fragvisor',
  jobs: 16,
  timeouts,
  ...over,
});

const install = (input: InstallHostKernelInput, queue = taskQueue) =>
  client.workflow.start('installHostKernel', { taskQueue: queue, workflowId: `${input.runId}-${input.flavour}-${input.node}`, args: [input], workflowExecutionTimeout: '4 minutes' });

const guest = (input: BuildGuestKernelInput) =>
  client.workflow.execute('buildGuestKernel', { taskQueue, workflowId: `${input.runId}-guest`, args: [input], workflowExecutionTimeout: '3 minutes' }) as Promise<BuildGuestKernelResult>;

/** How many times the workflow's `activityType` was started (attempts included). */
async function attempts(workflowId: string, activityType: string): Promise<number> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const scheduled = new Set<string>();
  let max = 0;
  for (const e of history.events ?? []) {
    if (e.activityTaskScheduledEventAttributes?.activityType?.name === activityType) scheduled.add(String(e.eventId));
    const started = e.activityTaskStartedEventAttributes;
    if (started && scheduled.has(String(started.scheduledEventId))) max = Math.max(max, started.attempt ?? 1);
  }
  return max;
}

const startWorker = async (queue: string) => {
  const w = await startWorkerProcess(queue);
  spawned.push(w);
  return w;
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-kernel-wf-'));
  sim = await startSimCluster({ nodes: 4, stateDir: dir, timeScale: TIME_SCALE, rebootDownMs: 3000, bmc: false });
  const loaded = loadProfile(sim.profileFile);
  profileHash = loaded.hash;
  timeouts = { kernelBuild: loaded.profile.timeouts.kernelBuild, kernelInstall: loaded.profile.timeouts.kernelInstall };
  ({ client, close: closeClient } = await testClient());
  ({ stop: stopWorker } = await startTestWorker(taskQueue));
}, 60_000);

afterAll(async () => {
  for (const w of spawned) w.child.kill('SIGKILL');
  await stopWorker?.();
  await closeClient?.();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('FragVisor host kernels on 4 nodes', () => {
  let head: string;
  let treeHead: string;
  const results: Record<string, InstallHostKernelResult> = {};

  it('builds and installs on all nodes in parallel: the origin flag on the origin only, one make install each, the marker', async () => {
    head = (await sh('node0', 'git -C ~/FragVisor rev-parse HEAD')).trim();
    treeHead = (await sh('node0', `git -C ${TREE} rev-parse HEAD`)).trim();
    const runId = newRunId('all');
    // No commit named: each child pins HEAD of the origin's checkout.
    const handles = await Promise.all(NODES.map((n) => install(hostInput(runId, n))));
    for (const [i, r] of (await Promise.all(handles.map((h) => h.result() as Promise<InstallHostKernelResult>))).entries()) results[NODES[i]] = r;

    for (const node of NODES) {
      const r = results[node];
      expect(r).toMatchObject({ node, flavour: 'fragvisor', skipped: false, release: RELEASE, commit: head, treeCommit: treeHead });
      expect(r.configHash).toMatch(/^[0-9a-f]{64}$/);
      expect(counters(node)).toMatchObject({ 'make:all': 1, 'make:modules_install': 1, 'make:install': 1 });
      expect(sim.node(node).state.nextKernelRelease).toBe(RELEASE);
      // The origin flag's read-back: defined on node0, commented out everywhere else; the file agrees.
      const defined = (await sh(node, `grep -c '^#define CONFIG_POPCORN_ORIGIN_NODE' ${TREE}/include/popcorn/debug.h || true`)).trim();
      if (node === 'node0') {
        expect(r.originFlag).toEqual({ origin: true, lines: [expect.stringMatching(/^\d+:#define CONFIG_POPCORN_ORIGIN_NODE$/)] });
        expect(defined).toBe('1');
      } else {
        expect(r.originFlag).toEqual({ origin: false, lines: [expect.stringMatching(/^\d+:\/\/ #define CONFIG_POPCORN_ORIGIN_NODE$/)] });
        expect(defined).toBe('0');
      }
      // The marker on the node says what was installed.
      const { marker } = parseMarker(await sh(node, 'cat ~/.fragvisor-ae/kernel/fragvisor.json'));
      expect(marker).toMatchObject({ flavour: 'fragvisor', commit: head, treeCommit: treeHead, configHash: r.configHash, release: RELEASE, origin: node === 'node0' });
      // Logs in the run store, not in the payload; the build log is make's.
      expect(r.logs.length).toBeGreaterThanOrEqual(5);
      for (const log of r.logs) expect(existsSync(path.join(runsDir(), runId, log))).toBe(true);
      const buildLog = r.logs.find((l) => /\.build\./.test(l));
      expect(buildLog).toBeDefined();
      expect(readFileSync(path.join(runsDir(), runId, buildLog!), 'utf8')).toMatch(/Kernel: arch\/x86\/boot\/bzImage is ready {2}\(#1\)\n$/);
      expect(JSON.stringify(r).length).toBeLessThan(4096);
    }
    // The origin's config differs from the others' (debug.h), the others' are the same.
    expect(new Set(NODES.slice(1).map((n) => results[n].configHash)).size).toBe(1);
    expect(results.node0.configHash).not.toBe(results.node1.configHash);
    const progress = await client.workflow.getHandle(`${runId}-fragvisor-node1`).query<KernelProgress>('progress');
    expect(progress).toMatchObject({ node: 'node1', flavour: 'fragvisor', guest: false, step: 'done', state: 'done' });
  });

  it('after a reboot each node runs 4.4.137-pop-hype with its flag, and a second install of the same commit is skipped', async () => {
    await Promise.all(NODES.map((n) => sim.node(n).reboot()));
    for (const node of NODES) {
      expect((await sh(node, 'uname -r')).trim()).toBe(RELEASE);
      expect(bootedKernelIdentity(sim.world.node(node))).toMatchObject({ flavour: 'fragvisor', release: RELEASE, origin: node === 'node0', hostKernel: true });
    }
    const before = NODES.map((n) => ({ ...counters(n) }));
    const runId = newRunId('again');
    const handles = await Promise.all(NODES.map((n) => install(hostInput(runId, n, { commit: head.slice(0, 12) }))));
    const again = (await Promise.all(handles.map((h) => h.result()))) as InstallHostKernelResult[];
    for (const [i, r] of again.entries()) {
      expect(r).toMatchObject({ node: NODES[i], skipped: true, release: RELEASE, commit: head, configHash: results[NODES[i]].configHash });
      expect(counters(NODES[i])).toEqual(before[i]);
    }
    expect(await client.workflow.getHandle(`${runId}-fragvisor-node2`).query<KernelProgress>('progress')).toMatchObject({ step: 'inspect', state: 'skipped', detail: expect.stringContaining(`runs ${RELEASE}`) });
  });

  it('builds the guest kernel on the origin in its own worktree: the host tree untouched, the image a guest kernel', async () => {
    const makes = count('node0', 'make:all');
    const r = await guest({ cluster: sim.profileFile, profileHash, runId: newRunId('guest'), jobs: 16, timeouts });
    expect(r).toMatchObject({ node: 'node0', image: '/home/ae/fragvisor-guest-kernel/build/arch/x86/boot/bzImage', commit: head, treeCommit: treeHead });
    expect(kernelImage(sim.world.node('node0'), r.image)).toMatchObject({ flavour: 'fragvisor', release: RELEASE, hostKernel: false, sourceCommit: treeHead, outputDir: '/home/ae/fragvisor-guest-kernel/build', config: { CONFIG_RCU_STALL_COMMON: 'n' } });
    expect(count('node0', 'make:all')).toBe(makes + 1);
    expect(await sh('node0', `grep '^#define POPHYPE_HOST_KERNEL' ${TREE}/include/popcorn/debug.h && git -C ${TREE} status --porcelain`)).toBe('#define POPHYPE_HOST_KERNEL 1\n');
    // The host build is still the host kernel.
    expect(kernelImage(sim.world.node('node0'), `${TREE}/arch/x86/boot/bzImage`)).toMatchObject({ hostKernel: true, config: { CONFIG_RCU_STALL_COMMON: 'y' } });
    // Same commit, same host configuration: the next run finds the image and builds nothing.
    const again = await guest({ cluster: sim.profileFile, profileHash, runId: newRunId('guest-again'), jobs: 16, timeouts });
    expect(again).toMatchObject({ image: r.image, commit: head, skipped: true });
    expect(count('node0', 'make:all')).toBe(makes + 1);
  });

  it('reports a failed guest build with make\'s exit code, and leaves the host tree as it was', async () => {
    await sh('node0', 'rm -f ~/.fragvisor-ae/kernel/guest.json');
    sim.faults.add({ node: 'node0', step: 'kernel-build' });
    const failure = await activityFailure(guest({ cluster: sim.profileFile, profileHash, runId: newRunId('guest-fail'), node: 'node0', jobs: 16, timeouts }));
    expect(failure).toMatchObject({ type: 'KernelBuildFailed', nonRetryable: true });
    expect(failure.message).toMatch(/^node node0: the guest kernel build in \/home\/ae\/fragvisor-guest-kernel\/src .*failed \(make exit code 2\)/);
    expect(failure.message).toContain("kernel/popcorn/process_server.c:1187:9: error: implicit declaration of function 'popcorn_migrate_vcpu'");
    expect(failure.details?.[0]).toMatchObject({ node: 'node0', guest: true, exitCode: 2, lines: expect.arrayContaining(['make: *** [kernel] Error 2']) });
    expect(await sh('node0', `grep '^#define POPHYPE_HOST_KERNEL' ${TREE}/include/popcorn/debug.h && git -C ${TREE} status --porcelain`)).toBe('#define POPHYPE_HOST_KERNEL 1\n');
  });
});

describe("GiantVM's host kernel, failures and interruptions", () => {
  it('a kernel-build fault fails with KernelBuildFailed naming the node and the failing lines; the next run builds', async () => {
    const installs = count('node2', 'make:install');
    sim.faults.add({ node: 'node2', step: 'kernel-build' });
    const runId = newRunId('dsm-fail');
    const failure = await activityFailure(install(hostInput(runId, 'node2', { flavour: 'giantvm' })).then((h) => h.result()));
    expect(failure).toMatchObject({ type: 'KernelBuildFailed', nonRetryable: true });
    expect(failure.message).toMatch(/^node node2: the giantvm host kernel build in \/home\/ae\/linux-dsm failed \(make exit code 2\); full log in the run store: kernel-dsm-fail-\S+\/logs\/node2\/giantvm\.node2\.build\.\S+\.log\n/);
    expect(failure.message).toContain("arch/x86/kvm/dsm/dsm.c:1187:9: error: implicit declaration of function 'dsm_rdma_fetch'");
    expect(failure.message).toContain('make: *** [arch] Error 2');
    const details = failure.details?.[0] as { lines: string[]; log: string };
    expect(details.lines[0]).toMatch(/error: implicit declaration/);
    expect(readFileSync(path.join(runsDir(), runId, details.log), 'utf8')).toContain('make[2]: *** [arch/x86/kvm/dsm/dsm.o] Error 1');
    expect(count('node2', 'make:install')).toBe(installs);

    const ok = (await install(hostInput(newRunId('dsm-ok'), 'node2', { flavour: 'giantvm' })).then((h) => h.result())) as InstallHostKernelResult;
    expect(ok).toMatchObject({ node: 'node2', flavour: 'giantvm', skipped: false, release: '4.8.10-dsm' });
    expect(ok.originFlag).toBeUndefined();
    expect(sim.node('node2').state.nextKernelRelease).toBe('4.8.10-dsm');
    expect(parseMarker(await sh('node2', 'cat ~/.fragvisor-ae/kernel/giantvm.json')).marker).toMatchObject({ flavour: 'giantvm', release: '4.8.10-dsm', commit: ok.commit, treeCommit: ok.commit });
    expect(count('node2', 'make:install')).toBe(installs + 1);
  });

  it('a read-only debug.h fails at once with OriginFlagUneditable saying what to do, nothing built', async () => {
    const builds = count('node3', 'make:all');
    await sh('node3', 'chmod a-w ~/FragVisor/fragvisor-linux/include/popcorn/debug.h');
    try {
      const runId = newRunId('flag-ro');
      const handle = await install(hostInput(runId, 'node3'));
      const failure = await activityFailure(handle.result());
      expect(failure).toMatchObject({ type: 'OriginFlagUneditable', nonRetryable: true });
      expect(failure.message).toContain('cannot set the origin flag (CONFIG_POPCORN_ORIGIN_NODE): /home/ae/FragVisor/fragvisor-linux/include/popcorn/debug.h or its directory is not writable by the SSH user: give that user the kernel tree (chown -R)');
      expect(await attempts(handle.workflowId, 'setOriginFlag')).toBe(1);
      expect(count('node3', 'make:all')).toBe(builds);
    } finally {
      await sh('node3', 'chmod u+w ~/FragVisor/fragvisor-linux/include/popcorn/debug.h');
    }
  });

  it('a worker killed mid-build: a new worker reattaches to the same make, which runs once', async () => {
    const queue = uniqueTaskQueue('kernel-kill');
    const first = await startWorker(queue);
    // About 14 s of build: time to kill the worker under it.
    sim.faults.add({ node: 'node1', step: 'slow', factor: 10 });
    const makes = count('node1', 'make:all');
    const installs = count('node1', 'make:install');
    // A short heartbeat timeout: the dead worker's build attempt is given up in seconds, not the default 30.
    const handle = await install(hostInput(newRunId('kill'), 'node1', { flavour: 'giantvm', timeouts: { ...timeouts, heartbeat: 5 } }), queue);
    await waitUntil('the build to start on node1', () => count('node1', 'make:all') === makes + 1, 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    sim.faults.clear('node1', 'slow');

    await startWorker(queue);
    const r = (await handle.result()) as InstallHostKernelResult;
    expect(r).toMatchObject({ node: 'node1', skipped: false, release: '4.8.10-dsm' });
    expect(count('node1', 'make:all')).toBe(makes + 1);
    expect(count('node1', 'make:install')).toBe(installs + 1);
    expect(await attempts(handle.workflowId, 'buildKernel')).toBeGreaterThanOrEqual(2);
  });

  it('an SSH connection dropped during the build: the activity reattaches, make runs once', async () => {
    sim.faults.add({ node: 'node3', step: 'slow', factor: 4 });
    const makes = count('node3', 'make:all');
    const handle = await install(hostInput(newRunId('drop'), 'node3', { flavour: 'giantvm' }));
    await waitUntil('the build to start on node3', () => count('node3', 'make:all') === makes + 1, 60_000);
    // The next command on node3 that runs at all (a poll of the build) loses its connection.
    sim.faults.add({ node: 'node3', step: 'ssh-drop', afterMs: 1 });
    await waitUntil('the connection to drop', () => !sim.faults.list().some((f) => f.node === 'node3' && f.step === 'ssh-drop'), 30_000);
    sim.faults.clear('node3', 'slow');
    const r = (await handle.result()) as InstallHostKernelResult;
    expect(r).toMatchObject({ node: 'node3', skipped: false, release: '4.8.10-dsm' });
    expect(count('node3', 'make:all')).toBe(makes + 1);
    expect(await attempts(handle.workflowId, 'buildKernel')).toBeGreaterThanOrEqual(2);
  });
});
