import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { WorkflowFailedError, type Client } from '@temporalio/client';
import { CancelledFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { findNode, sshTarget } from '../../activities/cluster';
import { classified } from '../../activities/failures';
import { followRemoteJob, type RemoteJobSpec } from '../../activities/remoteJob';
import { stepLog } from '../../activities/runStore';
import { SshPool } from '../../activities/ssh/pool';
import { loadProfile, type LoadedProfile } from '../../config/load';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import type { FollowJobInput, FollowJobOutput } from '../fixtures/workflows/remoteJob';
import { waitUntil } from '../helpers/sim';
import { testAddress, testClient, uniqueTaskQueue } from '../helpers/temporal';

/**
 * followRemoteJob inside a real activity on a real worker and dev server: a retried attempt resumes
 * from the offset the failed one heartbeated and reattaches to the same job; cancelling the workflow
 * kills the job's process group on the node.
 */

jest.setTimeout(60_000);

let dir: string;
let sim: SimCluster;
let loaded: LoadedProfile;
let pool: SshPool;
let client: Client;
let closeClient: () => Promise<void>;
let worker: Worker;
let running: Promise<void>;
let connection: NativeConnection;
const taskQueue = uniqueTaskQueue('remote-job');
const runId = `remote-job-activity-${process.pid}`;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-remote-job-act-'));
  sim = await startSimCluster({ nodes: 1, stateDir: dir, timeScale: 0, bmc: false });
  loaded = loadProfile(sim.profileFile);
  pool = new SshPool();
  ({ client, close: closeClient } = await testClient());
  connection = await NativeConnection.connect({ address: testAddress() });
  worker = await Worker.create({
    connection,
    taskQueue,
    workflowsPath: require.resolve('../fixtures/workflows/remoteJob'),
    activities: {
      async followJob({ node, runId: run, spec }: FollowJobInput): Promise<FollowJobOutput> {
        const { info } = Context.current();
        const resumedFrom: unknown = info.heartbeatDetails;
        const target = sshTarget(findNode(loaded, node));
        const result = await classified(() => followRemoteJob(pool, target, loaded.profile.ssh, spec, { runId: run, node, timeoutMs: 50_000, pollMs: 100 }));
        return { result, attempt: info.attempt, resumedFrom };
      },
    },
  });
  running = worker.run();
}, 120_000);

afterAll(async () => {
  worker?.shutdown();
  await running;
  await connection?.close();
  await closeClient?.();
  await pool?.close();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const jobFile = (key: string, file: string) => path.join(sim.node('node0').homeDir, 'ae', '.fragvisor-ae/jobs', key, file);
const read = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};

describe('followRemoteJob in an activity', () => {
  it('a retried attempt resumes from the heartbeated offset and reattaches to the same job', async () => {
    const key = `activity-retry-${Date.now()}`;
    const lines = Array.from({ length: 120 }, (_, i) => `line ${i + 1}\n`).join('');
    const spec: RemoteJobSpec = { key, argv: ['bash', '-c', 'echo x >> starts; for i in $(seq 1 120); do echo "line $i"; sleep 0.05; done'], cwd: '/home/ae' };
    const startsBefore = read(path.join(sim.node('node0').homeDir, 'ae', 'starts'));
    const handle = await client.workflow.start('followJobWorkflow', { taskQueue, workflowId: key, args: [{ node: 'node0', runId, spec }] });
    // Well past the heartbeat throttle (0.8 x 3 s), so the server holds a heartbeat with a real offset.
    await waitUntil('the job to be 4 s in', () => read(jobFile(key, 'log')).split('\n').length > 80, 20_000);
    sim.faults.add({ node: 'node0', step: 'ssh-drop', afterMs: 0 }); // attempt 1's next poll drops
    const out = (await handle.result()) as FollowJobOutput;
    expect(out.attempt).toBe(2);
    expect(out.resumedFrom).toMatchObject({ key, offset: expect.any(Number) });
    expect((out.resumedFrom as { offset: number }).offset).toBeGreaterThan(0);
    expect(out.result).toMatchObject({ exitCode: 0, reattached: true, logBytes: lines.length });
    expect(readFileSync(stepLog(runId, 'node0', key).file, 'utf8')).toBe(lines);
    expect(read(path.join(sim.node('node0').homeDir, 'ae', 'starts'))).toBe(`${startsBefore}x\n`);
  });

  it('cancelling the workflow kills the job on the node', async () => {
    const key = `activity-cancel-${Date.now()}`;
    const spec: RemoteJobSpec = { key, argv: ['bash', '-c', 'sleep 311 & echo ready; sleep 312'] };
    const handle = await client.workflow.start('followJobWorkflow', { taskQueue, workflowId: key, args: [{ node: 'node0', runId, spec }] });
    await waitUntil('the job to run', () => read(jobFile(key, 'log')) === 'ready\n', 20_000);
    await handle.cancel();
    const err = await handle.result().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(WorkflowFailedError);
    expect((err as WorkflowFailedError).cause).toBeInstanceOf(CancelledFailure);
    expect(read(jobFile(key, 'rc')).trim()).toBe('killed:cancelled');
    const ps = await pool.exec(sshTarget(findNode(loaded, 'node0')), loaded.profile.ssh, 'ps -e -o stat=,args=', { timeoutMs: 10_000 });
    expect(ps.stdout.split('\n').filter((l) => /sleep 31[12]/.test(l) && !l.trim().startsWith('Z'))).toEqual([]);
  });
});
