import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { guestActivities, type GuestRef, type PinningFailedDetails } from '../../activities/guest';
import { SshPool, type ExecOptions, type ExecResult, type SshTarget } from '../../activities/ssh/pool';
import { loadProfile, type LoadedProfile } from '../../config/load';
import type { SshSettings } from '../../config/schema';
import { runsDir } from '../../config/paths';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { setMsgLayerDeps, type MsgLayerDeps } from '../../sim/tools/msglayer';
import { waitUntil } from '../helpers/sim';
import { Procedure } from '../helpers/simProcedure';

/**
 * ARTIFACT.md step 5 through the guest activities on a running simulated VM (4 nodes, prepared by
 * hand over plain OpenSSH: host kernels, guest kernel, reboot, messaging layer, `sudo ./lkvm run`),
 * one VM per ramdisk with a reboot cycle in between: E1 (LEMP), E3 (NPB, both pinnings), E2
 * (OpenLambda, from the ramdisk and copied from the origin). Every pinning is checked again with plain
 * OpenSSH `taskset -p PID`; pinnings that do not hold (a worker killed between ps and taskset,
 * someone re-pinning between set and read-back) fail with PinningFailed and the evidence.
 */

jest.setTimeout(300_000);

const N = 4;
const NGINX_CONF = '/usr/local/nginx/conf/nginx.conf';

/** A pool that lets a test act at an exact point of an activity (real SSH all the same). */
class HookedPool extends SshPool {
  before?: (command: string) => Promise<void>;
  after?: (command: string) => Promise<void>;
  override async exec(target: SshTarget, settings: SshSettings, command: string | readonly string[], opts?: ExecOptions): Promise<ExecResult> {
    const line = typeof command === 'string' ? command : command.join(' ');
    await this.before?.(line);
    const r = await super.exec(target, settings, command, opts);
    await this.after?.(line);
    return r;
  }
}

let stateDir: string;
let sim: SimCluster;
let p: Procedure;
let pool: HookedPool;
let loaded: LoadedProfile;
let previousDeps: MsgLayerDeps;
let acts: ReturnType<typeof guestActivities>;
const runId = `guest-setup-${process.pid}`;

const ref = (patch: Partial<GuestRef> & Pick<GuestRef, 'experiment'>): GuestRef => ({ cluster: sim.profileFile, profileHash: loaded.hash, runId, nodeCount: N, ...patch });
const runFile = (relative: string) => readFileSync(path.join(runsDir(), runId, relative), 'utf8');

/** Plain OpenSSH into the guest; fails the test on a non-zero exit. */
async function guest(command: string): Promise<string> {
  const r = await p.guest(command);
  if (r.code !== 0) throw new Error(`guest: \`${command}\` exited with ${r.code}: ${r.stderr}`);
  return r.stdout;
}

/** Mask of pid, read independently of the activity: `taskset -p PID` over plain OpenSSH. */
async function maskOf(pid: number): Promise<string> {
  const out = await guest(`taskset -p ${pid}`);
  const m = new RegExp(`^pid ${pid}'s current affinity mask: ([0-9a-f]+)\\n$`).exec(out);
  if (!m) throw new Error(`unexpected taskset output: ${out}`);
  return `0x${m[1]}`;
}

/** `ps aux` rows over plain OpenSSH: pid per row matching `re`. */
async function pidsOf(re: RegExp): Promise<number[]> {
  return (await guest('ps aux'))
    .split('\n')
    .filter((l) => re.test(l))
    .map((l) => Number(l.trim().split(/\s+/)[1]));
}

async function failureOf(promise: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  return err as ApplicationFailure;
}

