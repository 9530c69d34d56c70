import { parseArgs } from 'node:util';
import { ABORT_REASON_MAX, abortArgProblem, abortUpdate } from '../../workflows/control';
import { withTemporal } from '../client';
import { printJson } from '../format';
import { runIdArg, sendControl } from '../runs';
import { UsageError } from '../usageError';

export const usage = `ae abort <runId> --reason "..." [--json]
  Stops a run now: in-flight steps are cancelled, no VM or remote job is left running, the cluster
  lease is released, and the run fails (type Aborted) with the reason. Unlike \`ae cancel\`, the
  reason is recorded in the run's failure. A closed run can be resumed with \`ae resume <runId>\`.
  --reason TEXT  why (required, at most ${ABORT_REASON_MAX} characters): shown in the run's failure and the UI
  --json         the run's control state {"paused","aborted"} as JSON
  exit codes: 0 aborted, 1 the run has ended or refused, 2 usage, 3 Temporal or its worker unreachable, 4 no such run`;

/** The reason, checked as the workflow's validator checks it, before connecting anywhere. */
export function checkReason(reason: string | undefined): string {
  const r = reason?.trim() ?? '';
  if (r === '') throw new UsageError('--reason is required: say why the run is stopped (it is recorded in its failure)');
  const problem = abortArgProblem({ reason: r });
  if (problem) throw new UsageError(`--reason: ${problem}`);
  return r;
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { reason: { type: 'string' }, json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  const id = runIdArg(positionals);
  const reason = checkReason(values.reason);
  return withTemporal(async (t) => {
    const state = await sendControl(t, id, abortUpdate, [{ reason }]);
    if (values.json) printJson({ workflowId: id, ...state });
    else console.log(`${id} aborted: ${reason}`);
    return 0;
  });
}
