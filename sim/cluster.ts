import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { SimBmc } from './bmc/bmc';
import { bmcPasswordFile, findIpmiSim, startNodeBmc } from './bmcs';
import { FaultBook, faultsDir, faultSpecSchema, type FaultSpec } from './faults';
import { ensureCheckouts } from './fragvisor';
import { loadOrCreateKeyPair, publicKeyBlob } from './keys';
import { loadModel } from './model/load';
import { createModel } from './model/runtime';
import { SimNode } from './node';
import { freePort } from './ports';
import { buildSimProfile, SIM_BMC_PASSWORD_ENV, SIM_BMC_USER, simPaths, simRdmaIps } from './profile';
import { checkSimBin, detectSandboxMode, hostTools, NODE_GID, NODE_UID, NODE_USER, SIM_BIN_DIR, type SandboxMode } from './sandbox';
import { writeFileAtomic } from './state';
import { registerAllTools } from './tools';
import type { ToolRegistry } from './tools/registry';
import { ToolServer } from './tools/server';
import { SimWorld, type SimWorldNode } from './world';

export { SimNode, NodeHungError } from './node';
export type { SimNodeState, SimNodeStats } from './node';
export type { FaultSpec } from './faults';

/**
 * The simulated FragVisor testbed: N nodes, each an SSH server on its own loopback port whose
 * commands run in real bash inside the node's sandbox (see sandbox.ts). Everything lives in
 * stateDir:
 *
 *   cluster.yaml            the live cluster profile (`--cluster sim` when stateDir is the default)
 *   id_ed25519(.pub)        the client key every node accepts (user `ae`)
 *   known_hosts, ssh_config for plain OpenSSH: `ssh -F DIR/ssh_config node0 uname -r`
 *   sim.json                simulator-wide settings kept across restarts (guest port, BMC ports)
 *   bmc_password            the simulated BMCs' password (0600), when they run
 *   faults/                 inbox/ for faults injected at run time, active.json (what is armed)
 *   tools/                  generated wrappers for registered tools that sim/bin has no file for
 *   checkout-template/      the generated FragVisor checkout every node gets a copy of
 *   nodes/<name>/           host key, state/ (node.json, AE_SIM_STATE, ctl.sock: the tool channel),
 *                           fs/ (home, root, tmp, ...), bmc/, console.log, kmsg.jsonl, boot/
 *
 * Restarting on the same stateDir keeps host keys, client key, boot ids, kernels, ports and the
 * nodes' files (the FragVisor checkout included).
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
  /** Seed of every simulated random choice (default 1): same seed, same run. */
  seed?: number;
  /** Faults armed from the start (more can be injected at run time: `faults.add`, `ae sim fault`). */
  faults?: FaultSpec[];
  /** Performance model of the guests: a name in config/models or a .yaml path (default `default`). */
  model?: string;
  /** Start a BMC per node when ipmi_sim is installed (default true; false: never). */
  bmc?: boolean;
  /** MiB of extra compiler command lines in every kernel build log (default 0): for measuring log streaming. */
  buildLogMiB?: number;
}

/** A node's simulated BMC, as the profile names it (the password is in `SimCluster.bmcPasswordFile`). */
export interface SimNodeBmc {
  host: '127.0.0.1';
  port: number;
  user: string;
  pid: number;
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
  /** What the tool handlers see (counters, dmesg, per-boot state) and the armed faults. */
  world: SimWorld;
  faults: FaultBook;
  registry: ToolRegistry;
  /** Per node name, its BMC; empty when ipmi_sim is not installed (or `bmc: false`). */
  bmcs: Record<string, SimNodeBmc>;
  /** The BMC password file and the variable the profile reads it from (when BMCs run). */
  bmcPasswordFile?: string;
  bmcPasswordEnv: string;
  /** Stops every node (all their processes die) and releases the state dir. State stays on disk. */
  stop(): Promise<void>;
}

