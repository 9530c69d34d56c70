import path from 'node:path';
import { parseArgs } from 'node:util';
import { simStateDir } from '../../config/paths';
import { pidAlive, runningSimulator, startSimCluster, type SimCluster } from '../../sim/cluster';
import { table } from '../format';
import { UsageError } from '../usageError';

export const usage = `ae sim up [--nodes 4] [--state-dir DIR] [--base-port PORT] [--reboot-down-ms 3000] [--time-scale 1] [--json]
  Runs the simulated FragVisor testbed: N nodes, each an SSH server on 127.0.0.1 whose commands run
  in real bash inside the node's sandbox (nothing reaches this machine). Writes DIR/cluster.yaml,
  DIR/known_hosts and DIR/ssh_config, prints the nodes, and stays up until Ctrl-C or SIGTERM.
  DIR defaults to $AE_SIM_STATE_DIR or .data/sim (the cluster called "sim"). --json prints one JSON
  object instead of the table.
ae sim down [--state-dir DIR]
  Stops the simulator running from DIR (it stops its nodes cleanly).`;

function intOption(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be a whole number in ${min}..${max}, got "${value}"`);
  return n;
}

function numberOption(name: string, value: string | undefined, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < min || n > max) throw new UsageError(`--${name} must be a number in ${min}..${max}, got "${value}"`);
  return n;
}

/** What `ae sim up` prints: the nodes, the files, and how to reach a node with plain OpenSSH. */
export function describeSim(sim: SimCluster): string {
  const rows = sim.nodes.map((n) => {
    const s = n.state;
    return [n.name, String(n.port), s.bootId, s.kernelRelease];
  });
  return [
    `Simulated cluster "sim": ${sim.nodes.length} node(s), sandbox mode ${sim.sandboxMode}`,
    '',
    table(['NODE', 'SSH PORT', 'BOOT_ID', 'KERNEL'], rows),
    '',
    `profile      ${sim.profileFile}`,
    `known_hosts  ${sim.knownHostsFile}`,
    `ssh_config   ${sim.sshConfigFile}`,
    `identity     ${sim.identityFile}`,
    '',
    `try:  ssh -F ${sim.sshConfigFile} ${sim.nodes[0].name} uname -r`,
  ].join('\n');
}

async function up(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      nodes: { type: 'string', default: '4' },
      'state-dir': { type: 'string' },
      'base-port': { type: 'string' },
      'reboot-down-ms': { type: 'string' },
      'time-scale': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const json = values.json;
  const log = (line: string) => (json ? console.error(line) : console.log(line));
  const sim = await startSimCluster({
    nodes: intOption('nodes', values.nodes, 1, 64)!,
    stateDir: path.resolve(values['state-dir'] ?? simStateDir()),
    basePort: intOption('base-port', values['base-port'], 1, 65535),
    rebootDownMs: numberOption('reboot-down-ms', values['reboot-down-ms'], 0, 3_600_000),
    timeScale: numberOption('time-scale', values['time-scale'], 0, 1000),
    log,
  });
  if (json) {
    console.log(
      JSON.stringify({
        stateDir: sim.stateDir,
        profileFile: sim.profileFile,
        knownHostsFile: sim.knownHostsFile,
        sshConfigFile: sim.sshConfigFile,
        identityFile: sim.identityFile,
        sandboxMode: sim.sandboxMode,
        pid: process.pid,
        nodes: sim.nodes.map((n) => ({ name: n.name, port: n.port, bootId: n.state.bootId, kernelRelease: n.state.kernelRelease })),
      }),
    );
  } else {
    console.log(describeSim(sim));
    console.log('\nUp. Ctrl-C (or SIGTERM) stops every node.');
  }

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', () => resolve('SIGINT'));
    process.once('SIGTERM', () => resolve('SIGTERM'));
  });
  log(`${signal}: stopping the simulated nodes...`);
  await sim.stop();
  log('stopped.');
  return 0;
}

async function down(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { 'state-dir': { type: 'string' } }, strict: true });
  const stateDir = path.resolve(values['state-dir'] ?? simStateDir());
  const pid = runningSimulator(stateDir);
  if (pid === undefined) {
    console.log(`no simulator runs from ${stateDir}`);
    return 0;
  }
  process.kill(pid, 'SIGTERM');
  for (let i = 0; i < 300; i++) {
    await new Promise((r) => setTimeout(r, 100));
    if (!pidAlive(pid)) {
      console.log(`stopped the simulator (pid ${pid}) running from ${stateDir}`);
      return 0;
    }
  }
  throw new Error(`the simulator (pid ${pid}) did not stop within 30 s`);
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'up') return up(rest);
  if (sub === 'down') return down(rest);
  throw new UsageError(sub ? `unknown sim command "${sub}" (expected up or down)` : 'expected a sim command: up or down');
}
