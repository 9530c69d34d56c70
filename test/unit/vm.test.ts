import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GUEST_NODE, guestSshRoute } from '../../activities/cluster';
import { jobCommandLine } from '../../activities/remoteJob/scripts';
import { fileConfigSource } from '../../activities/ssh/configFiles';
import { planRoute } from '../../activities/ssh/route';
import { clusterProfileSchema, type ClusterProfileInput } from '../../config/schema';
import { parseLkvmArgs } from '../../sim/tools/vm/lkvmArgs';
import { parseQemuArgs } from '../../sim/tools/vm/qemuArgs';
import type { Experiment } from '../../workflows/inputs';
import { planJobLine } from '../../workflows/commands/kernel';
import { toCommandLine } from '../../workflows/commands/quote';
import {
  bridgeOutcome,
  bridgeTapArgv,
  guestCmdline,
  lkvmArgv,
  lkvmJob,
  lkvmSocketCleanupArgv,
  qemuArgv,
  qemuJob,
  vmSteps,
  type VmLaunchInput,
} from '../../workflows/commands/vm';

/** The VM launch as argv (ARTIFACT.md step 4), checked exactly and against the simulator's parsers of lkvm and qemu. */

const PATHS = { kvmtool: '/home/ae/fragvisor-kvmtool', ramdisks: '/home/ae/ramdisks' };
const GUEST = { ip: '10.4.4.222', hostIp: '10.4.4.221', mac: '00:11:22:33:44:55' };
const KERNEL = '/home/ae/fragvisor-guest-kernel/build/arch/x86/boot/bzImage';
const NET = 'mode=tap,vhost=1,guest_ip=10.4.4.222,host_ip=10.4.4.221,guest_mac=00:11:22:33:44:55';
const IPS = ['10.4.6.15', '10.4.6.14', '10.4.6.10', '10.4.6.11'];
const input = (experiment: Experiment, nodeCount: number): VmLaunchInput => ({ experiment, nodeCount, paths: PATHS, guest: GUEST, kernelImage: KERNEL });
const TAIL = 'fstype=ext4 spectre_v2=off nopti pti=off';
const END = 'percpu_alloc=page -no-kvm-pit-reinjection clocksource=tsc';

describe('the guest kernel command line', () => {
  it.each<[Experiment, number, string]>([
    ['E1', 1, `root=/dev/ram rw init=/init2 ${TAIL} numa=fake=1 ${END}`],
    ['E1', 4, `root=/dev/ram rw init=/init2 ${TAIL} numa=fake=4 ${END}`],
    ['E2', 2, `root=/dev/ram rw ${TAIL} numa=fake=2 ${END}`],
    ['E3', 4, `root=/dev/ram rw init=/init2 ${TAIL} numa=fake=4 ${END}`],
  ])('%s on %i node(s)', (experiment, n, expected) => {
    expect(guestCmdline(experiment, n)).toBe(expected);
  });
});

