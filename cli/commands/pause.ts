import { parseArgs } from 'node:util';
import { pauseUpdate } from '../../workflows/control';
import { withTemporal } from '../client';
import { printJson } from '../format';
import { runIdArg, sendControl } from '../runs';

export const usage = `ae pause <runId> [--json]
  Pauses a running run: it finishes the step in flight, then waits before the next stage, epoch or
  repetition (its progress says "waiting for: resume (paused by an operator)"). \`ae resume <runId>\`
  goes on. Nothing is cancelled; the cluster stays leased to the run.
  --json       the run's control state {"paused","aborted"} as JSON
  exit codes: 0 paused, 1 the run has ended or refused, 2 usage, 3 Temporal or its worker unreachable, 4 no such run`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  const id = runIdArg(positionals);
  return withTemporal(async (t) => {
    const state = await sendControl(t, id, pauseUpdate, []);
    if (values.json) printJson({ workflowId: id, ...state });
    else console.log(`${id} paused: it finishes the step in flight, then waits; \`ae resume ${id}\` goes on`);
    return 0;
  });
}
