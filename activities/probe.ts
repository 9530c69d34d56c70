import { toCommandLine } from '../workflows/commands/quote';
import { BOOT_ID } from '../workflows/commands/reboot';
import type { NodeProbe } from './probeTypes';

/** One round trip: boot_id, kernel release, uptime, and whether the FragVisor checkout is there. */
export function probeCommand(fragvisorPath: string): string {
  return [
    'cat /proc/sys/kernel/random/boot_id',
    'uname -r',
    'cat /proc/uptime',
    `${toCommandLine(['test', '-d', fragvisorPath])} && echo yes || echo no`,
  ].join('; ');
}

/** Parses probeCommand's output; anything unexpected is an error naming the line. */
export function parseProbeOutput(stdout: string): Pick<NodeProbe, 'bootId' | 'kernelRelease' | 'uptimeSeconds' | 'fragvisorTree'> {
  const lines = stdout.trim().split('\n').map((l) => l.trim());
  if (lines.length !== 4) throw new Error(`probe: expected 4 lines (boot_id, uname -r, /proc/uptime, tree), got ${lines.length}: ${JSON.stringify(stdout.slice(0, 200))}`);
  const [bootId, kernelRelease, uptime, tree] = lines;
  if (!BOOT_ID.test(bootId)) throw new Error(`probe: boot_id line is not a UUID: ${JSON.stringify(bootId)}`);
  if (!/^\S+$/.test(kernelRelease)) throw new Error(`probe: kernel release line is not one word: ${JSON.stringify(kernelRelease)}`);
  const uptimeSeconds = Number(uptime.split(/\s+/)[0]);
  if (!Number.isFinite(uptimeSeconds) || uptimeSeconds < 0) throw new Error(`probe: /proc/uptime line is not a number: ${JSON.stringify(uptime)}`);
  if (tree !== 'yes' && tree !== 'no') throw new Error(`probe: tree check printed ${JSON.stringify(tree)}, expected yes or no`);
  return { bootId, kernelRelease, uptimeSeconds, fragvisorTree: tree === 'yes' };
}
