import type { SimModel } from '../../model/runtime';
import type { Hypervisor } from '../../model/schema';
import type { GuestToolCall, GuestToolResult } from '../channel';
import type { GuestKind } from '../image';
import type { GuestProcesses } from '../processes';
import type { GuestProc } from '../procfs';
import type { GuestServices } from '../services';

/** What a guest tool sees of the guest it runs in. */
export interface GuestRuntime {
  kind: GuestKind;
  hypervisor: Hypervisor;
  vcpus: number;
  memMiB: number;
  model: SimModel;
  proc: GuestProc;
  processes: GuestProcesses;
  services: GuestServices;
  /** Host path of a guest path. */
  hostPath(guestPath: string): string;
  /** The guest asked to stop (poweroff, reboot: a FragVisor VM cannot be restarted). */
  powerOff(how: 'poweroff' | 'reboot'): void;
  /**
   * The n-th run of `what` in this guest (0, 1, ...), part of a measurement's noise key: counted per
   * guest, so the same seed gives the same measurements for every guest, not only the first one.
   */
  nextRun(what: string): number;
}

export type GuestTool = (call: GuestToolCall, guest: GuestRuntime) => Promise<GuestToolResult>;

/** What bash says for a program this guest's ramdisk does not have. */
export function notFound(call: GuestToolCall): number {
  call.stderr.write(`bash: ${call.tool}: command not found\n`);
  return 127;
}

/** A guest path as the caller means it (relative to its cwd). */
export function resolveGuestPath(cwd: string, p: string): string {
  return p.startsWith('/') ? p : `${cwd.replace(/\/+$/, '')}/${p}`.replace(/\/\.\//g, '/');
}

/** Resolves after `ms` real milliseconds, or false at once when `signal` aborts. */
export function sleepUnlessAborted(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  if (ms <= 0) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
