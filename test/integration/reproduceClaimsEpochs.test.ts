import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../../config/paths';
import type { SimCluster } from '../../sim/cluster';
import { benchVariants, measurementKeyId, type BenchSettingsInput, type MeasurementKey } from '../../workflows/commands/bench';
import { EXPERIMENTS, HYPERVISORS, type ReproduceClaimsInput } from '../../workflows/inputs';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import { startRunStack, type RunStack } from '../helpers/runStack';
import { openssh, waitUntil } from '../helpers/sim';

/**
 * reproduceClaims with its epochs on the simulated cluster (2 nodes, small benchmark settings so
 * that the suite stays quick): every experiment for both hypervisors with complete results, and the
 * two VM failures an epoch survives through one more boot cycle of its own.
 */

jest.setTimeout(420_000);

/** The artifact's benchmarks, cut down: two PHP levels, two page sizes, one NPB kernel, no pauses. */
const BENCH: BenchSettingsInput = {
  lemp: { requests: 20, concurrency: 5, levels: ['25ms', '250ms'] },
  network: { requests: 50, concurrency: 5, sizes: [1, 4096], settleSeconds: 0 },
  openLambda: { gapSeconds: 0 },
  storage: { mib: 16 },
  npb: { kernels: ['ep.B'] },
};

let stack: RunStack;
let sim: SimCluster;

