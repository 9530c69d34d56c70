import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { setMsgLayerDeps, type MsgLayerDeps } from '../../sim/tools/msglayer';
import { probePort, waitUntil } from '../helpers/sim';
import { GUEST_OUT, Procedure, TREE, type Launched } from '../helpers/simProcedure';

/**
 * ARTIFACT.md steps 1-6 on the simulated testbed over plain OpenSSH, 4 nodes (the paper's echo
 * cluster): host kernels (origin flag on node0 only), the guest kernel (POPHYPE_HOST_KERNEL 0, built
 * into an O= dir), the reboot, the messaging layer, then `sudo ./lkvm run -a 1 -b 1 -x 1 -y 1 -w 4`
 * from the kvmtool checkout, the guest over its own SSH endpoint, E1's pinning (one php-fpm worker
 * per vCPU, nginx on vCPU 0) and one real ab through the origin's `ab`.
 */

const N = 4;

let stateDir: string;
let sim: SimCluster;
let p: Procedure;
let previousDeps: MsgLayerDeps;

describe('the distributed VM over SSH, 4 nodes', () => {
  beforeAll(async () => {
    previousDeps = setMsgLayerDeps({ windowFloorMs: 8_000 });
    stateDir = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-vm-'));
    sim = await startSimCluster({ nodes: N, stateDir, timeScale: 0, rebootDownMs: 300 });
    p = new Procedure(sim);
    expect(p.nodes).toEqual(['node0', 'node1', 'node2', 'node3']);
    // Step 1: host kernels (origin flag on node0 only); step 2: the guest kernel on the origin, in its own O= dir.
    for (const build of await p.buildHostKernels((i) => i === 0)) expect(build).toMatchObject({ code: 0 });
    const guestBuild = await p.buildGuestKernel();
    expect({ code: guestBuild.code, stderr: guestBuild.stderr, tail: guestBuild.stdout.slice(-600) }).toMatchObject({ code: 0 });
    await p.rebootAll();
    for (const node of p.nodes) expect((await p.sh(node, 'uname -r')).stdout).toMatch(/-pop-hype\n$/);
    expect(await p.buildMsgLayer()).toEqual(p.nodes.map(() => 0));
  }, 120_000);

  afterAll(async () => {
    p?.killLaunched();
    await sim?.stop();
    if (previousDeps) setMsgLayerDeps(previousDeps);
    if (stateDir) rmSync(stateDir, { recursive: true, force: true });
  });

  it('lkvm is refused without the messaging layer, and with the host kernel', async () => {
    const r = await p.sh('node0', p.lkvm);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Fatal: the Popcorn messaging layer is not up on exactly the VM's nodes (0:node0 1:node1 2:node2 3:node3): node0: msg_rdma is not loaded; node1: msg_rdma is not loaded; node2: msg_rdma is not loaded; node3: msg_rdma is not loaded");
    const host = await p.sh('node0', p.lkvm.replace(`${GUEST_OUT}/arch`, `${TREE}/arch`));
    expect(host.stderr).toMatch(/is a FragVisor host kernel \(POPHYPE_HOST_KERNEL 1\)/);
    expect(await probePort(p.guestPort)).toBe('refused');
  });

  describe('with the messaging layer up', () => {
    let vm: Launched;

    beforeAll(async () => {
      const insmods = await p.insmodAll();
      expect(insmods.map((r) => r.code)).toEqual(p.nodes.map(() => 0));
      vm = p.launch();
      await waitUntil('the guest to boot', () => vm.output().includes('guest login:'), 30_000);
    }, 60_000);

    it('the layer is Ready on every node, each peer joined, origin = node 0', async () => {
      for (const [k, node] of p.nodes.entries()) {
        const dmesg = (await p.sh(node, 'dmesg')).stdout;
        expect(dmesg).toContain('popcorn: Ready on InfiniBand RDMA');
        p.ips.forEach((ip, i) => expect(dmesg).toContain(`popcorn: ${i === k ? '*' : ' '} ${i}: ${ip}\n`));
        for (const i of p.nodes.keys()) if (i !== k) expect(dmesg).toContain(`popcorn:    ${i} joined, x86_64`);
        expect(dmesg).not.toContain('origin');
      }
    });

    it('boots the guest on 4 vCPUs: its console on lkvm stdout, its sshd on the profile guest port', async () => {
      expect(vm.output()).toContain('Linux version 4.4.137-pop-hype');
      expect(vm.output()).toContain('(SIMULATED)');
      expect(vm.output()).toContain('FragVisor (SIMULATED): 4 vCPU(s), vCPU i on node i: 0:node0 1:node1 2:node2 3:node3');
      const r = await p.guest('hostname; id -un');
      expect(r).toMatchObject({ code: 0, stdout: 'guest\nroot\n' });
      expect(sim.node('node0').stats.commands).toBeGreaterThan(0);
    });

    it('ps aux, one php-fpm worker per vCPU, nginx on vCPU 0, and one real ab through the origin', async () => {
      const ps = await p.guest('ps aux');
      const master = /^root +(\d+) .* nginx: master process .*$/m.exec(ps.stdout);
      const worker = /^nobody +(\d+) .* nginx: worker process$/m.exec(ps.stdout);
      expect(master).not.toBeNull();
      expect(worker).not.toBeNull();
      const php = [...ps.stdout.matchAll(/^www-data +(\d+) .* php-fpm: pool www$/gm)].map((m) => m[1]);
      expect(php).toHaveLength(N);
      // Every worker starts on all 4 vCPUs (mask f); each gets its own, and reads it back.
      for (const [i, pid] of php.entries()) {
        const mask = (1 << i).toString(16);
        expect((await p.guest(`taskset -p 0x${mask} ${pid}`)).stdout).toBe(`pid ${pid}'s current affinity mask: f\npid ${pid}'s new affinity mask: ${mask}\n`);
      }
      for (const [i, pid] of php.entries()) {
        expect((await p.guest(`taskset -p ${pid}`)).stdout).toBe(`pid ${pid}'s current affinity mask: ${(1 << i).toString(16)}\n`);
      }
      for (const pid of [master![1], worker![1]]) {
        expect((await p.guest(`taskset -p 0x1 ${pid}`)).stdout).toMatch(new RegExp(`^pid ${pid}'s current affinity mask: [0-9a-f]+\\npid ${pid}'s new affinity mask: 1\\n$`));
        expect((await p.guest(`taskset -p ${pid}`)).stdout).toBe(`pid ${pid}'s current affinity mask: 1\n`);
      }
      expect((await p.guest('rm -f /usr/local/nginx/html/web.php; cat > /usr/local/nginx/html/index.html && sync', 'a'.repeat(4096))).code).toBe(0);
      const ab = await p.sh('node0', 'ab -n 100 -c 10 http://10.4.4.222/');
      expect(ab.code).toBe(0);
      expect(ab.stdout).toMatch(/^Server Hostname: +10\.4\.4\.222$/m);
      expect(ab.stdout).toMatch(/^Document Length: +4096 bytes$/m);
      expect(ab.stdout).toMatch(/^Complete requests: +100$/m);
      expect(ab.stdout).toMatch(/^Failed requests: +0$/m);
      expect(ab.stdout).toContain('SIMULATED');
    });

    it('refuses a second VM: stale sockets first, then "cannot be restarted"', async () => {
      const again = await p.sh('node0', p.lkvm);
      expect(again.code).toBe(1);
      expect(again.stderr).toMatch(/Error: Socket file \/root\/\.lkvm\/guest-\d+\.sock already exist/);
      for (const node of p.nodes.slice(1)) expect((await p.sh(node, 'sudo rm -f /root/.lkvm/*.sock && sudo ls /root/.lkvm/ | wc -l')).stdout).toBe('0\n');
      expect((await p.sh('node0', 'sudo rm -f /root/.lkvm/*.sock')).code).toBe(0);
      expect((await p.sh('node0', p.lkvm)).stderr).toMatch(/the VM cannot be restarted while it runs/);
    });

    it('dies when a node reboots, and the guest with it', async () => {
      await p.sh('node3', 'sudo reboot');
      await waitUntil('the guest sshd to go', async () => (await probePort(p.guestPort)) === 'refused', 20_000);
      expect(await vm.exited).toBe(1);
      expect(vm.output()).toContain(`popcorn: node 3 (${p.ips[3]}) is gone`);
      await waitUntil('node3 to come back', () => sim.node('node3').up, 20_000);
      expect((await p.sh('node0', p.lkvm)).stderr).toMatch(/the VM cannot be restarted: node0, node1, node2 ran a VM since they last booted/);
      expect(sim.world.nodes[0].counters.lkvm).toBeGreaterThanOrEqual(6);
    });
  });
});
