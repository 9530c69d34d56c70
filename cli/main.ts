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
  worker: () => require('./commands/worker'),
  sim: () => require('./commands/sim'),
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
  worker   run a worker against the configured Temporal
  sim      the simulated FragVisor testbed (ae sim up --nodes N --state-dir DIR)

ae <command> --help shows a command's options.`;

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
    return usage ? 2 : 1;
  }
}