/** A fresh VM on all nodes: reboot cycle (the VM cannot be restarted), stale sockets, messaging layer, lkvm. */
async function bootVm(command: string): Promise<void> {
  await p.rebootAll();
  for (const node of p.nodes) expect((await p.sh(node, 'sudo rm -rf /root/.lkvm')).code).toBe(0);
  expect((await p.insmodAll()).map((r) => r.code)).toEqual(p.nodes.map(() => 0));
  const launched = p.launch(command);
  await waitUntil('the guest to boot', () => launched.output().includes('guest login:'), 60_000);
}

beforeAll(async () => {
  // insmodAll spaces the nodes 1 s apart: the accept window needs a real-time floor at time scale 0.
  previousDeps = setMsgLayerDeps({ windowFloorMs: 8_000 });
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'ae-guest-setup-'));
  sim = await startSimCluster({ nodes: N, stateDir, timeScale: 0, rebootDownMs: 300, bmc: false });
  p = new Procedure(sim);
  loaded = loadProfile(sim.profileFile);
  pool = new HookedPool();
  acts = guestActivities({ ssh: pool });
  for (const build of await p.buildHostKernels((i) => i === 0)) expect(build).toMatchObject({ code: 0 });
  expect((await p.buildGuestKernel()).code).toBe(0);
  await p.rebootAll();
  expect(await p.buildMsgLayer()).toEqual(p.nodes.map(() => 0));
}, 180_000);

afterEach(() => {
  pool.before = undefined;
  pool.after = undefined;
});

