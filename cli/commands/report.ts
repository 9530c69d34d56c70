import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildReport, REPORT_FILES, runExists, type WriteReportResult } from '../../activities/report';
import { runsDir } from '../../config/paths';
import type { Verdict } from '../../workflows/claims/rules';
import { runId as runIdSchema } from '../../workflows/inputs';
import { table } from '../format';
import { UsageError } from '../usageError';

export const usage = `ae report <runId> [--json]
  Rebuilds the run's claims.json (the verdicts, judged again from its results.json, baseline.json
  and claim settings), report.html, report.md and junit.xml in the run store, from the stored files
  only (no Temporal, no cluster). Prints the verdicts and the report's path.
  --json    the verdicts and the files' paths as JSON
  Exit code: 0 every claim passes, 1 a claim fails (or the report could not be built),
  3 none fails but one is inconclusive (not shown either way: more repetitions may decide it),
  2 usage error (no such run).`;

/** 0 all pass; 1 any fails; 3 none fails but some inconclusive (or none judged). */
export function exitCodeFor(verdicts: readonly { verdict: Verdict }[]): number {
  if (verdicts.some((v) => v.verdict === 'fail')) return 1;
  return verdicts.length > 0 && verdicts.every((v) => v.verdict === 'pass') ? 0 : 3;
}

export function renderVerdicts(runId: string, dir: string, result: WriteReportResult): string {
  return [
    `run ${runId}${result.simulated ? ' (SIMULATED)' : ''}:`,
    table(['claim', 'verdict', 'why'], result.verdicts.map((v) => [v.id, v.verdict.toUpperCase(), v.why])),
    '',
    `report: ${path.join(dir, result.files.html)}`,
    `also: ${[result.files.md, result.files.junit, result.files.claims].map((f) => path.join(dir, f)).join(', ')}`,
  ].join('\n');
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, options: { json: { type: 'boolean', default: false } }, allowPositionals: true, strict: true });
  if (positionals.length !== 1) throw new UsageError('expected one run id (the workflow id of a run, a folder of the run store)');
  const [runId] = positionals;
  const id = runIdSchema.safeParse(runId);
  if (!id.success) throw new UsageError(`run id ${JSON.stringify(runId)}: ${id.error.issues[0].message}`);
  if (!runExists(runId)) throw new UsageError(`no run ${JSON.stringify(runId)} in the run store ${runsDir()} (AE_RUNS_DIR moves it)`);
  const result = await buildReport(runId, { rejudge: true });
  const dir = path.join(runsDir(), runId);
  if (values.json) {
    const files = Object.fromEntries(Object.entries(result.files).map(([k, f]) => [k, path.join(dir, f)])) as Record<keyof typeof REPORT_FILES, string>;
    console.log(JSON.stringify({ runId, simulated: result.simulated, verdicts: result.verdicts, files }, null, 2));
  } else console.log(renderVerdicts(runId, dir, result));
  return exitCodeFor(result.verdicts);
}
