import type { Experiment, Hypervisor } from '../inputs';
import type { PlanStep } from '../plan/types';
import { planJobLine } from './kernel';
import { toCommandLine } from './quote';
import { BOOT_STATE_COMMAND } from './reboot';
import { asRoot } from './sudo';

/**
 * The distributed VM (ARTIFACT.md step 4) as argv, pure: FragVisor's `lkvm run` on the origin,
 * GiantVM's `qemu-system-x86_64` on every node, the stale kvmtool sockets, the tap on the bridge.
 * The activities (activities/vm.ts) run exactly these; `ae plan` prints them.
 */

/** Per experiment: the ramdisk (in the profile's paths.ramdisks), `-m` in MiB, and whether the kernel runs /init2. */
export interface GuestImage {
  ramdisk: string;
  memMiB: number;
  init2: boolean;
}

export const EXPERIMENT_GUEST: Readonly<Record<Experiment, GuestImage>> = {
  E1: { ramdisk: 'ramdisk_lemp_4php.gz', memMiB: 20480, init2: true },
  E2: { ramdisk: 'ramdisk_for_openlambda200625.gz', memMiB: 32768, init2: false },
  E3: { ramdisk: 'ramdisk_NPB_ATC.gz', memMiB: 32768, init2: true },
};

/** lkvm's vCPU count per node, node 0 (the origin) first; vCPU i runs on node i. */
export const LKVM_NODE_FLAGS = ['a', 'b', 'x', 'y', 'z', 'q', 'r', 's', 't'] as const;

/** The profile's paths as far as the VM goes (kvmtool is on a shared path, the same on every node). */
export interface VmPaths {
  kvmtool: string;
  ramdisks: string;
}

/** The profile's `guest` addresses. */
export interface GuestNetwork {
  ip: string;
  hostIp: string;
  mac: string;
}

export interface VmLaunchInput {
  experiment: Experiment;
  nodeCount: number;
  paths: VmPaths;
  guest: GuestNetwork;
  /** The guest bzImage on the origin (POPHYPE_HOST_KERNEL 0). */
  kernelImage: string;
}

/** A remote job without its key (the activity keys it): argv run in cwd as root through `sudo -n`. */
export interface VmJob {
  step: string;
  argv: string[];
  cwd: string;
  sudo: true;
}

function checkNodeCount(nodeCount: number, max: number): number {
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > max) throw new RangeError(`the VM's node count must be a whole number 1..${max}, got ${String(nodeCount)}`);
  return nodeCount;
}

const join = (dir: string, file: string) => `${dir.replace(/\/+$/, '')}/${file}`;

/**
 * The guest kernel's command line: `root=/dev/ram rw [init=/init2] fstype=ext4 spectre_v2=off nopti
 * pti=off numa=fake=<n> percpu_alloc=page -no-kvm-pit-reinjection clocksource=tsc` (never
 * `console=ttyS0`: it crashes FragVisor's guest).
 */
export function guestCmdline(experiment: Experiment, nodeCount: number): string {
  const init = EXPERIMENT_GUEST[experiment].init2 ? ['init=/init2'] : [];
  return ['root=/dev/ram', 'rw', ...init, 'fstype=ext4', 'spectre_v2=off', 'nopti', 'pti=off', `numa=fake=${nodeCount}`, 'percpu_alloc=page', '-no-kvm-pit-reinjection', 'clocksource=tsc'].join(' ');
}

export function lkvmNetwork(guest: GuestNetwork): string {
  return `mode=tap,vhost=1,guest_ip=${guest.ip},host_ip=${guest.hostIp},guest_mac=${guest.mac}`;
}

/**
 * `./lkvm run` as the artifact writes it, for the first n nodes. The per-node flags come first: with
 * more than 12 argv entries (always, here) lkvm loses -a/-b when they come last. `-w` and `-c` are
 * recounted by lkvm from those flags; they are passed as the artifact does, with the same values.
 */
export function lkvmArgv({ experiment, nodeCount, paths, guest, kernelImage }: VmLaunchInput): string[] {
  const n = checkNodeCount(nodeCount, LKVM_NODE_FLAGS.length);
  const image = EXPERIMENT_GUEST[experiment];
  return [
    './lkvm',
    'run',
    ...LKVM_NODE_FLAGS.slice(0, n).flatMap((f) => [`-${f}`, '1']),
    '-w',
    String(n),
    '-i',
    join(paths.ramdisks, image.ramdisk),
    '-k',
    kernelImage,
    '-m',
    String(image.memMiB),
    '-c',
    String(n),
    '-p',
    guestCmdline(experiment, n),
    '--network',
    lkvmNetwork(guest),
  ];
}

