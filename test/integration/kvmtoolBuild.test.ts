import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import type { SimCluster } from '../../sim/cluster';
import type { BenchSettingsInput } from '../../workflows/commands/bench';
import type { ReproduceClaimsInput } from '../../workflows/inputs';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import type { TimelineSpan } from '../../workflows/timeline';
import { startRunStack, type RunStack } from '../helpers/runStack';
import { openssh } from '../helpers/sim';
import { KVMTOOL } from '../helpers/simProcedure';

/**
 * reproduceClaims with a kvmtoolCommit on the simulated cluster (2 nodes, E2 cut down): the origin
 * checks the commit out and builds lkvm once, before the first FragVisor VM; a resumed run with the
 * same commit builds nothing; a commit the checkout lacks, or one that does not compile, stops the
 * run at once with the field and the fix. The checkout's second commit is made on the node, with
 * the node's own git.
 */

jest.setTimeout(240_000);

const BENCH: BenchSettingsInput = { openLambda: { gapSeconds: 0 } };

let stack: RunStack;
let sim: SimCluster;
let first: string;
let second: string;

const sh = async (node: string, command: string): Promise<string> => {
  const r = await openssh(sim, node, command);
  if (r.code !== 0) throw new Error(`${node}: ${command}: exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
};
const counter = (node: string, action: string) => sim.world.node(node).counters[action] ?? 0;
const start = (extra: Partial<ReproduceClaimsInput>) => stack.start({ hypervisors: ['fragvisor'], experiments: ['E2'], nodeCounts: [2], repetitions: 1, bench: BENCH, ...extra });

/** The root cause's type and the whole chain's messages. */
async function failureOf(h: WorkflowHandle): Promise<{ message: string; type?: string }> {
  const err = await h.result().then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(WorkflowFailedError);
  const messages: string[] = [];
  let cause = err as (Error & { cause?: Error; type?: string }) | undefined;
  let type: string | undefined;
  for (; cause; cause = cause.cause as typeof cause) {
    messages.push(cause.message);
    type = cause.type ?? type;
  }
  return { message: messages.join(' / '), type };
}

beforeAll(async () => {
  stack = await startRunStack('kvmtool', { nodes: 2, timeouts: { messagingLayer: 20, vmBoot: 30 } });
  ({ sim } = stack);
  // A second commit on the origin's checkout; HEAD back on the first, where the runs find it.
  first = await sh('node0', `git -C ${KVMTOOL} rev-parse HEAD`);
  second = await sh(
    'node0',
    `cd ${KVMTOOL} && echo 'a second commit' >> README && git -c user.name=t -c user.email=t@example.invalid commit -qam second && git rev-parse HEAD && git checkout -q --detach HEAD~1`,
  );
  expect(await sh('node0', `git -C ${KVMTOOL} rev-parse HEAD`)).toBe(first);
});

afterAll(async () => {
  await stack?.stop();
});

let built: ReproduceClaimsResult;

it('kvmtoolCommit: checked out and built once on the origin only, before the first VM; provenance names it', async () => {
  built = (await (await start({ kvmtoolCommit: second })).result()) as ReproduceClaimsResult;
  expect(built.kvmtool).toMatchObject({ node: 'node0', commit: second, skipped: false, lkvmSha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  expect([counter('node0', 'make:kvmtool'), counter('node1', 'make:kvmtool')]).toEqual([1, 0]);
  expect(await sh('node0', `git -C ${KVMTOOL} rev-parse HEAD`)).toBe(second);
  expect(await sh('node0', `grep '^# built from' ${KVMTOOL}/lkvm`)).toBe(`# built from ${second}`);
  expect(await sh('node0', `sha256sum < ${KVMTOOL}/lkvm | cut -c1-64`)).toBe(built.kvmtool?.lkvmSha256);
  // The build log in the run store, as kvmtool's make ends it.
  const log = readFileSync(path.join(built.runDir, built.kvmtool!.logs[1]), 'utf8');
  expect(log.trimEnd().split('\n').at(-1)).toBe('  LINK     lkvm');
  // The VM ran with it, after the build.
  expect(counter('node0', 'lkvm')).toBe(1);
  const { timeline } = JSON.parse(readFileSync(path.join(built.runDir, 'run.json'), 'utf8')) as { timeline: TimelineSpan[] };
  const span = (key: string) => timeline.find((t) => t.key === key)!;
  expect(span('fragvisor/kvmtool')).toMatchObject({ what: 'build', outcome: 'ok' });
  expect(span('fragvisor/kvmtool').end! <= span('fragvisor/E2-n2').start).toBe(true);
  const plan = JSON.parse(readFileSync(path.join(built.runDir, 'plan.json'), 'utf8')) as { kvmtoolCommit: string; stages: { key: string }[] };
  expect(plan).toMatchObject({ kvmtoolCommit: second });
  expect(plan.stages[0].key).toBe('fragvisor/kvmtool');
  const provenance = JSON.parse(readFileSync(path.join(built.runDir, 'provenance.json'), 'utf8')) as { sources: { kvmtool: { commit: string } } };
  expect(provenance.sources.kvmtool).toMatchObject({ node: 'node0', path: KVMTOOL, commit: second });
});

it('a resumed run with the same kvmtoolCommit builds nothing', async () => {
  const again = (await (await start({ kvmtoolCommit: second, resumeFrom: built.runId })).result()) as ReproduceClaimsResult;
  expect(again.kvmtool).toMatchObject({ commit: second, skipped: true, lkvmSha256: built.kvmtool?.lkvmSha256, reason: expect.stringMatching(/^lkvm already built from/) });
  expect(counter('node0', 'make:kvmtool')).toBe(1);
});

it('a kvmtoolCommit the checkout lacks fails at once, non-retryably, naming the field and the fix; nothing else runs', async () => {
  const missing = randomBytes(20).toString('hex');
  const kernelBuilds = counter('node0', 'make:all');
  const failure = await failureOf(await start({ kvmtoolCommit: missing }));
  expect(failure.type).toBe('KvmtoolSourceMissing');
  expect(failure.message).toContain(`kvmtoolCommit ${missing} is not in ${KVMTOOL}`);
  expect(failure.message).toContain('fetch it on the origin');
  expect([counter('node0', 'make:kvmtool'), counter('node0', 'make:all')]).toEqual([1, kernelBuilds]);
  expect(await sh('node0', `git -C ${KVMTOOL} rev-parse HEAD`)).toBe(second);
});

it('a kvmtool build that does not compile fails the run with the compiler lines (kvmtool-build fault)', async () => {
  sim.faults.add({ node: 'node0', step: 'kvmtool-build' });
  const failure = await failureOf(await start({ kvmtoolCommit: first }));
  expect(failure.type).toBe('KvmtoolBuildFailed');
  expect(failure.message).toMatch(/the kvmtool build .* failed \(make exit code 2\)/);
  expect(failure.message).toContain("error: implicit declaration of function 'popcorn_vcpu_node_of'");
  expect(counter('node0', 'make:kvmtool')).toBe(2);
  // lkvm is the last good build's, and it is not recorded as the first commit's.
  expect(await sh('node0', `grep '^# built from' ${KVMTOOL}/lkvm`)).toBe(`# built from ${second}`);
  expect(await sh('node0', 'cat ~/.fragvisor-ae/kvmtool/build.json')).toContain(second);
});
