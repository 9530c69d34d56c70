import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection, WorkflowFailedError } from '@temporalio/client';
import type { ReproduceClaimsResult } from '../workflows/reproduceClaims';
import { snapshot, type RunSnapshot } from './collect';
import { ChaosDriver, type InjectedFault } from './driver';
import { chaosInput } from './input';
import { describe, type Position } from './position';
import type { PlannedFault } from './schedule';
import { startChaosSim, startWorkerProcess, type ChaosServer, type WorkerProcess } from './stack';

/** One AE run on a fresh simulated cluster, with or without faults, and what it left behind. */

export interface FiredSimFault {
  node: string;
  step: string;
  /** Where the run was when the sim fired it. */
  at: string;
  atMs: number;
}

export interface RunRecord {
  label: string;
  workflowId: string;
  runDir: string;
  status: 'completed' | 'failed' | 'stuck';
  error?: string;
  durationMs: number;
  snapshot: RunSnapshot;
  injected: InjectedFault[];
  fired: FiredSimFault[];
  /** Planned faults the run ended before. */
  notInjected: string[];
  /** Sim faults armed that never fired (no such step came on that node afterwards). */
  unfired: string[];
}

export interface RunContext {
  server: ChaosServer;
  bundle: string;
  workDir: string;
  seed: number;
  timeScale: number;
  repetitions: number;
  /** A run still open after this long is declared stuck and terminated. */
  deadlineMs: number;
  log(line: string): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const verdictsOf = (r: ReproduceClaimsResult): Record<string, string> => Object.fromEntries((r.verdicts ?? []).map((v) => [v.id, v.verdict]));

export async function runOne(ctx: RunContext, label: string, plan: readonly PlannedFault[]): Promise<RunRecord> {
  const slug = label.replace(/\W+/g, '-');
  const stateDir = path.join(ctx.workDir, `sim-${slug}`);
  const runsDir = path.join(ctx.workDir, 'runs');
  mkdirSync(stateDir, { recursive: true });
  let driver: ChaosDriver | undefined;
  const fired: FiredSimFault[] = [];
  const simLog = (line: string) => {
    const m = /^fault fired: (\S+) (\S+)/.exec(line);
    if (m) fired.push({ node: m[1], step: m[2], at: driver?.where() ?? 'starting', atMs: driver?.elapsed() ?? 0 });
  };
  const { sim, profile, bmcPassword } = await startChaosSim(stateDir, { seed: ctx.seed, timeScale: ctx.timeScale, nodes: 4, name: `chaos-${slug}`, log: simLog });
  const taskQueue = `chaos-${slug}-${process.pid}-${Date.now()}`;
  const workerEnv = { address: ctx.server.address, taskQueue, bundle: ctx.bundle, runsDir, logFile: path.join(ctx.workDir, 'logs', `worker-${slug}.log`), ...(bmcPassword ? { bmcPassword } : {}) };
  let worker: WorkerProcess = await startWorkerProcess(workerEnv);
  const connection = await Connection.connect({ address: ctx.server.address });
  const client = new Client({ connection });
  const workflowId = `chaos-s${ctx.seed}-${slug}-${Date.now()}`;
  try {
    const t0 = Date.now();
    const handle = await client.workflow.start('reproduceClaims', { taskQueue, workflowId, args: [chaosInput(profile, ctx.repetitions)] });
    driver = new ChaosDriver(
      {
        client,
        workflowId,
        sim,
        async killWorker() {
          const t = Date.now();
          await worker.sigkill();
          worker = await startWorkerProcess(workerEnv);
          return Date.now() - t;
        },
        restartServer: () => ctx.server.restart(),
        async workerExitedOnItsOwn() {
          if (!worker.exitedOnItsOwn()) return false;
          worker = await startWorkerProcess(workerEnv);
          return true;
        },
        log: (line) => ctx.log(`[${label}] ${line}`),
      },
      plan,
    );
    const driving = driver.run();
    let status: RunRecord['status'] = 'completed';
    let error: string | undefined;
    let verdicts: Record<string, string> = {};
    // The result, across dev-server restarts (a long poll cut by a restart is asked again).
    for (;;) {
      if (Date.now() - t0 > ctx.deadlineMs) {
        status = 'stuck';
        error = `still open after ${Math.round(ctx.deadlineMs / 1000)} s at ${driver.where()}: terminated`;
        await handle.terminate('chaos: stuck').catch(() => undefined);
        break;
      }
      const outcome = await Promise.race([
        handle.result().then(
          (r) => ({ result: r as ReproduceClaimsResult }),
          (e: unknown) => ({ error: e }),
        ),
        sleep(10_000).then(() => undefined),
      ]);
      if (!outcome) continue;
      if ('result' in outcome) {
        verdicts = verdictsOf(outcome.result);
        break;
      }
      if (outcome.error instanceof WorkflowFailedError) {
        status = 'failed';
        // The root cause (through the child and activity wrappers), first line.
        let cause: Error | undefined = outcome.error;
        while (cause?.cause instanceof Error) cause = cause.cause;
        error = (cause?.message ?? outcome.error.message).split('\n')[0];
        break;
      }
      // The server is restarting: ask again.
      await sleep(1000);
    }
    const durationMs = Date.now() - t0;
    driver.stop();
    await driving;
    const runDir = path.join(runsDir, workflowId);
    return {
      label,
      workflowId,
      runDir,
      status,
      ...(error ? { error } : {}),
      durationMs,
      snapshot: snapshot(runDir, sim, verdicts),
      injected: driver.injected,
      fired,
      notInjected: driver.notInjected().map((f) => `${f.kind} at ${describe(f.at as Position)}`),
      // `slow` acts while armed (it is consulted, not fired); the others are used up when they fire.
      unfired: sim.faults.list().filter((f) => f.step !== 'slow').map((f) => `${f.step} ${f.node}`),
    };
  } finally {
    driver?.stop();
    await worker.stop().catch(() => undefined);
    await connection.close().catch(() => undefined);
    await sim.stop();
    rmSync(stateDir, { recursive: true, force: true });
  }
}