/** lkvm as a remote job: `cd <kvmtool> && exec sudo -n -- ./lkvm run ...` on the origin; its stdout is the guest console. */
export function lkvmJob(input: VmLaunchInput): VmJob {
  return { step: 'lkvm', argv: lkvmArgv(input), cwd: input.paths.kvmtool, sudo: true };
}

export const QEMU = 'qemu-system-x86_64';
/** The tap the launcher creates on the origin and the bridge it joins (ARTIFACT.md: br0 + tap0). */
export const BRIDGE = 'br0';
export const TAP = 'tap0';

export interface QemuInput extends Omit<VmLaunchInput, 'nodeCount'> {
  /** rdmaIp of the VM's nodes in node order: GiantVM's iplist (its length is the node count). */
  nodeIps: readonly string[];
  /** This instance's node: its position in nodeIps, the vCPU it runs. */
  position: number;
}

/**
 * GiantVM's QEMU on one node: `-machine kernel-irqchip=off -smp N -m M --enable-kvm -local-cpu
 * 1,start=<i>,iplist=<ip0 ip1 ...>` (one vCPU per node, as the paper compares it; the shell quotes
 * of the artifact's `iplist="..."` are not part of the argument). Our reconstruction, since the
 * artifact ships no GiantVM scripts: every instance describes the same machine; the guest (kernel,
 * ramdisk, command line) and the tap network are given to the origin's instance (start=0), which
 * boots vCPU 0 and owns the devices; the ramdisks and the guest kernel live on the origin only.
 * QEMU's console is its serial port on stdout (-nographic), hence `console=ttyS0` here.
 */
export function qemuArgv({ experiment, nodeIps, position, guest, paths, kernelImage }: QemuInput): string[] {
  const n = checkNodeCount(nodeIps.length, 256);
  if (!Number.isInteger(position) || position < 0 || position >= n) throw new RangeError(`the qemu instance's position must be 0..${n - 1}, got ${String(position)}`);
  const image = EXPERIMENT_GUEST[experiment];
  const machine = ['-machine', 'kernel-irqchip=off', '-smp', String(n), '-m', String(image.memMiB), '--enable-kvm', '-local-cpu', `1,start=${position},iplist=${nodeIps.join(' ')}`, '-nographic'];
  const boot =
    position === 0
      ? [
          '-kernel',
          kernelImage,
          '-initrd',
          join(paths.ramdisks, image.ramdisk),
          '-append',
          `${guestCmdline(experiment, n)} console=ttyS0`,
          '-netdev',
          `tap,id=net0,ifname=${TAP},script=no,downscript=no,vhost=on`,
          '-device',
          `virtio-net-pci,netdev=net0,mac=${guest.mac}`,
        ]
      : [];
  return [QEMU, ...machine, ...boot];
}

/** qemu as a remote job on one node (as root: it opens /dev/kvm and the tap); absolute paths only, so it runs from /. */
export function qemuJob(input: QemuInput): VmJob {
  return { step: 'qemu', argv: qemuArgv(input), cwd: '/', sudo: true };
}

/** kvmtool's IPC directory: a socket left there by an earlier VM stops the next launch on that node. */
export const LKVM_DIR = '/root/.lkvm';

/**
 * The stale sockets, as root (/root is not the SSH user's): the whole directory goes, since lkvm
 * creates it at start (kvm__set_dir). `-v` names what was removed in the step log.
 */
export const lkvmSocketCleanupArgv = (): string[] => asRoot(['rm', '-rfv', '--', LKVM_DIR]);

/** The origin's tap on the bridge, once the launcher has created it. */
export const bridgeTapArgv = (): string[] => asRoot(['brctl', 'addif', BRIDGE, TAP]);

/** `added`/`member`: the tap is on a bridge; `no-tap`: not created yet (try again); `failed`: anything else. */
export type BridgeOutcome = 'added' | 'member' | 'no-tap' | 'failed';

/** What `brctl addif br0 tap0` did, from bridge-utils' messages. */
export function bridgeOutcome(exitCode: number | null, stderr: string): BridgeOutcome {
  if (exitCode === 0) return 'added';
  if (new RegExp(`^device ${TAP} is already a member of a bridge`, 'm').test(stderr)) return 'member';
  if (new RegExp(`^interface ${TAP} does not exist`, 'm').test(stderr)) return 'no-tap';
  return 'failed';
}

