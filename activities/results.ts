import { randomBytes } from 'node:crypto';
import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { runsDir } from '../config/paths';
import { compareMeasurementKeys, measurementKeyId, type Measurement, type MeasurementKey } from '../workflows/commands/bench';
import { classified } from './failures';
import { runDir, runFile } from './runStore';

/**
 * The run's measurements in the run store: one file per measurement under
 * `measurements/<hypervisor>.<experiment>.n<nodes>.<variant>.rep<k>.json` (written atomically, so a
 * crash leaves the old file or the new one, never half of one), and `results.json` regenerated from
 * all of them after every write, sorted by key and labelled SIMULATED on the simulated cluster.
 * Recording the same key again replaces it (a retried activity, a re-measured repetition).
 */

export interface RecordMeasurementInput {
  runId: string;
  measurement: Measurement;
}

export interface RecordMeasurementResult {
  /** The measurement's file, relative to the run folder. */
  file: string;
  /** `results.json`, relative to the run folder. */
  results: string;
  /** Measurements results.json holds now. */
  count: number;
}

export interface ResultsFile {
  /** True when any measurement is simulated (runBenchmark marks every one taken on a simulated profile). */
  simulated: boolean;
  /** Present when simulated: says so where a reader cannot miss it. */
  label?: string;
  runId: string;
  count: number;
  measurements: Measurement[];
}

export const SIMULATED_LABEL = 'SIMULATED: measured on the simulated cluster; the numbers come from its performance model, not from FragVisor or GiantVM';

const MEASUREMENTS = 'measurements';
const RESULTS = 'results.json';

/** Writes `file` through a temporary file and a rename: a reader sees the old file or the new one, never half of one. */
export async function writeAtomic(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await fs.writeFile(tmp, text);
  await fs.rename(tmp, file);
}

/** A measurement as recordMeasurement accepts it; JSON cannot carry NaN or Infinity. */
function checkMeasurement(m: Measurement): string {
  const id = measurementKeyId(m.key);
  const bad = Object.entries(m.metrics).filter(([, v]) => typeof v !== 'number' || !Number.isFinite(v));
  if (bad.length > 0) {
    throw ApplicationFailure.nonRetryable(`measurement ${id}: metrics must be finite numbers, got ${bad.map(([k, v]) => `${k}=${String(v)}`).join(', ')}`, 'InvalidMeasurement', { key: m.key });
  }
  return id;
}

async function readMeasurements(runId: string): Promise<Measurement[]> {
  const dir = path.join(runDir(runId), MEASUREMENTS);
  let names: string[];
  try {
    names = (await fs.readdir(dir)).filter((n) => n.endsWith('.json'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const all = await Promise.all(
    names.map(async (name) => {
      const text = await fs.readFile(path.join(dir, name), 'utf8');
      let m: Measurement;
      try {
        m = JSON.parse(text) as Measurement;
        if (`${measurementKeyId(m.key)}.json` !== name) throw new Error(`its key names ${measurementKeyId(m.key)}`);
      } catch (err) {
        // Written atomically by us: a file that does not parse was put there by someone else.
        throw ApplicationFailure.nonRetryable(`run ${runId}: ${MEASUREMENTS}/${name} is not a measurement (${(err as Error).message}); move it out of the run store`, 'ResultsCorrupt', { runId, file: name });
      }
      return m;
    }),
  );
  return all.sort((a, b) => compareMeasurementKeys(a.key, b.key));
}

/** One regeneration at a time per run in this worker; across workers the re-check below converges. */
const regenerating = new Map<string, Promise<unknown>>();

async function regenerate(runId: string): Promise<number> {
  const previous = regenerating.get(runId) ?? Promise.resolve();
  const next = previous.catch(() => undefined).then(async () => {
    for (;;) {
      const measurements = await readMeasurements(runId);
      const simulated = measurements.some((m) => m.simulated);
      const results: ResultsFile = { simulated, ...(simulated ? { label: SIMULATED_LABEL } : {}), runId, count: measurements.length, measurements };
      await writeAtomic(runFile(runId, [RESULTS]).file, `${JSON.stringify(results, null, 2)}\n`);
      // Another worker may have added a file after we listed: write again until the list holds still.
      const now = await readMeasurements(runId);
      if (now.length === measurements.length && now.every((m, i) => measurementKeyId(m.key) === measurementKeyId(measurements[i].key))) return measurements.length;
    }
  });
  regenerating.set(runId, next);
  try {
    return await next;
  } finally {
    if (regenerating.get(runId) === next) regenerating.delete(runId);
  }
}

export function resultsActivities() {
  return {
    /** Stores one measurement under its key (replacing an earlier one) and regenerates results.json. */
    async recordMeasurement(input: RecordMeasurementInput): Promise<RecordMeasurementResult> {
      return classified(async () => {
        const id = checkMeasurement(input.measurement);
        const file = runFile(input.runId, [MEASUREMENTS, `${id}.json`]);
        await writeAtomic(file.file, `${JSON.stringify(input.measurement, null, 2)}\n`);
        const count = await regenerate(input.runId);
        return { file: file.relative, results: RESULTS, count };
      });
    },

    /**
     * Resume: copies every measurement an earlier run recorded into this run (keys this run already
     * has are kept as they are), so its epochs take only what is missing. The earlier run's raw
     * outputs stay where they are; each adopted measurement still names its file there.
     */
    async adoptMeasurements(input: { from: string; runId: string }): Promise<{ adopted: number }> {
      return classified(async () => {
        if (!existsSync(path.join(runsDir(), input.from))) {
          throw ApplicationFailure.nonRetryable(`resumeFrom: no run ${input.from} in the run store ${runsDir()}; give the workflow id of an earlier run`, 'InvalidInput');
        }
        const have = new Set((await readMeasurements(input.runId)).map((m) => measurementKeyId(m.key)));
        const earlier = (await readMeasurements(input.from)).filter((m) => !have.has(measurementKeyId(m.key)));
        for (const m of earlier) {
          await writeAtomic(runFile(input.runId, [MEASUREMENTS, `${measurementKeyId(m.key)}.json`]).file, `${JSON.stringify({ ...m, raw: `../${input.from}/${m.raw}` }, null, 2)}\n`);
        }
        if (earlier.length > 0) await regenerate(input.runId);
        return { adopted: earlier.length };
      });
    },

    /** The keys a run has recorded, in results order: a resumed epoch skips them. */
    async listMeasurements(input: { runId: string }): Promise<MeasurementKey[]> {
      return classified(async () => (await readMeasurements(input.runId)).map((m) => m.key));
    },
  };
}
