import type { GuestToolCall, GuestToolResult } from '../channel';
import type { GuestRuntime } from './context';

/**
 * taskset over the guest's vCPUs, printing what util-linux's taskset prints:
 *   taskset -p PID            pid 123's current affinity mask: f
 *   taskset -p MASK PID       ... current ..., then pid 123's new affinity mask: 2
 *   taskset -cp [LIST] PID    the same with "affinity list: 0-3"
 *   taskset MASK CMD...       runs CMD with MASK: the shim (bin/taskset) execs CMD in its own
 *                             process, whose mask is set here first (it is the client's parent).
 * A mask is clipped to the guest's vCPUs; one naming none of them is refused (EINVAL).
 */

const USAGE = "taskset: bad usage\nTry 'taskset --help' for more information.\n";

export async function tasksetTool(call: GuestToolCall, guest: GuestRuntime): Promise<GuestToolResult> {
  let pidMode = false;
  let listMode = false;
  let i = 0;
  for (; i < call.args.length; i++) {
    const a = call.args[i];
    if (a === '--pid') pidMode = true;
    else if (a === '--cpu-list') listMode = true;
    else if (a === '--all-tasks') continue;
    else if (a === '-h' || a === '--help') {
      call.stdout.write('Usage: taskset [options] [mask | cpu-list] [pid|cmd [args...]]\n\nSIMULATED: masks are over the guest vCPUs.\n');
      return 0;
    } else if (a === '-V' || a === '--version') {
      call.stdout.write('taskset from util-linux 2.31.1\n');
      return 0;
    } else if (/^-[pca]+$/.test(a)) {
      pidMode ||= a.includes('p');
      listMode ||= a.includes('c');
    } else if (a === '--') {
      i++;
      break;
    } else if (a.startsWith('-') && !/^-?\d/.test(a)) {
      call.stderr.write(`taskset: invalid option -- '${a.replace(/^-+/, '')}'\n${USAGE}`);
      return 1;
    } else break;
  }
  const rest = call.args.slice(i);
  const kind = listMode ? 'list' : 'mask';
  const show = (m: number) => (listMode ? toList(m) : m.toString(16));

  if (pidMode) {
    if (rest.length < 1 || rest.length > 2) return usage(call);
    const pidArg = rest[rest.length - 1];
    if (!/^\d+$/.test(pidArg)) {
      call.stderr.write(`taskset: invalid PID argument: '${pidArg}'\n`);
      return 1;
    }
    const pid = Number(pidArg);
    const current = guest.processes.maskOf(pid);
    if (current === undefined) {
      call.stderr.write(`taskset: failed to get pid ${pid}'s affinity: No such process\n`);
      return 1;
    }
    call.stdout.write(`pid ${pid}'s current affinity ${kind}: ${show(current)}\n`);
    if (rest.length === 1) return 0;
    const wanted = parse(rest[0], listMode);
    if (wanted === undefined) {
      call.stderr.write(`taskset: failed to parse CPU ${kind}: ${rest[0]}\n`);
      return 1;
    }
    const mask = wanted & guest.processes.fullMask;
    if (mask === 0) {
      call.stderr.write(`taskset: failed to set pid ${pid}'s affinity: Invalid argument\n`);
      return 1;
    }
    guest.processes.setMask(pid, mask);
    call.stdout.write(`pid ${pid}'s new affinity ${kind}: ${show(mask)}\n`);
    return 0;
  }

  if (rest.length < 2) return usage(call);
  const wanted = parse(rest[0], listMode);
  if (wanted === undefined) {
    call.stderr.write(`taskset: failed to parse CPU ${kind}: ${rest[0]}\n`);
    return 1;
  }
  const mask = wanted & guest.processes.fullMask;
  if (mask === 0) {
    call.stderr.write(`taskset: failed to set pid ${call.ppid}'s affinity: Invalid argument\n`);
    return 1;
  }
  guest.processes.setMask(call.ppid, mask);
  call.stdout.write(`ae-guest-exec:${i + 1}\n`);
  return 0;
}

function usage(call: GuestToolCall): number {
  call.stderr.write(USAGE);
  return 1;
}

/** A hex mask (`0x2`, `f`) or a CPU list (`0-2,5`); undefined when it is neither. */
export function parse(text: string, list: boolean): number | undefined {
  if (!list) {
    const m = /^(?:0x)?([0-9a-fA-F]{1,8})$/.exec(text);
    return m ? parseInt(m[1], 16) : undefined;
  }
  let mask = 0;
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    const lo = Number(m[1]);
    const hi = m[2] === undefined ? lo : Number(m[2]);
    if (hi < lo || hi > 30) return undefined;
    for (let c = lo; c <= hi; c++) mask |= 1 << c;
  }
  return mask;
}

/** `0-3`, `0,2`: the CPU list form of a mask. */
export function toList(mask: number): string {
  const parts: string[] = [];
  for (let c = 0; c < 31; c++) {
    if (!((mask >>> c) & 1)) continue;
    let end = c;
    while (end + 1 < 31 && (mask >>> (end + 1)) & 1) end++;
    parts.push(end === c ? String(c) : `${c}-${end}`);
    c = end;
  }
  return parts.join(',');
}
