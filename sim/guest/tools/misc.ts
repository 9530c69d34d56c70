import type { GuestToolCall, GuestToolResult } from '../channel';
import type { GuestRuntime } from './context';

/** nproc over the guest's vCPUs (the caller's mask; --all: every vCPU). */
export async function nprocTool(call: GuestToolCall, guest: GuestRuntime): Promise<GuestToolResult> {
  const mask = call.args.includes('--all') ? guest.processes.fullMask : (guest.processes.maskOf(call.pid) ?? guest.processes.fullMask);
  let n = 0;
  for (let m = mask; m; m >>>= 1) n += m & 1;
  call.stdout.write(`${n}\n`);
  return 0;
}

/** poweroff, halt, shutdown, reboot: the VM stops (a FragVisor VM cannot reboot: it just ends). */
export async function powerTool(call: GuestToolCall, guest: GuestRuntime): Promise<GuestToolResult> {
  const reboot = call.tool === 'reboot' || (call.tool === 'shutdown' && call.args.some((a) => a === '-r' || a === '--reboot'));
  guest.powerOff(reboot ? 'reboot' : 'poweroff');
  return 0;
}
