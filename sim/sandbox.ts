import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { accessSync, chmodSync, chownSync, closeSync, constants as fsConstants, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, realpathSync, rmSync } from 'node:fs';
import path from 'node:path';

/**
 * A simulated node's sandbox: a long-lived "holder" process (sim/holder.sh), pid 1 of the node's
 * own PID namespace, in its own mount and UTS namespaces. In there the node's directories are
 * bind-mounted over the host's /home, /root, /tmp, /var/tmp and /dev/shm, imitation tools over the
 * host's power and module tools, node state over /proc/sys/kernel/random/boot_id, a /proc of its
 * own is mounted, and every other mount is remounted read-only. Commands enter the namespaces with
 * nsenter, become session leaders (setsid) and drop to an unprivileged user (setpriv), so a node
 * never touches the host: a `sudo reboot` inside it reboots the node, not the machine. Killing the
 * holder kills every process of the node (the kernel does it when a PID namespace's init dies),
 * detached ones included; a node cannot see or signal processes outside it.
 *
 * Two modes:
 * - `root` (we run as root, e.g. CI): holder via `unshare --pid --fork --mount --uts`; commands run
 *   as uid/gid 65534 (nobody) with no capabilities and no_new_privs.
 * - `userns` (not root): the same plus `--user --map-root-user`; commands run as the invoking user
 *   (root inside the user namespace, all capabilities dropped, no_new_privs).
 *
 * Only what is listed here is imitated at the system path; `uname` and `cat` (for /proc/uptime)
 * are imitated on PATH only, so `/bin/uname -r` still shows the host kernel.
 */

export type SandboxMode = 'root' | 'userns';

/** Where the simulator's own directories appear inside every node. */
export const NODE_SIM_DIR = '/home/.ae-sim';
export const NODE_BIN_DIR = `${NODE_SIM_DIR}/bin`;
export const NODE_STATE_DIR = `${NODE_SIM_DIR}/state`;
/** Generated wrappers for registered tools that sim/bin has no file for (read-only in the node). */
export const NODE_TOOLS_DIR = `${NODE_SIM_DIR}/tools`;
/** The tool channel's socket inside the node (sim/tools/server.ts; host side: <state>/ctl.sock). */
export const NODE_CTL_SOCKET = `${NODE_STATE_DIR}/ctl.sock`;
export const NODE_USER = 'ae';
export const NODE_HOME = `/home/${NODE_USER}`;
/** The unprivileged uid/gid node commands run as in root mode. */
export const NODE_UID = 65534;
export const NODE_GID = 65534;
export const NODE_PATH = `${NODE_BIN_DIR}:${NODE_TOOLS_DIR}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin`;

/** The imitation tools (sim/bin), first on every node's PATH. */
export const SIM_BIN_DIR = path.join(__dirname, 'bin');

/** Host directories replaced by a per-node directory (sandbox sub-directory -> host path; holder.sh mounts them). */
const SANDBOX_MOUNTS: readonly { dir: string; target: string; mode: number; owner: 'node' | 'root'; required: boolean }[] = [
  { dir: 'home', target: '/home', mode: 0o755, owner: 'root', required: true },
  { dir: 'root', target: '/root', mode: 0o700, owner: 'node', required: true },
  { dir: 'tmp', target: '/tmp', mode: 0o1777, owner: 'root', required: true },
  { dir: 'var-tmp', target: '/var/tmp', mode: 0o1777, owner: 'root', required: false },
  { dir: 'dev-shm', target: '/dev/shm', mode: 0o1777, owner: 'root', required: false },
];

/**
 * System tools shadowed inside every node (only those that exist on the host). A path that is a
 * symlink (e.g. /sbin/reboot -> /bin/systemctl) is shadowed at its target, by the imitation named
 * like the target when there is one (the multi-call `systemctl` and `kmod` imitations dispatch on
 * the name they were called by), else by the imitation named like the path.
 */
