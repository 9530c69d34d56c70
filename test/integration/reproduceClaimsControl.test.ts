import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import type { SimCluster } from '../../sim/cluster';
import type { ClaimsReport } from '../../workflows/claims/claims';
import type { ClaimSettingsInput } from '../../workflows/claims/settings';
import { leaseQuery, leaseWorkflowId } from '../../workflows/clusterLease';
import { abortUpdate, pauseUpdate, PAUSED_WAITING_FOR, resumeUpdate } from '../../workflows/control';
import type { BenchSettingsInput, Measurement } from '../../workflows/commands/bench';
import type { EpochProgress } from '../../workflows/progress';
import type { RunProgress } from '../../workflows/progress';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import { startRunStack, type RunStack } from '../helpers/runStack';
import { nodeProcessesMatching, waitUntil } from '../helpers/sim';

/**
 * reproduceClaims on the simulated cluster (2 nodes, small benchmarks), beyond a
 * plain run: the repetitions it adds where an interval is too wide, and operator control (pause,
 * resume, abort) and Temporal cancellation, which leave no VM, benchmark or remote job behind.
 */

jest.setTimeout(420_000);

let stack: RunStack;
let sim: SimCluster;

beforeAll(async () => {
  stack = await startRunStack('control', { nodes: 2, timeouts: { messagingLayer: 20, vmBoot: 30 } });
  ({ sim } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

const E3: BenchSettingsInput = { network: { requests: 50, concurrency: 5, sizes: [1], settleSeconds: 0 }, storage: { mib: 16 }, npb: { kernels: ['ep.B'] } };
const runFile = <T>(r: { runDir: string }, name: string) => JSON.parse(readFileSync(path.join(r.runDir, name), 'utf8')) as T;
const progressOf = (h: WorkflowHandle) => h.query<RunProgress>('progress');
const counter = (node: string, action: string) => sim.world.node(node).counters[action] ?? 0;

/** Remote jobs started and not ended (no rc file), on any node. */
function runningJobs(): string[] {
  return sim.nodes.flatMap((n) => {
    const dir = path.join(n.homeDir, 'ae', '.fragvisor-ae', 'jobs');
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((k) => existsSync(path.join(dir, k, 'pid')) && !existsSync(path.join(dir, k, 'rc')))
      .map((k) => `${n.name}:${k}`);
  });
}

/** Nothing of an epoch is left: no launcher, no benchmark command, no unfinished remote job. */
function expectNothingRunning(benchmark: string): void {
  expect(nodeProcessesMatching(sim.node('node0'), 'lkvm run')).toEqual([]);
  for (const n of sim.nodes) expect(nodeProcessesMatching(n, benchmark)).toEqual([]);
  expect(runningJobs()).toEqual([]);
}

/** An E2 run whose burst starts with a long sleep on the origin: an epoch that stays in its benchmark. */
async function startInBenchmark(gapSeconds: number): Promise<WorkflowHandle> {
  const h = await stack.start({ hypervisors: ['fragvisor'], experiments: ['E2'], nodeCounts: [2], repetitions: 1, bench: { openLambda: { gapSeconds } } });
  const epoch = stack.client.workflow.getHandle(`${h.workflowId}/fragvisor/E2-n2`);
  await waitUntil('the E2 epoch in its benchmark', async () => (await epoch.query<EpochProgress>('progress').catch(() => undefined))?.phase === 'benchmarks', 300_000, 250);
  await waitUntil(`sleep ${gapSeconds} on the origin`, () => nodeProcessesMatching(sim.node('node0'), `sleep ${gapSeconds}`).length > 0, 30_000, 100);
  return h;
}

/** The suite's profile with `claims:` settings. */
function profileWithClaims(name: string, claims: ClaimSettingsInput): string {
  const doc = parseYaml(readFileSync(stack.profile, 'utf8')) as Record<string, unknown>;
  const file = path.join(path.dirname(stack.profile), `cluster-${name}.yaml`);
  writeFileSync(file, toYaml({ ...doc, claims }));
  return file;
}

it('claim settings of the profile and the input that contradict each other fail the run at once, naming the field', async () => {
  const h = await stack.start({ cluster: profileWithClaims('contradicting', { minRepetitions: 5 }), claims: { maxRepetitions: 4 }, dryRun: true });
  const err = await h.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect((err as WorkflowFailedError).cause).toMatchObject({ type: 'InvalidInput', message: expect.stringContaining('claims.maxRepetitions: expected maxRepetitions at least minRepetitions') });
});

it("an interval too wide: one more epoch measures only its variants, numbered on, on FragVisor's kernels installed again (not rebuilt) after GiantVM's; judged again; the report says how many", async () => {
  // The profile sets minRepetitions 2 (so 2 repetitions are enough to judge), the input caps the variants at 3.
  const profile = profileWithClaims('too-wide', { minRepetitions: 2, c3: { tolerance: 0.2 } });
  const builds = sim.nodes.map((n) => counter(n.name, 'make:all'));
  const installs = sim.nodes.map((n) => counter(n.name, 'make:install'));
  const r = (await (await stack.start({ cluster: profile, experiments: ['E3'], nodeCounts: [2], repetitions: 2, bench: E3, claims: { maxRepetitions: 3 } })).result()) as ReproduceClaimsResult;

  // The effective settings: profile, then input, field by field.
  expect(r.claimSettings).toMatchObject({ minRepetitions: 2, maxRepetitions: 3, c3: { tolerance: 0.2 } });
  // Seed 1 of the default model: both storage points come out too wide at 2 repetitions (their
  // network points, real loopback timings at time scale 0, may or may not); at 3 they pass.
  const extra = r.extraRepetitions!;
  expect(extra.rounds).toBe(1);
  expect(extra.added).toEqual(
    expect.arrayContaining(['disk-local', 'disk-delegated'].map((variant) => ({ hypervisor: 'fragvisor', experiment: 'E3', nodeCount: 2, variant, added: 1, points: expect.arrayContaining([expect.stringMatching(/^C3 n2 disk/)]) }))),
  );
  expect(extra.stopped).toMatch(/no interval left to narrow/);
  expect(r.epochs.map((e) => e.epoch)).toEqual(['fragvisor/E3-n2', 'giantvm/E3-n2', 'fragvisor/E3-n2/extra-1']);
  expect(r.epochs[2]).toMatchObject({ measured: extra.added.reduce((s, a) => s + a.added, 0), reused: 0, attempts: 1 });
  // Built once per hypervisor (and the guest kernel on the origin); installed: FragVisor, GiantVM, FragVisor again.
  expect(sim.nodes.map((n, i) => counter(n.name, 'make:all') - builds[i])).toEqual([3, 2]);
  expect(sim.nodes.map((n, i) => counter(n.name, 'make:install') - installs[i])).toEqual([3, 3]);

  // Measured: every variant 1..2, the added ones also 3, nothing else.
  const reps = new Map<string, number[]>();
  for (const m of runFile<{ measurements: Measurement[] }>(r, 'results.json').measurements.filter((x) => x.key.hypervisor === 'fragvisor')) reps.set(m.key.variant, [...(reps.get(m.key.variant) ?? []), m.key.repetition]);
  for (const [variant, got] of reps) expect([variant, got]).toEqual([variant, extra.added.some((a) => a.variant === variant) ? [1, 2, 3] : [1, 2]]);

  // Judged again with 3 a side: the storage points pass; claims.json and run.json record the settings and the tally.
  const claims = runFile<ClaimsReport>(r, 'claims.json');
  expect(claims.extra).toEqual(extra);
  expect(claims.settings).toEqual(r.claimSettings);
  const disk = claims.claims.find((c) => c.id === 'C3')!.points.filter((p) => p.label.includes('disk'));
  expect(disk.map((p) => [p.label, p.verdict, p.fragvisor?.n, p.reference?.n])).toEqual([
    ['n2 disk delegated/local readMBps', 'pass', 3, 3],
    ['n2 disk delegated/local writeMBps', 'pass', 3, 3],
  ]);
  expect(runFile<ReproduceClaimsResult>(r, 'run.json')).toMatchObject({ claimSettings: r.claimSettings, extraRepetitions: extra });
  const md = readFileSync(path.join(r.runDir, 'report.md'), 'utf8');
  expect(md).toContain(`Added repetitions: ${r.epochs[2].measured} in 1 extra round(s)`);
  expect(md).toContain('added repetitions (FragVisor / reference)');
  expect(md).toMatch(/\| n2 disk delegated\/local readMBps \| PASS \|.*\| \+1 \/ \+1 \|/);
  expect(readFileSync(path.join(r.runDir, 'report.html'), 'utf8')).toContain('Added repetitions:');
});

it('pause: the epoch in flight ends, no next one starts until resume; then the run completes', async () => {
  const h = await stack.start({ hypervisors: ['fragvisor'], experiments: ['E2', 'E3'], nodeCounts: [2], repetitions: 1, bench: { ...E3, openLambda: { gapSeconds: 2 } } });
  await waitUntil('the first epoch', async () => (await progressOf(h)).stages.find((s) => s.key === 'fragvisor/E2-n2')?.state === 'running', 300_000, 100);
  expect(await h.executeUpdate(pauseUpdate)).toEqual({ paused: true });
  const paused = await progressOf(h);
  expect(paused).toMatchObject({ phase: 'experiments', paused: true, waitingFor: PAUSED_WAITING_FOR });
  expect(paused.stages.find((s) => s.key === 'fragvisor/E3-n2')?.state).toBe('pending');

  await waitUntil('the E2 epoch to end', async () => (await progressOf(h)).stages.find((s) => s.key === 'fragvisor/E2-n2')?.state === 'done', 120_000, 100);
  const lkvm = counter('node0', 'lkvm');
  const measured = readdirSync(path.join(process.env.AE_RUNS_DIR!, h.workflowId, 'measurements')).length;
  await new Promise((resolve) => setTimeout(resolve, 4000));
  // Paused: no boot cycle, no VM, no measurement for E3; the phase is unchanged.
  expect(counter('node0', 'lkvm')).toBe(lkvm);
  expect(readdirSync(path.join(process.env.AE_RUNS_DIR!, h.workflowId, 'measurements'))).toHaveLength(measured);
  expect(await progressOf(h)).toMatchObject({ phase: 'experiments', paused: true, stages: expect.arrayContaining([{ key: 'fragvisor/E3-n2', title: expect.any(String), state: 'pending' }]) });

  expect(await h.executeUpdate(resumeUpdate)).toEqual({ paused: false });
  const r = (await h.result()) as ReproduceClaimsResult;
  expect(r.epochs.map((e) => e.epoch)).toEqual(['fragvisor/E2-n2', 'fragvisor/E3-n2']);
  expect(counter('node0', 'lkvm')).toBe(lkvm + 1);
});

it('abort: refused without a reason; with one, the benchmark and VM are stopped, the run fails Aborted, the cluster is free at once', async () => {
  const h = await startInBenchmark(41);
  await expect(h.executeUpdate(abortUpdate, { args: [{ reason: ' ' }] })).rejects.toThrow(WorkflowUpdateFailedError);
  expect(await h.executeUpdate(abortUpdate, { args: [{ reason: 'node1 needs a new cable' }] })).toEqual({ paused: false, aborted: 'node1 needs a new cable' });
  const err = await h.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const cause = (err as WorkflowFailedError).cause as ApplicationFailure;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  expect(cause).toMatchObject({ type: 'Aborted', nonRetryable: true, message: 'aborted by an operator: node1 needs a new cable' });
  expectNothingRunning('sleep 41');
  expect(runFile<{ outcome: string; error: string }>({ runDir: path.join(process.env.AE_RUNS_DIR!, h.workflowId) }, 'run.json')).toMatchObject({ outcome: 'aborted', error: expect.stringContaining('node1 needs a new cable') });

  // The lease was released: it names no holder, and the next run on the cluster gets it at once.
  const lease = stack.client.workflow.getHandle(leaseWorkflowId((await h.describe()).taskQueue, 'sim'));
  await waitUntil('the lease to be free', async () => (await lease.query(leaseQuery)).holder === undefined, 10_000, 100);
  const next = await stack.start({ hypervisors: ['fragvisor'], experiments: ['E2'], nodeCounts: [2], repetitions: 1, bench: { openLambda: { gapSeconds: 0 } } });
  await waitUntil('the next run to hold the cluster', async () => (await lease.query(leaseQuery)).holder === next.workflowId, 10_000, 100);
  await next.result();
});

it('Temporal cancellation during a benchmark leaves no VM, benchmark command or remote job running', async () => {
  const h = await startInBenchmark(43);
  await h.cancel();
  const err = await h.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
  expectNothingRunning('sleep 43');
  expect(runFile<{ outcome: string }>({ runDir: path.join(process.env.AE_RUNS_DIR!, h.workflowId) }, 'run.json')).toMatchObject({ outcome: 'cancelled' });
});
