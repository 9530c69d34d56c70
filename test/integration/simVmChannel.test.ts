import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadProfile } from '../../config/load';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { renderConfigH, setMsgLayerDeps, type MsgLayerDeps } from '../../sim/tools/msglayer';
import { openssh, probePort, waitUntil, type RunResult } from '../helpers/sim';

/**
 * ARTIFACT.md steps 1-6 on the simulated testbed over real SSH, 2 nodes: host kernels, the guest
 * kernel (POPHYPE_HOST_KERNEL 0, built into an O= dir), the messaging layer, then `sudo ./lkvm run`
 * from the kvmtool checkout through the tool channel, the guest over its own SSH endpoint, and real
 * ab through the origin's `ab`.
 */

const TREE = '/home/ae/FragVisor/fragvisor-linux';
const MSG = `${TREE}/msg_layer`;
const GUEST_OUT = '/home/ae/guest-build';
const KVMTOOL = '/home/ae/fragvisor-kvmtool';
const N = 2;
const PARAMS = `root=/dev/ram rw init=/init2 fstype=ext4 spectre_v2=off nopti pti=off numa=fake=${N} percpu_alloc=page -no-kvm-pit-reinjection clocksource=tsc`;
const LKVM = `cd ${KVMTOOL} && sudo ./lkvm run -a 1 -b 1 -w ${N} -i /home/ae/ramdisks/ramdisk_lemp_4php.gz -k ${GUEST_OUT}/arch/x86/boot/bzImage -m 20480 -c ${N} -p "${PARAMS}" --network mode=tap,vhost=1,guest_ip=10.4.4.222,host_ip=10.4.4.221,guest_mac=00:11:22:33:44:55`;

let stateDir: string;
let sim: SimCluster;
let guestPort: number;
let previousDeps: MsgLayerDeps;
const nodes = Array.from({ length: N }, (_, i) => `node${i}`);
const children: ChildProcess[] = [];

const sh = (node: string, command: string, timeoutMs = 60_000): Promise<RunResult> => openssh(sim, node, command, timeoutMs);