const SHADOWED_TOOLS = [
  '/sbin/reboot', '/usr/sbin/reboot', '/sbin/shutdown', '/usr/sbin/shutdown', '/sbin/poweroff', '/usr/sbin/poweroff',
  '/sbin/halt', '/usr/sbin/halt', '/bin/systemctl', '/usr/bin/systemctl',
  '/sbin/insmod', '/usr/sbin/insmod', '/sbin/rmmod', '/usr/sbin/rmmod', '/sbin/lsmod', '/usr/sbin/lsmod', '/bin/lsmod', '/usr/bin/lsmod',
  '/sbin/modprobe', '/usr/sbin/modprobe', '/bin/kmod', '/usr/bin/kmod', '/usr/bin/sudo',
  // The host's kernel log is none of the node's business: the node has its own (sim/kmsg.ts).
  '/bin/dmesg', '/usr/bin/dmesg',
];

const NAMESPACES = ['--pid', '--fork', '--kill-child=SIGKILL', '--mount', '--uts', '--propagation', 'private'];
const unshareArgs = (mode: SandboxMode) => (mode === 'root' ? NAMESPACES : ['--user', '--map-root-user', ...NAMESPACES]);

export class SandboxUnavailableError extends Error {
  override readonly name = 'SandboxUnavailableError';
}

/** Absolute paths of the host tools the sandbox needs. */
export interface HostTools {
  unshare: string;
  nsenter: string;
  setpriv: string;
  setsid: string;
  bash: string;
}

/** The first executable `name` in `dirs`, if any. */
export function findExecutable(name: string, dirs: readonly string[]): string | undefined {
  for (const dir of dirs) {
    const p = path.join(dir, name);
    try {
      accessSync(p, fsConstants.X_OK);
      return p;
    } catch {
      // try the next directory
    }
  }
  return undefined;
}

const findTool = (name: string) => findExecutable(name, ['/usr/bin', '/bin', '/usr/sbin', '/sbin']);

/** The host tools, or one error naming every missing one. */
export function hostTools(): HostTools {
  const names = ['unshare', 'nsenter', 'setpriv', 'setsid', 'bash', 'mount', 'hostname', 'awk'] as const;
  const found = Object.fromEntries(names.map((n) => [n, findTool(n)]));
  const missing = names.filter((n) => !found[n]);
  if (missing.length > 0) {
    throw new SandboxUnavailableError(
      `the simulated cluster needs ${missing.join(', ')} (util-linux, bash, awk) to isolate its nodes from this machine; install them (Debian/Ubuntu: apt-get install util-linux mount hostname gawk)`,
    );
  }
  return found as unknown as HostTools;
}

/** Every imitation tool must be executable by the node user; a fresh checkout may have lost the bits. */
export function checkSimBin(): void {
  for (const entry of readdirSync(SIM_BIN_DIR, { withFileTypes: true })) {
    if (entry.name.startsWith('_')) continue;
    const p = path.join(SIM_BIN_DIR, entry.name);
    try {
      accessSync(p, fsConstants.X_OK);
    } catch {
      throw new SandboxUnavailableError(`imitation tool ${p} is not executable: run \`chmod +x ${SIM_BIN_DIR}/*\``);
    }
  }
}

/** `[shadowed host path, imitation file]` pairs for the holder to bind-mount. */
export function shadowedTools(): [string, string][] {
  const binds = new Map<string, string>();
  for (const p of SHADOWED_TOOLS) {
    if (!existsSync(p)) continue;
    const target = realpathSync(p);
    if (binds.has(target)) continue;
    const byTarget = path.join(SIM_BIN_DIR, path.basename(target));
    const byName = path.join(SIM_BIN_DIR, path.basename(p));
    const imitation = existsSync(byTarget) ? byTarget : existsSync(byName) && target === p ? byName : undefined;
    // A symlink to a tool we do not imitate (e.g. busybox) is left alone: shadowing its target would
    // break every other tool that shares it. The imitation still comes first on PATH.
    if (imitation) binds.set(target, realpathSync(imitation));
  }
  return [...binds.entries()];
}

