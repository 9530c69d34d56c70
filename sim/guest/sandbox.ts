import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { hostTools, NodeCommand, SandboxUnavailableError, spawnTracked, type HostTools } from '../sandbox';
import { GuestProc, hostChildren, hostComm, innermostPid } from './procfs';

/**
 * The simulated guest's sandbox: like a node's (sim/sandbox.ts), a holder process that is pid 1 of
 * its own PID namespace, here also in a user namespace of its own (the guest's root is root only
 * in there: host mounts stay locked read-only, whatever it tries). sim/guest/holder.sh builds the
 * guest's root filesystem in a tmpfs and chroots there; commands enter with nsenter (`--root`), so
 * /usr/local/nginx, /etc/php or /dev/vda are guest paths that never touch the host. The host
 * reaches guest files through /proc/<holder>/root. Killing the holder kills every guest process.
 */

const HOLDER_SCRIPT = path.join(__dirname, 'holder.sh');
/** The guest's imitation tools, first on its PATH (bound read-only at /.ae-guest/bin). */
export const GUEST_BIN_DIR = path.join(__dirname, 'bin');
/** Tools the ramdisk image carries itself (sleep), next on its PATH. */
export const GUEST_TOOLS_DIR = '/.ae-guest/tools';
export const GUEST_PATH = `/.ae-guest/bin:${GUEST_TOOLS_DIR}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`;
const NAMESPACES = ['--user', '--map-root-user', '--pid', '--fork', '--kill-child=SIGKILL', '--mount', '--uts', '--propagation', 'private'];

export interface GuestSandboxOptions {
  /** Host dir holding image/ (the ramdisk, see image.ts) and the mountpoint root/. */
  guestDir: string;
  hostname: string;
  /** The init the kernel command line names (`init=/init2`), a script in the image. */
  init: string;
  readyTimeoutMs?: number;
}

/** A server process of the guest (nginx, php-fpm, ol): a real process that only waits, named like the real one. */
export interface GuestDaemonProcess {
  /** Pid inside the guest (what ps, kill and taskset see). */
  pid: number;
  hostPid: number;
  /** Resolves when the process is gone (killed in the guest, or the guest died). */
  exited: Promise<void>;
  kill(signal?: NodeJS.Signals): void;
}

export class GuestSandbox {
  readonly proc: GuestProc;
  private readonly commands = new Set<NodeCommand>();
  private stopped = false;

  private constructor(
    private readonly tools: HostTools,
    private readonly child: ChildProcess,
    /** The holder's (the guest init's) pid on the host. */
    readonly hostPid: number,
  ) {
    this.proc = new GuestProc(`/proc/${hostPid}/root/proc`);
  }

  /** Host path of `guestPath` inside the running guest. */
  hostPath(guestPath: string): string {
    return path.join(`/proc/${this.hostPid}/root`, path.posix.resolve('/', guestPath));
  }

  static async start(opts: GuestSandboxOptions): Promise<GuestSandbox> {
    const tools = hostTools();
    mkdirSync(path.join(opts.guestDir, 'root'), { recursive: true });
    const child = spawn(tools.unshare, [...NAMESPACES, '--', tools.bash, HOLDER_SCRIPT, opts.guestDir, process.execPath, GUEST_BIN_DIR, opts.hostname, opts.init], {
      cwd: opts.guestDir,
      env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin', LANG: 'C' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdin!.on('error', () => {});
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timeoutMs = opts.readyTimeoutMs ?? 20_000;
    const ready = await new Promise<number | string>((resolve) => {
      let out = '';
      const timer = setTimeout(() => resolve(`the guest holder did not get ready within ${timeoutMs} ms`), timeoutMs);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /ae-sim-guest-ready (\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve(Number(m[1]));
        }
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        resolve(err.message);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve(`the guest holder exited with ${code ?? signal}`);
      });
    });
    if (typeof ready === 'string') {
      if (child.pid) killQuietly(-child.pid);
      throw new SandboxUnavailableError(`cannot start the simulated guest (\`unshare ${NAMESPACES.join(' ')}\`): ${ready}${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
    }
    child.stdout!.resume();
    const sandbox = new GuestSandbox(tools, child, ready);
    // The holder chroots after printing: until then its root is the host's. Wait for the guest's.
    for (let i = 0; !existsSync(sandbox.hostPath('/.ae-guest/socket')) || !sandbox.proc.exists(1); i++) {
      if (i >= 500 || !sandbox.running) {
        await sandbox.stop();
        throw new SandboxUnavailableError(`the simulated guest's init did not start${stderr.trim() ? `: ${stderr.trim()}` : ''}`);
      }
      await sleep(i < 20 ? 2 : 10);
    }
    return sandbox;
  }

