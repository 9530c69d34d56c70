import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { findNode, sshTarget } from '../../activities/cluster';
import { killRemoteJob, readRemoteJob, startRemoteJob, type RemoteJobSpec } from '../../activities/remoteJob';
import { stepLog } from '../../activities/runStore';
import { SshPool } from '../../activities/ssh/pool';
import type { SshTarget } from '../../activities/ssh/route';
import { loadProfile, type LoadedProfile } from '../../config/load';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { waitUntil } from '../helpers/sim';

/**
 * Remote jobs that outlive the activity that starts them (a VM's launcher): start, read and kill as
 * separate calls on a simulated node over real SSH; the run-store copy stays byte-exact whatever
 * offsets the reads are given.
 */

jest.setTimeout(60_000);

let dir: string;
let sim: SimCluster;
let loaded: LoadedProfile;
let pool: SshPool;
let target: SshTarget;
const runId = `remote-job-detached-${process.pid}`;
let seq = 0;
const newKey = (what: string) => `${what}-${Date.now()}-${seq++}`;
const remoteLog = (key: string) => readFileSync(path.join(sim.node('node0').homeDir, 'ae', `.fragvisor-ae/jobs/${key}/log`));
const localLog = (key: string) => readFileSync(stepLog(runId, 'node0', key).file);

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-rj-detached-'));
  sim = await startSimCluster({ nodes: 1, stateDir: dir, timeScale: 0, bmc: false });
  loaded = loadProfile(sim.profileFile);
  target = sshTarget(findNode(loaded, 'node0'));
  pool = new SshPool();
}, 60_000);

afterAll(async () => {
  await pool?.close();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const start = (spec: RemoteJobSpec) => startRemoteJob(pool, target, loaded.profile.ssh, spec);
const read = (key: string, offset: number) => readRemoteJob(pool, target, loaded.profile.ssh, { runId, node: 'node0', key, offset });
const kill = (key: string) => killRemoteJob(pool, target, loaded.profile.ssh, { key, sudo: false });

describe('detached remote jobs', () => {
  it('start is idempotent; reads copy the log exactly from any offset; kill ends the group once', async () => {
    const key = newKey('long');
    // 9 MiB (more than two polls' worth), then it keeps running.
    const spec: RemoteJobSpec = { key, argv: ['bash', '-c', 'head -c 9437184 /dev/urandom | base64; echo ready; exec sleep 120'] };
    expect(await start(spec)).toEqual({ key, reattached: false });
    expect(await start(spec)).toEqual({ key, reattached: true });
    await waitUntil('the log to be written', () => remoteLog(key).subarray(-6).toString() === 'ready\n', 30_000, 100);

    const all = await read(key, 0);
    expect(all).toMatchObject({ state: 'running', log: `logs/node0/${key}.log`, tail: expect.arrayContaining(['ready']) });
    expect(all.offset).toBe(remoteLog(key).length);
    expect(localLog(key).equals(remoteLog(key))).toBe(true);
    expect(all.startMs).toBeLessThanOrEqual(all.nowMs);
    // Nothing new: nothing appended. An earlier offset: the copy is cut there and completed again.
    expect((await read(key, all.offset)).offset).toBe(all.offset);
    expect((await read(key, 100)).offset).toBe(all.offset);
    expect(localLog(key).equals(remoteLog(key))).toBe(true);

    expect(await kill(key)).toEqual({ state: 'killed', killed: true });
    expect(await kill(key)).toEqual({ state: 'killed', killed: false });
    expect(await read(key, all.offset)).toMatchObject({ state: 'killed', reason: 'killed:cancelled', offset: all.offset });
    expect((await pool.exec(target, loaded.profile.ssh, 'pgrep -x sleep || true')).stdout).toBe('');
  });

  it('a job that ends by itself: its exit code; an unknown key: missing', async () => {
    const key = newKey('short');
    await start({ key, argv: ['bash', '-c', 'echo bye; exit 3'] });
    await waitUntil('the job to end', async () => (await read(key, 0)).state === 'finished', 20_000, 100);
    expect(await read(key, 0)).toMatchObject({ state: 'finished', exitCode: 3, tail: ['bye'], offset: 4 });
    expect(await kill(key)).toEqual({ state: 'finished', killed: false });
    expect(await read(newKey('none'), 0)).toMatchObject({ state: 'missing', offset: 0, tail: [] });
  });
});
