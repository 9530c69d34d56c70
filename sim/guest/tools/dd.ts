import { diskThroughputMBps } from '../../model/model';
import { measure, sleepMs } from '../../model/runtime';
import type { GuestToolCall, GuestToolResult } from '../channel';
import { maskToVcpu } from '../pinning';
import { resolveGuestPath, sleepUnlessAborted, type GuestRuntime } from './context';

/**
 * dd on the guest's virtio disk (/dev/vda, 8 GiB): the storage test of Figure 7. Nothing is
 * stored; the copy takes the model's time for a process on the caller's vCPU (vCPU 0 reads and
 * writes locally, any other vCPU's I/O is delegated to the origin), and dd prints its usual
 * summary with that (model) time, after a SIMULATED line. Any other dd is the real one.
 */

export const DISK = '/dev/vda';
export const DISK_BYTES = 8 * 1024 ** 3;
const SUFFIX: Record<string, number> = { c: 1, w: 2, b: 512, kB: 1e3, K: 1024, MB: 1e6, M: 1024 ** 2, xM: 1024 ** 2, GB: 1e9, G: 1024 ** 3 };

/** dd's sizes: `1M`, `4k`, `512`, `1GB`. */
export function parseSize(text: string): number | undefined {
  const m = /^(\d+)([A-Za-z]*)$/.exec(text);
  if (!m) return undefined;
  const unit = m[2] === 'k' ? 'K' : m[2];
  const mult = unit === '' ? 1 : SUFFIX[unit];
  return mult === undefined ? undefined : Number(m[1]) * mult;
}

export async function ddTool(call: GuestToolCall, guest: GuestRuntime): Promise<GuestToolResult> {
  const ops: Record<string, string> = {};
  for (const a of call.args) {
    const eq = a.indexOf('=');
    if (eq <= 0) return { delegate: '/bin/dd', args: call.args };
    ops[a.slice(0, eq)] = a.slice(eq + 1);
  }
  const input = ops.if === undefined ? undefined : resolveGuestPath(call.cwd, ops.if);
  const output = ops.of === undefined ? undefined : resolveGuestPath(call.cwd, ops.of);
  if (input !== DISK && output !== DISK) return { delegate: '/bin/dd', args: call.args };
  const op = input === DISK ? 'read' : 'write';
  const bs = parseSize(ops.bs ?? ops[op === 'read' ? 'ibs' : 'obs'] ?? '512');
  const count = ops.count === undefined ? undefined : parseSize(ops.count);
  if (!bs || (ops.count !== undefined && count === undefined)) {
    call.stderr.write(`dd: invalid number: '${ops.count !== undefined && count === undefined ? ops.count : ops.bs}'\n`);
    return 1;
  }
  const wanted = count === undefined ? Infinity : bs * count;
  const bytes = Math.min(wanted, DISK_BYTES);
  const full = op === 'write' && wanted > DISK_BYTES;
  const records = Math.floor(bytes / bs);
  const partial = bytes % bs ? 1 : 0;

  const vcpu = maskToVcpu(guest.processes.maskOf(call.pid) ?? 1, guest.vcpus);
  const mbps = measure(guest.model, diskThroughputMBps(guest.model.spec, { hypervisor: guest.hypervisor, nodes: guest.vcpus, vcpu, op }), `dd:${op}:${guest.nextRun('dd')}`);
  const seconds = bytes / (mbps * 1e6);
  const quiet = ops.status === 'none';
  if (!quiet) call.stderr.write(`SIMULATED: ${DISK} ${op} time from the performance model (${guest.hypervisor}, vCPU ${vcpu}${vcpu === 0 ? ', local' : ', delegated to the origin'})\n`);
  if (!(await sleepUnlessAborted(sleepMs(guest.model, seconds * 1000), call.signal))) return 130;
  if (full) call.stderr.write(`dd: error writing '${DISK}': No space left on device\n`);
  if (!quiet) call.stderr.write(`${records}+${partial} records in\n${records}+${partial} records out\n${summary(bytes, seconds)}\n`);
  return full ? 1 : 0;
}

/** coreutils' last line: `1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.55 s, 421 MB/s`. */
export function summary(bytes: number, seconds: number): string {
  const human = (n: number, base: number, units: string[]) => {
    let u = 0;
    while (n >= base && u < units.length - 1) {
      n /= base;
      u++;
    }
    return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[u]}`;
  };
  const size = bytes >= 1000 ? ` (${human(bytes, 1000, ['B', 'kB', 'MB', 'GB', 'TB'])}, ${human(bytes, 1024, ['B', 'KiB', 'MiB', 'GiB', 'TiB'])})` : '';
  const rate = seconds > 0 ? human(bytes / seconds, 1000, ['B/s', 'kB/s', 'MB/s', 'GB/s', 'TB/s']) : 'Infinity B/s';
  return `${bytes} bytes${size} copied, ${Number(seconds.toPrecision(6))} s, ${rate}`;
}
