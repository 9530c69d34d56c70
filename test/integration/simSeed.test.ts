import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { Fault, FaultStep, ToolContext, ToolHandler, World, WorldNode } from '../../sim/tools/types';

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

class FakeNode implements WorldNode {
  up = true;
  bootId = randomUUID();
  kernelRelease = '4.4.137-pop-hype';
  readonly counters: Record<string, number> = {};
  private store = new Map<string, unknown>();
  private readonly listeners = { down: [] as (() => void)[], boot: [] as (() => void)[] };
  private readonly lines: string[] = [];
  readonly dmesg = { append: (l: string) => void this.lines.push(l), lines: () => this.lines };

  constructor(
    readonly name: string,
    readonly index: number,
    readonly rdmaIp: string,
    private readonly fsDir: string,
  ) {
    for (const d of ['home/ae', 'root', 'tmp']) mkdirSync(path.join(fsDir, d), { recursive: true });
  }

  hostPath(p: string): string {
    const m = /^\/(home|root|tmp)(\/.*)?$/.exec(path.posix.normalize(p));
    if (!m) throw new Error(`${p}: read-only on the host`);
    return path.join(this.fsDir, m[1], m[2] ?? '');
  }

  resolve(cwd: string, p: string): string {
    return path.posix.resolve(cwd, p.replace(/^~(?=\/|$)/, '/home/ae'));
  }

  installKernel(release: string): void {
    this.kernelRelease = release;
  }

  volatile<T>(key: string, create: () => T): T {
    if (!this.store.has(key)) this.store.set(key, create());
    return this.store.get(key) as T;
  }

  count(action: string): void {
    this.counters[action] = (this.counters[action] ?? 0) + 1;
  }

  requestReboot(): void {
    void this.reboot();
  }

  async reboot(): Promise<void> {
    this.up = false;
    for (const l of this.listeners.down) l();
    await new Promise((r) => setTimeout(r, 10));
    this.store = new Map();
    this.bootId = randomUUID();
    this.up = true;
    for (const l of this.listeners.boot) l();
  }

  on(event: 'down' | 'boot', listener: () => void): void {
    this.listeners[event].push(listener);
  }
}

class FakeWorld implements World {
  readonly timeScale = 0;
  private readonly sharedStore = new Map<string, unknown>();

  constructor(
    readonly nodes: FakeNode[],
    readonly seed: number,
  ) {}

  node(name: string): FakeNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  nodeByRdmaIp(ip: string): FakeNode | undefined {
    return this.nodes.find((n) => n.rdmaIp === ip);
  }

  async sleep(_simMs: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await new Promise((r) => setImmediate(r));
    signal?.throwIfAborted();
  }

  fault(_node: string, _step: FaultStep): Fault | undefined {
    return undefined;
  }

  shared<T>(key: string, create: () => T): T {
    if (!this.sharedStore.has(key)) this.sharedStore.set(key, create());
    return this.sharedStore.get(key) as T;
  }
}

interface Call {
  done: Promise<number | symbol>;
  stdout: () => string;
  stderr: () => string;
  abort: () => void;
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<void>;
}

function call(world: World, handler: ToolHandler, node: WorldNode, argv: string[]): Call {
  let out = '';
  let err = '';
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ctl = new AbortController();
  const ctx: ToolContext = { node, world, argv, cwd: '/home/ae', env: { PATH: '/usr/bin:/bin', LANG: 'C' }, sudo: true, stdin: Readable.from([]), stdout, stderr, signal: ctl.signal };
  const done = handler(ctx).catch((e: Error) => {
    err += `${e.message}\n`;
    return 1;
  });
  return {
    done,
    stdout: () => out,
    stderr: () => err,
    abort: () => ctl.abort(),
    waitFor: async (re, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!re.test(out + err)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} in:\n${out}${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

function portState(port: number): Promise<'open' | 'refused'> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    s.once('connect', () => {
      s.destroy();
      resolve('open');
    });
    s.once('error', () => resolve('refused'));
  });
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

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
      await waitFor('the guest sshd to go', async () => (await portState(guestPort)) === 'refused');
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
      await waitFor('the VM to end', () => currentVm(world) === undefined).catch(() => {});
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
