import type { Client } from '@temporalio/client';
import type { SimCluster } from '../sim/cluster';
import { currentEpochChild, type EpochProgress, type RunProgress } from '../workflows/progress';
import { describe, positionOf, rank, type Position } from './position';
import type { FaultKind, PlannedFault } from './schedule';

/**
 * Injects one run's planned faults while it runs: polls where the run is, and at each fault's
 * position (plus its delay) kills the worker, restarts the dev server, or arms a fault in the sim.
 */

export interface InjectedFault {
  kind: FaultKind | 'slow-cleared' | 'worker-exited';
  planned?: string;
  /** Where the run was when it happened. */
  actual: string;
  /** ms since the run started. */
  atMs: number;
  node?: string;
  /** A worker kill: what its epoch was measuring then (the repetition it may have to take again). */
  measuring?: string;
  /** How long the action took (a restart: down time), ms. */
  tookMs?: number;
  error?: string;
}

export interface DriverDeps {
  client: Client;
  workflowId: string;
  sim: SimCluster;
  killWorker(): Promise<number>;
  restartServer(): Promise<number>;
  /** True (once) when the worker exited without being killed; the deps restart it. */
  workerExitedOnItsOwn(): Promise<boolean>;
  log(line: string): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Where the run is now, with what its epoch measures; undefined while the server does not answer. */
export async function observe(client: Client, workflowId: string): Promise<{ position?: Position; measuring?: string } | undefined> {
  try {
    const run = await client.workflow.getHandle(workflowId).query<RunProgress>('progress');
    const child = currentEpochChild(run);
    const epoch = child ? await client.workflow.getHandle(child).query<EpochProgress>('progress').catch(() => undefined) : undefined;
    return { position: positionOf(run, epoch), ...(epoch?.current ? { measuring: epoch.current } : {}) };
  } catch {
    return undefined;
  }
}

export class ChaosDriver {
  readonly injected: InjectedFault[] = [];
  private pending: PlannedFault[];
  private clears: { until: Position; node: string }[] = [];
  private last: { position?: Position; measuring?: string } = {};
  private stopped = false;
  private readonly t0 = Date.now();

  constructor(
    private readonly deps: DriverDeps,
    plan: readonly PlannedFault[],
  ) {
    this.pending = [...plan];
  }

  /** The latest observed position (what the sim's fault log is attributed to). */
  where(): string {
    return this.last.position ? describe(this.last.position) : 'starting';
  }

  elapsed(): number {
    return Date.now() - this.t0;
  }

  /** Faults never injected (the run ended first). */
  notInjected(): PlannedFault[] {
    return this.pending;
  }

  stop(): void {
    this.stopped = true;
  }

  /** Polls and injects until stop(). */
  async run(pollMs = 150): Promise<void> {
    while (!this.stopped) {
      const seen = await observe(this.deps.client, this.deps.workflowId);
      if (seen?.position) this.last = seen;
      if (await this.deps.workerExitedOnItsOwn()) this.record({ kind: 'worker-exited', error: 'the worker process exited without being killed; restarted' });
      const at = this.last.position;
      if (at && at.stage !== 'done') {
        for (const c of this.clears.filter((x) => rank(at) >= rank(x.until))) {
          this.deps.sim.faults.clear(c.node, 'slow');
          this.record({ kind: 'slow-cleared', node: c.node });
        }
        this.clears = this.clears.filter((x) => rank(at) < rank(x.until));
        const next = this.pending[0];
        if (next && rank(at) >= rank(next.at)) {
          this.pending.shift();
          await sleep(next.delayMs);
          await this.inject(next);
          continue;
        }
      }
      await sleep(pollMs);
    }
  }

  private record(f: Omit<InjectedFault, 'actual' | 'atMs'>): void {
    const entry: InjectedFault = { ...f, actual: this.where(), atMs: this.elapsed() };
    this.injected.push(entry);
    this.deps.log(`  ${(entry.atMs / 1000).toFixed(1)}s ${entry.kind}${entry.node ? ` ${entry.node}` : ''} at ${entry.actual}${entry.planned && entry.planned !== entry.actual ? ` (planned ${entry.planned})` : ''}${entry.error ? `: ${entry.error}` : ''}`);
  }

  private async inject(f: PlannedFault): Promise<void> {
    // Where the run is at the moment of the action, not where it was when the fault came due.
    const now = await observe(this.deps.client, this.deps.workflowId);
    if (now?.position) this.last = now;
    if (this.last.position?.stage === 'done') {
      this.pending.unshift(f);
      return;
    }
    const base = { kind: f.kind, planned: describe(f.at), ...(f.node ? { node: f.node } : {}) };
    try {
      const measuring = this.last.position?.stage === 'epoch' && this.last.position.phase === 'benchmarks' ? now?.measuring : undefined;
      if (f.kind === 'worker-kill') {
        this.record({ ...base, ...(measuring ? { measuring } : {}), tookMs: await this.deps.killWorker() });
      } else if (f.kind === 'server-restart') {
        this.record({ ...base, ...(measuring ? { measuring } : {}), tookMs: await this.deps.restartServer() });
      } else {
        // A dropped connection under any command running 300 ms or more (the default 1 s rarely comes on the followers).
        this.deps.sim.faults.add({ node: f.node!, step: f.kind, ...(f.kind === 'slow' ? { factor: 3 } : { times: 1 }), ...(f.kind === 'ssh-drop' ? { afterMs: 300 } : {}) });
        if (f.kind === 'slow' && f.until) this.clears.push({ until: f.until, node: f.node! });
        this.record(base);
      }
    } catch (err) {
      this.record({ ...base, error: (err as Error).message });
    }
  }
}
