import { exitCodeOf } from './exitError';
import { UsageError } from './usageError';

interface Command {
  usage: string;
  run(argv: string[]): Promise<number>;
}

/**
 * Loaded on demand so `ae probe` does not pay for the sim, nor `ae sim` for the worker. require(),
 * not import(): under tsx an import() would load a second, ESM copy of every module.
 */
/* eslint-disable @typescript-eslint/no-require-imports */
const COMMANDS: Record<string, () => Command> = {
  up: () => require('./commands/up'),
  probe: () => require('./commands/probe'),
  plan: () => require('./commands/plan'),
  run: () => require('./commands/run'),
  report: () => require('./commands/report'),
  status: () => require('./commands/status'),
  logs: () => require('./commands/logs'),
  cancel: () => require('./commands/cancel'),
  pause: () => require('./commands/pause'),
  resume: () => require('./commands/resume'),
  abort: () => require('./commands/abort'),
  exec: () => require('./commands/exec'),
  schedule: () => require('./commands/schedule'),
  lease: () => require('./commands/lease'),
  worker: () => require('./commands/worker'),
  sim: () => require('./commands/sim'),
  webhook: () => require('./commands/webhook'),
};
/* eslint-enable @typescript-eslint/no-require-imports */

const HELP = `ae: reproduce FragVisor's paper claims on a cluster, durably, with Temporal

usage: ae <command> [options]

commands:
  up       the local stack: Temporal dev server + Web UI, simulated 4-node cluster, worker, demo run
  probe    probe every node of a cluster (reachability, boot_id, kernel, uptime, FragVisor tree)
  plan     print every step and command line a run would execute, for every node (runs nothing)
  run      start a run that reproduces the paper's claims (--wait: follow it live, a line per node)
  report   rebuild a run's verdicts, report.html, report.md and junit.xml from its stored results
  status   one run's phase, nodes, stages and verdicts; without an id, the recent runs
  logs     a run's step logs from the run store, per node and step (--follow: live until it closes)
  cancel   ask a run to cancel (Temporal cancellation; --wait: until it has closed)
  pause    let a run finish the step in flight, then wait for \`ae resume\`
  resume   go on with a paused run, or start a new run that resumes a closed one
  abort    stop a run now, with a reason (nothing is left running on the cluster)
  exec     run a command on every node of a cluster in parallel over SSH, output grouped by node
  schedule a periodic re-check run (a Temporal Schedule): create, list, delete
  lease    which run holds each cluster and which wait; release a stuck holder by force
  worker   run a worker against the configured Temporal
  sim      the simulated FragVisor testbed (ae sim up --nodes N --state-dir DIR)
  webhook  the CI webhook listener: GitHub / generic deliveries start runs (default 127.0.0.1:8787)

ae <command> --help shows a command's options.
exit codes: 0 ok, 1 the thing failed, 2 usage, 3 Temporal unreachable, 4 not found.`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(HELP);
    return name ? 0 : 2;
  }
  const load = COMMANDS[name];
  if (!load) {
    console.error(`ae: unknown command "${name}"\n\n${HELP}`);
    return 2;
  }
  const command = load();
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(command.usage);
    return 0;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    const usage = err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    console.error(`ae ${name}: ${(err as Error).message}`);
    if (usage) console.error(`\nusage: ${command.usage}`);
    return usage ? 2 : exitCodeOf(err);
  }
}
