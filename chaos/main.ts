import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { compareRun, totals } from './compare';
import { markdownReport } from './report';
import { runOne, type RunContext, type RunRecord } from './run';
import { planRuns, type PlannedFault } from './schedule';
import { setChaosMsgLayerFloor, startChaosServer, writeWorkflowBundle, type ChaosServer } from './stack';

/**
 * `npm run chaos -- --runs 5 --seed 1`: an unfaulted reference run, then N full AE runs with
 * seeded faults, each compared with the reference; writes chaos/results/<date>.json and
 * chaos/results/latest.md. Exit 0 when every target holds, 1 otherwise.
 */

const USAGE = `npm run chaos -- [--runs N] [--seed S] [--parallel P] [--time-scale X] [--kills-per-run K] [--sim-faults-per-run F] [--repetitions R] [--deadline-minutes M] [--keep]`;

const RESULTS_DIR = path.join(__dirname, 'results');

export async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '5' },
      seed: { type: 'string', default: '1' },
      'time-scale': { type: 'string', default: '0.01' },
      'kills-per-run': { type: 'string', default: '4' },
      'sim-faults-per-run': { type: 'string', default: '3' },
      repetitions: { type: 'string', default: '2' },
      // Default: every run at once (each has its own server, worker and sim; most of a run is waiting).
      parallel: { type: 'string' },
      'deadline-minutes': { type: 'string', default: '12' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const num = (name: keyof typeof values, min: number) => {
    const v = Number(values[name]);
    if (!Number.isFinite(v) || v < min) throw new Error(`--${name}: expected a number >= ${min}, got ${String(values[name])}\n${USAGE}`);
    return v;
  };
  const runs = num('runs', 0);
  const seed = Math.trunc(num('seed', 0));
  const timeScale = num('time-scale', 0.001);
  const plans = planRuns({ seed, runs, killsPerRun: num('kills-per-run', 0), simFaultsPerRun: num('sim-faults-per-run', 0), nodes: ['node0', 'node1', 'node2', 'node3'] });

  const workDir = mkdtempSync(path.join(os.tmpdir(), 'ae-chaos-'));
  const started = new Date();
  const log = (line: string) => console.log(line);
  log(`chaos: seed ${seed}, ${runs} faulted run(s) + 1 reference, ${values.parallel ?? 'all'} at a time, time scale ${timeScale}; work dir ${workDir}`);
  setChaosMsgLayerFloor();
  const parallel = values.parallel === undefined ? runs + 1 : Math.max(1, Math.min(Math.trunc(num('parallel', 1)), runs + 1));
  // One dev server per lane: a restart hits the run it was planned for, not the runs beside it.
  const servers: ChaosServer[] = [];
  const stopAll = () => Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
  const onSignal = () => {
    void stopAll().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const records: RunRecord[] = [];
  const repetitions = num('repetitions', 1);
  try {
    const bundle = writeWorkflowBundle(workDir);
    servers.push(...(await Promise.all(Array.from({ length: parallel }, (_, i) => startChaosServer(path.join(workDir, `temporal-${i + 1}`))))));
    const base = { bundle: await bundle, workDir, seed, timeScale, repetitions, deadlineMs: num('deadline-minutes', 1) * 60_000, log };
    // The reference and the faulted runs, `parallel` at a time (each on its own sim, worker, task queue and server).
    const jobs = [{ label: 'reference', plan: [] as PlannedFault[] }, ...plans.map((plan, i) => ({ label: `run-${i + 1}`, plan }))];
    const done: RunRecord[] = [];
    let next = 0;
    const lane = async (server: ChaosServer) => {
      const ctx: RunContext = { ...base, server };
      while (next < jobs.length) {
        const job = jobs[next++];
        log(`${job.label}: starting (${job.plan.length} faults planned)`);
        const r = await runOne(ctx, job.label, job.plan).catch((err: Error) => crashed(job.label, err));
        log(`${job.label}: ${r.status} in ${(r.durationMs / 1000).toFixed(0)} s${r.error ? `: ${r.error}` : ''}`);
        done.push(r);
      }
    };
    await Promise.all(servers.map(lane));
    const reference = done.find((r) => r.label === 'reference')!;
    records.push(...jobs.slice(1).map((j) => done.find((r) => r.label === j.label)!));
    const compared = records.map((r) => compareRun(reference, r));
    const sum = totals(compared);
    const result = { date: started.toISOString(), seed, runs, timeScale, repetitions, parallel, reference: summary(reference), runsCompared: compared, totals: sum, records: [reference, ...records].map(summary) };
    mkdirSync(RESULTS_DIR, { recursive: true });
    const stamp = started.toISOString().replace(/[:.]/g, '-');
    writeFileSync(path.join(RESULTS_DIR, `${stamp}.json`), `${JSON.stringify(result, null, 2)}\n`);
    const md = markdownReport({ date: started.toISOString(), seed, timeScale, parallel, reference, compared, totals: sum, wallMs: Date.now() - started.getTime() });
    writeFileSync(path.join(RESULTS_DIR, 'latest.md'), md);
    log(`\n${md}`);
    log(`results: ${path.join(RESULTS_DIR, `${stamp}.json`)}`);
    return sum.targetsMet ? 0 : 1;
  } finally {
    await stopAll().catch(() => undefined);
    if (!values.keep) rmSync(workDir, { recursive: true, force: true });
    else log(`kept ${workDir}`);
  }
}

/** A run that could not even be run (its sim or worker did not start): failed, with nothing to show. */
function crashed(label: string, err: Error): RunRecord {
  return {
    label,
    workflowId: `${label} (not started)`,
    runDir: '',
    status: 'failed',
    error: err.message,
    durationMs: 0,
    snapshot: { counters: {}, files: [], measurements: {}, rawAttempts: {}, verdicts: {}, points: {} },
    injected: [],
    fired: [],
    notInjected: [],
    unfired: [],
  };
}

/** A record without the bulky parts (the file list stays in the work dir). */
function summary(r: RunRecord) {
  const { snapshot, ...rest } = r;
  return { ...rest, counters: snapshot.counters, verdicts: snapshot.verdicts, measurementKeys: Object.keys(snapshot.measurements).length, files: snapshot.files.length };
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(2);
    },
  );
}
