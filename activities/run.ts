import { writeFileSync } from 'node:fs';
import { runDir, runFile } from './runStore';

/** Run-store bookkeeping of a reproduceClaims run: what was asked, what was planned, how it ended. */
export function runActivities() {
  return {
    /** Creates `runs/<runId>/` with input.json and plan.json; returns the folder (absolute, on the worker host). */
    async initRun({ runId, input, plan }: { runId: string; input: unknown; plan: unknown }): Promise<{ runDir: string }> {
      const dir = runDir(runId);
      writeFileSync(runFile(runId, ['input.json']).file, `${JSON.stringify(input, null, 2)}\n`);
      writeFileSync(runFile(runId, ['plan.json']).file, `${JSON.stringify(plan, null, 2)}\n`);
      return { runDir: dir };
    },

    /** Writes `run.json`: the run's outcome and per-step record (small: references, not logs). */
    async recordRun({ runId, record }: { runId: string; record: unknown }): Promise<void> {
      writeFileSync(runFile(runId, ['run.json']).file, `${JSON.stringify(record, null, 2)}\n`);
    },
  };
}
