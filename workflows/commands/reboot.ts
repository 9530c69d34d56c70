import { toCommandLine } from './quote';
import { asRoot } from './sudo';

/**
 * Reboots with proof (ARTIFACT.md, "Hazards"): a reboot counts only when the node answers with a
 * boot_id other than the one it had before, running the expected kernel. Pure builders and parsers.
 */

/** /proc/sys/kernel/random/boot_id: a random UUID, new at every boot. */
export const BOOT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export interface BootState {
  bootId: string;
  /** `uname -r`, e.g. 4.4.137-pop-hype. */
  kernelRelease: string;
}

/** One round trip: the boot id, then the running kernel release. */
export const BOOT_STATE_COMMAND = 'cat /proc/sys/kernel/random/boot_id; uname -r';

/** Parses BOOT_STATE_COMMAND's output; anything else is an error quoting what came back. */
export function parseBootState(stdout: string): BootState {
  const lines = stdout.trim().split('\n').map((l) => l.trim());
  if (lines.length !== 2) throw new Error(`boot state: expected 2 lines (boot_id, uname -r), got ${lines.length}: ${JSON.stringify(stdout.slice(0, 200))}`);
  const [bootId, kernelRelease] = lines;
  if (!BOOT_ID.test(bootId)) throw new Error(`boot state: boot_id line is not a UUID: ${JSON.stringify(bootId)}`);
  if (!/^\S+$/.test(kernelRelease)) throw new Error(`boot state: kernel release line is not one word: ${JSON.stringify(kernelRelease)}`);
  return { bootId, kernelRelease };
}

/**
 * The soft reboot. It never returns normally: the SSH connection drops as the node goes down (a real
 * systemd may exit 0 first). `systemctl reboot` rather than `reboot`: the same on every systemd host,
 * and it runs the orderly shutdown.
 */
export const SOFT_REBOOT_COMMAND = toCommandLine(asRoot(['systemctl', 'reboot']));

export type BootVerdict = { kind: 'same-boot' } | { kind: 'rebooted' } | { kind: 'wrong-kernel'; message: string };

/** What a node's answer says about a reboot that started from `bootIdBefore`. */
export function judgeBoot(node: string, bootIdBefore: string, state: BootState, expectedRelease?: string): BootVerdict {
  if (state.bootId === bootIdBefore) return { kind: 'same-boot' };
  if (expectedRelease !== undefined && state.kernelRelease !== expectedRelease) {
    return {
      kind: 'wrong-kernel',
      message:
        `node ${node} rebooted (boot_id ${state.bootId}) but runs kernel ${state.kernelRelease}, expected ${expectedRelease}: ` +
        `the new kernel was not installed as the default boot entry (check \`sudo make install\`'s output and the boot loader's default)`,
    };
  }
  return { kind: 'rebooted' };
}

/** ipmitool's own SOL chatter (banners, the echoed `~.` escape), not the node's console. */
const SOL_NOISE = /^(?:~\.\s*)?\[(?:SOL Session operational|terminated ipmitool)|^Info: SOL payload/;

/** The last `max` non-empty console lines of a serial capture (CRLF and ipmitool's banners removed). */
export function consoleTail(text: string, max = 20): string[] {
  const lines = text
    .split(/\r?\n|\r/)
    .map((l) => l.trimEnd())
    .filter((l) => l !== '' && !SOL_NOISE.test(l));
  return lines.slice(-max);
}
