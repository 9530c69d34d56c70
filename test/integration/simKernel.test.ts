import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { bootedKernelIdentity, kernelImage, parallelTime, type KernelIdentity } from '../../sim/fragvisor';
import { checkoutTemplate } from '../../sim/fragvisor/checkout';
import { simPaths } from '../../sim/profile';
import { openssh, rebootAndWait } from '../helpers/sim';

/**
 * The FragVisor checkout on every node and the kernel build imitation behind `make`, over real SSH:
 * parallel speed-up in simulated time, the build log, install + reboot into the new kernel, the
 * origin flag carried into the image and the booted kernel, O= builds, GiantVM's tree, DELEGATE.
 */

jest.setTimeout(30_000);

/** 40 min of simulated -j1 build = 2.4 s here. */
const TIME_SCALE = 0.001;
const TREE = '/home/ae/FragVisor/fragvisor-linux';
const READY = /Kernel: arch\/x86\/boot\/bzImage is ready {2}\(#\d+\)\n?$/;

let dir: string;
let sim: SimCluster;

const image = (node: string, p = `${TREE}/arch/x86/boot/bzImage`): KernelIdentity | undefined => kernelImage(sim.world.node(node), p);

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-kernel-'));
  sim = await startSimCluster({ nodes: 3, stateDir: dir, timeScale: TIME_SCALE, bmc: false });
});

