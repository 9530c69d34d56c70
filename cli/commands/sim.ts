import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { loadProfile } from '../../config/load';
import { simStateDir } from '../../config/paths';
import { pidAlive, runningSimulator, startSimCluster, type SimCluster } from '../../sim/cluster';
import { FAULT_STEPS, faultsDir, injectFault, type ActiveFault, type FaultSpec } from '../../sim/faults';
import { table } from '../format';
import { UsageError } from '../usageError';

export const usage = `ae sim up [--nodes 4] [--state-dir DIR] [--base-port PORT] [--reboot-down-ms 3000] [--time-scale 1]
          [--seed 1] [--model default] [--no-bmc] [--json]
  Runs the simulated FragVisor testbed: N nodes, each an SSH server on 127.0.0.1 whose commands run
  in real bash inside the node's sandbox (nothing reaches this machine), each with a FragVisor
  checkout and, when ipmi_sim is installed, a BMC. Writes DIR/cluster.yaml, DIR/known_hosts and
  DIR/ssh_config, prints the nodes, and stays up until Ctrl-C or SIGTERM. DIR defaults to
  $AE_SIM_STATE_DIR or .data/sim (the cluster called "sim"). --json prints one JSON object instead
  of the table.
ae sim down [--state-dir DIR]
  Stops the simulator running from DIR (it stops its nodes cleanly).
ae sim fault [--state-dir DIR] --node NODE --step STEP [--times K] [--factor F] [--after-ms MS]
ae sim fault [--state-dir DIR] --clear [--node NODE] [--step STEP]
ae sim fault [--state-dir DIR] --list
  Arms a fault in the running simulator (it fires when the step happens on that node, K times,
  default once; \`slow\` stays until cleared), clears faults, or lists the armed ones.
  Steps: ${FAULT_STEPS.join(', ')}.`;

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
    ...(sim.bmcPasswordFile
      ? [
          '',
          `BMCs (user ADMIN): ${Object.entries(sim.bmcs).map(([n, b]) => `${n} ${b.host}:${b.port}`).join(', ')}`,
          `  export ${sim.bmcPasswordEnv}="$(cat ${sim.bmcPasswordFile})"`,
          `  IPMI_PASSWORD="$${sim.bmcPasswordEnv}" ipmitool -I lanplus -C 3 -H 127.0.0.1 -p ${Object.values(sim.bmcs)[0]?.port ?? 623} -U ADMIN -E chassis power status`,
        ]
      : []),
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
      seed: { type: 'string' },
      model: { type: 'string' },
      'no-bmc': { type: 'boolean', default: false },
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
    seed: intOption('seed', values.seed, -(2 ** 31), 2 ** 31 - 1),
    ...(values.model !== undefined ? { model: values.model } : {}),
    bmc: !values['no-bmc'],
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
        ...(sim.bmcPasswordFile ? { bmcPasswordFile: sim.bmcPasswordFile, bmcPasswordEnv: sim.bmcPasswordEnv } : {}),
        nodes: sim.nodes.map((n) => ({ name: n.name, port: n.port, bootId: n.state.bootId, kernelRelease: n.state.kernelRelease, ...(sim.bmcs[n.name] ? { bmc: sim.bmcs[n.name] } : {}) })),
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

async function fault(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      'state-dir': { type: 'string' },
      node: { type: 'string' },
      step: { type: 'string' },
      times: { type: 'string' },
      factor: { type: 'string' },
      'after-ms': { type: 'string' },
      clear: { type: 'boolean', default: false },
      list: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const stateDir = path.resolve(values['state-dir'] ?? simStateDir());
  if (runningSimulator(stateDir) === undefined) throw new UsageError(`no simulator runs from ${stateDir} (start it with \`ae sim up --state-dir ${stateDir}\`)`);
  const step = values.step;
  if (step !== undefined && !(FAULT_STEPS as readonly string[]).includes(step)) throw new UsageError(`--step must be one of ${FAULT_STEPS.join(', ')}, got "${step}"`);
  if (values.list) {
    const file = path.join(faultsDir(stateDir), 'active.json');
    const active = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as ActiveFault[]) : [];
    if (active.length === 0) console.log('no faults armed');
    else console.log(table(['NODE', 'STEP', 'LEFT', 'FACTOR', 'AFTER MS'], active.map((f) => [f.node, f.step, f.remaining === null ? 'until cleared' : String(f.remaining), String(f.factor ?? ''), String(f.afterMs ?? '')])));
    return 0;
  }
  if (values.clear) {
    await injectFault(stateDir, { clear: true, ...(values.node !== undefined ? { node: values.node } : {}), ...(step !== undefined ? { step: step as FaultSpec['step'] } : {}) });
    console.log(`cleared ${[values.node, step].filter(Boolean).join(' ') || 'every'} fault`);
    return 0;
  }
  if (values.node === undefined || step === undefined) throw new UsageError('expected --node NODE and --step STEP (or --clear, or --list)');
  const nodes = loadProfile(path.join(stateDir, 'cluster.yaml')).profile.nodes.map((n) => n.name);
  if (!nodes.includes(values.node)) throw new UsageError(`--node must be one of the simulated nodes (${nodes.join(', ')}), got "${values.node}"`);
  const spec: FaultSpec = { node: values.node, step: step as FaultSpec['step'] };
  const times = intOption('times', values.times, 1, 1_000_000);
  const factor = numberOption('factor', values.factor, 0.001, 1000);
  const afterMs = numberOption('after-ms', values['after-ms'], 0, 3_600_000);
  if (times !== undefined) spec.times = times;
  if (factor !== undefined) spec.factor = factor;
  if (afterMs !== undefined) spec.afterMs = afterMs;
  await injectFault(stateDir, spec);
  console.log(`armed ${spec.step} on ${spec.node}${times !== undefined ? ` (${times}x)` : ''}`);
  return 0;
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'up') return up(rest);
  if (sub === 'down') return down(rest);
  if (sub === 'fault') return fault(rest);
  throw new UsageError(sub ? `unknown sim command "${sub}" (expected up, down or fault)` : 'expected a sim command: up, down or fault');
}