/** Creates the node's sandbox directories (idempotent) and hands them to the node user. */
export function prepareSandbox(nodeDir: string, stateDir: string, mode: SandboxMode): void {
  const fsDir = path.join(nodeDir, 'fs');
  mkdirSync(fsDir, { recursive: true });
  const own = (p: string, owner: 'node' | 'root') => {
    if (mode === 'root') chownSync(p, owner === 'node' ? NODE_UID : 0, owner === 'node' ? NODE_GID : 0);
  };
  for (const m of SANDBOX_MOUNTS) {
    const dir = path.join(fsDir, m.dir);
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, m.mode);
    own(dir, m.owner);
  }
  const home = path.join(fsDir, 'home', NODE_USER);
  mkdirSync(home, { recursive: true });
  chmodSync(home, 0o755);
  own(home, 'node');
  for (const d of [NODE_BIN_DIR, NODE_TOOLS_DIR, NODE_STATE_DIR]) {
    const mountpoint = path.join(fsDir, 'home', path.relative('/home', d));
    mkdirSync(mountpoint, { recursive: true });
    chmodSync(mountpoint, 0o755);
  }
  chmodSync(path.join(fsDir, 'home', path.relative('/home', NODE_SIM_DIR)), 0o755);
  mkdirSync(path.join(stateDir, 'ctl'), { recursive: true });
  chmodSync(stateDir, 0o755);
  chmodSync(path.join(stateDir, 'ctl'), 0o755);
  own(stateDir, 'node');
  own(path.join(stateDir, 'ctl'), 'node');
}

/** A boot empties the node's /tmp and /dev/shm (Ubuntu cleans /tmp at boot; /dev/shm is a tmpfs). */
export function clearVolatileDirs(nodeDir: string): void {
  for (const dir of ['tmp', 'dev-shm']) {
    const full = path.join(nodeDir, 'fs', dir);
    if (!existsSync(full)) continue;
    for (const entry of readdirSync(full)) rmSync(path.join(full, entry), { recursive: true, force: true });
  }
}

/** The holder's setup script (bash), run inside the fresh namespaces. */
const HOLDER_SCRIPT = path.join(__dirname, 'holder.sh');

export interface HolderOptions {
  mode: SandboxMode;
  tools: HostTools;
  nodeName: string;
  /** Host path of the node directory (holds fs/ and state/). */
  nodeDir: string;
  /** Host directory of the generated tool wrappers (NODE_TOOLS_DIR inside the node). */
  toolsDir: string;
  readyTimeoutMs?: number;
  /** Where the holder's notes go (e.g. a mount it could not make read-only). */
  log?: (line: string) => void;
}

/** Reads /proc/<pid>/ns/mnt; undefined when the process is gone or not ours to inspect. */
function mountNamespaceOf(pid: number | string): string | undefined {
  try {
    return readlinkSync(`/proc/${pid}/ns/mnt`);
  } catch {
    return undefined;
  }
}

/** Pids of every process inside the mount namespace `ns` (e.g. `mnt:[4026532177]`). */
export function pidsInNamespace(ns: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (Number(name) === process.pid) continue;
    if (mountNamespaceOf(name) === ns) pids.push(Number(name));
  }
  return pids;
}

function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** SIGKILLs every process in the namespace (but `spare`) until none is left (processes may fork meanwhile). */
export function killNamespaceSync(ns: string, spare: ReadonlySet<number> = new Set()): void {
  for (let round = 0; round < 50; round++) {
    const pids = pidsInNamespace(ns).filter((pid) => !spare.has(pid));
    if (pids.length === 0) return;
    for (const pid of pids) killQuietly(pid);
  }
}

/** The namespaces a node lives in, and the processes running in them. */
export class Holder {
  private readonly commands = new Set<NodeCommand>();

  private constructor(
    private readonly opts: HolderOptions,
    /** The `unshare` process (in the host's PID namespace) that waits for the holder. */
    private readonly child: ChildProcess,
    /** The holder's pid on the host (pid 1 inside the node). */
    readonly pid: number,
    /** `mnt:[inode]` of the node's mount namespace. */
    readonly mountNamespace: string,
    /**
     * An open fd on that namespace. The kernel hands a freed namespace's inode number to the next new
     * one at once, so a scan by inode after ours died would find (and kill) another node's processes;
     * holding the namespace open keeps its number ours until we are done with it.
     */
    private nsFd: number | undefined,
  ) {}

