import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { z } from 'zod';
import { loadOrCreateKeyPair, publicKeyBlob } from './keys';
import { SimNode } from './node';
import { buildSimProfile } from './profile';
import { checkSimBin, detectSandboxMode, hostTools, NODE_USER, type SandboxMode } from './sandbox';
import { writeFileAtomic } from './state';

export { SimNode } from './node';
export type { SimNodeState, SimNodeStats } from './node';

/**
 * The simulated FragVisor testbed: N nodes, each an SSH server on its own loopback port whose
 * commands run in real bash inside the node's sandbox (see sandbox.ts). Everything lives in
 * stateDir:
 *
 *   cluster.yaml            the live cluster profile (`--cluster sim` when stateDir is the default)
 *   id_ed25519(.pub)        the client key every node accepts (user `ae`)
 *   known_hosts, ssh_config for plain OpenSSH: `ssh -F DIR/ssh_config node0 uname -r`
 *   sim.json                simulator-wide settings kept across restarts (guest port)
 *   nodes/<name>/           host key, state/ (node.json, AE_SIM_STATE), fs/ (home, root, tmp, ...)
 *
 * Restarting on the same stateDir keeps host keys, client key, boot ids, kernels and ports.
 */

export interface SimClusterOptions {
  /** Number of nodes (node0 is the origin). */
  nodes: number;
  stateDir: string;
  /** Node i listens on basePort + i (the guest placeholder on basePort + nodes); default: random free ports. */
  basePort?: number;
  /** How long a rebooting node stays down, before timeScale. Default 3000. */
  rebootDownMs?: number;
  /** Multiplier for every simulated duration (default 1; 0 = instant). */
  timeScale?: number;
  /** Progress lines (node up, reboots). Default: silent. */
  log?: (line: string) => void;
}

export interface SimCluster {
  nodes: SimNode[];
  /** The node called `name`; throws for an unknown name. */
  node(name: string): SimNode;
  stateDir: string;
  profileFile: string;
  knownHostsFile: string;
  sshConfigFile: string;
  identityFile: string;
  /** How node commands are isolated from this machine. */
  sandboxMode: SandboxMode;
  /** Stops every node (all their processes die) and releases the state dir. State stays on disk. */
  stop(): Promise<void>;
}

const optionsSchema = z.object({
  nodes: z.number().int().min(1, 'expected at least 1 node').max(64, 'expected at most 64 nodes'),
  stateDir: z.string().min(1),
  basePort: z.number().int().min(1).max(65535).optional(),
  rebootDownMs: z.number().min(0).max(3_600_000).default(3000),
  timeScale: z.number().min(0).max(1000).default(1),
});

const simFileSchema = z.object({ guestSshPort: z.number().int().min(1).max(65535) });

/** State dirs with a running simulator in this process (another process is caught by the lock file). */
const running = new Set<string>();

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** Fields of /proc/<pid>/stat after the command name (state is [0], start time is [19]), or undefined. */
function procStat(pid: number): string[] | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** True while `pid` runs (a zombie, e.g. a killed simulator nobody reaped yet, does not count). */
export function pidAlive(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && stat[0] !== 'Z';
}

/** The simulator running from `stateDir` (from its lock file), if it still runs. */
export function runningSimulator(stateDir: string): number | undefined {
  const lock = path.join(stateDir, 'sim.pid');
  if (!existsSync(lock)) return undefined;
  const [pid, started] = readFileSync(lock, 'utf8').trim().split(/\s+/).map(Number);
  if (!Number.isInteger(pid) || pid <= 0 || !pidAlive(pid)) return undefined;
  // A recycled pid is not our simulator: the start time must match too.
  if (started !== undefined && Number(procStat(pid)?.[19]) !== started) return undefined;
  return pid;
}

/** One simulator per state dir: two would fight over ports, keys and node state. */
function takeLock(stateDir: string): string {
  const lock = path.join(stateDir, 'sim.pid');
  if (running.has(stateDir)) throw new Error(`a simulated cluster already runs from ${stateDir} in this process`);
  const other = runningSimulator(stateDir);
  if (other !== undefined && other !== process.pid) {
    throw new Error(`a simulated cluster already runs from ${stateDir} (pid ${other}); stop it first (Ctrl-C in its terminal, \`ae sim down --state-dir ${stateDir}\`, or kill ${other})`);
  }
  writeFileAtomic(lock, `${process.pid} ${procStat(process.pid)?.[19] ?? ''}\n`);
  running.add(stateDir);
  return lock;
}

/** ssh_config quoting: paths with spaces need double quotes. */
const sshPath = (p: string) => (/\s/.test(p) ? `"${p}"` : p);