const optionsSchema = z.object({
  nodes: z.number().int().min(1, 'expected at least 1 node').max(64, 'expected at most 64 nodes'),
  stateDir: z.string().min(1),
  basePort: z.number().int().min(1).max(65535).optional(),
  rebootDownMs: z.number().min(0).max(3_600_000).default(3000),
  timeScale: z.number().min(0).max(1000).default(1),
  seed: z.number().int().default(1),
  faults: z.array(faultSpecSchema).default([]),
  model: z.string().min(1).default('default'),
  bmc: z.boolean().default(true),
  buildLogMiB: z.number().min(0).max(4096).default(0),
});

const simFileSchema = z.object({
  guestSshPort: z.number().int().min(1).max(65535),
  bmcPorts: z.record(z.string(), z.number().int().min(1).max(65535)).optional(),
});

/** The settings of the last run (ports to reuse), if readable. */
function readSimFile(file: string): z.infer<typeof simFileSchema> | undefined {
  if (!existsSync(file)) return undefined;
  try {
    const saved = simFileSchema.safeParse(JSON.parse(readFileSync(file, 'utf8')));
    return saved.success ? saved.data : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Wrappers for registered tools without a file in sim/bin (mounted read-only in every node at
 * /home/.ae-sim/tools, after sim/bin on PATH): `exec node _ctl.js <tool> "$@"`, like sim/bin's own.
 */
function writeToolWrappers(dir: string, names: readonly string[]): void {
  mkdirSync(dir, { recursive: true });
  chmodSync(dir, 0o755);
  const wanted = new Set(names.filter((n) => !existsSync(path.join(SIM_BIN_DIR, n))));
  for (const f of readdirSync(dir)) if (!wanted.has(f)) rmSync(path.join(dir, f), { force: true });
  for (const name of wanted) {
    const text = `#!/bin/sh
# Generated by the simulator (sim/cluster.ts): \`${name}\` answered through the tool channel (sim/bin/_ctl.js).
exec "\${AE_SIM_NODE_BIN:-/usr/bin/node}" /home/.ae-sim/bin/_ctl.js ${name} "$@"
`;
    writeFileAtomic(path.join(dir, name), text, 0o755);
  }
}

/** The missing-ipmi_sim warning is given once per process. */
let warnedNoIpmiSim = false;

/** State dirs with a running simulator in this process (another process is caught by the lock file). */
const running = new Set<string>();


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
  const names = Array.from({ length: opts.nodes }, (_, i) => `node${i}`);
  const owner = mode === 'root' ? { uid: NODE_UID, gid: NODE_GID } : undefined;

  const nodes: SimNode[] = [];
  const servers: ToolServer[] = [];
  const bmcs: SimBmc[] = [];
  mkdirSync(faultsDir(stateDir), { recursive: true });
  const faults = new FaultBook({ dir: faultsDir(stateDir), nodes: names, log });
  let exitHook: (() => void) | undefined;
  const stopNodes = async () => {
    faults.stop();
    await Promise.all(bmcs.map((b) => b.stop().catch(() => {})));
    await Promise.all(nodes.map((n) => n.stop()));
    await Promise.all(servers.map((s) => s.stop()));
    if (exitHook) process.off('exit', exitHook);
    running.delete(stateDir);
    rmSync(lock, { force: true });
  };

  try {
    for (const f of opts.faults) faults.add(f);
    const model = createModel(loadModel(opts.model).spec, { seed: opts.seed, timeScale: opts.timeScale });
    const world = new SimWorld({ stateDir, model, timeScale: opts.timeScale, seed: opts.seed, buildLogPadBytes: opts.buildLogMiB * 2 ** 20, faults, sandboxMode: mode, log });
    const registry = registerAllTools({ stateDir, model });
    const toolsDir = path.join(stateDir, 'tools');
    writeToolWrappers(toolsDir, registry.names());

    const identityFile = path.join(stateDir, 'id_ed25519');
    const client = loadOrCreateKeyPair(identityFile, 'ae-sim-client');
    const rdmaIps = simRdmaIps(opts.nodes);
    const worldNodes: SimWorldNode[] = [];
    for (const [i, name] of names.entries()) {
      const node = new SimNode({
        name,
        nodeDir: path.join(stateDir, 'nodes', name),
        mode,
        tools,
        authorizedKey: client.public,
        port: opts.basePort !== undefined ? opts.basePort + i : 0,
        rebootDownMs: opts.rebootDownMs * opts.timeScale,
        timeScale: opts.timeScale,
        toolsDir,
        log,
        faults: { take: (step) => faults.take(name, step), peek: (step) => faults.peek(name, step) },
      });
      nodes.push(node);
      worldNodes.push(world.addNode(node, rdmaIps[i]));
    }
    for (const setup of registry.nodeSetups()) for (const n of worldNodes) setup(n, world);
    for (const n of worldNodes) {
      const server = new ToolServer({ socketPath: path.join(n.sim.stateDir, 'ctl.sock'), owner, registry, node: n, world, log });
      await server.start();
      servers.push(server);
    }
    world.onNodeDown = (n) => servers[n.index].abortAll(`node ${n.name} went down`);
    exitHook = () => nodes.forEach((n) => n.killAllSync());
    process.on('exit', exitHook);
    const started = await Promise.allSettled(nodes.map((n) => n.start()));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;

    const simFile = path.join(stateDir, 'sim.json');
    const saved = readSimFile(simFile);
    // BMCs: only where the real ipmi_sim is installed (CI installs it; docs/SIM-BMC.md).
    let passwordFile: string | undefined;
    const bmcByNode: Record<string, SimNodeBmc> = {};
    const ipmiSim = opts.bmc ? findIpmiSim() : undefined;
    if (opts.bmc && !ipmiSim && !warnedNoIpmiSim) {
      warnedNoIpmiSim = true;
      (options.log ?? ((line: string) => console.warn(line)))('warning: ipmi_sim is not installed (Debian package openipmi): the simulated nodes have no BMC, and the profile no `bmc` blocks');
    }
    if (ipmiSim) {
      passwordFile = bmcPasswordFile(stateDir);
      const started = await Promise.all(nodes.map((n, i) => startNodeBmc(n, worldNodes[i], { ipmiSim, passwordFile: passwordFile!, port: saved?.bmcPorts?.[n.name], log })));
      bmcs.push(...started);
      for (const [i, b] of started.entries()) bmcByNode[nodes[i].name] = { host: b.host, port: b.port, user: SIM_BMC_USER, pid: b.pid };
    }

    // The guest's SSH endpoint is a placeholder until the guest imitation exists; keep it stable.
    let guestSshPort = opts.basePort !== undefined ? opts.basePort + opts.nodes : undefined;
    if (guestSshPort === undefined && saved && !nodes.some((n) => n.port === saved.guestSshPort)) guestSshPort = saved.guestSshPort;
    guestSshPort ??= await freePort();
    const bmcPorts = Object.fromEntries(Object.entries(bmcByNode).map(([n, b]) => [n, b.port]));
    writeFileAtomic(simFile, `${JSON.stringify({ guestSshPort, bmcPorts: { ...saved?.bmcPorts, ...bmcPorts } }, null, 2)}\n`);

    const knownHostsFile = path.join(stateDir, 'known_hosts');
    const sshConfigFile = path.join(stateDir, 'ssh_config');
    const profileFile = path.join(stateDir, 'cluster.yaml');
    const { yaml, loaded } = buildSimProfile({ nodes: nodes.map((n) => ({ name: n.name, port: n.port, bmcPort: bmcByNode[n.name]?.port })), guestSshPort, dir: stateDir });
    // Every node's FragVisor checkout, at its first start (kept afterwards).
    const got = ensureCheckouts(stateDir, loaded.profile.paths ?? simPaths(), worldNodes, owner);
    if (got.length > 0) log(`FragVisor checkout created on ${got.join(', ')}`);
    writeFileAtomic(knownHostsFile, nodes.map((n) => `[127.0.0.1]:${n.port} ${publicKeyBlob(n.hostPublicKey)}\n`).join(''));
    writeFileAtomic(sshConfigFile, sshConfigText(nodes, identityFile, knownHostsFile));
    writeFileAtomic(profileFile, yaml);
    faults.watch();

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
      world,
      faults,
      registry,
      bmcs: bmcByNode,
      ...(passwordFile ? { bmcPasswordFile: passwordFile } : {}),
      bmcPasswordEnv: SIM_BMC_PASSWORD_ENV,
      stop: () => (stopping ??= stopNodes()),
    };
  } catch (err) {
    await stopNodes().catch(() => {});
    throw err;
  }
}