  /** Starts the holder and waits until its mounts are in place. */
  static async start(opts: HolderOptions): Promise<Holder> {
    const { tools } = opts;
    const binds = shadowedTools().map(([target, source]) => `${target}=${source}`);
    // `unshare` forks the holder (pid 1 of the new PID namespace) and waits for it; --kill-child
    // takes the holder down if `unshare` itself is killed.
    const child = spawn(tools.unshare, [...unshareArgs(opts.mode), '--', tools.bash, HOLDER_SCRIPT, opts.nodeDir, SIM_BIN_DIR, opts.toolsDir, opts.nodeName, ...binds], {
      cwd: opts.nodeDir,
      env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin', LANG: 'C' },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true,
    });
    child.stdin!.on('error', () => {});
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const timeoutMs = opts.readyTimeoutMs ?? 15_000;
    const ready = await new Promise<{ pid: number } | { error: string }>((resolve) => {
      let out = '';
      const timer = setTimeout(() => resolve({ error: `the holder did not get ready within ${timeoutMs} ms` }), timeoutMs);
      child.stdout!.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /ae-sim-holder-ready (\d+)/.exec(out);
        if (m) {
          clearTimeout(timer);
          resolve({ pid: Number(m[1]) });
        }
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        resolve({ error: err.message });
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ error: `the holder exited with ${code ?? signal}` });
      });
    });
    const ns = 'pid' in ready ? mountNamespaceOf(ready.pid) : undefined;
    if (!('pid' in ready) || !ns || ns === mountNamespaceOf(process.pid)) {
      if (child.pid) killQuietly(-child.pid);
      if ('pid' in ready) killQuietly(ready.pid);
      const why = 'pid' in ready ? 'the holder is not in a mount namespace of its own' : ready.error;
      throw new SandboxUnavailableError(
        `node ${opts.nodeName}: cannot isolate the node from this machine (\`unshare ${unshareArgs(opts.mode).join(' ')}\`${opts.mode === 'root' ? ' as root' : ''}): ${why}${stderr.trim() ? `: ${stderr.trim()}` : ''}`,
      );
    }
    child.stdout!.resume();
    for (const line of stderr.split('\n').filter(Boolean)) opts.log?.(`${opts.nodeName}: ${line}`);
    let nsFd: number | undefined;
    try {
      nsFd = openSync(`/proc/${ready.pid}/ns/mnt`, 'r');
    } catch {
      // the holder died already: killAll finds nothing to do
    }
    // The holder may have died between the two looks: then the fd pins a namespace that is not ours.
    if (nsFd !== undefined && mountNamespaceOf(ready.pid) !== ns) {
      closeSync(nsFd);
      nsFd = undefined;
    }
    return new Holder(opts, child, ready.pid, ns, nsFd);
  }

  /**
   * Runs `command` with bash inside the node, as the node user, in a session of its own (as sshd
   * does: `$$` is the command's process group, so `kill -- -$$` from another command works).
   * The environment is exactly `env` (the caller scrubs it).
   */
  run(command: string, env: Record<string, string>): NodeCommand {
    const { tools, mode } = this.opts;
    // Entering a PID namespace makes nsenter fork: the command is nsenter's child. `setsid` turns
    // that child into a session leader before it becomes the node user's bash.
    const nsenter = ['--target', String(this.pid), ...(mode === 'userns' ? ['--user', '--preserve-credentials'] : []), '--pid', '--mount', '--uts', `--wdns=${NODE_HOME}`];
    const drop = [
      ...(mode === 'root' ? [`--reuid=${NODE_UID}`, `--regid=${NODE_GID}`, '--clear-groups'] : []),
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
    ];
    return spawnTracked(tools.nsenter, [...nsenter, '--', tools.setsid, tools.setpriv, ...drop, tools.bash, '-c', command], env, this.commands);
  }

  /** Pids of the node's processes right now (the holder included); none once it is released. */
  processes(): number[] {
    return this.nsFd === undefined ? [] : pidsInNamespace(this.mountNamespace);
  }

  /** Lets the namespace (and its inode number) go, once nothing of the node is left. */
  private release(): void {
    if (this.nsFd !== undefined) closeSync(this.nsFd);
    this.nsFd = undefined;
  }

  /** Kills every process of the node, detached ones included, and the holder; resolves when all are gone. */
  async killAll(): Promise<void> {
    // The holder is pid 1 of the node's PID namespace: when it dies the kernel kills the rest. Its
    // `unshare` parent (also in the mount namespace) is left alone: it reaps the holder and exits,
    // which is how we know the holder is completely gone, not merely on its way out.
    killQuietly(this.pid);
    for (let round = 0; round < 400; round++) {
      for (const c of this.commands) c.kill();
      // Command wrappers (nsenter, in our mount namespace but outside the PID namespace) are left
      // to reap their command and exit: see NodeCommand.kill.
      const wrappers = new Set([...this.commands].map((c) => c.process.pid));
      const pids = this.processes().filter((pid) => pid !== this.child.pid && !wrappers.has(pid));
      for (const pid of pids) killQuietly(pid);
      const unshareExited = this.child.exitCode !== null || this.child.signalCode !== null;
      if (pids.length === 0 && this.commands.size === 0 && unshareExited && !running(this.pid)) return this.release();
      await new Promise((r) => setTimeout(r, round < 20 ? 5 : 25));
    }
    throw new Error(`node ${this.opts.nodeName}: processes survive SIGKILL: ${[this.pid, ...this.processes()].join(' ')}`);
  }

  /** Synchronous best effort for process exit handlers. */
  killAllSync(): void {
    killQuietly(this.pid);
    for (const c of this.commands) c.kill();
    if (this.nsFd !== undefined) killNamespaceSync(this.mountNamespace, new Set([...this.commands].map((c) => c.process.pid ?? 0)));
  }
}