function sshConfigText(nodes: SimNode[], identityFile: string, knownHostsFile: string): string {
  const blocks = nodes.map((n) =>
    [
      `Host ${n.name}`,
      '  HostName 127.0.0.1',
      `  Port ${n.port}`,
      `  User ${NODE_USER}`,
      `  IdentityFile ${sshPath(identityFile)}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${sshPath(knownHostsFile)}`,
      '  GlobalKnownHostsFile /dev/null',
      '  StrictHostKeyChecking yes',
      '  PasswordAuthentication no',
      '  KbdInteractiveAuthentication no',
    ].join('\n'),
  );
  return `# Simulated cluster: written by the simulator at every start (ports may change). Use: ssh -F ${sshPath(path.dirname(knownHostsFile))}/ssh_config node0 uname -r\n\n${blocks.join('\n\n')}\n`;
}

/** Starts the simulated cluster; resolves when every node accepts SSH and the profile is written. */
export async function startSimCluster(options: SimClusterOptions): Promise<SimCluster> {
  const opts = optionsSchema.parse(options);
  const log = options.log ?? (() => {});
  const stateDir = path.resolve(opts.stateDir);
  if (opts.basePort !== undefined && opts.basePort + opts.nodes > 65535) throw new Error(`basePort ${opts.basePort} leaves no room for ${opts.nodes} nodes and the guest`);

  const tools = hostTools();
  checkSimBin();
  const mode = detectSandboxMode(tools);
  mkdirSync(path.join(stateDir, 'nodes'), { recursive: true });
  const lock = takeLock(stateDir);

  const nodes: SimNode[] = [];
  let exitHook: (() => void) | undefined;
  const stopNodes = async () => {
    await Promise.all(nodes.map((n) => n.stop()));
    if (exitHook) process.off('exit', exitHook);
    running.delete(stateDir);
    rmSync(lock, { force: true });
  };

  try {
    const identityFile = path.join(stateDir, 'id_ed25519');
    const client = loadOrCreateKeyPair(identityFile, 'ae-sim-client');
    for (let i = 0; i < opts.nodes; i++) {
      nodes.push(
        new SimNode({
          name: `node${i}`,
          nodeDir: path.join(stateDir, 'nodes', `node${i}`),
          mode,
          tools,
          authorizedKey: client.public,
          port: opts.basePort !== undefined ? opts.basePort + i : 0,
          rebootDownMs: opts.rebootDownMs * opts.timeScale,
          log,
        }),
      );
    }
    exitHook = () => nodes.forEach((n) => n.killAllSync());
    process.on('exit', exitHook);
    const started = await Promise.allSettled(nodes.map((n) => n.start()));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;

    // The guest's SSH endpoint is a placeholder until the guest imitation exists; keep it stable.
    const simFile = path.join(stateDir, 'sim.json');
    let guestSshPort = opts.basePort !== undefined ? opts.basePort + opts.nodes : undefined;
    if (guestSshPort === undefined && existsSync(simFile)) {
      const saved = simFileSchema.safeParse(JSON.parse(readFileSync(simFile, 'utf8')));
      if (saved.success && !nodes.some((n) => n.port === saved.data.guestSshPort)) guestSshPort = saved.data.guestSshPort;
    }
    guestSshPort ??= await freePort();
    writeFileAtomic(simFile, `${JSON.stringify({ guestSshPort }, null, 2)}\n`);

    const knownHostsFile = path.join(stateDir, 'known_hosts');
    const sshConfigFile = path.join(stateDir, 'ssh_config');
    const profileFile = path.join(stateDir, 'cluster.yaml');
    const { yaml } = buildSimProfile({ nodes: nodes.map((n) => ({ name: n.name, port: n.port })), guestSshPort, dir: stateDir });
    writeFileAtomic(knownHostsFile, nodes.map((n) => `[127.0.0.1]:${n.port} ${publicKeyBlob(n.hostPublicKey)}\n`).join(''));
    writeFileAtomic(sshConfigFile, sshConfigText(nodes, identityFile, knownHostsFile));
    writeFileAtomic(profileFile, yaml);

    let stopping: Promise<void> | undefined;
    return {
      nodes,
      node(name: string) {
        const n = nodes.find((x) => x.name === name);
        if (!n) throw new Error(`no simulated node "${name}" (have ${nodes.map((x) => x.name).join(', ')})`);
        return n;
      },
      stateDir,
      profileFile,
      knownHostsFile,
      sshConfigFile,
      identityFile,
      sandboxMode: mode,
      stop: () => (stopping ??= stopNodes()),
    };
  } catch (err) {
    await stopNodes().catch(() => {});
    throw err;
  }
}