afterAll(async () => {
  p?.killLaunched();
  await pool?.close();
  await sim?.stop();
  if (previousDeps) setMsgLayerDeps(previousDeps);
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

it.each([
  [{ experiment: 'E4' as GuestRef['experiment'] }, 'experiment: expected E1, E2, E3, got "E4"'],
  [{ experiment: 'E1', nodeCount: 0 }, 'nodeCount: the node count must be a whole number 1..31, got 0'],
  [{ experiment: 'E3', case: 'remote' as GuestRef['case'] }, 'case: expected local or delegated, got "remote"'],
] as const)('refuses a bad input before any SSH: %j', async (patch, message) => {
  for (const call of [acts.setupGuest, acts.pinGuest]) {
    const err = await failureOf(call(ref(patch)));
    expect({ type: err.type, message: err.message }).toEqual({ type: 'InvalidInput', message });
  }
});

describe('E1 (LEMP), 4 nodes', () => {
  beforeAll(() => bootVm(p.lkvm), 120_000);

  it('restarts nginx and php-fpm, then pins nginx to vCPU 0 and php-fpm worker i to vCPU i; masks read back, also over plain OpenSSH', async () => {
    const masterBefore = await pidsOf(/ nginx: master process /);
    expect(masterBefore).toHaveLength(1);

    const setup = await acts.setupGuest(ref({ experiment: 'E1' }));
    const masters = await pidsOf(/ nginx: master process /);
    const workers = await pidsOf(/^nobody .* nginx: worker process$/);
    const php = await pidsOf(/^www-data .* php-fpm: pool www$/);
    // Restarted: a new master; the activity's processes are what ps shows.
    expect(masters).toHaveLength(1);
    expect(masters[0]).not.toBe(masterBefore[0]);
    expect(php).toHaveLength(N);
    expect(setup.processes).toEqual([
      { pid: masters[0], what: 'nginx master', user: 'root' },
      ...workers.map((pid) => ({ pid, what: 'nginx worker', user: 'nobody' })),
      ...php.map((pid, i) => ({ pid, what: `php-fpm worker ${i}`, user: 'www-data' })),
    ]);
    const setupLog = runFile(setup.log);
    expect(setupLog).toContain('$ nginx -c /usr/local/nginx/conf/nginx.conf\n');
    expect(setupLog).toContain('$ php-fpm7.2 --fpm-config /etc/php/7.2/fpm/php-fpm.conf --daemonize\n');

    // Before pinning, everything runs on all 4 vCPUs.
    for (const pid of [...masters, ...php]) expect(await maskOf(pid)).toBe('0xf');
    const { pins, log } = await acts.pinGuest(ref({ experiment: 'E1' }));
    const expected = [
      { pid: masters[0], what: 'nginx master', mask: '0x1' },
      ...workers.map((pid) => ({ pid, what: 'nginx worker', mask: '0x1' })),
      ...php.map((pid, i) => ({ pid, what: `php-fpm worker ${i}`, mask: `0x${(1 << i).toString(16)}` })),
    ];
    expect(pins).toEqual(expected.map((e) => ({ ...e, readBack: e.mask })));
    for (const e of expected) expect(await maskOf(e.pid)).toBe(e.mask);
    expect(log).toBe('logs/guest/fragvisor.epoch-E1-n4.guest.pin.log');
    expect(runFile(log)).toContain(`$ taskset -p 0x8 ${php[3]}\npid ${php[3]}'s current affinity mask: f\npid ${php[3]}'s new affinity mask: 8\n`);
  });

  it('a php-fpm worker killed between ps and taskset: PinningFailed naming it, asked vs read back; a new pinning then holds', async () => {
    const php = await pidsOf(/^www-data .* php-fpm: pool www$/);
    const victim = php[2];
    pool.before = async (line) => {
      // The pass that sets every mask (one command for all of them) is about to run.
      if (line.includes(`taskset -p 0x4 ${victim} `)) {
        pool.before = undefined;
        await guest(`kill -9 ${victim}`);
      }
    };
    const err = await failureOf(acts.pinGuest(ref({ experiment: 'E1' })));
    expect(err.type).toBe('PinningFailed');
    expect(err.nonRetryable).toBe(true);
    expect(err.message).toMatch(/^guest \(E1, 4 nodes\): the pinning did not hold for 1 of 6 process\(es\) \(asked vs read back\):\n/);
    expect(err.message).toContain(
      `MISMATCH php-fpm worker 2 (pid ${victim}): asked 0x4, read back unreadable: taskset: failed to get pid ${victim}'s affinity: No such process; \`taskset -p 0x4 ${victim}\` failed: taskset: failed to get pid ${victim}'s affinity: No such process`,
    );
    expect(err.message).toContain(`ok       php-fpm worker 3 (pid ${php[3]}): asked 0x8, read back 0x8`);
    expect(err.message).toMatch(new RegExp(`full log in the run store: ${runId}/logs/guest/fragvisor\\.epoch-E1-n4\\.guest\\.pin\\.log$`));
    const details = err.details?.[0] as PinningFailedDetails;
    expect(details.pins.filter((x) => !x.ok).map((x) => x.pid)).toEqual([victim]);
    expect(details.rows.some((r) => r.includes(' php-fpm: pool www'))).toBe(true);

    // php-fpm's master replaced the worker (on all vCPUs, as a fork of the master): pinning again holds.
    await waitUntil('php-fpm to replace its worker', async () => (await pidsOf(/^www-data .* php-fpm: pool www$/)).length === N, 10_000);
    const fresh = await pidsOf(/^www-data .* php-fpm: pool www$/);
    expect(fresh).not.toContain(victim);
    expect(await maskOf(fresh[3])).toBe('0xf');
    const again = await acts.pinGuest(ref({ experiment: 'E1' }));
    expect(again.pins.filter((x) => x.what.startsWith('php-fpm')).map((x) => [x.pid, x.readBack])).toEqual(fresh.map((pid, i) => [pid, `0x${(1 << i).toString(16)}`]));
    for (const [i, pid] of fresh.entries()) expect(await maskOf(pid)).toBe(`0x${(1 << i).toString(16)}`);
  });
});

describe('E3 (NPB guest), 4 nodes', () => {
  beforeAll(() => bootVm(p.lkvm.replace('ramdisk_lemp_4php.gz', 'ramdisk_NPB_ATC.gz').replace('-m 20480', '-m 32768')), 120_000);

  it('a setup step that fails (E1 on the NPB guest: no php-fpm) is GuestSetupFailed with its output', async () => {
    const err = await failureOf(acts.setupGuest(ref({ experiment: 'E1' })));
    expect(err.type).toBe('GuestSetupFailed');
    expect(err.message).toMatch(/^guest \(E1, 4 nodes\): `php-fpm7\.2 --fpm-config \/etc\/php\/7\.2\/fpm\/php-fpm\.conf --daemonize` exited with 127\n {2}.*php-fpm7\.2.*not found/);
  });

  it('nothing to pin as planned (E1 pinning on the NPB guest) is PinningFailed naming what is missing', async () => {
    const err = await failureOf(acts.pinGuest(ref({ experiment: 'E1' })));
    expect(err.type).toBe('PinningFailed');
    expect(err.message).toMatch(/^guest \(E1, 4 nodes\): nothing to pin as planned: expected 4 php-fpm workers \(one per node, 4 nodes\), found 0\n {2}root +\d+ .* nginx: master process /);
  });

  it('restarts nginx with exactly one worker, even when nginx.conf asked for 4', async () => {
    await guest(`sed -i 's/^worker_processes .*/worker_processes  4;/' ${NGINX_CONF} && nginx -s stop; sleep 0.3; nginx -c ${NGINX_CONF}`);
    expect(await pidsOf(/^nobody .* nginx: worker process$/)).toHaveLength(4);
    const setup = await acts.setupGuest(ref({ experiment: 'E3', case: 'local' }));
    const workers = await pidsOf(/^nobody .* nginx: worker process$/);
    expect(workers).toHaveLength(1);
    expect(setup.processes.map((x) => x.what)).toEqual(['nginx master', 'nginx worker']);
    expect(setup.processes[1]).toEqual({ pid: workers[0], what: 'nginx worker', user: 'nobody' });
    expect(await guest(`grep -n '^worker_processes' ${NGINX_CONF}`)).toMatch(/^\d+:worker_processes 1;\n$/);
  });

  it.each([
    ['local', '0x1'],
    ['delegated', '0x2'],
  ] as const)('case %s: master on vCPU 0, the worker on %s', async (c, workerMask) => {
    const [master] = await pidsOf(/ nginx: master process /);
    const [worker] = await pidsOf(/^nobody .* nginx: worker process$/);
    const { pins, log } = await acts.pinGuest(ref({ experiment: 'E3', case: c }));
    expect(pins).toEqual([
      { pid: master, what: 'nginx master', mask: '0x1', readBack: '0x1' },
      { pid: worker, what: 'nginx worker', mask: workerMask, readBack: workerMask },
    ]);
    expect(await maskOf(master)).toBe('0x1');
    expect(await maskOf(worker)).toBe(workerMask);
    expect(log).toBe(`logs/guest/fragvisor.epoch-E3-n4.guest.pin-${c}.log`);
  });

  it('a pinning that does not hold (re-pinned between set and read-back) is PinningFailed: asked 0x2, read back 0x1', async () => {
    const [worker] = await pidsOf(/^nobody .* nginx: worker process$/);
    pool.after = async (line) => {
      // The pass that set every mask has run; the one that reads them back has not.
      if (line.includes(`taskset -p 0x2 ${worker} `)) {
        pool.after = undefined;
        await guest(`taskset -p 0x1 ${worker} >/dev/null`);
      }
    };
    const err = await failureOf(acts.pinGuest(ref({ experiment: 'E3', case: 'delegated' })));
    expect(err.type).toBe('PinningFailed');
    expect(err.message).toMatch(/^guest \(E3 delegated, 4 nodes\): the pinning did not hold for 1 of 2 process\(es\)/);
    expect(err.message).toContain(`MISMATCH nginx worker (pid ${worker}): asked 0x2, read back 0x1; set (pid ${worker}'s new affinity mask: 2)`);
    expect((err.details?.[0] as PinningFailedDetails).pins).toEqual([
      expect.objectContaining({ what: 'nginx master', mask: '0x1', readBack: '0x1', ok: true }),
      expect.objectContaining({ pid: worker, what: 'nginx worker', mask: '0x2', readBack: '0x1', ok: false }),
    ]);
    expect(await maskOf(worker)).toBe('0x1');
  });
});

describe('E2 (OpenLambda), 4 nodes', () => {
  beforeAll(
    () =>
      bootVm(
        p.lkvm
          .replace('ramdisk_lemp_4php.gz', 'ramdisk_for_openlambda200625.gz')
          .replace('-m 20480', '-m 32768')
          .replace(' init=/init2', ''),
      ),
    120_000,
  );

  /** Every worker answers on its port 5000 + N from the origin (curl there reaches the guest). */
  async function portsAnswer(): Promise<void> {
    for (let i = 0; i < N; i++) {
      const r = await p.sh('node0', `curl -s -o /dev/null -w '%{http_code}' -X POST -d 1 http://10.4.4.222:${5000 + i}/run/process`);
      expect(r.stdout).toBe('200');
    }
  }

  it("uses the ramdisk's OpenLambda when the origin has none: ol worker lN on vCPU N, ports 5000..5003", async () => {
    const setup = await acts.setupGuest(ref({ experiment: 'E2' }));
    expect(setup.openLambda).toEqual({ source: 'ramdisk' });
    const ol = await pidsOf(/ ol worker --path=/);
    expect(setup.processes.map((x) => x.what)).toEqual(['ol worker l0', 'ol worker l1', 'ol worker l2', 'ol worker l3']);
    expect(setup.processes.map((x) => x.pid).sort((a, b) => a - b)).toEqual(ol);
    // Started on their vCPUs by `taskset MASK ./ol worker`, before any pinning by pid.
    for (const [i, x] of setup.processes.entries()) expect(await maskOf(x.pid)).toBe(`0x${(1 << i).toString(16)}`);
    const { pins } = await acts.pinGuest(ref({ experiment: 'E2' }));
    expect(pins.map((x) => [x.what, x.mask, x.readBack])).toEqual([0, 1, 2, 3].map((i) => [`ol worker l${i}`, `0x${(1 << i).toString(16)}`, `0x${(1 << i).toString(16)}`]));
    await portsAnswer();
  });

  it("copies the origin's OpenLambda tree into the guest through tar, then restarts the workers from it", async () => {
    const before = await pidsOf(/ ol worker --path=/);
    // The origin's tree: an `ol` that runs the guest's (simulated) OpenLambda, and a file to recognise the copy by.
    const made = await p.sh(
      'node0',
      "mkdir -p /home/ae/open-lambda/registry && printf '#!/bin/sh\\nexec /.ae-guest/bin/ol \"$@\"\\n' > /home/ae/open-lambda/ol && chmod 755 /home/ae/open-lambda/ol && echo copied-from-origin > /home/ae/open-lambda/registry/ORIGIN",
    );
    expect(made.code).toBe(0);
    const setup = await acts.setupGuest(ref({ experiment: 'E2' }));
    expect(setup.openLambda).toEqual({ source: 'copied', from: 'node0:/home/ae/open-lambda', bytes: expect.any(Number) as number });
    expect(await guest('cat /root/open-lambda/registry/ORIGIN; head -2 /root/open-lambda/ol')).toBe('copied-from-origin\n#!/bin/sh\nexec /.ae-guest/bin/ol "$@"\n');
    const after = await pidsOf(/ ol worker --path=/);
    expect(after).toHaveLength(N);
    for (const pid of after) expect(before).not.toContain(pid);
    const { pins } = await acts.pinGuest(ref({ experiment: 'E2' }));
    for (const x of pins) expect(await maskOf(x.pid)).toBe(x.mask);
    await portsAnswer();
    expect(runFile(setup.log)).toContain('$ [node0] tar -C /home/ae/open-lambda -cf - .  (tar stream, not logged)\n');
  });
});
