import { createHash } from 'node:crypto';
import { createReadStream, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { ApplicationFailure } from '@temporalio/common';
import { findNode, sshTarget } from '../../activities/cluster';
import { asActivityFailure } from '../../activities/failures';
import { killRemoteJob, RemoteJobLostError, RemoteJobTimeoutError, runRemoteJob, startRemoteJob, SudoPasswordRequiredError, type RemoteJobOptions, type RemoteJobSpec } from '../../activities/remoteJob';
import { stepLog } from '../../activities/runStore';
import { SshConnectionLostError, SshError } from '../../activities/ssh/errors';
import { SshPool } from '../../activities/ssh/pool';
import { loadProfile, type LoadedProfile } from '../../config/load';
import { startSimCluster, type SimCluster } from '../../sim/cluster';

/**
 * Remote jobs on simulated nodes over real SSH: detached start, exact log copies in the run store,
 * reattaching (after completion, after an SSH drop, from a new pool), cancellation and timeout
 * killing the job's whole process group, a reboot losing the job, sudo wanting a password, and a
 * big log copied in bounded memory.
 */

jest.setTimeout(30_000);

let dir: string;
let sim: SimCluster;
let loaded: LoadedProfile;
let pool: SshPool;
const runId = `remote-job-test-${process.pid}`;
let seq = 0;
/** A fresh key per test, so that tests never see each other's jobs. */
const newKey = (what: string) => `${what}-${Date.now()}-${seq++}`;

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-remote-job-'));
  sim = await startSimCluster({ nodes: 2, stateDir: dir, timeScale: 0, bmc: false });
  loaded = loadProfile(sim.profileFile);
  pool = new SshPool();
});

