import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findNode, guestSshRoute, sshTarget } from '../../activities/cluster';
import { startRemoteJob } from '../../activities/remoteJob';
import { SshPool } from '../../activities/ssh/pool';
import { vmActivities, type VmDiedDetails, type GuestBootTimeoutDetails, type LaunchVmInput } from '../../activities/vm';
import { loadProfile, type LoadedProfile } from '../../config/load';
import { runsDir } from '../../config/paths';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { setMsgLayerDeps, type MsgLayerDeps } from '../../sim/tools/msglayer';
import { currentVm } from '../../sim/tools/vm';
import { probePort, waitUntil } from '../helpers/sim';
import { GUEST_OUT, Procedure } from '../helpers/simProcedure';
import { thrownFailure } from '../helpers/temporal';

/**
 * The VM activities on 4 simulated nodes over real SSH, prepared by hand first (ARTIFACT.md steps 1-3
 * over plain OpenSSH: host kernels, the guest kernel, the reboot, the messaging layer): lkvm as a
 * remote job with its console in the run store, the guest over SSH, a reattaching second launch, the
 * stop, the guest-boot fault, a guest that never answers; then GiantVM's qemu on every node after
 * booting the Linux-DSM host kernel.
 */

jest.setTimeout(300_000);

const N = 4;
const KERNEL_IMAGE = `${GUEST_OUT}/arch/x86/boot/bzImage`;
const DSM_TREE = '/home/ae/linux-dsm';

let stateDir: string;
let sim: SimCluster;
let proc: Procedure;
let pool: SshPool;
let loaded: LoadedProfile;
let previousDeps: MsgLayerDeps;
let acts: ReturnType<typeof vmActivities>;
const runId = `vm-test-${process.pid}`;

const counter = (node: string, what: string) => sim.world.node(node).counters[what] ?? 0;
const ref = () => ({ cluster: sim.profileFile, profileHash: loaded.hash, runId });
const launchInput = (patch: Partial<LaunchVmInput> = {}): LaunchVmInput => ({ ...ref(), hypervisor: 'fragvisor', experiment: 'E1', nodeCount: N, kernelImage: KERNEL_IMAGE, epoch: 'fragvisor-E1-n4', ...patch });
const runFile = (relative: string) => readFileSync(path.join(runsDir(), runId, relative), 'utf8');

/** The guest through the orchestrator's own pool and route. */
async function inGuest(command: string): Promise<{ exitCode: number | null; stdout: string }> {
  const { target, settings } = guestSshRoute(loaded.profile);
  return pool.exec(target, settings, command, { timeoutMs: 20_000 });
}

/** A fresh boot of the FragVisor kernel on every node with the messaging layer up: what each VM needs. */
async function freshBootWithLayer(): Promise<void> {
  await proc.rebootAll();
  for (const node of proc.nodes) expect((await proc.sh(node, 'uname -r')).stdout).toMatch(/-pop-hype\n$/);
  expect((await proc.insmodAll()).map((r) => r.code)).toEqual(proc.nodes.map(() => 0));
}

beforeAll(async () => {
  previousDeps = setMsgLayerDeps({ windowFloorMs: 8_000 });
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'ae-vm-'));
  sim = await startSimCluster({ nodes: N, stateDir, timeScale: 0, rebootDownMs: 300, bmc: false });
  proc = new Procedure(sim);
  loaded = loadProfile(sim.profileFile);
  for (const build of await proc.buildHostKernels((i) => i === 0)) expect(build).toMatchObject({ code: 0 });
  expect((await proc.buildGuestKernel()).code).toBe(0);
  expect(await proc.buildMsgLayer()).toEqual(proc.nodes.map(() => 0));
  await freshBootWithLayer();
  pool = new SshPool();
  acts = vmActivities({ ssh: pool });
}, 300_000);

