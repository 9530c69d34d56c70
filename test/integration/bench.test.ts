import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { benchActivities, clientTarget, type BenchmarkFailedDetails } from '../../activities/bench';
import type { ResultsFile } from '../../activities/results';
import { SshPool } from '../../activities/ssh/pool';
import { loadProfile } from '../../config/load';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { PHP_PAGE_BYTES } from '../../sim/guest/php';
import { setMsgLayerDeps, type MsgLayerDeps } from '../../sim/tools/msglayer';
import { parseAb, phpScript, PHP_LEVELS, type Measurement } from '../../workflows/commands/bench';
import { waitUntil } from '../helpers/sim';
import { activityFailure, startFixtureWorker, testClient, uniqueTaskQueue } from '../helpers/temporal';
import { Procedure, type Launched } from '../helpers/simProcedure';

/**
 * runBenchmark, recordMeasurement and listMeasurements on a 2-node simulated cluster with a VM
 * prepared by hand (test/helpers/simProcedure.ts): E1 in the LEMP guest, then a reboot cycle and the
 * E3 guest (network, storage, NPB, a failed run), then another and the OpenLambda guest (E2). The
 * activities run as plain functions over a real SshPool (and once in a real Temporal worker, for the
 * retry of a failed repetition); ab and curl are the real tools behind the origin's imitations, dd
 * and NPB the guest's.
 */

const N = 2;
const RAMDISK = {
  E1: { file: 'ramdisk_lemp_4php.gz', mem: 20480, init: true },
  E2: { file: 'ramdisk_for_openlambda200625.gz', mem: 32768, init: false },
  E3: { file: 'ramdisk_NPB_ATC.gz', mem: 32768, init: true },
} as const;

let stateDir: string;
let runsDir: string;
let sim: SimCluster;
let p: Procedure;
let pool: SshPool;
let previousDeps: MsgLayerDeps;
let previousRunsDir: string | undefined;
let cluster: string;
let profileHash: string;
let acts: ReturnType<typeof benchActivities>;
let vm: Launched | undefined;
let client: Client;
let closeClient: () => Promise<void>;
let stopWorker: () => Promise<void>;
const taskQueue = uniqueTaskQueue('bench');

const RUN = 'bench-it';

/** A fresh boot cycle (the VM cannot be restarted), the messaging layer, then the VM of `experiment`. */
async function bootVm(experiment: keyof typeof RAMDISK): Promise<void> {
  if (vm) {
    await p.rebootAll();
    vm = undefined;
    for (const node of p.nodes) expect((await p.sh(node, 'sudo rm -f /root/.lkvm/*.sock')).code).toBe(0);
  }
  const insmods = await p.insmodAll();
  expect(insmods.map((r) => ({ code: r.code, stderr: r.stderr }))).toEqual(p.nodes.map(() => ({ code: 0, stderr: '' })));
  const r = RAMDISK[experiment];
  const command = p.lkvm.replace('ramdisk_lemp_4php.gz', r.file).replace('-m 20480', `-m ${r.mem}`);
  vm = p.launch(r.init ? command : command.replace(' init=/init2', ''));
  const launched = vm;
  await waitUntil(`the ${experiment} guest to boot`, () => launched.output().includes('guest login:'), 30_000);
}

const ref = () => ({ cluster, profileHash, runId: RUN });
const key = (experiment: 'E1' | 'E2' | 'E3', variant: string, repetition = 1) => ({ hypervisor: 'fragvisor' as const, experiment, nodeCount: N, variant, repetition });
const rawText = (m: Measurement) => readFileSync(path.join(runsDir, RUN, m.raw), 'utf8');
const results = () => JSON.parse(readFileSync(path.join(runsDir, RUN, 'results.json'), 'utf8')) as ResultsFile;

beforeAll(async () => {
  previousDeps = setMsgLayerDeps({ windowFloorMs: 8_000 });
  previousRunsDir = process.env.AE_RUNS_DIR;
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'ae-bench-sim-'));
  runsDir = mkdtempSync(path.join(os.tmpdir(), 'ae-bench-runs-'));
  process.env.AE_RUNS_DIR = runsDir;
  sim = await startSimCluster({ nodes: N, stateDir, timeScale: 0, rebootDownMs: 300 });
  p = new Procedure(sim);
  for (const build of await p.buildHostKernels((i) => i === 0)) expect(build).toMatchObject({ code: 0 });
  expect((await p.buildGuestKernel()).code).toBe(0);
  await p.rebootAll();
  expect(await p.buildMsgLayer()).toEqual(p.nodes.map(() => 0));
  cluster = sim.profileFile;
  profileHash = loadProfile(cluster).hash;
  pool = new SshPool();
  acts = benchActivities({ ssh: pool });
  ({ client, close: closeClient } = await testClient());
  ({ stop: stopWorker } = await startFixtureWorker({ taskQueue, workflowsPath: require.resolve('../fixtures/workflows/bench'), activities: acts }));
}, 180_000);

