import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { Client, utils, type ClientChannel } from 'ssh2';
import type { SimCluster, SimNode } from '../../sim/cluster';

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `command` on a simulated node with plain OpenSSH through the sim's ssh_config (strict host
 * key checking, batch mode). Always asynchronous: the simulator runs in the test's own event loop.
 */
export function openssh(sim: SimCluster, node: string, command: string, timeoutMs = 15_000): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(
      'ssh',
      ['-F', sim.sshConfigFile, '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', node, command],
      { encoding: 'utf8', timeout: timeoutMs },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** An ssh2 client connected to `node` as the sim's user, verifying the node's host key. */
export function connect(sim: SimCluster, node: SimNode, overrides: { username?: string; privateKey?: string } = {}): Promise<Client> {
  const hostKey = utils.parseKey(node.hostPublicKey);
  if (hostKey instanceof Error) throw hostKey;
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({
      host: '127.0.0.1',
      port: node.port,
      username: overrides.username ?? 'ae',
      privateKey: overrides.privateKey ?? readFileSync(sim.identityFile, 'utf8'),
      hostVerifier: (key: Buffer) => key.equals(hostKey.getPublicSSH()),
      readyTimeout: 10_000,
    });
  });
}

export interface ExecResult extends RunResult {
  signal?: string;
}

/** exec over an ssh2 client; `onChannel` sees the channel as soon as it opens (for signals, closing). */
export function exec(client: Client, command: string, onChannel?: (ch: ClientChannel, output: () => string) => void): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, ch) => {
      if (err) return reject(err);
      let stdout = '';
      let stderr = '';
      ch.on('data', (d: Buffer) => (stdout += d.toString()));
      ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      ch.on('close', (code: number | null, signal?: string) => resolve({ code: code ?? null, signal, stdout, stderr }));
      onChannel?.(ch, () => stdout);
    });
  });
}

/** `sudo reboot` on `node` over SSH, then waits until it is back with a new boot_id. */
export async function rebootAndWait(sim: SimCluster, node: string, timeoutMs = 15_000): Promise<void> {
  const n = sim.node(node);
  const before = n.state.bootId;
  const r = await openssh(sim, node, 'sudo reboot');
  if (r.code !== 255) throw new Error(`sudo reboot on ${node} should lose its connection, got ${r.code}: ${r.stderr}`);
  await waitUntil(`${node} to come back`, () => n.up && n.state.bootId !== before, timeoutMs);
}

/** Resolves when `check` returns true; rejects after `timeoutMs`. */
export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000, everyMs = 25): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** 'refused' when nothing listens on 127.0.0.1:port, 'open' when something accepts. */
export function probePort(port: number): Promise<'open' | 'refused' | 'other'> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('open');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED' ? 'refused' : 'other'));
  });
}

/** True while `pid` is a live process (a zombie counts as dead). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** Host pids of the node's processes whose command line contains `needle`. */
export function nodeProcessesMatching(node: SimNode, needle: string): number[] {
  return node.processes().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').includes(needle);
    } catch {
      return false;
    }
  });
}