describe('lkvmArgv', () => {
  const cases: [Experiment, number, string[]][] = [
    ['E1', 1, ['-a', '1', '-w', '1', '-i', '/home/ae/ramdisks/ramdisk_lemp_4php.gz', '-k', KERNEL, '-m', '20480', '-c', '1', '-p', guestCmdline('E1', 1)]],
    ['E1', 2, ['-a', '1', '-b', '1', '-w', '2', '-i', '/home/ae/ramdisks/ramdisk_lemp_4php.gz', '-k', KERNEL, '-m', '20480', '-c', '2', '-p', guestCmdline('E1', 2)]],
    ['E1', 4, ['-a', '1', '-b', '1', '-x', '1', '-y', '1', '-w', '4', '-i', '/home/ae/ramdisks/ramdisk_lemp_4php.gz', '-k', KERNEL, '-m', '20480', '-c', '4', '-p', guestCmdline('E1', 4)]],
    ['E2', 1, ['-a', '1', '-w', '1', '-i', '/home/ae/ramdisks/ramdisk_for_openlambda200625.gz', '-k', KERNEL, '-m', '32768', '-c', '1', '-p', guestCmdline('E2', 1)]],
    ['E2', 2, ['-a', '1', '-b', '1', '-w', '2', '-i', '/home/ae/ramdisks/ramdisk_for_openlambda200625.gz', '-k', KERNEL, '-m', '32768', '-c', '2', '-p', guestCmdline('E2', 2)]],
    ['E2', 4, ['-a', '1', '-b', '1', '-x', '1', '-y', '1', '-w', '4', '-i', '/home/ae/ramdisks/ramdisk_for_openlambda200625.gz', '-k', KERNEL, '-m', '32768', '-c', '4', '-p', guestCmdline('E2', 4)]],
    ['E3', 1, ['-a', '1', '-w', '1', '-i', '/home/ae/ramdisks/ramdisk_NPB_ATC.gz', '-k', KERNEL, '-m', '32768', '-c', '1', '-p', guestCmdline('E3', 1)]],
    ['E3', 2, ['-a', '1', '-b', '1', '-w', '2', '-i', '/home/ae/ramdisks/ramdisk_NPB_ATC.gz', '-k', KERNEL, '-m', '32768', '-c', '2', '-p', guestCmdline('E3', 2)]],
    ['E3', 4, ['-a', '1', '-b', '1', '-x', '1', '-y', '1', '-w', '4', '-i', '/home/ae/ramdisks/ramdisk_NPB_ATC.gz', '-k', KERNEL, '-m', '32768', '-c', '4', '-p', guestCmdline('E3', 4)]],
  ];

  it.each(cases)('%s on %i node(s): the artifact\'s command, exactly', (experiment, n, middle) => {
    expect(lkvmArgv(input(experiment, n))).toEqual(['./lkvm', 'run', ...middle, '--network', NET]);
  });

  it.each(cases)('%s on %i node(s): the simulated lkvm counts every node (the quirk does not bite)', (experiment, n) => {
    const argv = lkvmArgv(input(experiment, n));
    expect(argv.length).toBeGreaterThan(12);
    const parsed = parseLkvmArgs(argv);
    expect(parsed).toMatchObject({ ok: true, config: { nodes: Array.from({ length: n }, (_, i) => i), quirkDropped: [], cpus: n, memMiB: experiment === 'E1' ? 20480 : 32768, crash: undefined } });
    expect(parsed.ok && parsed.config.networks).toEqual([{ mode: 'tap', vhost: true, guestIp: '10.4.4.222', hostIp: '10.4.4.221', guestMac: '00:11:22:33:44:55' }]);
  });

  it('the quirk is real: -b moved to the end is lost, and the VM would run on one node', () => {
    const argv = lkvmArgv(input('E1', 2));
    const moved = [...argv.slice(0, 4), ...argv.slice(6), '-b', '1'];
    expect(moved).toHaveLength(argv.length);
    expect(parseLkvmArgs(moved)).toMatchObject({ ok: true, config: { nodes: [0], quirkDropped: ['-b'] } });
  });

  it('runs as root in the kvmtool checkout; the plan line is the remote job runner\'s', () => {
    const job = lkvmJob(input('E1', 4));
    expect(job).toMatchObject({ step: 'lkvm', cwd: PATHS.kvmtool, sudo: true });
    expect(planJobLine(job)).toBe(jobCommandLine({ key: 'k', ...job }));
    expect(planJobLine(job)).toBe(
      `cd /home/ae/fragvisor-kvmtool && exec sudo -n -- ./lkvm run -a 1 -b 1 -x 1 -y 1 -w 4 -i /home/ae/ramdisks/ramdisk_lemp_4php.gz -k ${KERNEL} -m 20480 -c 4 -p 'root=/dev/ram rw init=/init2 ${TAIL} numa=fake=4 ${END}' --network ${NET}`,
    );
  });

  it.each([0, 10, 1.5, Number.NaN])('refuses %p nodes', (n) => {
    expect(() => lkvmArgv(input('E1', n))).toThrow(RangeError);
  });
});

