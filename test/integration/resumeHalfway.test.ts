import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { BenchSettingsInput } from '../../workflows/commands/bench';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import { spawnAe } from '../helpers/processes';
import { startRunStack, type RunStack } from '../helpers/runStack';
import { waitUntil } from '../helpers/sim';
import { testAddress } from '../helpers/temporal';

/**
 * A run terminated half-way (in E3, after its kernels were built and E1 was measured) and resumed
 * with `ae resume`: the new run builds no kernel again and measures nothing the first one finished,
 * counted on the simulated cluster, and completes with every measurement.
 */

jest.setTimeout(300_000);

const BENCH: BenchSettingsInput = {
  lemp: { requests: 20, concurrency: 5, levels: ['25ms', '250ms'] },
  network: { requests: 50, concurrency: 5, sizes: [1, 4096, 65536], settleSeconds: 1 },
  openLambda: { gapSeconds: 0 },
  storage: { mib: 16 },
  npb: { kernels: ['ep.B'] },
};

let stack: RunStack;

beforeAll(async () => {
  stack = await startRunStack('resume', { nodes: 2, timeouts: { messagingLayer: 20, vmBoot: 30 } });
});

afterAll(async () => {
  await stack?.stop();
});

interface ResultsFile {
  measurements: { key: { experiment: string; variant: string; repetition: number } }[];
}
const results = (runDir: string) => JSON.parse(readFileSync(path.join(runDir, 'results.json'), 'utf8')) as ResultsFile;
/** Raw benchmark outputs a run wrote (one per attempt of a measurement). */
const rawFiles = (runDir: string, experiment: string) => {
  try {
    return readdirSync(path.join(runDir, 'raw', 'fragvisor', `${experiment}-n2`)).length;
  } catch {
    return 0;
  }
};
const counters = (action: string) => stack.sim.nodes.map((n) => stack.sim.world.node(n.name).counters[action] ?? 0);

it('ae resume of a run terminated in E3: no kernel built again, E1 not measured again, the run completes', async () => {
  const first = await stack.start({ nodeCounts: [2], repetitions: 1, hypervisors: ['fragvisor'], experiments: ['E1', 'E3'], bench: BENCH });
  const runDir = path.join(process.env.AE_RUNS_DIR!, first.workflowId);
  // Half-way: E1 recorded, E3 under way (its first page size measured).
  await waitUntil('E3 to be half-way', () => rawFiles(runDir, 'E3') >= 2, 180_000);
  await first.terminate('test: interrupted half-way');
  const builds = counters('make:all');
  const e1Raw = rawFiles(runDir, 'E1');
  const measuredBefore = results(runDir).measurements.length;
  expect(e1Raw).toBe(2);
  expect(measuredBefore).toBeGreaterThanOrEqual(3);

  const resumed = spawnAe(['resume', first.workflowId], { TEMPORAL_ADDRESS: testAddress(), TEMPORAL_NAMESPACE: 'default' });
  const { code } = await resumed.exited;
  expect({ code, out: resumed.output() }).toMatchObject({ code: 0 });
  const next = `${first.workflowId}-r1`;
  expect(resumed.output()).toContain(next);

  const r = (await stack.client.workflow.getHandle(next).result()) as ReproduceClaimsResult;
  expect(counters('make:all')).toEqual(builds); // kernels in place: nothing built again
  expect(rawFiles(r.runDir, 'E1')).toBe(0); // E1 adopted, not measured
  const all = results(r.runDir).measurements;
  expect(all.filter((m) => m.key.experiment === 'E1')).toHaveLength(2);
  // Every E3 variant once; the ones the first run finished were adopted, only the rest measured now.
  const e3 = all.filter((m) => m.key.experiment === 'E3').map((m) => m.key.variant);
  expect(new Set(e3).size).toBe(e3.length);
  expect(rawFiles(r.runDir, 'E3')).toBe(e3.length - (measuredBefore - 2));
  expect(r.measurements).toBe(all.length);
});
