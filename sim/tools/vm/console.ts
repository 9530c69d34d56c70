/**
 * What the guest's boot console prints (lkvm and the GiantVM qemu stream it to stdout), in
 * Linux's `[ seconds]` format with model time. Every console says SIMULATED near its top.
 */

export interface ConsoleFacts {
  hypervisor: 'fragvisor' | 'giantvm';
  kernelRelease: string;
  params: string;
  vcpus: number;
  memMiB: number;
  /** rdma IP of the node running vCPU k. */
  nodeIps: readonly string[];
  guestIp: string;
  init: string;
}

export const stamp = (seconds: number): string => `[${seconds.toFixed(6).padStart(12)}]`;

export function earlyBoot(f: ConsoleFacts): string[] {
  const lines = [
    [0, `Linux version ${f.kernelRelease} (SIMULATED) (gcc version 7.5.0 (Ubuntu 7.5.0-3ubuntu1~18.04)) #1 SMP`],
    [0, `Command line: ${f.params}`],
    [0, 'x86/fpu: Legacy x87 FPU detected.'],
    [0, `e820: BIOS-provided physical RAM map: ${f.memMiB} MiB usable`],
    [0, `NUMA: Faking a node at [mem 0x0000000000000000-0x${(f.memMiB * 1024 * 1024 - 1).toString(16).padStart(16, '0')}]`],
    [0, `smpboot: Allowing ${f.vcpus} CPUs, 0 hotplug CPUs`],
    [0.01, f.hypervisor === 'fragvisor' ? 'Hypervisor detected: KVM (FragVisor distributed vCPUs)' : 'Hypervisor detected: KVM (GiantVM, kernel-irqchip=off)'],
    ...f.nodeIps.map((ip, k): [number, string] => [0.2 + k * 0.05, `smpboot: Booting Node ${k} Processor ${k} APIC 0x${k.toString(16)} (host ${ip})`]),
    [0.5, `smp: Brought up ${f.vcpus} node${f.vcpus > 1 ? 's' : ''}, ${f.vcpus} CPU${f.vcpus > 1 ? 's' : ''}`],
  ] as [number, string][];
  return lines.map(([t, l]) => `${stamp(t)} ${l}`);
}

export function lateBoot(f: ConsoleFacts, atSeconds: number): string[] {
  return [
    `${stamp(atSeconds * 0.4)} Freeing initrd memory: 614400K`,
    `${stamp(atSeconds * 0.5)} virtio-pci 0000:00:01.0: virtio_net: eth0 ${f.guestIp}`,
    `${stamp(atSeconds * 0.55)} virtio-pci 0000:00:02.0: virtio_blk: [vda] 16777216 512-byte logical blocks (8.59 GB/8.00 GiB)`,
    `${stamp(atSeconds * 0.6)} Run ${f.init} as init process`,
  ];
}

export function loginBanner(f: ConsoleFacts, atSeconds: number, sshEndpoint: string): string[] {
  return [
    `${stamp(atSeconds)} SIMULATED: the guest is up; ssh root@${f.guestIp} is answered at ${sshEndpoint}`,
    '',
    'Ubuntu 18.04.4 LTS guest hvc0',
    '',
    'guest login: ',
  ];
}

export function panic(atSeconds: number, why: string): string[] {
  return [
    `${stamp(atSeconds)} ${why}`,
    `${stamp(atSeconds)} Kernel panic - not syncing: ${why.startsWith('VFS') ? 'VFS: Unable to mount root fs on unknown-block(0,0)' : 'Fatal exception'}`,
    `${stamp(atSeconds)} ---[ end Kernel panic - not syncing (SIMULATED) ]---`,
  ];
}