/** The guest over plain OpenSSH (DIR/ssh_config's `guest` block), with optional stdin. */
function guest(command: string, input = ''): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn('ssh', ['-F', sim.sshConfigFile, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', 'guest', command], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(input);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** `sudo ./lkvm run ...` on node0 in the foreground of an SSH session that stays open while the VM runs. */
function launch(): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn('ssh', ['-F', sim.sshConfigFile, '-o', 'BatchMode=yes', 'node0', LKVM], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out, exited: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
}

async function rebootAll(): Promise<void> {
  await Promise.all(
    nodes.map(async (node) => {
      const bootId = sim.node(node).state.bootId;
      await sh(node, 'sudo reboot');
      await waitUntil(`${node} to reboot`, () => sim.node(node).up && sim.node(node).state.bootId !== bootId, 30_000);
    }),
  );
}

/** Step 3: insmod on every node in order, 1 s apart, all must succeed. */
async function messagingLayer(): Promise<void> {
  const runs: Promise<RunResult>[] = [];
  for (const [k, node] of nodes.entries()) {
    if (k > 0) await new Promise((r) => setTimeout(r, 1000));
    runs.push(sh(node, `sudo insmod ${MSG}/msg_rdma.ko`));
  }
  expect((await Promise.all(runs)).map((r) => r.code)).toEqual(nodes.map(() => 0));
}

describe('the distributed VM over SSH', () => {
  beforeAll(async () => {
    previousDeps = setMsgLayerDeps({ windowFloorMs: 8_000 });
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-vm-'));
    sim = await startSimCluster({ nodes: N, stateDir, timeScale: 0, rebootDownMs: 300 });
    const { profile } = loadProfile(sim.profileFile);
    guestPort = profile.guest.ssh.port;
    const ips = profile.nodes.map((n) => n.rdmaIp as string);
    // Step 1: host kernels (origin flag on node0 only); step 2: the guest kernel on the origin, in its own O= dir.
    await Promise.all(
      nodes.map(async (node, i) => {
        const unflag = i === 0 ? 'true' : "sed -i 's/#define CONFIG_POPCORN_ORIGIN_NODE//' include/popcorn/debug.h";
        const build = await sh(node, `cd ${TREE} && ${unflag} && make -j16 && make modules && sudo make modules_install && sudo make install`, 120_000);
        expect({ node, code: build.code, stderr: build.stderr }).toMatchObject({ node, code: 0 });
      }),
    );
    const guestBuild = await sh('node0', `cd ${TREE} && sed -i 's/#define POPHYPE_HOST_KERNEL 1/#define POPHYPE_HOST_KERNEL 0/' include/popcorn/debug.h && make O=${GUEST_OUT} olddefconfig >/dev/null && make O=${GUEST_OUT} -j16; rc=$?; sed -i 's/#define POPHYPE_HOST_KERNEL 0/#define POPHYPE_HOST_KERNEL 1/' include/popcorn/debug.h; exit $rc`, 120_000);
    expect({ code: guestBuild.code, stderr: guestBuild.stderr, tail: guestBuild.stdout.slice(-600) }).toMatchObject({ code: 0 });
    await rebootAll();
    const configH = Buffer.from(renderConfigH(ips)).toString('base64');
    for (const node of nodes) {
      expect(await sh(node, `echo ${configH} | base64 -d > ${MSG}/config.h && make clean -C ${MSG}/ >/dev/null && make -C ${MSG}/ >/dev/null`)).toMatchObject({ code: 0 });
    }
  }, 300_000);

  afterAll(async () => {
    for (const c of children) c.kill('SIGKILL');
    await sim?.stop();
    if (previousDeps) setMsgLayerDeps(previousDeps);
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('lkvm is refused without the messaging layer, and with the host kernel', async () => {
    const r = await sh('node0', LKVM);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Fatal: the Popcorn messaging layer is not up on exactly the VM's nodes \(0:node0 1:node1\): node0: msg_rdma is not loaded/);
    const host = await sh('node0', LKVM.replace(`${GUEST_OUT}/arch`, `${TREE}/arch`));
    expect(host.stderr).toMatch(/is a FragVisor host kernel \(POPHYPE_HOST_KERNEL 1\)/);
    expect(await probePort(guestPort)).toBe('refused');
  });

  describe('with the messaging layer up', () => {
    let vm: ReturnType<typeof launch>;

    beforeAll(async () => {
      await messagingLayer();
      vm = launch();
      await waitUntil('the guest to boot', () => vm.output().includes('guest login:'), 30_000);
    }, 60_000);

    it('boots the guest: its console on lkvm stdout, its sshd on the profile guest port', async () => {
      expect(vm.output()).toContain('Linux version 4.4.137-pop-hype');
      expect(vm.output()).toContain('(SIMULATED)');
      const r = await guest('hostname; id -un');
      expect(r).toMatchObject({ code: 0, stdout: 'guest\nroot\n' });
      expect(sim.node('node0').stats.commands).toBeGreaterThan(0);
    });

    it('ps aux, taskset, the page copied in, and real ab through the origin', async () => {
      const ps = await guest('ps aux');
      expect(ps.stdout).toMatch(/^nobody +\d+ .* nginx: worker process$/m);
      expect(ps.stdout.match(/^www-data +\d+ .* php-fpm: pool www$/gm)).toHaveLength(N);
      const pid = /^www-data +(\d+) /m.exec(ps.stdout)![1];
      expect((await guest(`taskset -p 0x2 ${pid}`)).stdout).toBe(`pid ${pid}'s current affinity mask: 3\npid ${pid}'s new affinity mask: 2\n`);
      expect((await guest(`taskset -p ${pid}`)).stdout).toBe(`pid ${pid}'s current affinity mask: 2\n`);
      expect((await guest('rm -f /usr/local/nginx/html/web.php; cat > /usr/local/nginx/html/index.html && sync', 'a'.repeat(4096))).code).toBe(0);
      const ab = await sh('node0', 'ab -n 100 -c 10 http://10.4.4.222/');
      expect(ab.code).toBe(0);
      expect(ab.stdout).toMatch(/^Server Hostname: +10\.4\.4\.222$/m);
      expect(ab.stdout).toMatch(/^Document Length: +4096 bytes$/m);
      expect(ab.stdout).toMatch(/^Complete requests: +100$/m);
      expect(ab.stdout).toMatch(/^Failed requests: +0$/m);
      expect(ab.stdout).toContain('SIMULATED');
    });

    it('refuses a second VM: stale sockets first, then "cannot be restarted"', async () => {
      const again = await sh('node0', LKVM);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/Error: Socket file \/root\/\.lkvm\/guest-\d+\.sock already exist/);
      expect((await sh('node1', 'sudo rm -f /root/.lkvm/*.sock && sudo ls /root/.lkvm/ | wc -l')).stdout).toBe('0\n');
      expect((await sh('node0', 'sudo rm -f /root/.lkvm/*.sock')).code).toBe(0);
      expect((await sh('node0', LKVM)).stderr).toMatch(/the VM cannot be restarted while it runs/);
    });

    it('dies when a node reboots, and the guest with it', async () => {
      await sh('node1', 'sudo reboot');
      await waitUntil('the guest sshd to go', async () => (await probePort(guestPort)) === 'refused', 20_000);
      expect(await vm.exited).toBe(1);
      expect(vm.output()).toMatch(/popcorn: node 1 \(10\.4\.6\.11\) is gone/);
      await waitUntil('node1 to come back', () => sim.node('node1').up, 20_000);
      expect((await sh('node0', LKVM)).stderr).toMatch(/the VM cannot be restarted: node0 ran a VM since it last booted/);
      expect(sim.world.nodes[0].counters.lkvm).toBeGreaterThanOrEqual(6);
    });
  });
});
