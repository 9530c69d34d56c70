import { npbSeconds } from '../../model/model';
import { measure, sleepMs } from '../../model/runtime';
import type { GuestToolCall, GuestToolResult } from '../channel';
import { maskToVcpu } from '../pinning';
import { sleepUnlessAborted, type GuestRuntime } from './context';

/**
 * The NPB binaries of the E3 ramdisk (/root/NPB/bin/ep.B, ...): run for the model's time on the
 * vCPU the process is pinned to (its mask, else its parent's), then print NPB's report with the
 * model's time. Times are model seconds (what the testbed would take); the process only sleeps
 * them scaled by the time scale.
 */

export async function npbTool(call: GuestToolCall, guest: GuestRuntime): Promise<GuestToolResult> {
  const kernel = call.tool;
  const spec = guest.model.spec.npb.kernels[kernel];
  if (!spec) {
    call.stderr.write(`bash: ${kernel}: command not found\n`);
    return 127;
  }
  const [bench, cls] = kernel.split('.');
  const vcpu = maskToVcpu(guest.processes.maskOf(call.pid) ?? 1, guest.vcpus);
  const seconds = measure(guest.model, npbSeconds(guest.model.spec, { hypervisor: guest.hypervisor, nodes: guest.vcpus, kernel, vcpu }), `npb:${kernel}:${guest.nextRun('npb')}`);
  const name = bench.toUpperCase();
  call.stdout.write(`\n\n NAS Parallel Benchmarks (NPB3.3-SER) - ${name} Benchmark\n\n SIMULATED: run time from the performance model (${guest.hypervisor}, vCPU ${vcpu} of ${guest.vcpus})\n\n`);
  if (!(await sleepUnlessAborted(sleepMs(guest.model, seconds * 1000), call.signal))) return 130;
  const row = (k: string, v: string) => ` ${k.padEnd(24)}=${v.padStart(25)}\n`;
  call.stdout.write(
    `\n ${name} Benchmark Completed.\n` +
      row('Class', cls) +
      row('Iterations', '0') +
      row('Time in seconds', seconds.toFixed(2)) +
      row('Total threads', '1') +
      row('Mop/s total', (1000 / seconds).toFixed(2)) +
      row('Operation type', 'SIMULATED') +
      row('Verification', 'SUCCESSFUL') +
      row('Version', '3.3.1') +
      row('Compile date', '25 Jun 2020') +
      '\n SIMULATED: no computation was performed.\n',
  );
  return 0;
}
