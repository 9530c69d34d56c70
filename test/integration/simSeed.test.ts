import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../sim/ports';
import { probePort, waitUntil } from '../helpers/sim';
import { call, FakeNode, FakeWorld, type Call } from '../helpers/vmWorld';

/**
 * Issue "simulated testbed", shown by: "With a fixed seed, two runs give identical measurements."
 *
 * Two independent runs of the same procedure with the same seed, and one with another seed. A run
 * boots FragVisor guests the way simVm.test.ts does (the VM tools against a fake World, real guest
 * sandbox, real guest sshd reached with plain OpenSSH) and collects what the guest reports through
 * the performance model:
 * - NPB: ep.B and cg.B on vCPU 0 and pinned with taskset to a remote vCPU ("Time in seconds");
 * - the dd storage test on /dev/vda, write and read, from the origin's vCPU and remote vCPUs
 *   (dd's reported time and rate);
 * - OpenLambda: a fixed sequence of POST /run/process to every `ol worker` (each pinned to its
 *   own vCPU), the per-phase times of the response bodies.
 *
 * Both runs share this process and its loaded modules, as two VMs of one simulator would.
 *
 * Not compared: ab's "Time taken for tests" and the like. ab really sends its requests and measures
 * real elapsed time on this machine, so those numbers differ between any two runs whatever the
 * seed; only what the model reports is seeded.
 */




const RAMDISKS = '/home/ae/ramdisks';
const GUEST_KERNEL = '/home/ae/guest-build/arch/x86/boot/bzImage';
const PARAMS = 'root=/dev/ram rw init=/init2 fstype=ext4 spectre_v2=off nopti pti=off numa=fake=4 percpu_alloc=page -no-kvm-pit-reinjection clocksource=tsc';
const NET = 'mode=tap,vhost=1,guest_ip=10.4.4.222,host_ip=10.4.4.221,guest_mac=00:11:22:33:44:55';

function lkvmArgv(ramdisk: string, params: string): string[] {
  return ['lkvm', 'run', '-a', '1', '-b', '1', '-x', '1', '-y', '1', '-w', '4', '-i', `${RAMDISKS}/${ramdisk}`, '-k', GUEST_KERNEL, '-m', '32768', '-c', '4', '-p', params, '--network', NET];
}

/** What one run measured, in the order the procedure asked for it. */
interface Measurements {
  /** `<kernel> vCPU <k>` -> NPB's "Time in seconds". */
  npb: Record<string, number>;
  /** `<op> vCPU <k>` -> dd's reported seconds and rate. */
  dd: Record<string, { seconds: number; rate: string }>;
  /** `<port>#<i>` -> the lambda's per-phase times (ms) and total. */
  openLambda: Record<string, { phasesMs: Record<string, number>; totalMs: number }>;
}

const NPB_RUNS = ['/root/NPB/bin/ep.B', '/root/NPB/bin/cg.B', 'taskset 0x2 /root/NPB/bin/ep.B', 'taskset 0x2 /root/NPB/bin/cg.B', 'taskset 0x8 /root/NPB/bin/cg.B'];
const DD_RUNS = [
  'dd if=/dev/zero of=/dev/vda bs=1M count=100',
  'taskset 0x2 dd if=/dev/zero of=/dev/vda bs=1M count=100',
  'dd if=/dev/vda of=/dev/null bs=1M count=100',
  'taskset 0x4 dd if=/dev/vda of=/dev/null bs=1M count=100',
];
const OL_ROUNDS = 3;

/**
 * One simulator run with `seed`: its own state dir, world and guests, in this same process (guest
 * tools number their runs per guest, so nothing carries over from an earlier run).
 */
