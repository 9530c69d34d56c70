import { readFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { SimCluster } from '../../sim/cluster';
import type { ReproduceClaimsInput } from '../../workflows/inputs';
import type { RunProgress } from '../../workflows/progress';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import { startRunStack, type RunStack } from '../helpers/runStack';
import { openssh, waitUntil } from '../helpers/sim';

/**
 * reproduceClaims preparing the simulated 4-node cluster end to end, through a real worker and dev
 * server, over real SSH: host kernels, the guest kernel, proven reboots, the messaging layer; the
 * lease between two runs; skips on a second run; the cures and the clear failures.
 */

jest.setTimeout(240_000);

const NODES = ['node0', 'node1', 'node2', 'node3'];
let stack: RunStack;
let sim: SimCluster;

beforeAll(async () => {
  // A short messaging-layer timeout, so that a hung insmod is declared hung in seconds.
  stack = await startRunStack('reproduce', { nodes: 4, timeouts: { messagingLayer: 20 } });
  ({ sim } = stack);
});

afterAll(async () => {
  await stack?.stop();
});

const start = (extra: Partial<ReproduceClaimsInput> = {}) => stack.start({ experiments: [], hypervisors: ['fragvisor'], ...extra });

const counts = (action: string) => Object.fromEntries(NODES.map((n) => [n, sim.world.node(n).counters[action] ?? 0]));
const progressOf = (h: WorkflowHandle) => h.query<RunProgress>('progress');

/** The failure's root cause message, through the child and activity wrappers. */
async function failureOf(h: WorkflowHandle): Promise<{ message: string; type?: string }> {
  const err = await h.result().then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause = (err as WorkflowFailedError).cause as (Error & { cause?: Error; type?: string }) | undefined;
  const message = cause?.message ?? '';
  while (cause?.cause) cause = cause.cause as typeof cause;
  return { message: `${message} / ${cause?.message ?? ''}`, type: cause?.type };
}

it('prepares 4 nodes end to end; a second run waits for the lease, then skips every build', async () => {
  const first = await start();
  await waitUntil('the first run to hold the cluster', async () => ['planning', 'prepare hosts'].includes((await progressOf(first)).phase), 60_000, 100);
  const second = await start();
  await waitUntil('the second run to wait for the cluster', async () => (await progressOf(second)).phase === 'waiting for the cluster', 60_000, 100);
  expect((await progressOf(second)).waitingFor).toMatch(/another run holds sim/);

  const a = (await first.result()) as ReproduceClaimsResult;
  expect(a.prepared).toHaveLength(1);
  const fv = a.prepared[0];
  expect(fv.kernels.map((k) => [k.node, k.release, k.skipped])).toEqual(NODES.map((n) => [n, '4.4.137-pop-hype', false]));
  expect(fv.guestKernel).toMatch(/bzImage$/);
  expect(fv.messagingLayer).toEqual({ nodes: 4, attempts: 1 });
  for (const n of NODES) expect(fv.bootIds[n]).toBe(sim.node(n).state.bootId);
  expect(readFileSync(path.join(a.runDir, 'plan.json'), 'utf8')).toContain('fragvisor/messaging-layer');
  // One host build + install per node; the guest kernel is one more build on the origin only.
  expect(counts('make:install')).toEqual({ node0: 1, node1: 1, node2: 1, node3: 1 });
  const builds = counts('make:all');
  expect(counts('insmod')).toEqual({ node0: 1, node1: 1, node2: 1, node3: 1 });

  const b = (await second.result()) as ReproduceClaimsResult;
  expect(b.prepared[0].kernels.every((k) => k.skipped)).toBe(true);
  expect(counts('make:all')).toEqual(builds);
  expect(counts('make:install')).toEqual({ node0: 1, node1: 1, node2: 1, node3: 1 });
  expect(b.prepared[0].messagingLayer).toEqual({ nodes: 4, attempts: 1 });
  const done = await progressOf(second);
  expect(done.phase).toBe('done');
  expect(Object.values(done.nodes).map((n) => n.state)).toEqual(['done', 'done', 'done', 'done']);
});

it('an insmod hang is cured by a reboot cycle and a second attempt', async () => {
  const reboots = counts('reboot');
  sim.faults.add({ node: 'node2', step: 'insmod-hang' });
  const h = await start();
  const r = (await h.result()) as ReproduceClaimsResult;
  expect(r.prepared[0].messagingLayer).toEqual({ nodes: 4, attempts: 2 });
  // The boot into the kernel, then the cycle that cures the hang: two reboots per node, no more.
  for (const n of NODES) expect(sim.world.node(n).counters.reboot ?? 0).toBe(reboots[n] + 2);
});

it('a kernel build failure fails the run with the failing lines and the node, before any reboot', async () => {
  // Forget node1's install so that it builds again, into the fault.
  expect((await openssh(sim, 'node1', 'rm -f ~/.fragvisor-ae/kernel/fragvisor.json')).code).toBe(0);
  sim.faults.add({ node: 'node1', step: 'kernel-build' });
  const reboots = counts('reboot');
  const h = await start();
  const failure = await failureOf(h);
  expect(failure.message).toMatch(/node1/);
  expect(failure.message).toMatch(/error|\*\*\*/i);
  expect(counts('reboot')).toEqual(reboots);
  expect((await progressOf(h)).nodes.node1.state).toBe('failed');
});

it('a wrong origin flag is caught before the messaging layer', async () => {
  const tree = '/home/ae/FragVisor/fragvisor-linux';
  // node2's debug.h defines the origin flag and its directory cannot be edited: the flag cannot be cleared.
  const sabotage = `cd ${tree}/include/popcorn && grep -q '^#define CONFIG_POPCORN_ORIGIN_NODE' debug.h || echo '#define CONFIG_POPCORN_ORIGIN_NODE' >> debug.h; chmod a-w . debug.h`;
  expect((await openssh(sim, 'node2', sabotage)).code).toBe(0);
  const insmods = counts('insmod');
  try {
    const h = await start();
    const failure = await failureOf(h);
    expect(failure.message).toMatch(/node2/);
    expect(failure.message).toMatch(/CONFIG_POPCORN_ORIGIN_NODE|origin/i);
    expect(counts('insmod')).toEqual(insmods);
  } finally {
    await openssh(sim, 'node2', `chmod u+w ${tree}/include/popcorn ${tree}/include/popcorn/debug.h`);
  }
});

it('a dry run writes the plan to the run store and runs nothing on the cluster', async () => {
  const before = { make: counts('make:all'), reboot: counts('reboot') };
  const r = (await (await start({ dryRun: true })).result()) as ReproduceClaimsResult;
  expect(r).toMatchObject({ dryRun: true, prepared: [], cluster: 'sim', simulated: true });
  const plan = JSON.parse(readFileSync(path.join(r.runDir, 'plan.json'), 'utf8')) as { hash: string; stages: { key: string }[] };
  expect(plan.hash).toBe(r.planHash);
  expect(plan.stages.map((s) => s.key)).toEqual(['fragvisor/prepare-hosts', 'fragvisor/reboot', 'fragvisor/messaging-layer']);
  expect({ make: counts('make:all'), reboot: counts('reboot') }).toEqual(before);
});

it('a bad input fails at once, non-retryably, naming the field', async () => {
  const h = await start({ nodeCounts: [8] });
  const failure = await failureOf(h);
  expect(failure.type).toBe('InvalidInput');
  expect(failure.message).toMatch(/nodeCounts: expected at most 4 nodes/);
  const wrongType = await stack.start({ repetitions: 'three' as unknown as number });
  const f2 = await failureOf(wrongType);
  expect(f2.type).toBe('InvalidInput');
  expect(f2.message).toMatch(/repetitions/);
});