/**
 * A command running in a node. `process` is the host-side nsenter wrapper (stdio, exit status); the
 * command itself is the wrapper's child, which calls setsid before it becomes the node user's bash.
 *
 * A signal can be requested before that child exists or before it leads its own session (an SSH
 * client may signal right after the channel opens, and under load the fork/setsid takes a while):
 * such a signal is kept and delivered once the session is up, never dropped. Dropping it made a
 * KILL sent early hang the command forever.
 */
export class NodeCommand {
  private sessionPid: number | undefined;
  private exited = false;
  private readonly pending: NodeJS.Signals[] = [];
  private polling = false;

  constructor(readonly process: ChildProcess) {
    process.once('exit', () => {
      this.exited = true;
      this.pending.length = 0;
    });
    // Learn the child's pid while the wrapper lives: after it exits, the command's group (its
    // background jobs) can only be found through it.
    process.once('spawn', () => this.track(0));
  }

  private track(attempt: number): void {
    if (this.child() !== undefined || this.exited || attempt > 200) return;
    setTimeout(() => this.track(attempt + 1), attempt < 10 ? 1 : 10).unref();
  }

  /** Host pid of the command's session leader (its bash), once it leads its session. */
  get session(): number | undefined {
    return this.readySession();
  }

  /** Sends `signal` to the command's process group (what an SSH `signal` request asks for). */
  signal(signal: NodeJS.Signals): void {
    if (this.exited) return;
    const session = this.readySession();
    if (session !== undefined && this.pending.length === 0) {
      killQuietly(-session, signal);
      return;
    }
    this.pending.push(signal);
    this.poll(0);
  }

  /**
   * SIGKILLs the command's process group, whatever stage its start is in. The wrapper is left to
   * reap it and then exit the same way (nsenter does): a wrapper killed first would leave its child
   * a zombie for the host's init to reap, and a PID namespace cannot go away (the node cannot
   * reboot) while one of its processes is an unreaped zombie; many containers' init never reaps.
   */
  kill(): void {
    const wrapper = this.process.pid;
    if (!wrapper) return;
    if (this.exited) {
      if (this.sessionPid !== undefined) killQuietly(-this.sessionPid, 'SIGKILL');
      return;
    }
    // Freeze the wrapper (and a child still in its group), so that no child appears or leaves the
    // group while we look.
    killQuietly(-wrapper, 'SIGSTOP');
    waitStopped(wrapper);
    const child = this.child();
    if (child === undefined) {
      killQuietly(-wrapper, 'SIGKILL'); // no child yet, and now there never will be one
      return;
    }
    killQuietly(-child, 'SIGKILL');
    killQuietly(child, 'SIGKILL');
    killQuietly(-wrapper, 'SIGCONT');
  }

  /** The wrapper's child (the command), once forked. */
  private child(): number | undefined {
    if (this.sessionPid === undefined && this.process.pid && !this.exited) this.sessionPid = childrenOf(this.process.pid)[0];
    return this.sessionPid;
  }

