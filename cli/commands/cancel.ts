import { parseArgs } from 'node:util';
import { uiLink, withTemporal } from '../client';
import { EXIT, ExitError } from '../exitError';
import { printJson } from '../format';
import { describeRun, isOpen, runIdArg } from '../runs';

export const usage = `ae cancel <runId> [--wait] [--json]
  Asks the run to cancel (Temporal cancellation): in-flight steps are cancelled, no VM or remote job
  is left running, the cluster lease is released. Returns once the request is recorded.
  --wait       wait until the run has closed and say how it ended
  --json       {"workflowId","requested":true[,"status"]} on stdout
  exit codes: 0 requested (--wait: the run ended cancelled), 1 the run had already ended (--wait: it
  ended otherwise), 2 usage, 3 Temporal unreachable, 4 no such run`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { wait: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  const id = runIdArg(positionals);
  return withTemporal(async (t) => {
    const d = await describeRun(t, id);
    if (!isOpen(d)) throw new ExitError(`run ${id} has already ended (${d.status.name}): nothing to cancel`, EXIT.failed);
    const handle = t.client.workflow.getHandle(id, d.runId);
    await handle.cancel();
    if (!values.wait) {
      if (values.json) printJson({ workflowId: id, requested: true });
      else console.log(`cancellation of ${id} requested; \`ae cancel ${id} --wait\` or \`ae status ${id}\` shows when it has closed\n  ${uiLink(t.namespace, id)}`);
      return EXIT.ok;
    }
    if (!values.json) console.log(`cancellation of ${id} requested; waiting for it to close...`);
    await handle.result().catch(() => undefined);
    const status = (await handle.describe()).status.name;
    if (values.json) printJson({ workflowId: id, requested: true, status });
    else console.log(status === 'CANCELLED' ? `${id} cancelled` : `${id} ended ${status} before the cancellation took effect`);
    return status === 'CANCELLED' ? EXIT.ok : EXIT.failed;
  });
}
