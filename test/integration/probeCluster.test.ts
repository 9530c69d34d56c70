import { copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { ProbeSummary } from '../../activities/probeTypes';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { openssh } from '../helpers/sim';
import { startTestWorker, testClient, uniqueTaskQueue } from '../helpers/temporal';
import { testTempDir } from '../helpers/tempDir';

let sim: SimCluster;
let client: Client;
let closeClient: () => Promise<void>;
let stopWorker: () => Promise<void>;
const taskQueue = uniqueTaskQueue('probe');

beforeAll(async () => {
  sim = await startSimCluster({ nodes: 4, stateDir: testTempDir('ae-sim-probe-'), rebootDownMs: 500 });
  ({ client, close: closeClient } = await testClient());
  ({ stop: stopWorker } = await startTestWorker(taskQueue));
});

afterAll(async () => {
  await stopWorker?.();
  await closeClient?.();
  await sim?.stop();
});

const probe = (input: unknown, id: string) =>
  client.workflow.execute('probeCluster', { taskQueue, workflowId: `${id}-${Date.now()}`, args: [input], workflowExecutionTimeout: '2 minutes' });

/** The workflow's failure, unwrapped down to the ApplicationFailure that caused it. */
async function failureOf(run: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(WorkflowFailedError);
  let cause: unknown = (err as WorkflowFailedError).cause;
  while (cause instanceof Error && !(cause instanceof ApplicationFailure)) cause = cause.cause;
  expect(cause).toBeInstanceOf(ApplicationFailure);
  return cause as ApplicationFailure;
}

describe('probeCluster on the simulated cluster, through a real worker and real SSH', () => {
  it('reports every node in profile order with the state the nodes themselves report', async () => {
    const workflowId = `probe-ok-${Date.now()}`;
    const summary = (await client.workflow.execute('probeCluster', { taskQueue, workflowId, args: [{ cluster: sim.profileFile }] })) as ProbeSummary;
    expect(summary).toMatchObject({ cluster: 'sim', simulated: true, reachable: 4, total: 4 });
    expect(summary.nodes.map((n) => n.node)).toEqual(['node0', 'node1', 'node2', 'node3']);
    expect(summary.nodes.map((n) => n.origin)).toEqual([true, false, false, false]);
    for (const n of summary.nodes) {
      // Cross-check against plain OpenSSH, independent of our SSH layer.
      const viaOpenSsh = (await openssh(sim, n.node, 'cat /proc/sys/kernel/random/boot_id; uname -r; test -d /home/ae/FragVisor && echo yes || echo no')).stdout.trim().split('\n');
      expect([n.bootId, n.kernelRelease, n.fragvisorTree ? 'yes' : 'no']).toEqual(viaOpenSsh);
      expect(n.uptimeSeconds).toBeGreaterThanOrEqual(0);
    }

    const description = await client.workflow.getHandle(workflowId).describe();
    expect(description.searchAttributes).toMatchObject({ AeCluster: ['sim'], AePhase: ['done'] });
    const progress = await client.workflow.getHandle(workflowId).query<{ phase: string; nodes: Record<string, string> }>('progress');
    expect(progress).toEqual({ phase: 'done', nodes: { node0: 'reachable', node1: 'reachable', node2: 'reachable', node3: 'reachable' } });
  });

  it.each([
    { name: 'a wrong type', input: { cluster: 7 }, field: /cluster/ },
    { name: 'shell metacharacters', input: { cluster: 'sim;reboot' }, field: /cluster/ },
    { name: 'an unknown field', input: { cluster: 'sim', nodes: 3 }, field: /nodes/ },
  ])('fails at once, non-retryably, on $name, naming the field', async ({ input, field }) => {
    const started = Date.now();
    const failure = await failureOf(probe(input, 'probe-bad'));
    expect(failure.type).toBe('InvalidInput');
    expect(failure.nonRetryable).toBe(true);
    expect(failure.message).toMatch(field);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('fails non-retryably on an unknown cluster, saying where profiles live', async () => {
    const failure = await failureOf(probe({ cluster: 'no-such-cluster' }, 'probe-unknown'));
    expect(failure.type).toBe('InvalidConfigError');
    expect(failure.message).toMatch(/no profile at .*no-such-cluster\.yaml/);
  });

  it('refuses a node whose host key is not in known_hosts, naming node and fingerprint, without retrying for minutes', async () => {
    const dir = testTempDir('ae-probe-keys-');
    const knownHosts = readFileSync(path.join(sim.stateDir, 'known_hosts'), 'utf8');
    const node1Port = sim.node('node1').port;
    writeFileSync(path.join(dir, 'known_hosts'), knownHosts.split('\n').filter((l) => !l.startsWith(`[127.0.0.1]:${node1Port} `)).join('\n'));
    copyFileSync(path.join(sim.stateDir, 'id_ed25519'), path.join(dir, 'id_ed25519'));
    const profile = readFileSync(sim.profileFile, 'utf8').replace(/knownHosts: .*/, `knownHosts: ${path.join(dir, 'known_hosts')}`).replace(/identityFile: .*/, `identityFile: ${path.join(dir, 'id_ed25519')}`).replace(/configFile: .*/, `configFile: ${path.join(dir, 'none')}`);
    writeFileSync(path.join(dir, 'cluster.yaml'), profile);

    const started = Date.now();
    const summary = (await probe({ cluster: path.join(dir, 'cluster.yaml') }, 'probe-hostkey')) as ProbeSummary;
    expect(Date.now() - started).toBeLessThan(20_000);
    expect(summary.reachable).toBe(3);
    const node1 = summary.nodes.find((n) => n.node === 'node1')!;
    expect(node1.reachable).toBe(false);
    expect(node1.error).toMatch(/node1/);
    expect(node1.error).toMatch(/SHA256:[A-Za-z0-9+/]{43}/);
  });
});
