import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/**
 * A simulated node's persistent state: `<node>/state/node.json`, written by the simulator only.
 * The imitation tools inside the node read `node.env` (the same facts as shell assignments) and
 * `boot_id`; they talk back through files:
 * - `ctl/<action>.<id>`: a request to the simulator (`reboot`, `poweroff`), picked up and deleted;
 * - `next_kernel_release`: the kernel a `make install` installed, promoted at the next boot;
 * - `modules`: the loaded (imitation) kernel modules, emptied at every boot;
 * - `guest-connect-to`: on the origin while a VM runs, its guest's loopback ports (sim/bin/curl).
 */

export const GUEST_ROUTES_FILE = 'guest-connect-to';

export const INITIAL_KERNEL_RELEASE = '4.15.0-213-generic';
/** What `uname -v` says for the stock Ubuntu 18.04 kernel the nodes start with. */
const INITIAL_KERNEL_VERSION = '#224-Ubuntu SMP Mon Jun 19 13:30:12 UTC 2023';

/** A kernel release as `uname -r` prints it; also keeps it safe inside node.env. */
export const kernelRelease = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/, 'expected a kernel release like 4.4.137-pop-hype');
const bootId = z.string().regex(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);

export const nodeStateSchema = z.object({
  version: z.literal(1),
  name: z.string(),
  bootId,
  kernelRelease,
  /** `uname -v` of the running kernel. */
  kernelVersion: z.string().regex(/^[A-Za-z0-9#:+.,_ -]{1,100}$/),
  nextKernelRelease: kernelRelease.nullable(),
  /** Epoch milliseconds of the current boot. */
  bootedAtMs: z.number().int().nonnegative(),
  bootCount: z.number().int().nonnegative(),
  /** Last SSH port, reused on restart so known_hosts and loaded profiles stay valid. */
  port: z.number().int().min(1).max(65535).nullable(),
});
export type NodeState = z.infer<typeof nodeStateSchema>;

/** A fresh boot_id, in the kernel's format (a random version 4 UUID). */
export const newBootId = (): string => randomUUID();

export function initialState(name: string): NodeState {
  return {
    version: 1,
    name,
    bootId: newBootId(),
    kernelRelease: INITIAL_KERNEL_RELEASE,
    kernelVersion: INITIAL_KERNEL_VERSION,
    nextKernelRelease: null,
    bootedAtMs: Date.now(),
    bootCount: 1,
    port: null,
  };
}

/** Writes a file by rename, so a reader never sees half of it. */
export function writeFileAtomic(file: string, text: string, mode = 0o644): void {
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, text, { mode });
  renameSync(tmp, file);
}

const shellQuote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The node state files under `stateDir` (the host path of the node's AE_SIM_STATE). */
export class NodeStateStore {
  constructor(readonly stateDir: string) {}

  get file(): string {
    return path.join(this.stateDir, 'node.json');
  }

  /** The saved state, or a fresh one (first start, or a state file from an incompatible version). */
  load(name: string): NodeState {
    if (!existsSync(this.file)) return initialState(name);
    const parsed = nodeStateSchema.safeParse(JSON.parse(readFileSync(this.file, 'utf8')));
    if (!parsed.success || parsed.data.name !== name) return initialState(name);
    return parsed.data;
  }

  /** Saves node.json and refreshes what the tools inside the node read. */
  save(state: NodeState): void {
    nodeStateSchema.parse(state);
    writeFileAtomic(this.file, `${JSON.stringify(state, null, 2)}\n`);
    const env = {
      AE_NODE_NAME: state.name,
      AE_NODE_BOOT_ID: state.bootId,
      AE_NODE_KERNEL: state.kernelRelease,
      AE_NODE_KERNEL_VERSION: state.kernelVersion,
      AE_NODE_BOOTED_AT_MS: String(state.bootedAtMs),
      AE_NODE_CPUS: String(os.cpus().length || 1),
    };
    writeFileAtomic(
      path.join(this.stateDir, 'node.env'),
      `# Written by the simulator at every boot; read by the imitation tools.\n${Object.entries(env)
        .map(([k, v]) => `${k}=${shellQuote(v)}`)
        .join('\n')}\n`,
    );
  }

  /**
   * Writes the boot_id file that the holder bind-mounts over /proc/sys/kernel/random/boot_id.
   * Written in place of a fresh file before each boot (a bind mount pins the inode it was given).
   */
  writeBootId(state: NodeState): void {
    writeFileAtomic(path.join(this.stateDir, 'boot_id'), `${state.bootId}\n`, 0o444);
  }

  /** The kernel installed inside the node since the last boot (`next_kernel_release`), consumed. */
  takeInstalledKernel(): string | undefined {
    const file = path.join(this.stateDir, 'next_kernel_release');
    if (!existsSync(file)) return undefined;
    const text = readFileSync(file, 'utf8').trim();
    rmSync(file, { force: true });
    const parsed = kernelRelease.safeParse(text);
    return parsed.success ? parsed.data : undefined;
  }

  /** The kernel installed inside the node since the last boot, left in place. */
  peekInstalledKernel(): string | undefined {
    const file = path.join(this.stateDir, 'next_kernel_release');
    if (!existsSync(file)) return undefined;
    const parsed = kernelRelease.safeParse(readFileSync(file, 'utf8').trim());
    return parsed.success ? parsed.data : undefined;
  }

  /** Requests left over from an earlier run of the simulator are void. */
  resetRequests(): void {
    const ctl = path.join(this.stateDir, 'ctl');
    if (existsSync(ctl)) for (const f of readdirSync(ctl)) rmSync(path.join(ctl, f), { recursive: true, force: true });
  }

  /** What a boot wipes: loaded modules, a VM's guest routes and unprocessed requests. */
  resetVolatile(): void {
    for (const f of ['modules', GUEST_ROUTES_FILE]) rmSync(path.join(this.stateDir, f), { force: true });
    this.resetRequests();
  }
}