  /** The child, once it leads its own session (after setsid): its process group is the command's. */
  private readySession(): number | undefined {
    const pid = this.child();
    if (pid === undefined) return undefined;
    const stat = statFields(pid);
    return stat !== undefined && Number(stat[3]) === pid ? pid : undefined;
  }

  /** Delivers pending signals as soon as the session is up (polls: the start takes a few ms). */
  private poll(attempt: number): void {
    if (this.polling && attempt === 0) return;
    this.polling = true;
    if (this.exited || this.pending.length === 0) {
      this.polling = false;
      return;
    }
    const session = this.readySession();
    if (session !== undefined) {
      for (const sig of this.pending.splice(0)) killQuietly(-session, sig);
      this.polling = false;
      return;
    }
    setTimeout(() => this.poll(attempt + 1), attempt < 20 ? 2 : 20).unref();
  }
}

/** Waits (briefly, synchronously) until `pid` is stopped or gone: SIGSTOP takes effect asynchronously. */
function waitStopped(pid: number): void {
  const until = Date.now() + 50;
  while (Date.now() < until) {
    const state = statFields(pid)?.[0];
    if (state === undefined || state === 'T' || state === 't' || state === 'Z') return;
  }
}

/** Fields of /proc/<pid>/stat after the command name ([0] state, [1] ppid, [2] pgrp, [3] session). */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** True while `pid` exists and is not a zombie. */
function running(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Pids whose parent is `ppid` (its `children` file when the kernel has one, else a /proc scan). */
function childrenOf(ppid: number): number[] {
  try {
    return readFileSync(`/proc/${ppid}/task/${ppid}/children`, 'utf8').split(' ').filter(Boolean).map(Number);
  } catch {
    // CONFIG_PROC_CHILDREN off, or the process is gone: scan.
  }
  const children: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (Number(statFields(Number(name))?.[1]) === ppid) children.push(Number(name));
  }
  return children;
}

/**
 * Which mode this process can sandbox nodes in, or a SandboxUnavailableError saying why none works.
 * Tries the real thing (a throwaway namespace), since capabilities, seccomp and sysctls all matter.
 */
export function detectSandboxMode(tools: HostTools): SandboxMode {
  const mode: SandboxMode = process.getuid?.() === 0 ? 'root' : 'userns';
  const probe = spawnSync(
    tools.unshare,
    [...unshareArgs(mode), '--', tools.bash, '-c', 'mount -t proc proc /proc && mount --bind /proc/sys/kernel/random/boot_id /proc/sys/kernel/random/boot_id && hostname ae-sim-probe'],
    { encoding: 'utf8', env: { PATH: '/usr/bin:/bin:/usr/sbin:/sbin', LANG: 'C' }, timeout: 10_000 },
  );
  if (probe.status === 0) return mode;
  const why = (probe.stderr || probe.error?.message || `exit ${probe.status ?? probe.signal}`).trim();
  if (mode === 'root') {
    throw new SandboxUnavailableError(
      `the simulated cluster cannot isolate its nodes from this machine: \`unshare ${unshareArgs(mode).join(' ')}\` failed as root (${why}). It needs CAP_SYS_ADMIN (in a container: run it privileged, or with --cap-add SYS_ADMIN and unconfined seccomp/AppArmor profiles).`,
    );
  }
  throw new SandboxUnavailableError(
    `the simulated cluster cannot isolate its nodes from this machine: not root, and unprivileged user namespaces are not available (\`unshare ${unshareArgs(mode).join(' ')}\` failed: ${why}). Run it as root, or allow user namespaces (sysctl user.max_user_namespaces > 0; kernel.unprivileged_userns_clone=1 on older Debian kernels; kernel.apparmor_restrict_unprivileged_userns=0 on Ubuntu 24.04+).`,
  );
}

/** Spawns a command that enters a sandbox (own process group, piped stdio) and tracks it in `commands` until it exits. */
export function spawnTracked(file: string, args: string[], env: Record<string, string>, commands: Set<NodeCommand>): NodeCommand {
  const child = spawn(file, args, { env, cwd: '/', detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
  const cmd = new NodeCommand(child);
  commands.add(cmd);
  const forget = () => commands.delete(cmd);
  child.once('exit', forget);
  child.once('error', forget);
  return cmd;
}