afterAll(async () => {
  await pool?.close();
  await sim?.stop();
  if (previousDeps) setMsgLayerDeps(previousDeps);
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

describe('a FragVisor VM (E1, 4 nodes)', () => {
  let jobs: { node: string; key: string }[];

  it('launchVm clears a stale socket, starts lkvm once and bridges tap0; awaitGuest: the guest answers and runs nginx', async () => {
    // A socket an earlier VM left on node2: lkvm would refuse to start with it there.
    expect((await proc.sh('node2', 'sudo mkdir -p /root/.lkvm && sudo touch /root/.lkvm/guest-4242.sock')).code).toBe(0);
    const lkvm = counter('node0', 'lkvm');
    const launched = await acts.launchVm(launchInput());
    jobs = launched.jobs;
    expect(launched.reattached).toBe(false);
    expect(jobs).toEqual([{ node: 'node0', key: expect.stringContaining(sim.node('node0').state.bootId) }]);
    expect(counter('node0', 'lkvm') - lkvm).toBe(1);
    expect(counter('node0', 'brctl:addif')).toBe(1);
    expect((await proc.sh('node2', 'sudo ls /root/.lkvm')).stdout).not.toContain('guest-4242.sock');

    const ready = await acts.awaitGuest({ ...ref(), jobs, timeoutSeconds: 60 });
    expect(ready.console).toBe(`logs/node0/${jobs[0].key}.log`);
    expect(ready.bootMs).toBeGreaterThanOrEqual(0);
    const ps = await inGuest('ps aux');
    expect(ps.exitCode).toBe(0);
    expect(ps.stdout).toMatch(/^root +\d+ .* nginx: master process /m);
    expect(ps.stdout).toMatch(/^nobody +\d+ .* nginx: worker process$/m);
    // The console as lkvm printed it, up to the login prompt.
    const console = runFile(ready.console);
    expect(console).toContain('FragVisor (SIMULATED): 4 vCPU(s), vCPU i on node i: 0:node0 1:node1 2:node2 3:node3');
    expect(console).toMatch(/Linux version 4\.4\.137-pop-hype.*\(SIMULATED\)/);
    expect(console).toContain('Command line: root=/dev/ram rw init=/init2 fstype=ext4 spectre_v2=off nopti pti=off numa=fake=4 percpu_alloc=page -no-kvm-pit-reinjection clocksource=tsc');
    expect(console).toContain('guest login:');
    const steps = runFile(`logs/node2/fragvisor-E1-n4.vm-lkvm-sockets.log`);
    expect(steps).toContain("removed '/root/.lkvm/guest-4242.sock'");
  });

  it('a second launchVm in the same boot reattaches: the same job, no second lkvm', async () => {
    const lkvm = counter('node0', 'lkvm');
    const again = await acts.launchVm(launchInput());
    expect(again).toEqual({ jobs, reattached: true });
    expect(counter('node0', 'lkvm')).toBe(lkvm);
    // tap0 was on br0 already ("already a member" is fine).
    expect(counter('node0', 'brctl:addif')).toBe(1);
    await acts.awaitGuest({ ...ref(), jobs, timeoutSeconds: 60 });
    expect((await inGuest('hostname')).stdout).toBe('guest\n');
  });

  it('stopVm kills lkvm: the guest is gone; stopping again changes nothing; a relaunch in this boot is VmDied, not a second lkvm', async () => {
    const stopped = await acts.stopVm({ ...ref(), jobs });
    expect(stopped).toEqual({ jobs: [{ ...jobs[0], state: 'killed', killed: true }], console: `logs/node0/${jobs[0].key}.log` });
    expect(currentVm(sim.world)).toBeUndefined();
    expect(await probePort(loaded.profile.guest.ssh.port)).toBe('refused');
    // Read by launchVm, twice by awaitGuest, then to its end by stopVm: the copy is lkvm's output, byte for byte.
    const onNode = readFileSync(path.join(sim.node('node0').homeDir, 'ae', `.fragvisor-ae/jobs/${jobs[0].key}/log`), 'utf8');
    expect(runFile(stopped.console)).toBe(onNode);
    expect(onNode.match(/guest login:/g)).toHaveLength(1);
    expect(await acts.stopVm({ ...ref(), jobs })).toMatchObject({ jobs: [{ state: 'killed', killed: false }] });
    // The VM cannot be restarted in this boot: a launch finds the killed job and says so, lkvm never runs again.
    const lkvm = counter('node0', 'lkvm');
    const relaunch = await thrownFailure(acts.launchVm(launchInput()));
    expect(relaunch).toMatchObject({ type: 'VmDied', nonRetryable: true, details: [{ node: 'node0', key: jobs[0].key, state: 'killed', reason: 'killed:cancelled' }] });
    expect(counter('node0', 'lkvm')).toBe(lkvm);
  });
});

describe('a VM that does not come up', () => {
  it('the guest-boot fault: VmDied with the console\'s panic lines', async () => {
    await freshBootWithLayer();
    sim.faults.add({ node: 'node0', step: 'guest-boot' });
    const input = launchInput({ epoch: 'fragvisor-E1-n4-fault' });
    // lkvm may die before the bridge step looks (launchVm reports it) or after (awaitGuest does).
    const failure = await thrownFailure(acts.launchVm(input).then((vm) => acts.awaitGuest({ ...ref(), jobs: vm.jobs, timeoutSeconds: 60 })));
    expect(failure).toMatchObject({ type: 'VmDied', nonRetryable: true });
    const details = failure.details?.[0] as VmDiedDetails;
    expect(details).toMatchObject({ node: 'node0', state: 'finished', exitCode: 1 });
    expect(details.lines.join('\n')).toMatch(/Kernel panic - not syncing: Fatal exception/);
    expect(failure.message).toMatch(/^the VM died: its launcher on node0 \(remote job \S+\) exited with 1; .*\n.*guest-boot fault/s);
    expect(runFile(details.log)).toContain('end Kernel panic');
    sim.faults.clear();
  });

  it('a launcher that runs but whose guest never answers: GuestBootTimeout with its last lines', async () => {
    const target = sshTarget(findNode(loaded, 'node0'));
    const key = `${runId}-silent`;
    await startRemoteJob(pool, target, loaded.profile.ssh, { key, argv: ['bash', '-c', 'echo "[    0.000000] booting (nothing else will come)"; exec sleep 120'] });
    const failure = await thrownFailure(acts.awaitGuest({ ...ref(), jobs: [{ node: 'node0', key }], timeoutSeconds: 2 }));
    expect(failure).toMatchObject({ type: 'GuestBootTimeout', nonRetryable: true });
    const details = failure.details?.[0] as GuestBootTimeoutDetails;
    expect(details).toMatchObject({ timeoutSeconds: 2, lines: ['[    0.000000] booting (nothing else will come)'], console: `logs/node0/${key}.log` });
    expect(details.lastError).toMatch(/ECONNREFUSED|refused/i);
    expect(await acts.stopVm({ ...ref(), jobs: [{ node: 'node0', key }] })).toMatchObject({ jobs: [{ state: 'killed', killed: true }] });
  });
});

describe('GiantVM (Linux-DSM host kernel, qemu on every node)', () => {
  beforeAll(async () => {
    const builds = await Promise.all(proc.nodes.map((node) => proc.sh(node, `cd ${DSM_TREE} && make -j16 >/dev/null && sudo make modules_install >/dev/null && sudo make install >/dev/null`, 120_000)));
    expect(builds.map((b) => b.code)).toEqual(proc.nodes.map(() => 0));
    await proc.rebootAll();
    for (const node of proc.nodes) expect((await proc.sh(node, 'uname -r')).stdout).toBe('4.8.10-dsm\n');
  }, 240_000);

  it('launchVm starts one qemu per node, awaitGuest: the guest answers; stopVm kills every instance', async () => {
    const qemu = proc.nodes.map((n) => counter(n, 'qemu'));
    const { jobs, reattached } = await acts.launchVm(launchInput({ hypervisor: 'giantvm', epoch: 'giantvm-E1-n4' }));
    expect(reattached).toBe(false);
    expect(jobs.map((j) => j.node)).toEqual(proc.nodes);
    expect(proc.nodes.map((n, i) => counter(n, 'qemu') - qemu[i])).toEqual([1, 1, 1, 1]);
    const ready = await acts.awaitGuest({ ...ref(), jobs, timeoutSeconds: 60 });
    expect(runFile(ready.console)).toContain('Hypervisor detected: KVM (GiantVM, kernel-irqchip=off)');
    expect(runFile(ready.console)).toContain('console=ttyS0');
    expect((await inGuest('ps aux')).stdout).toMatch(/nginx: worker process$/m);
    expect(currentVm(sim.world)).toMatchObject({ hypervisor: 'giantvm', phase: 'running' });

    const again = await acts.launchVm(launchInput({ hypervisor: 'giantvm', epoch: 'giantvm-E1-n4' }));
    expect(again).toEqual({ jobs, reattached: true });
    expect(proc.nodes.map((n, i) => counter(n, 'qemu') - qemu[i])).toEqual([1, 1, 1, 1]);

    const stopped = await acts.stopVm({ ...ref(), jobs });
    expect(stopped.jobs.filter((j) => j.killed).length).toBeGreaterThanOrEqual(1);
    expect(stopped.jobs.every((j) => j.state === 'killed' || j.state === 'finished')).toBe(true);
    await waitUntil('the GiantVM guest to go', async () => (await probePort(loaded.profile.guest.ssh.port)) === 'refused', 20_000);
    expect(currentVm(sim.world)).toBeUndefined();
  });
});