// ---- the plan ----

export interface VmPlanInput extends Omit<VmLaunchInput, 'nodeCount'> {
  hypervisor: Hypervisor;
  nodeCount: number;
  /** The profile's nodes in order (at least nodeCount). */
  nodes: readonly { name: string; rdmaIp: string }[];
}

/** `<hypervisor>/vm-<experiment>-n<count>/<node>/<what>`: one VM per epoch. */
export const vmStepKey = (hypervisor: Hypervisor, experiment: Experiment, nodeCount: number, node: string, what: string): string =>
  `${hypervisor}/vm-${experiment}-n${nodeCount}/${node}/${what}`;

/** The VM of one epoch, from launch to stop, with the exact command lines the activities send. */
export function vmSteps(input: VmPlanInput): PlanStep[] {
  const { hypervisor, experiment, nodeCount } = input;
  if (input.nodes.length < nodeCount) throw new RangeError(`the VM needs ${nodeCount} nodes, the profile has ${input.nodes.length}`);
  const nodes = input.nodes.slice(0, nodeCount);
  const origin = nodes[0].name;
  const key = (node: string, what: string) => vmStepKey(hypervisor, experiment, nodeCount, node, what);
  const launch: PlanStep[] =
    hypervisor === 'fragvisor'
      ? [
          ...nodes.map(
            (node): PlanStep => ({
              key: key(node.name, 'lkvm-sockets'),
              title: `${node.name}: remove stale kvmtool sockets (${LKVM_DIR})`,
              host: { node: node.name },
              commands: [toCommandLine(lkvmSocketCleanupArgv())],
              privileged: true,
              note: 'Skipped when this boot already has the VM job (a retried launch reattaches; it never removes a running VM\'s socket).',
            }),
          ),
          {
            key: key(origin, 'lkvm'),
            title: `${origin}: launch the FragVisor VM on ${nodeCount} node(s) (${experiment}: ${EXPERIMENT_GUEST[experiment].ramdisk}, ${EXPERIMENT_GUEST[experiment].memMiB} MiB)`,
            host: { node: origin },
            commands: [BOOT_STATE_COMMAND, planJobLine(lkvmJob({ ...input, nodeCount }))],
            privileged: true,
            note: 'A remote job keyed by run, epoch, node and boot_id: a retry in the same boot reattaches and never launches a second VM. Its output (the guest console) is copied to the run store.',
          },
        ]
      : nodes.map(
          (node, i): PlanStep => ({
            key: key(node.name, 'qemu'),
            title: `${node.name}: GiantVM's QEMU, vCPU ${i} of ${nodeCount}${i === 0 ? ' (boots the guest, owns the tap)' : ''}`,
            host: { node: node.name },
            commands: [BOOT_STATE_COMMAND, planJobLine(qemuJob({ ...input, nodeIps: nodes.map((x) => x.rdmaIp), position: i }))],
            privileged: true,
            note: 'A remote job keyed by run, epoch, node and boot_id. The instances wait for each other; the origin\'s output is the guest console.',
          }),
        );
  return [
    ...launch,
    {
      key: key(origin, 'bridge'),
      title: `${origin}: add ${TAP} to ${BRIDGE}`,
      host: { node: origin },
      commands: [toCommandLine(bridgeTapArgv())],
      privileged: true,
      note: `Repeated while ${TAP} does not exist yet (the launcher creates it), at most a minute; "already a member" is fine. A launcher that dies meanwhile fails the epoch (VmDied).`,
    },
    {
      key: key('guest', 'ready'),
      title: `The guest answers SSH (${experiment}, ${nodeCount} vCPU(s))`,
      host: { guest: true },
      commands: ['true'],
      note: "Over the profile's guest.ssh (through the origin when guest.ssh.via is origin), polled with the console copied, until the boot timeout: a launcher that exits is VmDied, no answer in time GuestBootTimeout, both with the console's last lines.",
    },
    {
      key: key(origin, 'stop'),
      title: `Stop the VM (${hypervisor === 'fragvisor' ? 'lkvm' : 'qemu on every node'})`,
      host: { node: origin },
      commands: [],
      privileged: true,
      note: 'Kills the launcher job\'s process group on each node (TERM, then KILL; through sudo) and waits until it is gone. The VM cannot be restarted: the next epoch reboots every node first.',
    },
  ];
}
