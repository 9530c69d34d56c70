import type { GuestPinning } from './pinning';
import type { GuestProc } from './procfs';
import type { GuestDaemonProcess } from './sandbox';

/**
 * What the guest knows about its processes beyond what its /proc says: CPU affinity over the
 * guest's vCPUs (they are not this machine's CPUs, so the masks live here), and which processes are
 * the servers (nginx, php-fpm, ol), with the user the real ones run as. Masks are keyed by guest
 * pid and the process's start time, so a recycled pid does not inherit a dead process's mask; a
 * process without a mask of its own runs with its parent's (children inherit affinity), and the
 * guest's first process with all vCPUs.
 */

export type DaemonKind = 'nginx-master' | 'nginx-worker' | 'php-master' | 'php-worker' | 'ol-worker';

export interface GuestDaemon {
  kind: DaemonKind;
  /** User the real server runs as (nginx workers: nobody; php-fpm pool: www-data). */
  user: string;
  proc: GuestDaemonProcess;
  alive: boolean;
  /** ol workers: the guest port they listen on. */
  port?: number;
}

export interface DaemonSpawner {
  proc: GuestProc;
  spawnDaemon(comm: string, argv0: string): Promise<GuestDaemonProcess>;
}

export class GuestProcesses {
  private readonly masks = new Map<number, { mask: number; start: number }>();
  private readonly daemons = new Map<number, GuestDaemon>();
  private readonly exitListeners: ((d: GuestDaemon) => void)[] = [];

  constructor(
    private readonly spawner: DaemonSpawner,
    readonly vcpus: number,
  ) {}

  /** Every vCPU of the guest. */
  get fullMask(): number {
    return this.vcpus >= 31 ? 0x7fffffff : (1 << this.vcpus) - 1;
  }

  exists(pid: number): boolean {
    return this.spawner.proc.exists(pid);
  }

  /** Sets `pid`'s mask (already clipped to existing vCPUs and non-zero: taskset checks that). */
  setMask(pid: number, mask: number): void {
    const st = this.spawner.proc.stat(pid);
    if (st) this.masks.set(pid, { mask, start: st.startTicks });
  }

  /** `pid`'s mask: its own, else inherited from its parent, else all vCPUs; undefined if no such process. */
  maskOf(pid: number): number | undefined {
    let st = this.spawner.proc.stat(pid);
    if (!st) return undefined;
    for (let hops = 0; st && hops < 64; hops++) {
      const own = this.masks.get(st.pid);
      if (own && own.start === st.startTicks) return own.mask;
      if (st.ppid <= 0) break;
      st = this.spawner.proc.stat(st.ppid);
    }
    return this.fullMask;
  }

  /** Starts a server process with `mask` (the mask of whoever started it: fork keeps affinity). */
  async spawn(kind: DaemonKind, user: string, comm: string, argv0: string, mask: number): Promise<GuestDaemon> {
    const proc = await this.spawner.spawnDaemon(comm, argv0);
    const daemon: GuestDaemon = { kind, user, proc, alive: true };
    this.daemons.set(proc.pid, daemon);
    this.setMask(proc.pid, mask);
    void proc.exited.then(() => {
      daemon.alive = false;
      if (this.daemons.get(proc.pid) === daemon) this.daemons.delete(proc.pid);
      for (const l of this.exitListeners) l(daemon);
    });
    return daemon;
  }

  onExit(listener: (d: GuestDaemon) => void): void {
    this.exitListeners.push(listener);
  }

  alive(kind: DaemonKind): GuestDaemon[] {
    return [...this.daemons.values()].filter((d) => d.alive && d.kind === kind).sort((a, b) => a.proc.pid - b.proc.pid);
  }

  daemon(pid: number): GuestDaemon | undefined {
    return this.daemons.get(pid);
  }

  /** The current masks of the HTTP servers' processes (read by nginx on every request). */
  pinning(): GuestPinning {
    const masks = (kind: DaemonKind) => this.alive(kind).map((d) => this.maskOf(d.proc.pid) ?? this.fullMask);
    return { nginxWorkers: masks('nginx-worker'), phpFpmWorkers: masks('php-worker'), openLambdaWorkers: masks('ol-worker') };
  }
}