describe('qemuArgv (GiantVM, one instance per node)', () => {
  const machine = (n: number, i: number, mem: number) => ['qemu-system-x86_64', '-machine', 'kernel-irqchip=off', '-smp', String(n), '-m', String(mem), '--enable-kvm', '-local-cpu', `1,start=${i},iplist=${IPS.slice(0, n).join(' ')}`, '-nographic'];
  const boot = (experiment: Experiment, n: number, ramdisk: string) => [
    '-kernel',
    KERNEL,
    '-initrd',
    `/home/ae/ramdisks/${ramdisk}`,
    '-append',
    `${guestCmdline(experiment, n)} console=ttyS0`,
    '-netdev',
    'tap,id=net0,ifname=tap0,script=no,downscript=no,vhost=on',
    '-device',
    'virtio-net-pci,netdev=net0,mac=00:11:22:33:44:55',
  ];

  it.each<[Experiment, number, number, string[]]>([
    ['E1', 1, 0, [...machine(1, 0, 20480), ...boot('E1', 1, 'ramdisk_lemp_4php.gz')]],
    ['E1', 2, 0, [...machine(2, 0, 20480), ...boot('E1', 2, 'ramdisk_lemp_4php.gz')]],
    ['E1', 2, 1, machine(2, 1, 20480)],
    ['E2', 4, 0, [...machine(4, 0, 32768), ...boot('E2', 4, 'ramdisk_for_openlambda200625.gz')]],
    ['E2', 4, 3, machine(4, 3, 32768)],
    ['E3', 4, 2, machine(4, 2, 32768)],
  ])('%s, %i node(s), the instance at position %i', (experiment, n, position, expected) => {
    const argv = qemuArgv({ ...input(experiment, n), nodeIps: IPS.slice(0, n), position });
    expect(argv).toEqual(expected);
    // What the simulated GiantVM qemu checks on every instance.
    expect(parseQemuArgs(argv.slice(1))).toMatchObject({
      ok: true,
      config: { smp: n, memMiB: experiment === 'E1' ? 20480 : 32768, kvm: true, irqchipOff: true, localCpus: 1, start: position, iplist: IPS.slice(0, n), tap: position === 0 },
    });
  });

  it('runs as root from /', () => {
    const job = qemuJob({ ...input('E1', 2), nodeIps: IPS.slice(0, 2), position: 1 });
    expect(job).toMatchObject({ step: 'qemu', cwd: '/', sudo: true });
    expect(planJobLine(job)).toBe(jobCommandLine({ key: 'k', ...job }));
  });

  it.each([-1, 2, 0.5])('refuses position %p of 2', (position) => {
    expect(() => qemuArgv({ ...input('E1', 2), nodeIps: IPS.slice(0, 2), position })).toThrow(RangeError);
  });
});

describe('stale sockets and the bridge', () => {
  it('the exact command lines', () => {
    expect(toCommandLine(lkvmSocketCleanupArgv())).toBe('sudo -n rm -rfv -- /root/.lkvm');
    expect(toCommandLine(bridgeTapArgv())).toBe('sudo -n brctl addif br0 tap0');
  });

  it.each<[number | null, string, ReturnType<typeof bridgeOutcome>]>([
    [0, '', 'added'],
    [1, "device tap0 is already a member of a bridge; can't enslave it to bridge br0.\n", 'member'],
    [1, 'interface tap0 does not exist!\n', 'no-tap'],
    [1, 'bridge br0 does not exist!\n', 'failed'],
    [1, "can't add tap0 to bridge br0: Operation not permitted\n", 'failed'],
    [1, 'sudo: brctl: command not found\n', 'failed'],
    [1, 'sudo: a password is required\n', 'failed'],
    [null, '', 'failed'],
  ])('brctl exit %p with %j: %s', (code, stderr, outcome) => {
    expect(bridgeOutcome(code, stderr)).toBe(outcome);
  });
});

