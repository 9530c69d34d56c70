import { spawn, type ChildProcess } from 'node:child_process';
import { loadProfile } from '../../config/load';
import type { SimCluster } from '../../sim/cluster';
import { renderConfigH } from '../../sim/tools/msglayer';
import { openssh, waitUntil, type RunResult } from './sim';

/**
 * ARTIFACT.md's manual procedure (steps 1-4) over plain OpenSSH (`ssh -F DIR/ssh_config ...`) on a
 * running simulated cluster: host kernels with the origin flag, the guest kernel, the reboot, the
 * messaging layer and `sudo ./lkvm run`. Every command is an asynchronous ssh child: the simulator
 * runs in the test's own event loop.
 */

export const TREE = '/home/ae/FragVisor/fragvisor-linux';
export const MSG = `${TREE}/msg_layer`;
export const GUEST_OUT = '/home/ae/guest-build';
export const KVMTOOL = '/home/ae/fragvisor-kvmtool';
export const UNFLAG = "sed -i 's/#define CONFIG_POPCORN_ORIGIN_NODE//' include/popcorn/debug.h";

/** lkvm's per-node vCPU flags, node 0 first (ARTIFACT.md step 4). */
const NODE_FLAGS = ['a', 'b', 'x', 'y', 'z', 'q', 'r', 's', 't'];

/** `cd KVMTOOL && sudo ./lkvm run -a 1 -b 1 ... -w n ... numa=fake=n` for E1 (LEMP) on `n` nodes. */
export function lkvmCommand(n: number, kernel = `${GUEST_OUT}/arch/x86/boot/bzImage`): string {
  const params = `root=/dev/ram rw init=/init2 fstype=ext4 spectre_v2=off nopti pti=off numa=fake=${n} percpu_alloc=page -no-kvm-pit-reinjection clocksource=tsc`;
  const vcpus = NODE_FLAGS.slice(0, n).map((f) => `-${f} 1`).join(' ');
  return `cd ${KVMTOOL} && sudo ./lkvm run ${vcpus} -w ${n} -i /home/ae/ramdisks/ramdisk_lemp_4php.gz -k ${kernel} -m 20480 -c ${n} -p "${params}" --network mode=tap,vhost=1,guest_ip=10.4.4.222,host_ip=10.4.4.221,guest_mac=00:11:22:33:44:55`;
}

export interface Launched {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

export class Procedure {
  readonly nodes: string[];
  readonly ips: string[];
  readonly guestPort: number;
  readonly lkvm: string;
  private readonly children: ChildProcess[] = [];

  constructor(readonly sim: SimCluster) {
    const { profile } = loadProfile(sim.profileFile);
    this.guestPort = profile.guest.ssh.port;
    this.ips = profile.nodes.map((n) => n.rdmaIp as string);
    this.nodes = profile.nodes.map((_, i) => `node${i}`);
    this.lkvm = lkvmCommand(this.nodes.length);
  }

  sh(node: string, command: string, timeoutMs = 60_000): Promise<RunResult> {
    return openssh(this.sim, node, command, timeoutMs);
  }

  /** The guest over plain OpenSSH (DIR/ssh_config's `guest` block), with optional stdin. */
  guest(command: string, input = ''): Promise<RunResult> {
    return new Promise((resolve) => {
      const child = spawn('ssh', ['-F', this.sim.sshConfigFile, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', 'guest', command], { stdio: ['pipe', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin.end(input);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
  }

  /**
   * Step 1: every node builds and installs its host kernel. `originOn(i)` says whether node i keeps
   * `#define CONFIG_POPCORN_ORIGIN_NODE`; the others get the artifact's sed. Returns the make results.
   */
  buildHostKernels(originOn: (i: number) => boolean): Promise<{ node: string; code: number | null; stderr: string }[]> {
    return Promise.all(
      this.nodes.map(async (node, i) => {
        const unflag = originOn(i) ? 'true' : UNFLAG;
        const r = await this.sh(node, `cd ${TREE} && ${unflag} && make -j16 && make modules && sudo make modules_install && sudo make install`, 120_000);
        return { node, code: r.code, stderr: r.stderr };
      }),
    );
  }

  /** Step 2: the guest kernel on the origin (POPHYPE_HOST_KERNEL 0) in its own O= dir; the flag is restored whatever make says. */
  buildGuestKernel(): Promise<RunResult> {
    return this.sh(
      'node0',
      `cd ${TREE} && sed -i 's/#define POPHYPE_HOST_KERNEL 1/#define POPHYPE_HOST_KERNEL 0/' include/popcorn/debug.h && make O=${GUEST_OUT} olddefconfig >/dev/null && make O=${GUEST_OUT} -j16; rc=$?; sed -i 's/#define POPHYPE_HOST_KERNEL 0/#define POPHYPE_HOST_KERNEL 1/' include/popcorn/debug.h; exit $rc`,
      120_000,
    );
  }

  /** `sudo reboot` on every node; resolves once each is back with a new boot_id. */
  async rebootAll(timeoutMs = 30_000): Promise<void> {
    await Promise.all(
      this.nodes.map(async (node) => {
        const bootId = this.sim.node(node).state.bootId;
        await this.sh(node, 'sudo reboot');
        await waitUntil(`${node} to reboot`, () => this.sim.node(node).up && this.sim.node(node).state.bootId !== bootId, timeoutMs);
      }),
    );
  }

  /** Step 3's build: the node list into msg_layer/config.h on every node, then `make clean && make`. Returns the exit codes. */
  async buildMsgLayer(): Promise<(number | null)[]> {
    const configH = Buffer.from(renderConfigH(this.ips)).toString('base64');
    const codes: (number | null)[] = [];
    for (const node of this.nodes) {
      codes.push((await this.sh(node, `echo ${configH} | base64 -d > ${MSG}/config.h && make clean -C ${MSG}/ >/dev/null && make -C ${MSG}/ >/dev/null`)).code);
    }
    return codes;
  }

  /** Step 3: insmod on every node in order, 1 s apart; resolves with every insmod's result. */
  async insmodAll(): Promise<RunResult[]> {
    const runs: Promise<RunResult>[] = [];
    for (const [k, node] of this.nodes.entries()) {
      if (k > 0) await new Promise((r) => setTimeout(r, 1000));
      runs.push(this.sh(node, `sudo insmod ${MSG}/msg_rdma.ko`));
    }
    return Promise.all(runs);
  }

  /** `sudo ./lkvm run ...` on node0 in the foreground of an SSH session that stays open while the VM runs. */
  launch(command = this.lkvm): Launched {
    const child = spawn('ssh', ['-F', this.sim.sshConfigFile, '-o', 'BatchMode=yes', 'node0', command], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.children.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    return { child, output: () => out, exited: new Promise((resolve) => child.on('close', (code) => resolve(code))) };
  }

  /** Kills the ssh clients `launch` started. */
  killLaunched(): void {
    for (const c of this.children) c.kill('SIGKILL');
  }
}
