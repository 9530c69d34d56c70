/**
 * Pure argv rules of GiantVM's QEMU 2.8 (ARTIFACT.md, the claims): every node runs
 *   qemu-system-x86_64 ... -machine kernel-irqchip=off -smp N -m M --enable-kvm
 *     -local-cpu <n>,start=<i>,iplist="ip0 ip1 ..."
 * where the instance with this node's IP at position i of iplist runs n vCPUs from vCPU `start`.
 * The guest comes from -kernel / -initrd / -append (the same ramdisks as FragVisor's).
 */

export interface QemuConfig {
  smp: number;
  memMiB: number;
  kvm: boolean;
  irqchipOff: boolean;
  localCpus: number;
  start: number;
  iplist: string[];
  kernel?: string;
  initrd?: string;
  append: string;
  /** A tap network (-netdev tap / -net tap): the guest is reachable from the host. */
  tap: boolean;
}

export type QemuParse = { ok: true; config: QemuConfig } | { ok: false; message: string };

/** Options that take no argument; every other option takes exactly one (QEMU's own rule). */
const NO_ARG = new Set(['enable-kvm', 'nographic', 'no-reboot', 'no-shutdown', 'daemonize', 'S', 'snapshot', 'no-hpet', 'no-acpi', 'no-user-config', 'nodefaults']);

const err = (message: string): QemuParse => ({ ok: false, message: `qemu-system-x86_64: ${message}\n` });

export function parseQemuArgs(args: readonly string[]): QemuParse {
  const opts = new Map<string, string[]>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (!a.startsWith('-')) return err(`${a}: drive images as positional arguments are not supported by GiantVM's qemu (SIMULATED)`);
    const name = a.replace(/^--?/, '');
    if (NO_ARG.has(name)) {
      opts.set(name, ['']);
      continue;
    }
    if (i + 1 >= args.length) return err(`-${name} requires an argument`);
    opts.set(name, [...(opts.get(name) ?? []), args[++i]]);
  }
  const one = (k: string) => opts.get(k)?.at(-1);
  const smp = Number((one('smp') ?? '1').split(',')[0].replace(/^cpus=/, ''));
  if (!Number.isInteger(smp) || smp < 1) return err(`Invalid SMP CPUs ${one('smp')}`);
  const memText = one('m') ?? '128';
  const memMatch = /^(?:size=)?(\d+)([MG]?)$/i.exec(memText);
  if (!memMatch) return err(`-m ${memText}: invalid amount of memory`);
  const memMiB = Number(memMatch[1]) * (memMatch[2].toUpperCase() === 'G' ? 1024 : 1);
  const local = one('local-cpu');
  if (local === undefined) return err('GiantVM needs -local-cpu <n>,start=<i>,iplist="ip0 ip1 ..." on every node');
  const m = /^(\d+),start=(\d+),iplist=(.+)$/.exec(local);
  if (!m) return err(`-local-cpu ${local}: expected <n>,start=<i>,iplist="ip0 ip1 ..."`);
  const iplist = m[3].replace(/^["']|["']$/g, '').split(/\s+/).filter(Boolean);
  const machine = (opts.get('machine') ?? []).concat(opts.get('M') ?? []).join(',');
  const nets = [...(opts.get('netdev') ?? []), ...(opts.get('net') ?? [])];
  return {
    ok: true,
    config: {
      smp,
      memMiB,
      kvm: opts.has('enable-kvm') || /accel=kvm/.test(machine),
      irqchipOff: /kernel[-_]irqchip=off/.test(machine),
      localCpus: Number(m[1]),
      start: Number(m[2]),
      iplist,
      kernel: one('kernel'),
      initrd: one('initrd'),
      append: one('append') ?? '',
      tap: nets.some((n) => /^tap\b/.test(n)),
    },
  };
}