describe('vmSteps', () => {
  const nodes = ['echo5', 'echo4', 'echo0', 'echo1'].map((name, i) => ({ name, rdmaIp: IPS[i] }));

  it('FragVisor: sockets on every VM node, lkvm on the origin, the bridge, the guest, the stop', () => {
    const steps = vmSteps({ hypervisor: 'fragvisor', ...input('E3', 2), nodes });
    expect(steps.map((s) => s.key)).toEqual([
      'fragvisor/vm-E3-n2/echo5/lkvm-sockets',
      'fragvisor/vm-E3-n2/echo4/lkvm-sockets',
      'fragvisor/vm-E3-n2/echo5/lkvm',
      'fragvisor/vm-E3-n2/echo5/bridge',
      'fragvisor/vm-E3-n2/guest/ready',
      'fragvisor/vm-E3-n2/echo5/stop',
    ]);
    expect(steps[0].commands).toEqual(['sudo -n rm -rfv -- /root/.lkvm']);
    expect(steps[2].commands[1]).toBe(planJobLine(lkvmJob(input('E3', 2))));
    expect(steps[3].commands).toEqual(['sudo -n brctl addif br0 tap0']);
    expect(steps[4]).toMatchObject({ host: { guest: true }, commands: ['true'] });
  });

  it('GiantVM: qemu on every node, each with its position', () => {
    const steps = vmSteps({ hypervisor: 'giantvm', ...input('E1', 4), nodes });
    const qemu = steps.filter((s) => s.key.endsWith('/qemu'));
    expect(qemu.map((s) => s.host)).toEqual(nodes.map((n) => ({ node: n.name })));
    qemu.forEach((s, i) => expect(s.commands[1]).toBe(planJobLine(qemuJob({ ...input('E1', 4), nodeIps: IPS, position: i }))));
    expect(steps.some((s) => s.key.includes('lkvm'))).toBe(false);
    expect(new Set(steps.map((s) => s.key)).size).toBe(steps.length);
  });

  it('refuses more nodes than the profile has', () => {
    expect(() => vmSteps({ hypervisor: 'fragvisor', ...input('E1', 4), nodes: nodes.slice(0, 2) })).toThrow(/needs 4 nodes/);
  });
});

describe('the guest over SSH (profile guest.ssh)', () => {
  const base: ClusterProfileInput = {
    name: 'echo',
    nodes: [
      { name: 'echo5', host: 'echo5', user: 'ae', port: 2200, rdmaIp: IPS[0], origin: true },
      { name: 'echo4', host: 'echo4', rdmaIp: IPS[1] },
    ],
    paths: { fragvisor: '/root/FragVisor', kernelTree: '/root/FragVisor/fragvisor-linux', kvmtool: '/nfs/fragvisor-kvmtool', ramdisks: '/root/ramdisks' },
    guest: { ...GUEST, ssh: { host: '10.4.4.222' } },
  };
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ae-vm-route-'));
    fs.writeFileSync(path.join(dir, 'config'), '');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const hops = (profile: ClusterProfileInput) => {
    const parsed = clusterProfileSchema.parse({ ...profile, ssh: { ...profile.ssh, configFile: path.join(dir, 'config') } });
    const { target, settings } = guestSshRoute(parsed);
    expect(target).toEqual({ node: GUEST_NODE, host: '10.4.4.222', port: 22, user: 'root' });
    return planRoute(target, settings, fileConfigSource, { home: '/home/me', user: 'me', env: {} }).map((h) => `${h.user}@${h.hostname}:${h.port}`);
  };

  it('directly by default', () => {
    expect(hops(base)).toEqual(['root@10.4.4.222:22']);
  });

  it('through the origin with via: origin', () => {
    expect(hops({ ...base, guest: { ...GUEST, ssh: { host: '10.4.4.222', via: 'origin' } } })).toEqual(['ae@echo5:2200', 'root@10.4.4.222:22']);
  });

  it('through the profile jump host, then the origin', () => {
    expect(hops({ ...base, ssh: { jumpHost: 'ops@bastion:2022' }, guest: { ...GUEST, ssh: { host: '10.4.4.222', via: 'origin' } } })).toEqual(['ops@bastion:2022', 'ae@echo5:2200', 'root@10.4.4.222:22']);
  });

  it('refuses another via', () => {
    const r = clusterProfileSchema.safeParse({ ...base, guest: { ...GUEST, ssh: { host: '10.4.4.222', via: 'echo4' } } });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).toMatch(/expected \\"origin\\"/);
  });
});