beforeAll(async () => {
  stack = await startRunStack('epochs', { nodes: 2, timeouts: { messagingLayer: 20, vmBoot: 30 } });
  ({ sim } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

const start = (extra: Partial<ReproduceClaimsInput>) => stack.start({ nodeCounts: [2], repetitions: 1, bench: BENCH, ...extra });

interface ResultsFile {
  simulated: boolean;
  label?: string;
  count: number;
  measurements: { key: MeasurementKey; metrics: Record<string, number>; raw: string }[];
}

const results = (r: ReproduceClaimsResult) => JSON.parse(readFileSync(path.join(r.runDir, 'results.json'), 'utf8')) as ResultsFile;
const counter = (node: string, action: string) => sim.world.node(node).counters[action] ?? 0;

it('every experiment for both hypervisors: complete results, keyed, labelled SIMULATED', async () => {
  const r = (await (await start({})).result()) as ReproduceClaimsResult;
  expect(r.epochs.map((e) => [e.epoch, e.attempts])).toEqual(HYPERVISORS.flatMap((h) => EXPERIMENTS.map((e) => [`${h}/${e}-n2`, 1])));
  const expected = HYPERVISORS.flatMap((hypervisor) =>
    EXPERIMENTS.flatMap((experiment) => benchVariants(experiment, 2, BENCH).map((v) => measurementKeyId({ hypervisor, experiment, nodeCount: 2, variant: v.variant, repetition: 1 }))),
  ).sort();
  const file = results(r);
  expect(file.measurements.map((m) => measurementKeyId(m.key)).sort()).toEqual(expected);
  expect(r.measurements).toBe(expected.length);
  expect(r.baseline).toEqual({ kind: 'measured' });
  // The run ends with the claims judged and the report written (their content is the report suites' business).
  expect(r.verdicts?.map((v) => v.id)).toEqual(['C1', 'C2', 'C3']);
  for (const v of r.verdicts ?? []) expect(['pass', 'fail', 'inconclusive']).toContain(v.verdict);
  for (const f of Object.values(r.report ?? {})) expect(existsSync(path.join(r.runDir, f))).toBe(true);
  const provenance = JSON.parse(readFileSync(path.join(r.runDir, 'provenance.json'), 'utf8')) as { simulated: boolean; nodes: unknown[] };
  expect(provenance).toMatchObject({ simulated: true, nodes: [expect.anything(), expect.anything()] });
  const run = JSON.parse(readFileSync(path.join(r.runDir, 'run.json'), 'utf8')) as { timeline: { key: string; what: string; end?: string; outcome?: string }[] };
  expect(run.timeline.map((t) => t.key)).toEqual(expect.arrayContaining(['fragvisor/prepare-hosts', 'fragvisor/E1-n2', 'giantvm/E3-n2', 'provenance']));
  expect(run.timeline.every((t) => t.end !== undefined && t.outcome === 'ok')).toBe(true);
  expect(file).toMatchObject({ simulated: true, count: expected.length, label: expect.stringContaining('SIMULATED') });
  // Every measurement has numbers and its raw output in the run store.
  for (const m of file.measurements) {
    expect(Object.keys(m.metrics).length).toBeGreaterThan(0);
    expect(readFileSync(path.join(r.runDir, m.raw), 'utf8').length).toBeGreaterThan(0);
  }
  // One VM per epoch: lkvm on the origin for FragVisor, qemu on every node for GiantVM.
  expect(counter('node0', 'lkvm')).toBe(EXPERIMENTS.length);
  expect(counter('node1', 'qemu')).toBe(EXPERIMENTS.length);
});

it('resumeFrom: a run adopts what an earlier one measured and measures nothing again', async () => {
  const first = (await (await start({ hypervisors: ['fragvisor'], experiments: ['E2'] })).result()) as ReproduceClaimsResult;
  const lkvm = counter('node0', 'lkvm');
  const again = (await (await start({ hypervisors: ['fragvisor'], experiments: ['E2'], resumeFrom: first.runId })).result()) as ReproduceClaimsResult;
  expect(again.epochs).toEqual([{ epoch: 'fragvisor/E2-n2', measured: 0, reused: 1, attempts: 0 }]);
  expect(counter('node0', 'lkvm')).toBe(lkvm);
  expect(results(again).measurements.map((m) => m.metrics)).toEqual(results(first).measurements.map((m) => m.metrics));
});

it('a baseline file instead of GiantVM: GiantVM is not measured, the run records the file it used', async () => {
  const qemu = counter('node1', 'qemu');
  const file = path.join(PROJECT_ROOT, 'config/baselines/example-giantvm.yaml');
  const r = (await (await start({ experiments: ['E2'], baseline: file })).result()) as ReproduceClaimsResult;
  expect(r.baseline).toMatchObject({ kind: 'file', file, entries: 3, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  expect(r.epochs.map((e) => e.epoch)).toEqual(['fragvisor/E2-n2']);
  expect(counter('node1', 'qemu')).toBe(qemu);
  expect(JSON.parse(readFileSync(path.join(r.runDir, 'run.json'), 'utf8'))).toMatchObject({ baseline: { kind: 'file', file } });
  expect(existsSync(path.join(r.runDir, 'baseline.json'))).toBe(true);
});

it('a guest that does not boot costs that epoch one more boot cycle, nothing else', async () => {
  const lkvm = counter('node0', 'lkvm');
  sim.faults.add({ node: 'node0', step: 'guest-boot' });
  const r = (await (await start({ hypervisors: ['fragvisor'], experiments: ['E1'] })).result()) as ReproduceClaimsResult;
  expect(r.epochs).toEqual([expect.objectContaining({ epoch: 'fragvisor/E1-n2', attempts: 2, measured: 2 })]);
  expect(counter('node0', 'lkvm')).toBe(lkvm + 2);
});

it('a VM that dies during the benchmarks: one more boot cycle, and what was measured is not measured again', async () => {
  const lkvm = counter('node0', 'lkvm');
  const h = await start({ hypervisors: ['fragvisor'], experiments: ['E3'] });
  const dir = path.join(process.env.AE_RUNS_DIR!, h.workflowId, 'measurements');
  // Each measurement file with its time; none until they all parse (one may be half written as we read).
  const measured = () => {
    try {
      return new Map(readdirSync(dir).map((f) => [f, (JSON.parse(readFileSync(path.join(dir, f), 'utf8')) as { measuredAt: string }).measuredAt]));
    } catch {
      return new Map<string, string>();
    }
  };
  let before = new Map<string, string>();
  await waitUntil('two E3 measurements', () => (before = measured()).size >= 2, 240_000, 200);
  // The VM's death: every lkvm on the origin killed (as the kernel's OOM killer or a crash would).
  // (`[l]kvm`: the pattern must not match this very ssh session's command line)
  expect((await openssh(sim, 'node0', 'sudo pkill -KILL -f "[l]kvm run"')).code).toBe(0);
  const r = (await h.result()) as ReproduceClaimsResult;
  expect(r.epochs).toEqual([expect.objectContaining({ epoch: 'fragvisor/E3-n2', attempts: 2 })]);
  expect(counter('node0', 'lkvm')).toBe(lkvm + 2);
  const file = results(r);
  expect(file.count).toBe(benchVariants('E3', 2, BENCH).length);
  // What was measured before the VM died was not measured again.
  for (const [f, measuredAt] of before) {
    expect((JSON.parse(readFileSync(path.join(r.runDir, 'measurements', f), 'utf8')) as { measuredAt: string }).measuredAt).toBe(measuredAt);
  }
});
