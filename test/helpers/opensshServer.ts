import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../sim/ports';

/**
 * A real OpenSSH server for conformance tests: `/usr/sbin/sshd -D -e` as root on a free loopback port,
 * with its own ed25519 host key, a client key in authorized_keys, and everything in one temp dir.
 * Every process it leads to (per-connection sshd children and their commands) is tracked and killed.
 */

const SSHD = '/usr/sbin/sshd';

export interface OpensshServer {
  port: number;
  dir: string;
  /** Private key accepted for root. */
  clientKey: string;
  /** `ssh-ed25519 AAAA...` of the host key. */
  hostKey: string;
  /** A known_hosts line for this server. */
  knownHostsLine(): string;
  /** Everything sshd wrote to stderr so far (LogLevel DEBUG1). */
  logs(): string;
  /** SIGKILLs every process the listener started (connections and their commands); the listener stays. */
  dropConnections(): Promise<void>;
  /** Kills the listener and everything under it. */
  stop(): Promise<void>;
  /** Starts again on the same port with the same host key. */
  restart(): Promise<void>;
  /** stop() and remove the temp dir. */
  dispose(): Promise<void>;
}

function keygen(file: string): string {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', path.basename(file), '-f', file]);
  return fs.readFileSync(`${file}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
}

/** All descendants of `root`, from one `ps` snapshot (taken before killing, so reparenting cannot hide any). */
function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const line of execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' }).split('\n')) {
    const [pid, ppid] = line.trim().split(/\s+/).map(Number);
    if (pid && ppid) children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const c of children.get(p) ?? []) {
      out.push(c);
      walk(c);
    }
  };
  walk(root);
  return out;
}

function killAll(pids: readonly number[]): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

async function waitGone(pids: readonly number[], timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter((pid) => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    });
    if (alive.length === 0 || Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `extraConfig`: more sshd_config lines, e.g. `MaxSessions 3`. */
export async function startOpensshServer(opts: { extraConfig?: readonly string[] } = {}): Promise<OpensshServer> {
  if (process.getuid?.() !== 0) throw new Error('the OpenSSH conformance tests start sshd and must run as root');
  if (!fs.existsSync(SSHD)) throw new Error(`${SSHD} not found: install openssh-server`);
  fs.mkdirSync('/run/sshd', { recursive: true }); // sshd's privilege-separation directory
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ae-sshd-'));
  // Sessions get an empty HOME, so bash reads none of root's rc files: a developer's (pyenv's init
  // rehashes under a lock at every login) slowed every session, and a test killing one mid-rehash left
  // a stale lock that stalled every later login for a minute.
  const home = path.join(dir, 'home');
  fs.mkdirSync(home);
  const hostKeyFile = path.join(dir, 'host_ed25519');
  const clientKey = path.join(dir, 'client_ed25519');
  const hostKey = keygen(hostKeyFile);
  fs.writeFileSync(path.join(dir, 'authorized_keys'), `${keygen(clientKey)}\n`);
  const port = await freePort();
  const config = path.join(dir, 'sshd_config');
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${hostKeyFile}`,
      'PidFile none',
      'StrictModes no',
      `AuthorizedKeysFile ${dir}/authorized_keys`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'AllowTcpForwarding yes',
      'LogLevel VERBOSE',
      'MaxStartups 100',
      `SetEnv HOME=${home}`,
      ...(opts.extraConfig ?? []),
      '',
    ].join('\n'),
  );

  let child: ChildProcess | undefined;
  let log = '';

  const start = async (): Promise<void> => {
    const proc = spawn(SSHD, ['-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = proc;
    const from = log.length; // after a restart, only this run's "listening" line counts
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => done(new Error(`sshd did not start within 10 s:\n${log}`)), 10_000);
      const onData = (d: Buffer) => {
        log += d.toString();
        if (log.indexOf(`Server listening on 127.0.0.1 port ${port}`, from) >= 0) done();
      };
      const onExit = (code: number | null) => done(new Error(`sshd exited (${code}) before listening:\n${log}`));
      const done = (err?: Error) => {
        clearTimeout(timer);
        proc.stderr?.removeListener('data', onData);
        proc.removeListener('exit', onExit);
        // Keep collecting logs after start-up.
        proc.stderr?.on('data', (d: Buffer) => (log += d.toString()));
        if (err) reject(err);
        else resolve();
      };
      proc.stderr?.on('data', onData);
      proc.once('exit', onExit);
    });
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    child = undefined;
    if (!proc?.pid || proc.exitCode !== null || proc.signalCode !== null) return;
    const pids = [proc.pid, ...descendants(proc.pid)];
    const exited = new Promise<void>((r) => proc.once('exit', () => r()));
    killAll(pids);
    await exited;
    await waitGone(pids);
  };

  await start();
  return {
    port,
    dir,
    clientKey,
    hostKey,
    knownHostsLine: () => `[127.0.0.1]:${port} ${hostKey}`,
    logs: () => log,
    async dropConnections() {
      if (!child?.pid) return;
      const pids = descendants(child.pid);
      killAll(pids);
      await waitGone(pids);
    },
    stop,
    async restart() {
      await stop();
      await start();
    },
    async dispose() {
      await stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}