async function run(seed: number): Promise<Measurements> {
  let result: Measurements | undefined;
  await (async () => {
    const { loadOrCreateKeyPair } = await import('../../sim/keys');
    const { loadModel } = await import('../../sim/model/load');
    const { createModel } = await import('../../sim/model/runtime');
    const { curlHandler, currentVm, lkvmHandler, setVmDeps } = await import('../../sim/tools/vm');

    const dir = mkdtempSync(path.join(os.tmpdir(), 'ae-simseed-'));
    const guestPort = await freePort();
    writeFileSync(path.join(dir, 'sim.json'), JSON.stringify({ guestSshPort: guestPort }));
    loadOrCreateKeyPair(path.join(dir, 'id_ed25519'), 'ae-sim-client');
    writeFileSync(path.join(dir, 'known_hosts'), '');
    writeFileSync(path.join(dir, 'ssh_config'), '# test\n');
    const world = new FakeWorld(
      [0, 1, 2, 3].map((i) => new FakeNode(`node${i}`, i, `10.4.6.${10 + i}`, path.join(dir, 'nodes', `node${i}`, 'fs'))),
      seed,
    );
    const origin = world.nodes[0];
    mkdirSync(origin.hostPath(RAMDISKS), { recursive: true });
    for (const r of ['ramdisk_NPB_ATC.gz', 'ramdisk_for_openlambda200625.gz']) writeFileSync(origin.hostPath(`${RAMDISKS}/${r}`), 'ramdisk');
    mkdirSync(path.dirname(origin.hostPath(GUEST_KERNEL)), { recursive: true });
    writeFileSync(origin.hostPath(GUEST_KERNEL), 'bzImage');
    // The model as startSimCluster builds it: the run's seed; timeScale 0 (nothing sleeps).
    const model = createModel(loadModel('default').spec, { seed, timeScale: 0 });
    setVmDeps({
      model: () => model,
      stateDir: () => dir,
      msgLayer: () => ({ ready: true, problems: [] }),
      kernelImage: () => ({ flavour: 'fragvisor', hostKernel: false, release: '4.4.137-pop-hype-guest' }),
    });

    const guestSsh = (command: string): Promise<{ code: number | null; stdout: string; stderr: string }> =>
      new Promise((resolve) => {
        const child = spawn('ssh', ['-F', path.join(dir, 'ssh_config'), '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', 'guest', command], { stdio: ['ignore', 'pipe', 'pipe'] });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        child.on('close', (code) => resolve({ code, stdout, stderr }));
      });
    const endVm = async (vm: Call) => {
      vm.abort();
      await vm.done;
      await waitUntil('the guest sshd to go', async () => (await probePort(guestPort)) === 'refused', 20_000);
      expect(currentVm(world)).toBeUndefined();
      await Promise.all(world.nodes.map((n) => n.reboot()));
      for (const n of world.nodes) rmSync(n.hostPath('/root/.lkvm'), { recursive: true, force: true });
    };

    const m: Measurements = { npb: {}, dd: {}, openLambda: {} };
    try {
      // E3's NPB guest: NPB kernels and the dd storage test, local and remote.
      const npbVm = call(world, lkvmHandler, origin, lkvmArgv('ramdisk_NPB_ATC.gz', PARAMS));
      await npbVm.waitFor(/guest login:/);
      for (const cmd of NPB_RUNS) {
        const r = await guestSsh(cmd);
        expect(r.code).toBe(0);
        const vcpu = /SIMULATED: run time from the performance model \(fragvisor, vCPU (\d) of 4\)/.exec(r.stdout);
        const time = /^ Time in seconds += +([\d.]+)$/m.exec(r.stdout);
        expect(vcpu && time).toBeTruthy();
        m.npb[`${path.basename(cmd)} vCPU ${vcpu![1]}`] = Number(time![1]);
      }
      for (const cmd of DD_RUNS) {
        const r = await guestSsh(cmd);
        expect(r.code).toBe(0);
        const head = /SIMULATED: \/dev\/vda (read|write) time from the performance model \(fragvisor, vCPU (\d)/.exec(r.stderr);
        const tail = /copied, ([\d.e+-]+) s, ([\d.]+ [kMGT]?B\/s)$/m.exec(r.stderr);
        expect(head && tail).toBeTruthy();
        m.dd[`${head![1]} vCPU ${head![2]}`] = { seconds: Number(tail![1]), rate: tail![2] };
      }
      await endVm(npbVm);

      // E2's OpenLambda guest: one ol worker per vCPU, the same requests in the same order.
      const olVm = call(world, lkvmHandler, origin, lkvmArgv('ramdisk_for_openlambda200625.gz', PARAMS.replace(' init=/init2', '')));
      await olVm.waitFor(/guest login:/);
      const start = await guestSsh('cd /root/open-lambda && for i in 0 1 2 3; do taskset $((1 << i)) ./ol worker --path=l$i -d || exit 1; done');
      expect(start.code).toBe(0);
      for (let round = 0; round < OL_ROUNDS; round++) {
        // Parallel across workers, as the E2 script does; each worker's requests stay in order.
        const posts = [5000, 5001, 5002, 5003].map((port) => ({ port, c: call(world, curlHandler, origin, ['curl', '-s', '-d', '1', `10.4.4.222:${port}/run/process`]) }));
        for (const { port, c } of posts) {
          expect(await c.done).toBe(0);
          const body = JSON.parse(c.stdout()) as { phasesMs: Record<string, number>; totalMs: number; simulated: boolean };
          expect(body.simulated).toBe(true);
          m.openLambda[`${port}#${round}`] = { phasesMs: body.phasesMs, totalMs: body.totalMs };
        }
      }
      await endVm(olVm);
    } finally {
      currentVm(world)?.kill('test over');
      await waitUntil('the VM to end', () => currentVm(world) === undefined, 20_000).catch(() => {});
      rmSync(dir, { recursive: true, force: true });
    }
    result = m;
  })();
  return result!;
}

/** Every measured number of a run, flattened with its name. */
function numbers(m: Measurements): [string, number][] {
  return [
    ...Object.entries(m.npb).map(([k, v]): [string, number] => [`npb ${k}`, v]),
    ...Object.entries(m.dd).map(([k, v]): [string, number] => [`dd ${k} s`, v.seconds]),
    ...Object.entries(m.openLambda).flatMap(([k, v]) => Object.entries(v.phasesMs).map(([p, ms]): [string, number] => [`ol ${k} ${p}`, ms])),
  ];
}

describe('a fixed seed', () => {
  let a: Measurements;
  let b: Measurements;
  let other: Measurements;

  beforeAll(async () => {
    a = await run(7);
    b = await run(7);
    other = await run(8);
  }, 60_000);

  it('measures what the procedure asked for, from the model', () => {
    expect(Object.keys(a.npb)).toEqual(['ep.B vCPU 0', 'cg.B vCPU 0', 'ep.B vCPU 1', 'cg.B vCPU 1', 'cg.B vCPU 3']);
    expect(Object.keys(a.dd)).toEqual(['write vCPU 0', 'write vCPU 1', 'read vCPU 0', 'read vCPU 2']);
    expect(Object.keys(a.openLambda)).toHaveLength(4 * OL_ROUNDS);
    for (const [name, v] of numbers(a)) expect([name, Number.isFinite(v) && v > 0]).toEqual([name, true]);
    // Noise on top of the model's means: not the same number twice.
    expect(new Set(numbers(a).map(([, v]) => v)).size).toBeGreaterThan(numbers(a).length / 2);
  });

  it('gives identical measurements in two runs', () => {
    expect(b).toEqual(a);
    expect(numbers(b)).toEqual(numbers(a));
  });

  it('and another seed gives different ones', () => {
    const same = numbers(other).filter(([name, v], i) => numbers(a)[i][0] === name && numbers(a)[i][1] === v);
    expect(numbers(other).map(([k]) => k)).toEqual(numbers(a).map(([k]) => k));
    expect(same).toEqual([]);
  });
});