afterAll(async () => {
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('FragVisor checkout', () => {
  it('is on every node, owned by the node user, with the same commits everywhere (stable for the same content)', async () => {
    const probe = [
      'git -C ~/FragVisor rev-parse HEAD',
      `git -C ${TREE} rev-parse HEAD`,
      'git -C ~/FragVisor submodule status',
      'git -C ~/FragVisor status --porcelain | wc -l',
      `stat -c %U ~/FragVisor ${TREE}/include/popcorn/debug.h ~/fragvisor-kvmtool/lkvm ~/ramdisks/ramdisk_NPB_ATC.gz`,
      'test -x ~/fragvisor-kvmtool/lkvm && test -x ~/fragvisor-kvmtool/msg_pophype4node.sh && echo scripts-ok',
      'ls ~/ramdisks',
      'zcat ~/ramdisks/ramdisk_lemp_4php.gz',
      `grep -E '^#define (CONFIG_POPCORN_ORIGIN_NODE|PERF_EXP|POPHYPE_HOST_KERNEL|POP_CLEAN|OPENLAMBDA_EXP)' ${TREE}/include/popcorn/debug.h`,
      `grep -E '^(LOCALVERSION|VERSION|PATCHLEVEL|SUBLEVEL) ' ${TREE}/Makefile`,
      `ls ${TREE}/msg_layer; test -f ${TREE}/.config && echo config-ok`,
      'git -C ~/linux-dsm rev-parse HEAD',
    ].join('; ');
    const outs = await Promise.all(sim.nodes.map((n) => openssh(sim, n.name, probe)));
    for (const o of outs) expect(o).toMatchObject({ code: 0, stderr: '' });
    expect(new Set(outs.map((o) => o.stdout)).size).toBe(1);
    const lines = outs[0].stdout.trim().split('\n');
    const [fragvisor, linux, submodule, dirty] = lines;
    expect(fragvisor).toMatch(/^[0-9a-f]{40}$/);
    expect(submodule).toBe(` ${linux} fragvisor-linux (heads/master)`);
    expect(dirty).toBe('0');
    const owner = sim.sandboxMode === 'root' ? 'nobody' : os.userInfo().username;
    expect(lines.slice(4, 8)).toEqual([owner, owner, owner, owner]);
    expect(outs[0].stdout).toContain('scripts-ok\nREADME\nramdisk_NPB_ATC.gz\nramdisk_for_openlambda200625.gz\nramdisk_lemp_4php.gz\n');
    expect(outs[0].stdout).toMatch(/"simulated":true.*"ramdisk":"lemp_4php"/);
    expect(outs[0].stdout).toContain(
      '#define CONFIG_POPCORN_ORIGIN_NODE\n#define PERF_EXP 1\n#define POPHYPE_HOST_KERNEL 1\n#define POP_CLEAN 1\n#define OPENLAMBDA_EXP 0\nVERSION = 4\nPATCHLEVEL = 4\nSUBLEVEL = 137\nLOCALVERSION = -pop-hype\nMakefile\nconfig.h\nmsg_rdma.c\nconfig-ok\n',
    );
    // The same content gives the same commits, whoever generates it.
    const other = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-template-'));
    try {
      const root = checkoutTemplate(other, simPaths());
      const head = (p: string) => execFileSync('git', ['-c', `safe.directory=*`, '-C', path.join(root, p), 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
      expect([head('home/ae/FragVisor'), head(`home/ae/FragVisor/fragvisor-linux`)]).toEqual([fragvisor, linux]);
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});

describe('make in the kernel tree', () => {
  it('takes simulated time that shrinks with -j, prints a SIMULATED build log ending with the bzImage line', async () => {
    const build = (node: string, jobs: string) => {
      const started = Date.now();
      return openssh(sim, node, `cd ${TREE} && make ${jobs}`, 20_000).then((r) => ({ ...r, ms: Date.now() - started }));
    };
    const [serial, parallel] = await Promise.all([build('node1', '-j1'), build('node2', '-j16')]);
    for (const r of [serial, parallel]) {
      expect(r).toMatchObject({ code: 0, stderr: '' });
      const lines = r.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/SIMULATED kernel build/);
      expect(lines.length).toBeGreaterThan(300);
      expect(lines).toContain('  CC      kernel/popcorn/process_server.o');
      expect(lines[lines.length - 1]).toMatch(READY);
    }
    // -j1: 40 min of simulated time, -j16: Amdahl with a quarter serial (about 12 min).
    expect(serial.ms).toBeGreaterThanOrEqual(parallelTime(40 * 60_000, 1) * TIME_SCALE * 0.95);
    expect(parallel.ms).toBeLessThan(serial.ms - 1000);
    expect(parallelTime(40 * 60_000, 32)).toBe(parallelTime(40 * 60_000, 16));
    expect(sim.world.node('node1').counters['make:all']).toBe(1);
    // The image is a SIMULATED identity of what was built.
    expect(image('node2')).toMatchObject({ simulated: true, flavour: 'fragvisor', release: '4.4.137-pop-hype', origin: true, hostKernel: true, build: 1, builtOn: 'node2' });
    expect((await openssh(sim, 'node2', `cd ${TREE} && cat include/config/kernel.release && make -s kernelrelease && head -c 200 arch/x86/boot/bzImage`)).stdout).toMatch(/^4\.4\.137-pop-hype\n4\.4\.137-pop-hype\n\{[\s\S]*SIMULATED/);
  });

  it('install + reboot boots 4.4.137-pop-hype; the origin flag removed with the artifact\'s sed on node1 shows in the image and the booted kernel', async () => {
    const head = (await openssh(sim, 'node0', `git -C ${TREE} rev-parse HEAD`)).stdout.trim();
    const steps = `cd ${TREE} && make -j16 >/dev/null && make modules | tail -1 && sudo make modules_install | tail -1 && sudo make install | tail -1`;
    const [origin, other] = await Promise.all([
      openssh(sim, 'node0', steps),
      openssh(sim, 'node1', `cd ${TREE} && sed -i 's/#define CONFIG_POPCORN_ORIGIN_NODE//' include/popcorn/debug.h && ${steps.slice(steps.indexOf('make -j16'))}`),
    ]);
    for (const r of [origin, other]) expect(r).toMatchObject({ code: 0, stdout: '  MODPOST 312 modules\n  DEPMOD  4.4.137-pop-hype\ndone\n' });
    expect(image('node0')).toMatchObject({ origin: true, sourceCommit: head });
    expect(image('node1')).toMatchObject({ origin: false, sourceCommit: head, build: 2 });
    // Installed, not booted: the running kernel is still the stock one.
    expect(bootedKernelIdentity(sim.world.node('node1'))).toMatchObject({ flavour: 'stock', release: '4.15.0-213-generic' });
    expect(sim.node('node1').state.nextKernelRelease).toBe('4.4.137-pop-hype');

    await Promise.all(['node0', 'node1'].map((n) => rebootAndWait(sim, n)));
    for (const n of ['node0', 'node1']) expect((await openssh(sim, n, 'uname -r')).stdout).toBe('4.4.137-pop-hype\n');
    expect(bootedKernelIdentity(sim.world.node('node0'))).toMatchObject({ flavour: 'fragvisor', fragvisor: true, origin: true, hostKernel: true, release: '4.4.137-pop-hype' });
    expect(bootedKernelIdentity(sim.world.node('node1'))).toMatchObject({ flavour: 'fragvisor', origin: false });
    expect(sim.world.node('node1').counters).toMatchObject({ 'make:all': 2, 'make:modules': 1, 'make:modules_install': 1, 'make:install': 1 });
  });

  it('builds a guest kernel with O=<dir> without touching the host build, and refuses installs without sudo or an image', async () => {
    const guest = '/home/ae/guest-build';
    const r = await openssh(
      sim,
      'node0',
      [
        `cd ${TREE}`,
        `make O=${guest} olddefconfig >/dev/null`,
        `scripts/config --file ${guest}/.config -d RCU_STALL_COMMON`,
        "sed -i 's/POPHYPE_HOST_KERNEL 1/POPHYPE_HOST_KERNEL 0/' include/popcorn/debug.h",
        `make -j16 O=${guest} | tail -1`,
        "sed -i 's/POPHYPE_HOST_KERNEL 0/POPHYPE_HOST_KERNEL 1/' include/popcorn/debug.h",
        'git status --porcelain',
      ].join(' && '),
    );
    expect(r).toMatchObject({ code: 0, stdout: 'Kernel: arch/x86/boot/bzImage is ready  (#1)\n' });
    expect(image('node0', `${guest}/arch/x86/boot/bzImage`)).toMatchObject({ hostKernel: false, origin: true, outputDir: guest, config: { CONFIG_RCU_STALL_COMMON: 'n' } });
    expect(image('node0')).toMatchObject({ hostKernel: true, config: { CONFIG_RCU_STALL_COMMON: 'y' } });

    const noSudo = await openssh(sim, 'node0', `cd ${TREE} && make install`);
    expect(noSudo).toMatchObject({ code: 2, stderr: expect.stringContaining("cannot create regular file '/boot/vmlinuz-4.4.137-pop-hype': Permission denied") });
    const noImage = await openssh(sim, 'node2', 'cd ~/linux-dsm && sudo make install');
    expect(noImage).toMatchObject({ code: 2, stderr: expect.stringContaining('*** You need to run "make" before "make install".') });
    expect(await openssh(sim, 'node2', `make -C ${TREE} no-such-target`)).toMatchObject({ code: 2, stderr: "make: *** No rule to make target 'no-such-target'.  Stop.\n" });
    const noConfig = await openssh(sim, 'node2', `cd ${TREE} && make O=/tmp/empty-out`);
    expect(noConfig).toMatchObject({ code: 2, stderr: expect.stringContaining('*** Configuration file ".config" not found!') });
  });

  it("GiantVM's linux-dsm tree builds and boots 4.8.10-dsm", async () => {
    expect(await openssh(sim, 'node2', 'cd ~/linux-dsm && make -j16 | tail -1 && sudo make install >/dev/null')).toMatchObject({ code: 0, stdout: expect.stringMatching(READY) });
    await rebootAndWait(sim, 'node2');
    expect((await openssh(sim, 'node2', 'uname -r')).stdout).toBe('4.8.10-dsm\n');
    expect(bootedKernelIdentity(sim.world.node('node2'))).toMatchObject({ flavour: 'giantvm', fragvisor: false, release: '4.8.10-dsm' });
  });
});

describe('make elsewhere', () => {
  it('is the real make (DELEGATE), uncounted', async () => {
    const before = sim.world.node('node2').counters;
    const r = await openssh(sim, 'node2', 'mkdir -p /tmp/proj && cd /tmp/proj && printf "all:\\n\\t@echo real make in \\$(CURDIR)\\n" > Makefile && make && make --version | head -1 && make -C /tmp/proj -s');
    expect(r).toMatchObject({ code: 0, stdout: expect.stringMatching(/^real make in \/tmp\/proj\nGNU Make \d[\d.]*\nreal make in \/tmp\/proj\n$/) });
    expect(sim.world.node('node2').counters).toEqual(before);
  });
});

describe('persistence', () => {
  it('a restarted simulator keeps the checkouts, builds and booted kernels', async () => {
    const heads = (await openssh(sim, 'node1', `git -C ${TREE} rev-parse HEAD; git -C ${TREE} diff --stat | tail -1`)).stdout;
    await sim.stop();
    sim = await startSimCluster({ nodes: 3, stateDir: dir, timeScale: TIME_SCALE, bmc: false });
    expect((await openssh(sim, 'node1', `git -C ${TREE} rev-parse HEAD; git -C ${TREE} diff --stat | tail -1`)).stdout).toBe(heads);
    expect(heads).toMatch(/1 file changed, 1 insertion\(\+\), 1 deletion\(-\)/); // node1's sed stays
    expect(image('node1')).toMatchObject({ origin: false });
    expect(bootedKernelIdentity(sim.world.node('node1'))).toMatchObject({ flavour: 'fragvisor', origin: false });
  });
});
