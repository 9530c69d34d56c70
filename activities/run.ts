import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { parse as parseYaml } from 'yaml';
import { baselineFileSchema } from '../config/baseline';
import { describeZodError } from '../config/errors';
import { runsDir } from '../config/paths';
import { runDir, runFile } from './runStore';

export interface BaselineUsed {
  kind: 'file';
  /** The file as named in the input, and the sha256 of its bytes. */
  file: string;
  sha256: string;
  source: string;
  approximate: boolean;
  entries: number;
}

/** Reads and checks a baseline file (docs/BASELINE.md); every problem names its field. */
function readBaseline(file: string): { text: string; baseline: ReturnType<typeof baselineFileSchema.parse> } {
  const bad = (why: string) => ApplicationFailure.nonRetryable(`baseline: ${file}: ${why}`, 'InvalidInput', { field: 'baseline' });
  let text: string;
  try {
    text = readFileSync(path.resolve(file), 'utf8');
  } catch (err) {
    throw bad(`cannot read it on the worker host (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); give a path the worker can read`);
  }
  let doc: unknown;
  try {
    doc = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw bad(`not valid ${file.endsWith('.json') ? 'JSON' : 'YAML'}: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = baselineFileSchema.safeParse(doc);
  if (!parsed.success) throw bad(describeZodError(parsed.error).join('; '));
  const seen = new Set<string>();
  for (const [i, m] of parsed.data.measurements.entries()) {
    const key = `${m.experiment} n=${m.nodeCount} ${m.variant} ${m.metric}`;
    if (seen.has(key)) throw bad(`measurements[${i}]: ${key} is given twice`);
    seen.add(key);
  }
  return { text, baseline: parsed.data };
}

/** Run-store bookkeeping of a reproduceClaims run: what was asked, what was planned, how it ended. */
export function runActivities() {
  return {
    /**
     * Before anything else (the lease, the run store, a dry run's plan): the files the input names
     * exist and are sound, so a typo fails at once, naming the field.
     */
    async checkInputFiles({ resumeFrom, baseline }: { resumeFrom?: string; baseline?: string }): Promise<void> {
      if (resumeFrom !== undefined && !existsSync(path.join(runsDir(), resumeFrom))) {
        throw ApplicationFailure.nonRetryable(`resumeFrom: no run ${resumeFrom} in the run store ${runsDir()}; give the workflow id of an earlier run (\`ae status\` lists them)`, 'InvalidInput', { field: 'resumeFrom' });
      }
      if (baseline !== undefined) readBaseline(baseline);
    },

    /** Creates `runs/<runId>/` with input.json and plan.json; returns the folder (absolute, on the worker host). */
    async initRun({ runId, input, plan }: { runId: string; input: unknown; plan: unknown }): Promise<{ runDir: string }> {
      const dir = runDir(runId);
      writeFileSync(runFile(runId, ['input.json']).file, `${JSON.stringify(input, null, 2)}\n`);
      writeFileSync(runFile(runId, ['plan.json']).file, `${JSON.stringify(plan, null, 2)}\n`);
      return { runDir: dir };
    },

    /** Checks a GiantVM baseline file and keeps a copy in the run store (`baseline.json`), for the claims and the record. */
    async useBaseline({ runId, file }: { runId: string; file: string }): Promise<BaselineUsed> {
      const { text, baseline } = readBaseline(file);
      const sha256 = createHash('sha256').update(text).digest('hex');
      writeFileSync(runFile(runId, ['baseline.json']).file, `${JSON.stringify({ file, sha256, ...baseline }, null, 2)}\n`);
      return { kind: 'file', file, sha256, source: baseline.source, approximate: baseline.approximate, entries: baseline.measurements.length };
    },

    /** Writes `run.json`: the run's outcome and per-step record (small: references, not logs). */
    async recordRun({ runId, record }: { runId: string; record: unknown }): Promise<void> {
      writeFileSync(runFile(runId, ['run.json']).file, `${JSON.stringify(record, null, 2)}\n`);
    },
  };
}