afterAll(async () => {
  await pool?.close();
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const target = (node: string) => sshTarget(findNode(loaded, node));

function run(node: string, spec: RemoteJobSpec, extra: Partial<RemoteJobOptions> = {}, via: SshPool = pool) {
  return runRemoteJob(via, target(node), loaded.profile.ssh, spec, { runId, node, timeoutMs: 25_000, pollMs: 100, ...extra });
}

/** Host path of a file in the node user's home. */
const homeFile = (node: string, rel: string) => path.join(sim.node(node).homeDir, 'ae', rel);
const remoteLog = (node: string, key: string) => readFileSync(homeFile(node, `.fragvisor-ae/jobs/${key}/log`));
const jobFile = (node: string, key: string, file: string) => readFileSync(homeFile(node, `.fragvisor-ae/jobs/${key}/${file}`), 'utf8').trim();
const localLog = (node: string, key: string) => readFileSync(stepLog(runId, node, key).file);

/** One shell command on the node through the pool (real SSH), its stdout. */
async function sh(node: string, command: string): Promise<string> {
  const r = await pool.exec(target(node), loaded.profile.ssh, command, { timeoutMs: 10_000 });
  if (r.exitCode !== 0) throw new Error(`${command}: exit ${r.exitCode}: ${r.stderr}`);
  return r.stdout;
}

/** Processes on the node whose process group is `pgid` or whose command line matches `pattern` (ps inside the node). */
async function leftovers(node: string, pgid: string, pattern: RegExp): Promise<string[]> {
  const lines = (await sh(node, 'ps -e -o pgid=,stat=,args=')).split('\n').filter(Boolean);
  return lines.filter((l) => {
    const [group, stat, ...args] = l.trim().split(/\s+/);
    return !stat.startsWith('Z') && (group === pgid || pattern.test(args.join(' ')));
  });
}

/** Resolves with the run's outcome once `ready` says so (from its progress reports). */
function following(node: string, spec: RemoteJobSpec, ready: (p: { offset: number; lastLine?: string }) => boolean, extra: Partial<RemoteJobOptions> = {}, via?: SshPool) {
  let progress = { offset: 0 } as { offset: number; lastLine?: string };
  let onReady!: () => void;
  const isReady = new Promise<void>((r) => (onReady = r));
  const outcome = run(
    node,
    spec,
    {
      ...extra,
      onProgress: (p) => {
        progress = p;
        if (ready(p)) onReady();
      },
    },
    via,
  ).then(
    (result) => ({ result, error: undefined }),
    (error: unknown) => ({ result: undefined, error }),
  );
  return { isReady: Promise.race([isReady, outcome.then(() => Promise.reject(new Error('the job ended before it was ready')))]), outcome, progress: () => progress };
}

describe('remote jobs on a simulated node', () => {
  it('runs detached; the log lands in the run store byte for byte; a non-zero exit is a result', async () => {
    const key = newKey('basic');
    const script = String.raw`printf 'first\n'; printf '\000\377 binary\n'; sleep 0.3; printf 'from stdin: '; cat; printf 'no newline at end'; exit 7`;
    const result = await run('node0', { key, argv: ['bash', '-c', script], cwd: '/home/ae', stdin: 'hello\n' });
    const expected = Buffer.concat([Buffer.from('first\n'), Buffer.from([0, 0xff]), Buffer.from(' binary\nfrom stdin: hello\nno newline at end')]);
    expect(remoteLog('node0', key).equals(expected)).toBe(true);
    expect(localLog('node0', key).equals(expected)).toBe(true);
    expect(result).toMatchObject({ key, exitCode: 7, reattached: false, logBytes: expected.length, log: `logs/node0/${key}.log` });
    expect(result.tail).toEqual(['first', '\u0000\ufffd binary', 'from stdin: hello', 'no newline at end']);
    expect(result.durationMs).toBeGreaterThanOrEqual(300);
    expect(jobFile('node0', key, 'rc')).toBe('7');
  });

  it('a second call with the same key after completion reattaches and does not run the command again', async () => {
    const key = newKey('counter');
    const counter = `rj-counter-${key}`;
    const spec: RemoteJobSpec = { key, argv: ['bash', '-c', 'n=$(( $(cat "$1" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$1"; echo "run $n"; exit 3', 'job', counter], cwd: '/home/ae' };
    const first = await run('node1', spec);
    expect(first).toMatchObject({ exitCode: 3, reattached: false, tail: ['run 1'] });
    const second = await run('node1', spec);
    expect(second).toMatchObject({ exitCode: 3, reattached: true, tail: ['run 1'], logBytes: 6 });
    // From a resume offset: only the rest is copied, nothing twice.
    const third = await run('node1', spec, { resumeOffset: 4 });
    expect(third).toMatchObject({ exitCode: 3, reattached: true, logBytes: 6 });
    expect(localLog('node1', key).toString()).toBe('run 1\n');
    expect(readFileSync(homeFile('node1', counter), 'utf8')).toBe('1\n');
  });

  it('an SSH drop mid-job: a new call reattaches to the same running job; no byte lost or doubled', async () => {
    const key = newKey('drop');
    const starts = `rj-starts-${key}`;
    const spec: RemoteJobSpec = { key, argv: ['bash', '-c', 'echo started >> "$1"; for i in $(seq 1 40); do echo "line $i of the job"; sleep 0.05; done', 'job', starts], cwd: '/home/ae' };
    const offsets: number[] = [];
    const first = following('node1', spec, (p) => {
      if (p.offset > (offsets.at(-1) ?? 0)) offsets.push(p.offset);
      return offsets.length === 3;
    });
    await first.isReady;
    sim.faults.add({ node: 'node1', step: 'ssh-drop', afterMs: 0 }); // the next poll's connection drops under it
    const { error } = await first.outcome;
    expect(error).toBeInstanceOf(SshConnectionLostError);
    expect((error as SshConnectionLostError).retryable).toBe(true);
    // Resume from an older offset than what was copied, as after a throttled heartbeat: the extra bytes go.
    const resumeOffset = offsets[0];
    expect(localLog('node1', key).length).toBeGreaterThan(resumeOffset);

    const second = await run('node1', spec, { resumeOffset });
    const expected = Array.from({ length: 40 }, (_, i) => `line ${i + 1} of the job\n`).join('');
    expect(second).toMatchObject({ exitCode: 0, reattached: true, logBytes: expected.length });
    expect(remoteLog('node1', key).toString()).toBe(expected);
    expect(localLog('node1', key).toString()).toBe(expected);
    expect(readFileSync(homeFile('node1', starts), 'utf8')).toBe('started\n');
  });

  it('the job survives the SSH connection that started it closing; another pool reattaches', async () => {
    const key = newKey('survive');
    const spec: RemoteJobSpec = { key, argv: ['bash', '-c', 'echo started; sleep 1; echo finished'] };
    const other = new SshPool();
    const first = following('node0', spec, (p) => p.lastLine === 'started', {}, other);
    await first.isReady;
    await other.close();
    expect((await first.outcome).error).toBeInstanceOf(Error);
    const second = await run('node0', spec, { resumeOffset: first.progress().offset });
    expect(second).toMatchObject({ exitCode: 0, reattached: true, tail: ['started', 'finished'] });
    expect(localLog('node0', key).toString()).toBe('started\nfinished\n');
  });

  it('cancellation kills the whole process group on the node, then throws the reason', async () => {
    const key = newKey('cancel');
    const spec: RemoteJobSpec = { key, argv: ['bash', '-c', 'sleep 301 & sleep 302 & echo ready; wait'] };
    const ac = new AbortController();
    const job = following('node0', spec, (p) => p.lastLine === 'ready', { signal: ac.signal });
    await job.isReady;
    // Detached: the job leads its own session and process group, with its children in it.
    const pid = jobFile('node0', key, 'pid');
    expect((await sh('node0', `ps -o pid=,pgid=,sid= -p ${pid}`)).trim().split(/\s+/)).toEqual([pid, pid, pid]);
    expect(await leftovers('node0', pid, /sleep 30[12]/)).toHaveLength(4); // two bashes, two sleeps

    ac.abort(new Error('operator cancelled'));
    const { error } = await job.outcome;
    expect(error).toMatchObject({ message: 'operator cancelled' });
    expect(await leftovers('node0', pid, /sleep 30[12]/)).toEqual([]);
    expect(jobFile('node0', key, 'rc')).toBe('killed:cancelled');

    // A killed job is not a result: the same key runs afresh.
    const again = following('node0', spec, (p) => p.lastLine === 'ready', { timeoutMs: 500 });
    await again.isReady;
    expect((await again.outcome).error).toBeInstanceOf(RemoteJobTimeoutError);
  });

  it('a timeout kills the job the same way and throws RemoteJobTimeoutError with the log tail', async () => {
    const key = newKey('timeout');
    const started = Date.now();
    const err = await run('node1', { key, argv: ['bash', '-c', 'sleep 303 & echo ready; sleep 304'] }, { timeoutMs: 1500 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RemoteJobTimeoutError);
    expect(err).toMatchObject({ node: 'node1', key, timeoutMs: 1500, tail: ['ready'] });
    expect(Date.now() - started).toBeLessThan(8000);
    const pid = jobFile('node1', key, 'pid');
    expect(await leftovers('node1', pid, /sleep 30[34]/)).toEqual([]);
    expect(jobFile('node1', key, 'rc')).toBe('killed:timeout');
  });

  it('a reboot kills the job; the next call reports it lost (RemoteJobLostError); restartLost runs it afresh', async () => {
    const key = newKey('reboot');
    const go = `rj-go-${key}`;
    const spec: RemoteJobSpec = { key, argv: ['bash', '-c', 'echo attempt; test -e "$1" && exit 0; sleep 305', 'job', go], cwd: '/home/ae' };
    const node = sim.node('node1');
    const bootBefore = node.state.bootId;
    const first = following('node1', spec, (p) => p.lastLine === 'attempt');
    await first.isReady;
    await node.reboot();
    expect(node.state.bootId).not.toBe(bootBefore);
    const { error } = await first.outcome;
    // Depending on timing the drop itself, or a poll after the node came back, ends the first call.
    expect(error instanceof SshError || error instanceof RemoteJobLostError).toBe(true);
    expect(await leftovers('node1', jobFile('node1', key, 'pid'), /sleep 305/)).toEqual([]);

    const lost = await run('node1', spec, { resumeOffset: first.progress().offset }).catch((e: unknown) => e);
    expect(lost).toBeInstanceOf(RemoteJobLostError);
    expect(lost).toMatchObject({ reason: 'rebooted', tail: ['attempt'], node: 'node1', key });
    expect((lost as Error).message).toMatch(/node node1: remote job .* was lost: the node rebooted while it ran/);

    writeFileSync(homeFile('node1', go), '');
    const again = await run('node1', { ...spec, restartLost: true });
    expect(again).toMatchObject({ exitCode: 0, reattached: false, tail: ['attempt'] });
    expect(localLog('node1', key).toString()).toBe('attempt\n');
  });

  it('sudo wanting a password is a clear non-retryable SudoPasswordRequired failure; with NOPASSWD it runs as root', async () => {
    const node = sim.node('node0');
    const installs = () => sim.world.node('node0').counters['make:install'] ?? 0;
    const before = installs();
    const spec = (key: string): RemoteJobSpec => ({ key, argv: ['make', 'install'], cwd: '/home/ae/FragVisor/fragvisor-linux', sudo: true });
    node.requireSudoPassword(true);
    try {
      const err = await run('node0', spec(newKey('sudo'))).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(SudoPasswordRequiredError);
      const message = (err as Error).message;
      expect(message).toMatch(/^node node0: remote job \S+: `sudo -n make` needs a password/);
      expect(message).toMatch(/sudo: a password is required/);
      expect(message).toMatch(/NOPASSWD/);
      expect(message).toMatch(/sudo -n true/);
      const failure = asActivityFailure(err);
      expect(failure).toBeInstanceOf(ApplicationFailure);
      expect(failure).toMatchObject({ type: 'SudoPasswordRequired', nonRetryable: true });
      expect(installs()).toBe(before);
    } finally {
      node.requireSudoPassword(false);
    }
    const ok = await run('node0', { key: newKey('sudo-ok'), argv: ['printenv', 'AE_SIM_SUDO'], sudo: true });
    expect(ok).toMatchObject({ exitCode: 0, tail: ['1'] });
  });

  it('starting a job removes job folders unchanged for over 7 days, but not one whose job still runs, nor a newer one', async () => {
    const [oldDone, oldKilled, recentDone, oldRunning] = ['old-done', 'old-killed', 'recent-done', 'old-running'].map(newKey);
    const folder = (key: string) => homeFile('node0', `.fragvisor-ae/jobs/${key}`);
    await run('node0', { key: oldDone, argv: ['true'] });
    await run('node0', { key: recentDone, argv: ['true'] });
    await startRemoteJob(pool, target('node0'), loaded.profile.ssh, { key: oldKilled, argv: ['sleep', '30'] });
    await killRemoteJob(pool, target('node0'), loaded.profile.ssh, { key: oldKilled, sudo: false });
    await startRemoteJob(pool, target('node0'), loaded.profile.ssh, { key: oldRunning, argv: ['sleep', '30'] });
    try {
      const jobs = '$HOME/.fragvisor-ae/jobs';
      await sh('node0', `touch -d '8 days ago' ${jobs}/${oldDone} ${jobs}/${oldKilled} ${jobs}/${oldRunning} && touch -d '6 days ago' ${jobs}/${recentDone}`);
      // Attaching to a job is no start: nothing is removed yet.
      await run('node0', { key: recentDone, argv: ['true'] });
      expect(existsSync(folder(oldDone))).toBe(true);
      await run('node0', { key: newKey('next'), argv: ['true'] });
      expect([oldDone, oldKilled, recentDone, oldRunning].map((k) => existsSync(folder(k)))).toEqual([false, false, true, true]);
      // Now the only old folder is the running job's: keeping it is no failure of the next start.
      await run('node0', { key: newKey('next-again'), argv: ['true'] });
      expect(existsSync(folder(oldRunning))).toBe(true);
    } finally {
      await killRemoteJob(pool, target('node0'), loaded.profile.ssh, { key: oldRunning, sudo: false });
    }
  });

  it('a 20 MB log is copied exactly, without the worker holding it in memory', async () => {
    const key = newKey('big');
    const line = `${'0123456789abcdefghijklmnopqrstuvwxyz'.repeat(3)}\n`;
    const bytes = 20 * 1024 * 1024;
    v8.setFlagsFromString('--expose-gc');
    const gc = vm.runInNewContext('gc') as () => void;
    const used = () => {
      // Twice: the second waits for the first one's ArrayBuffer sweeping, so freed log chunks are not counted.
      gc();
      gc();
      const m = process.memoryUsage();
      return m.heapUsed + m.arrayBuffers;
    };
    const baseline = used();
    let peak = 0;
    let polls = 0;
    const result = await run('node0', { key, argv: ['bash', '-c', 'yes "$1" | head -c "$2"', 'job', line.trimEnd(), String(bytes)] }, {
      onProgress: () => {
        polls++;
        peak = Math.max(peak, used() - baseline);
      },
    });
    expect(result).toMatchObject({ exitCode: 0, logBytes: bytes });
    const sha = (file: string) =>
      new Promise<string>((resolve, reject) => {
        const h = createHash('sha256');
        createReadStream(file).on('data', (d) => h.update(d)).on('end', () => resolve(h.digest('hex'))).on('error', reject);
      });
    const local = stepLog(runId, 'node0', key).file;
    expect(await sha(local)).toBe(await sha(homeFile('node0', `.fragvisor-ae/jobs/${key}/log`)));
    expect(polls).toBeGreaterThanOrEqual(5); // 4 MiB per poll at most
    // What a poll holds (4 MiB) and some noise; a copy kept in memory would pass 16 MiB by the last poll.
    expect(peak).toBeLessThan(bytes / 3);
  });
});

describe('the simulated sudo', () => {
  it('fails like the real one while a password is required, and the switch survives a reboot', async () => {
    const node = sim.node('node0');
    node.requireSudoPassword(true);
    try {
      await node.reboot();
      const r = await pool.exec(target('node0'), loaded.profile.ssh, 'sudo -n true; echo "rc=$?"; sudo true; echo "rc=$?"', { timeoutMs: 10_000 });
      expect(r.stdout).toBe('rc=1\nrc=1\n');
      expect(r.stderr).toBe('sudo: a password is required\nsudo: a terminal is required to read the password; either use the -S option to read from standard input or configure an askpass helper\nsudo: a password is required\n');
      expect(existsSync(path.join(node.stateDir, 'sudo_password_required'))).toBe(true);
    } finally {
      node.requireSudoPassword(false);
    }
    expect(await sh('node0', 'sudo -n true && echo ok')).toBe('ok\n');
  });
});