  get running(): boolean {
    return !this.stopped && this.child.exitCode === null && this.child.signalCode === null;
  }

  private enter(): string[] {
    // Not root here: setgroups is denied in the guest's user namespace, keep our credentials (they map to its root).
    const user = process.getuid?.() === 0 ? ['--user'] : ['--user', '--preserve-credentials'];
    return ['--target', String(this.hostPid), ...user, '--pid', '--mount', '--uts', '--root', '--wdns=/root'];
  }

  /** Runs `command` with bash as the guest's root, in a session of its own (as sshd does). */
  run(command: string, env: Record<string, string>): NodeCommand {
    if (!this.running) throw new Error('the guest is not running');
    return spawnTracked(this.tools.nsenter, [...this.enter(), '--', this.tools.setsid, this.tools.bash, '-c', command], env, this.commands);
  }

  /**
   * Starts a server process of the guest: `/.ae-guest/pbin/<comm>` (a link to cat, so the kernel
   * names it `comm` and pkill finds it) with argv[0] = `argv0`, waiting on a pipe nobody writes.
   * Resolves once it is visible in the guest's /proc.
   */
  async spawnDaemon(comm: string, argv0: string): Promise<GuestDaemonProcess> {
    if (!this.running) throw new Error('the guest is not running');
    const child = spawn(this.tools.nsenter, [...this.enter(), '--', this.tools.setsid, this.tools.bash, '-c', 'exec -a "$AE_ARGV0" "/.ae-guest/pbin/$AE_COMM"'], {
      env: { AE_ARGV0: argv0, AE_COMM: comm, PATH: GUEST_PATH },
      cwd: '/',
      detached: true,
      stdio: ['pipe', 'ignore', 'ignore'],
    });
    child.stdin!.on('error', () => {});
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.once('error', () => resolve());
    });
    let hostPid: number | undefined;
    for (let i = 0; i < 400 && hostPid === undefined; i++) {
      const gone = child.exitCode !== null || child.signalCode !== null;
      if (gone) break;
      const kid = child.pid ? hostChildren(child.pid)[0] : undefined;
      if (kid !== undefined && hostComm(kid) === comm.slice(0, 15)) hostPid = kid;
      else await sleep(i < 20 ? 2 : 10);
    }
    const pid = hostPid === undefined ? undefined : innermostPid(hostPid);
    if (hostPid === undefined || pid === undefined) {
      if (child.pid) killQuietly(-child.pid);
      throw new Error(`the guest could not start ${comm}`);
    }
    const host = hostPid;
    return {
      pid,
      hostPid: host,
      exited,
      kill: (signal: NodeJS.Signals = 'SIGTERM') => {
        if (child.exitCode === null && child.signalCode === null) killQuietly(host, signal);
      },
    };
  }

  /** Kills every guest process (the holder first: the kernel takes the rest); resolves when all are gone. */
  async stop(): Promise<void> {
    this.stopped = true;
    killQuietly(this.hostPid);
    for (const c of this.commands) c.kill();
    if (this.child.exitCode === null && this.child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          if (this.child.pid) killQuietly(-this.child.pid);
          resolve();
        }, 5000);
        this.child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Synchronous last resort for process exit handlers. */
  killSync(): void {
    killQuietly(this.hostPid);
    if (this.child.pid) killQuietly(-this.child.pid);
    for (const c of this.commands) c.kill();
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