afterAll(async () => {
  await stopWorker?.();
  await closeClient?.();
  await pool?.close();
  p?.killLaunched();
  await sim?.stop();
  if (previousDeps) setMsgLayerDeps(previousDeps);
  if (previousRunsDir === undefined) delete process.env.AE_RUNS_DIR;
  else process.env.AE_RUNS_DIR = previousRunsDir;
  for (const dir of [stateDir, runsDir]) if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('E1 in the LEMP guest', () => {
  beforeAll(() => bootVm('E1'), 60_000);

  it('the load generator is the origin when the profile names no client', () => {
    const loaded = loadProfile(cluster);
    expect(loaded.profile.client).toBeUndefined();
    expect(clientTarget(loaded)).toMatchObject({ node: 'node0', host: '127.0.0.1', port: sim.node('node0').port });
  });

  it('php-250ms, repetition 1: web.php in place, ab parsed, raw output kept, results.json and the key list updated', async () => {
    const m = await acts.runBenchmark({ ...ref(), ...key('E1', 'php-250ms') });
    expect(m).toMatchObject({ key: key('E1', 'php-250ms'), simulated: true, attempt: 1, raw: 'raw/fragvisor/E1-n2/php-250ms.rep1.try1.txt' });
    // The sim's PHP page (not the welcome page): web.php is what nginx served.
    expect(m.metrics).toMatchObject({ completeRequests: 100, concurrency: 10, failedRequests: 0, non2xxResponses: 0, documentLengthBytes: PHP_PAGE_BYTES, htmlTransferredBytes: 100 * PHP_PAGE_BYTES });
    expect(m.metrics.requestsPerSecond).toBeGreaterThan(0);
    expect(m.units.requestsPerSecond).toBe('requests/s');
    const level = PHP_LEVELS.find((l) => l.label === '250ms')!;
    expect((await p.guest('cat /usr/local/nginx/html/web.php')).stdout).toBe(phpScript(level.loops));

    // The raw file holds ab's genuine report, which parses to the same numbers.
    const raw = rawText(m);
    expect(raw).toContain('### ab on node0: ab -n 100 -c 10 http://10.4.4.222/');
    expect(raw).toContain('### web-php on guest: cat > /usr/local/nginx/html/web.php.ae-tmp');
    const report = raw.slice(raw.indexOf('This is ApacheBench'));
    expect(parseAb(report)).toMatchObject({ requestsPerSecond: m.metrics.requestsPerSecond, serverHostname: '10.4.4.222', simulated: true });

    expect(await acts.recordMeasurement({ runId: RUN, measurement: m })).toEqual({ file: 'measurements/fragvisor.E1.n2.php-250ms.rep1.json', results: 'results.json', count: 1 });
    expect(results()).toMatchObject({ simulated: true, label: expect.stringMatching(/^SIMULATED/) as unknown, runId: RUN, count: 1, measurements: [m] });
    expect(await acts.listMeasurements({ runId: RUN })).toEqual([key('E1', 'php-250ms')]);
  });

  it('php-25ms with custom ab counts, repetition 2, recorded in key order', async () => {
    const m = await acts.runBenchmark({ ...ref(), ...key('E1', 'php-25ms', 2), settings: { lemp: { requests: 40, concurrency: 4 } } });
    expect(m.metrics).toMatchObject({ completeRequests: 40, concurrency: 4, failedRequests: 0 });
    expect(rawText(m)).toContain('ab -n 40 -c 4 http://10.4.4.222/');
    expect((await acts.recordMeasurement({ runId: RUN, measurement: m })).count).toBe(2);
    expect(results().measurements.map((x) => x.key.variant)).toEqual(['php-25ms', 'php-250ms']);
  });

  it('a variant E1 does not have is refused without running anything', async () => {
    await expect(acts.runBenchmark({ ...ref(), ...key('E1', 'net-16-local') })).rejects.toMatchObject({ type: 'InvalidBenchmarkInput', nonRetryable: true });
  });
});

describe('E3 in the NPB guest', () => {
  beforeAll(() => bootVm('E3'), 60_000);

  it('net-4096-local: index.html of exactly 4096 bytes, ab sees that length', async () => {
    const m = await acts.runBenchmark({ ...ref(), ...key('E3', 'net-4096-local'), settings: { network: { requests: 200, settleSeconds: 0 } } });
    expect(m.metrics).toMatchObject({ completeRequests: 200, failedRequests: 0, documentLengthBytes: 4096, htmlTransferredBytes: 200 * 4096 });
    expect((await p.guest('wc -c < /usr/local/nginx/html/index.html')).stdout.trim()).toBe('4096');
    await acts.recordMeasurement({ runId: RUN, measurement: m });
  });

  it('disk-local and disk-delegated: dd from vCPU 0 and vCPU 1, the remote one slower (the model: delegated I/O)', async () => {
    const settings = { storage: { mib: 256 } };
    const local = await acts.runBenchmark({ ...ref(), ...key('E3', 'disk-local'), settings });
    const delegated = await acts.runBenchmark({ ...ref(), ...key('E3', 'disk-delegated'), settings });
    for (const m of [local, delegated]) expect(m.metrics).toMatchObject({ readBytes: 256 * 2 ** 20, writeBytes: 256 * 2 ** 20 });
    expect(rawText(local)).toContain('vCPU 0, local');
    expect(rawText(delegated)).toContain('vCPU 1, delegated to the origin');
    expect(delegated.metrics.readMBps).toBeLessThan(local.metrics.readMBps);
    expect(delegated.metrics.writeMBps).toBeLessThan(local.metrics.writeMBps);
  });

  it('npb-is.B on vCPU 0 and vCPU 1: the reported times, longer off the origin', async () => {
    const [v0, v1] = [await acts.runBenchmark({ ...ref(), ...key('E3', 'npb-is.B-vcpu0') }), await acts.runBenchmark({ ...ref(), ...key('E3', 'npb-is.B-vcpu1') })];
    expect(rawText(v0)).toContain('vCPU 0 of 2');
    expect(rawText(v1)).toContain('vCPU 1 of 2');
    expect(v1.metrics.seconds).toBeGreaterThan(v0.metrics.seconds);
    expect(v0.units).toEqual({ seconds: 's', mopsTotal: 'Mop/s' });
  });

  it('nginx stopped: BenchmarkFailed (retryable) naming the raw output, which keeps ab\'s error', async () => {
    expect((await p.guest('nginx -s stop')).code).toBe(0);
    const err = (await acts.runBenchmark({ ...ref(), ...key('E3', 'net-16-local', 3), settings: { network: { settleSeconds: 0 } } }).catch((e: unknown) => e)) as ApplicationFailure;
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect(err).toMatchObject({ type: 'BenchmarkFailed', nonRetryable: false });
    const details = err.details?.[0] as BenchmarkFailedDetails;
    expect(details).toMatchObject({ key: key('E3', 'net-16-local', 3), reason: expect.stringMatching(/^ab exited with [1-9]\d*$/) as unknown, raw: 'raw/fragvisor/E3-n2/net-16-local.rep3.try1.txt' });
    expect(err.message).toContain(`${RUN}/raw/fragvisor/E3-n2/net-16-local.rep3.try1.txt`);
    expect(readFileSync(path.join(runsDir, RUN, details.raw), 'utf8')).toMatch(/^apr_socket_\w+:? Connection refused \(111\)$/m);
    expect(details.lines.join('\n')).toMatch(/Connection refused/);
    expect(existsSync(path.join(runsDir, RUN, 'measurements', 'fragvisor.E3.n2.net-16-local.rep3.json'))).toBe(false);
  });

  it('in a Temporal worker: a failing repetition is retried alone and each attempt keeps its raw output; once nginx is back it is recorded', async () => {
    const input = { ...ref(), ...key('E3', 'net-16-local', 4), settings: { network: { requests: 100, settleSeconds: 0 } } };
    const dir = path.join(runsDir, RUN, 'raw', 'fragvisor', 'E3-n2');
    const failure = await activityFailure(client.workflow.execute('measureOnce', { taskQueue, workflowId: `${RUN}-rep4-a`, args: [input] }));
    expect(failure).toMatchObject({ type: 'BenchmarkFailed' });
    expect(readdirSync(dir).filter((f) => f.startsWith('net-16-local.rep4.'))).toEqual(['net-16-local.rep4.try1.txt', 'net-16-local.rep4.try2.txt']);

    expect((await p.guest('nginx -c /usr/local/nginx/conf/nginx.conf')).code).toBe(0);
    const done = await client.workflow.execute('measureOnce', { taskQueue, workflowId: `${RUN}-rep4-b`, args: [input] });
    // A new execution counts attempts from 1 again: its raw file does not overwrite the failed attempt's.
    expect(done).toMatchObject({ raw: 'raw/fragvisor/E3-n2/net-16-local.rep4.try1.2.txt', attempt: 1 });
    expect(readFileSync(path.join(dir, 'net-16-local.rep4.try1.txt'), 'utf8')).toContain('Connection refused');
    expect(await acts.listMeasurements({ runId: RUN })).toContainEqual(key('E3', 'net-16-local', 4));
  });
});

describe('E2 in the OpenLambda guest', () => {
  beforeAll(async () => {
    await bootVm('E2');
    for (let i = 0; i < N; i++) {
      const r = await p.guest(`cd /root/open-lambda && taskset 0x${(1 << i).toString(16)} ./ol worker --path=l${i} -d`);
      expect(r).toMatchObject({ code: 0 });
    }
  }, 60_000);

  it('openlambda: parallel POSTs from the origin, wall time and per-phase times from the bodies', async () => {
    const m = await acts.runBenchmark({ ...ref(), ...key('E2', 'openlambda'), settings: { openLambda: { gapSeconds: 0 } } });
    expect(m.metrics).toMatchObject({ workers: 2, failedWorkers: 0 });
    expect(m.metrics.wallSeconds).toBeGreaterThan(0);
    for (const phase of ['sandboxCreate', 'init', 'execute', 'cleanup']) {
      expect(m.metrics[`${phase}Ms`]).toBeGreaterThan(0);
      // Worker 1 runs on the remote vCPU: its phases cost more (the model), so the max exceeds the mean.
      expect(m.metrics[`${phase}MaxMs`]).toBeGreaterThan(m.metrics[`${phase}Ms`]);
      expect(m.units[`${phase}Ms`]).toBe('ms');
    }
    expect(rawText(m)).toMatch(/ae-burst-worker 1 port 5001 exit 0\n\{"lambda":"process","input":1,"phasesMs"/);
    await acts.recordMeasurement({ runId: RUN, measurement: m });
    expect(await acts.listMeasurements({ runId: RUN })).toEqual([key('E1', 'php-25ms', 2), key('E1', 'php-250ms'), key('E2', 'openlambda'), key('E3', 'net-16-local', 4), key('E3', 'net-4096-local')]);
    expect(results().measurements.every((x) => x.simulated)).toBe(true);
  });

  it("the origin's curl reaches the guest's ports directly, and nothing else off this machine", async () => {
    const origin = p.nodes[0];
    const endpoints = JSON.parse(readFileSync(path.join(stateDir, 'guest.json'), 'utf8')) as { ports: Record<string, number> };
    const routes = await p.sh(origin, 'cat /home/.ae-sim/state/guest-connect-to');
    expect(routes.stdout).toBe(Object.entries(endpoints.ports).map(([g, l]) => `10.4.4.222:${g}:127.0.0.1:${l}\n`).join(''));
    expect((await p.sh(p.nodes[1], 'test -e /home/.ae-sim/state/guest-connect-to')).code).toBe(1);
    const post = await p.sh(origin, "curl -sS -d 1 -w '\\n%{http_code} %{remote_port}' 10.4.4.222:5001/run/process");
    expect(post.code).toBe(0);
    expect(post.stdout).toMatch(new RegExp(`^\\{"lambda":"process".*"simulated":true\\}\\n\\n200 ${endpoints.ports['5001']}$`, 's'));
    // Another host in the same command gets a closed loopback port, never the network.
    const mixed = await p.sh(origin, "curl -sS -o /dev/null -w '%{http_code} ' 10.4.4.222:5000/status http://10.9.9.9/");
    expect(mixed.stdout).toBe('200 000 ');
    expect(mixed.stderr).toMatch(/Failed to connect to 127\.0\.0\.1 port 9/);
    expect(mixed.code).toBe(7);
    // The VM gone, so are its routes: the guest is unreachable again.
    p.killLaunched();
    await waitUntil('the routes to go', async () => (await p.sh(origin, 'test -e /home/.ae-sim/state/guest-connect-to')).code === 1, 10_000);
    const after = await p.sh(origin, 'curl -sS 10.4.4.222:5000/status');
    expect(after).toMatchObject({ code: 7, stderr: expect.stringContaining('No route to host') });
  });
});
