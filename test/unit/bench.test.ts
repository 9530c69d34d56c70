import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { GuestToolCall } from '../../sim/guest/channel';
import { startOpenLambdaWorker } from '../../sim/guest/openLambda';
import { scriptLoops } from '../../sim/guest/php';
import type { GuestRuntime } from '../../sim/guest/tools/context';
import { ddTool, summary } from '../../sim/guest/tools/dd';
import { npbTool } from '../../sim/guest/tools/npb';
import { loadModel } from '../../sim/model/load';
import { createModel } from '../../sim/model/runtime';
import {
  abArgv,
  abErrorCount,
  benchCommands,
  benchSettings,
  benchSteps,
  benchVariants,
  BenchOutputError,
  BenchVariantError,
  burstCommand,
  compareMeasurementKeys,
  judgeBenchmark,
  measurementKeyId,
  NET_SIZES,
  pageCommand,
  parseAb,
  parseBurst,
  parseDdSummary,
  parseLambdaBody,
  parseNpb,
  parseVariant,
  PHP_LEVELS,
  phpScript,
  variantName,
  type BenchCase,
  type CommandOutput,
  type MeasurementKey,
} from '../../workflows/commands/bench';
import { toCommandLine } from '../../workflows/commands/quote';

/** The benchmarks' pure parts: ab's report parsed by field name (from the real ab), dd, NPB, OpenLambda, verdicts, variants, plan. */

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'ab');
const fixture = (name: string) => readFileSync(path.join(FIXTURES, name), 'utf8');
const MODEL = loadModel('default').spec;

// ---- the real ab against tiny local servers (async only: the servers run in this process) ----

interface Served {
  port: number;
  /** Non-2xx responses the server sent, counted by the server itself. */
  errors: number;
  close(): Promise<void>;
}

type Behaviour = (k: number) => { status: number; body: string } | 'reset';

/** An HTTP server answering request k (1-based, in arrival order) as `behaviour` says. */
function serve(behaviour: Behaviour): Promise<Served> {
  let k = 0;
  const server = http.createServer((req, res) => {
    const what = behaviour(++k);
    if (what === 'reset') {
      req.socket.destroy();
      return;
    }
    if (what.status >= 300) served.errors++;
    res.writeHead(what.status, { 'Content-Type': 'text/html', 'Content-Length': String(Buffer.byteLength(what.body)), Connection: 'close' });
    res.end(what.body);
  });
  const served: Served = { port: 0, errors: 0, close: () => new Promise((r) => server.close(() => r())) };
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => {
      served.port = (server.address() as AddressInfo).port;
      resolve(served);
    }),
  );
}

function run(argv: readonly string[], input?: string): Promise<CommandOutput> {
  return new Promise((resolve) => {
    const child = execFile(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null) : 0;
      resolve({ what: argv[0], exitCode: code, stdout, stderr });
    });
    // Tools that never read stdin (dd) close it early: an EPIPE there is no failure.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

const PAGE = '<pre>the page</pre>';

describe('parseAb on the real ab', () => {
  it.each([
    {
      name: 'every response 200 and the same length',
      behaviour: (): ReturnType<Behaviour> => ({ status: 200, body: PAGE }),
      n: 60,
      c: 6,
      expected: { failedRequests: 0, non2xxResponses: 0 },
    },
    {
      name: 'every 10th a 500, every 7th (else) a short page',
      behaviour: (k: number): ReturnType<Behaviour> => (k % 10 === 0 ? { status: 500, body: 'error 500' } : k % 7 === 0 ? { status: 200, body: 'short' } : { status: 200, body: PAGE }),
      n: 100,
      c: 10,
      // 500s: 10, 20, ..., 100; short: the multiples of 7 that are not multiples of 10 (13 of them);
      // ab counts every length unlike the first response's: the 10 error pages and the 13 short ones.
      expected: { failedRequests: 23, non2xxResponses: 10, failed: { connect: 0, receive: 0, length: 23, exceptions: 0 } },
    },
    {
      name: 'half of them 503',
      behaviour: (k: number): ReturnType<Behaviour> => (k % 2 === 0 ? { status: 503, body: PAGE } : { status: 200, body: PAGE }),
      n: 40,
      c: 4,
      expected: { failedRequests: 0, non2xxResponses: 20 },
    },
  ])('$name', async ({ behaviour, n, c, expected }) => {
    const server = await serve(behaviour);
    try {
      const out = await run(abArgv('127.0.0.1', n, c).map((a) => a.replace('http://127.0.0.1/', `http://127.0.0.1:${server.port}/`)));
      expect(out.exitCode).toBe(0);
      const r = parseAb(out.stdout);
      expect(r).toMatchObject({ completeRequests: n, concurrency: c, documentLengthBytes: Buffer.byteLength(PAGE), serverHostname: '127.0.0.1', serverPort: server.port, documentPath: '/', simulated: false, ...expected });
      if (!('failed' in expected)) expect(r.failed).toBeUndefined();
      expect(r.non2xxResponses).toBe(server.errors);
      // The numbers agree with each other as ab computes them (from the same unrounded time).
      expect((r.requestsPerSecond * r.timePerRequestAllMs) / 1000).toBeCloseTo(1, 1);
      expect((r.timePerRequestMs / r.timePerRequestAllMs) / c).toBeCloseTo(1, 1);
      expect(r.htmlTransferredBytes).toBeGreaterThan(0);
      expect(r.totalTransferredBytes).toBeGreaterThan(r.htmlTransferredBytes);
      expect(Object.keys(r.percentilesMs)).toEqual(['50', '66', '75', '80', '90', '95', '98', '99', '100']);
    } finally {
      await server.close();
    }
  });

  it('a server that drops connections without a response: ab counts them as Length failures', async () => {
    const server = await serve((k) => (k > 5 ? 'reset' : { status: 200, body: PAGE }));
    try {
      const out = await run(['ab', '-n', '50', '-c', '5', `http://127.0.0.1:${server.port}/`]);
      expect(out.exitCode).toBe(0);
      expect(parseAb(out.stdout)).toMatchObject({ completeRequests: 50, failedRequests: 45, failed: { connect: 0, receive: 0, length: 45, exceptions: 0 }, non2xxResponses: 0 });
      const outcome = judgeBenchmark(parseVariant('E1', 'php-25ms', 2), [ok('web-php'), { ...out, what: 'ab' }], ctx(2, benchSettings({ lemp: { requests: 50, concurrency: 5 } })));
      expect(outcome).toMatchObject({ ok: false, reason: expect.stringMatching(/^45 of 50 requests failed/) as unknown });
    } finally {
      await server.close();
    }
  });

  it('nothing listening: ab exits non-zero without a report, the run fails with its error line', async () => {
    const server = await serve(() => ({ status: 200, body: PAGE }));
    await server.close();
    const out = await run(['ab', '-n', '10', '-c', '2', `http://127.0.0.1:${server.port}/`]);
    expect(out.exitCode).not.toBe(0);
    expect(() => parseAb(out.stdout)).toThrow(BenchOutputError);
    const outcome = judgeBenchmark(parseVariant('E1', 'php-25ms', 2), [ok('web-php'), { ...out, what: 'ab' }], ctx(2));
    expect(outcome).toMatchObject({ ok: false, reason: `ab exited with ${out.exitCode}` });
    expect(!outcome.ok && outcome.lines.join('\n')).toContain('Connection refused');
  });
});

describe('parseAb on saved output of the real ab', () => {
  it.each([
    {
      file: 'static-4096.txt',
      expected: { documentLengthBytes: 4096, concurrency: 10, completeRequests: 200, failedRequests: 0, non2xxResponses: 0, writeErrors: 0, htmlTransferredBytes: 4096 * 200, simulated: false },
    },
    {
      file: 'failures.txt',
      expected: {
        documentLengthBytes: 18,
        completeRequests: 100,
        failedRequests: 23,
        failed: { connect: 0, receive: 0, length: 23, exceptions: 0 },
        non2xxResponses: 10,
        timeTakenSeconds: 0.025,
        requestsPerSecond: 3930.35,
        timePerRequestMs: 2.544,
        timePerRequestAllMs: 0.254,
        transferRateKBps: 526.15,
        totalTransferredBytes: 13708,
        htmlTransferredBytes: 1541,
      },
    },
    {
      file: 'sim-php.txt',
      expected: { serverSoftware: 'nginx/1.14.0 (SIMULATED)', serverHostname: '10.4.4.222', serverPort: 80, completeRequests: 100, concurrency: 10, failedRequests: 0, simulated: true },
    },
  ])('$file', ({ file, expected }) => {
    expect(parseAb(fixture(file))).toMatchObject(expected);
  });

  it('ignores extra and reordered lines, and fails by name on a missing field', () => {
    const text = fixture('failures.txt');
    const shuffled = `SIMULATED: something above\nWarning: extra line\n${text.split('\n').reverse().join('\n')}\nTime per request: 9 [us] (bogus)\n`;
    const a = parseAb(text);
    expect(parseAb(shuffled)).toEqual({ ...a, simulated: true });
    expect(() => parseAb(text.replace(/^Requests per second:.*$/m, ''))).toThrow("ab's report lacks Requests per second");
    expect(() => parseAb(text.replace(/^Time per request:.*across.*$/m, ''))).toThrow("ab's report lacks Time per request");
    expect(() => parseAb('')).toThrow(/lacks Concurrency Level, Time taken for tests, Complete requests, Failed requests/);
    expect(parseAb(text.replace(/^Document Length:.*$/m, 'Document Length:        Variable')).documentLengthBytes).toBeUndefined();
  });
});

// ---- verdicts ----

const ctx = (nodeCount = 4, settings = benchSettings()) => ({ guestIp: '10.4.4.222', nodeCount, settings });
const ok = (what: string, stdout = '') => ({ what, exitCode: 0, stdout, stderr: '' });

describe('judgeBenchmark', () => {
  const failures = fixture('failures.txt');
  const php = parseVariant('E1', 'php-25ms', 4);
  it.each([
    { name: '33 of 100 failed (23 failed, 10 non-2xx) is within 40%', ratio: 0.4, expected: { ok: true } },
    { name: 'the same run above a 30% limit fails', ratio: 0.3, expected: { ok: false, reason: '33 of 100 requests failed (non-2xx 10, failed 23 = connect 0, receive 0, length 23, exceptions 0), more than the allowed 30%' } },
  ])('E1: $name', ({ ratio, expected }) => {
    expect(judgeBenchmark(php, [ok('web-php'), ok('ab', failures)], ctx(4, benchSettings({ maxErrorRatio: ratio })))).toMatchObject(expected);
  });

  it('E1: the metrics and their units', () => {
    const outcome = judgeBenchmark(php, [ok('web-php'), ok('ab', failures)], ctx(4, benchSettings({ maxErrorRatio: 0.5 })));
    expect(outcome).toMatchObject({
      ok: true,
      simulated: false,
      metrics: { requestsPerSecond: 3930.35, timePerRequestMs: 2.544, timePerRequestAllMs: 0.254, failedRequests: 23, failedLength: 23, non2xxResponses: 10, completeRequests: 100, documentLengthBytes: 18, p50Ms: 2, p100Ms: 4 },
      units: { requestsPerSecond: 'requests/s', timePerRequestMs: 'ms', transferRateKBps: 'KiB/s', totalTransferredBytes: 'bytes', timeTakenSeconds: 's', failedRequests: 'requests', p50Ms: 'ms' },
    });
    expect(outcome.ok && Object.keys(outcome.metrics).sort()).toEqual(outcome.ok && Object.keys(outcome.units).sort());
  });

  it('abErrorCount: non-2xx plus failed requests plus write errors', () => {
    expect(abErrorCount(parseAb(failures))).toBe(33);
    expect(abErrorCount(parseAb(fixture('static-4096.txt')))).toBe(0);
  });

  it('E3 network: a page of another size, or ab seeing another length, fails the run', () => {
    const c = parseVariant('E3', 'net-4096-delegated', 4);
    const ab = fixture('static-4096.txt');
    const settings = benchSettings({ network: { requests: 200 } });
    expect(judgeBenchmark(c, [ok('page', '4096\n'), ok('ab', ab)], ctx(4, settings))).toMatchObject({ ok: true, metrics: { documentLengthBytes: 4096, completeRequests: 200 } });
    expect(judgeBenchmark(c, [ok('page', '4095\n'), ok('ab', ab)], ctx(4, settings))).toMatchObject({ ok: false, reason: 'index.html has 4095 bytes after writing 4096' });
    expect(judgeBenchmark(parseVariant('E3', 'net-1024-local', 4), [ok('page', '1024\n'), ok('ab', ab)], ctx(4, settings))).toMatchObject({
      ok: false,
      reason: 'the guest served a page of 4096 bytes, not the 1024 bytes written',
    });
    expect(judgeBenchmark(c, [ok('page', '4096\n'), ok('ab', ab)], ctx(4, benchSettings()))).toMatchObject({ ok: false, reason: 'ab completed 200 of 1000 requests' });
    expect(judgeBenchmark(c, [{ what: 'page', exitCode: 1, stdout: '', stderr: 'mv: cannot move' }], ctx())).toMatchObject({ ok: false, reason: 'the guest command (page) exited with 1', lines: ['mv: cannot move'] });
  });
});

// ---- dd ----

/** A fake guest runtime for the sim's own guest tools: the default model, time scale 0. */
function fakeGuest(vcpu: number): GuestRuntime {
  return {
    kind: 'npb',
    hypervisor: 'fragvisor',
    vcpus: 4,
    model: createModel(MODEL, { seed: 11, timeScale: 0 }),
    processes: { maskOf: () => 1 << vcpu },
    nextRun: () => 0,
  } as unknown as GuestRuntime;
}

async function simTool(tool: typeof ddTool, name: string, args: string[], vcpu: number): Promise<CommandOutput> {
  let stdout = '';
  let stderr = '';
  const call: GuestToolCall = { tool: name, args, cwd: '/root', pid: 42, ppid: 41, stdout: { write: (d) => void (stdout += d.toString()) }, stderr: { write: (d) => void (stderr += d.toString()) }, signal: new AbortController().signal };
  const code = await tool(call, fakeGuest(vcpu));
  return { what: name, exitCode: typeof code === 'number' ? code : null, stdout, stderr };
}

describe('parseDdSummary', () => {
  it.each([
    { name: 'coreutils 8.x', text: '1024+0 records in\n1024+0 records out\n1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.55 s, 421 MB/s\n', bytes: 1073741824, seconds: 2.55 },
    { name: 'coreutils 8.2x older', text: '1073741824 bytes (1.1 GB) copied, 2.55 s, 421 MB/s', bytes: 1073741824, seconds: 2.55 },
    { name: 'older wording', text: '1048576 bytes (1.0 MB) copied, 0.00213 seconds, 492 MB/s', bytes: 1048576, seconds: 0.00213 },
    { name: 'sub-second exponent', text: '512 bytes copied, 1.2e-05 s, 42.7 MB/s', bytes: 512, seconds: 1.2e-5 },
    { name: "the sim's summary()", text: summary(2 ** 30, 3.125), bytes: 2 ** 30, seconds: 3.125 },
  ])('$name', ({ text, bytes, seconds }) => {
    expect(parseDdSummary(text)).toEqual({ bytes, seconds, mbps: bytes / seconds / 1e6 });
  });

  it('no summary line', () => {
    expect(() => parseDdSummary("dd: failed to open '/dev/vda': No such file or directory\n")).toThrow(BenchOutputError);
  });

  it("the real dd's summary", async () => {
    const out = await run(['env', 'LC_ALL=C', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=1M', 'count=8']);
    expect(out.exitCode).toBe(0);
    expect(parseDdSummary(out.stderr)).toMatchObject({ bytes: 8 * 1024 * 1024 });
  });

  it("the sim's dd on /dev/vda, read and write, judged as a storage run", async () => {
    const settings = benchSettings({ storage: { mib: 64 } });
    const c = parseVariant('E3', 'disk-delegated', 4) as Extract<BenchCase, { kind: 'disk' }>;
    expect(c.vcpu).toBe(1);
    const read = await simTool(ddTool, 'dd', ['if=/dev/vda', 'of=/dev/null', 'bs=1M', 'count=64', 'iflag=direct'], c.vcpu);
    const write = await simTool(ddTool, 'dd', ['if=/dev/zero', 'of=/dev/vda', 'bs=1M', 'count=64', 'oflag=direct', 'conv=fsync'], c.vcpu);
    // The guest command merges stderr into stdout (2>&1).
    const merged = (o: CommandOutput, what: string) => ({ what, exitCode: o.exitCode, stdout: o.stdout + o.stderr, stderr: '' });
    const outcome = judgeBenchmark(c, [merged(read, 'read'), merged(write, 'write')], ctx(4, settings));
    expect(outcome).toMatchObject({ ok: true, simulated: true, metrics: { readBytes: 64 * 2 ** 20, writeBytes: 64 * 2 ** 20 }, units: { readMBps: 'MB/s', writeSeconds: 's' } });
    if (outcome.ok) {
      // The model's storage rates (MB/s), delegated: FragVisor's 420 / 310 x 0.9, within the noise.
      expect(outcome.metrics.readMBps).toBeGreaterThan(420 * 0.9 * 0.8);
      expect(outcome.metrics.readMBps).toBeLessThan(420 * 1.1);
      expect(outcome.metrics.writeMBps).toBeLessThan(outcome.metrics.readMBps);
    }
    expect(judgeBenchmark(c, [merged(read, 'read'), merged(write, 'write')], ctx(4, benchSettings({ storage: { mib: 128 } })))).toMatchObject({ ok: false, reason: 'dd (read) copied 67108864 bytes, not 128 MiB' });
  });
});

// ---- NPB ----

const REAL_NPB = `

 NAS Parallel Benchmarks (NPB3.3-SER) - EP Benchmark

 Number of random numbers generated:      2147483648

EP Benchmark Results:

CPU Time =   95.1237
N = 2^30
No. Gaussian Pairs =       843345606.
Sums =     4.033815542441526D+04   -3.394675684992354D+04
Counts: 
  0     393058470.
  1     375280898.


 EP Benchmark Completed.
 Class           =                        B
 Size            =               2147483648
 Iterations      =                        0
 Time in seconds =                    95.12
 Total threads   =                        1
 Mop/s total     =                    22.58
 Operation type  = Random numbers generated
 Verification    =               SUCCESSFUL
 Version         =                    3.3.1
 Compile date    =              25 Jun 2020
`;

describe('parseNpb', () => {
  it('the NPB 3.3 serial report', () => {
    expect(parseNpb(REAL_NPB)).toEqual({ benchmark: 'EP', class: 'B', seconds: 95.12, mopsTotal: 22.58, verification: 'SUCCESSFUL', simulated: false });
  });

  it.each(['ep.B', 'cg.B', 'is.B'])("the sim's %s on vCPU 2, judged as an NPB run", async (kernel) => {
    const out = await simTool(npbTool, kernel, [], 2);
    expect(out.exitCode).toBe(0);
    const c = parseVariant('E3', `npb-${kernel}-vcpu2`, 4);
    const outcome = judgeBenchmark(c, [{ ...out, what: 'npb' }], ctx());
    expect(outcome).toMatchObject({ ok: true, simulated: true, units: { seconds: 's', mopsTotal: 'Mop/s' } });
    // The model's time off the origin is longer than its local time.
    if (outcome.ok) expect(outcome.metrics.seconds).toBeGreaterThan(MODEL.npb.kernels[kernel].localSeconds * 0.9);
  });

  it('a failed verification, another benchmark, no report', () => {
    const c = parseVariant('E3', 'npb-ep.B-vcpu0', 1);
    expect(judgeBenchmark(c, [ok('npb', REAL_NPB.replace('SUCCESSFUL', 'UNSUCCESSFUL'))], ctx(1))).toMatchObject({ ok: false, reason: 'ep.B: verification UNSUCCESSFUL' });
    expect(judgeBenchmark(c, [ok('npb', REAL_NPB.replace(/EP Benchmark Completed/, 'CG Benchmark Completed'))], ctx(1))).toMatchObject({ ok: false, reason: 'ep.B reported CG class B' });
    expect(judgeBenchmark(c, [{ what: 'npb', exitCode: 127, stdout: 'bash: /root/NPB/bin/ep.B: No such file or directory\n', stderr: '' }], ctx(1))).toMatchObject({ ok: false, reason: 'ep.B exited with 127' });
    expect(() => parseNpb('Segmentation fault\n')).toThrow(BenchOutputError);
  });
});

// ---- OpenLambda ----

describe('OpenLambda: bodies and bursts', () => {
  it("parseLambdaBody on the sim's worker's answer; bodies without timings carry none", async () => {
    const worker = await startOpenLambdaWorker({ model: createModel(MODEL, { seed: 3, timeScale: 0 }), hypervisor: 'giantvm', nodes: 4, mask: () => 2, name: 'ol1' });
    try {
      const res = await fetch(`http://127.0.0.1:${worker.port}/run/process`, { method: 'POST', body: '1' });
      const body = await res.text();
      const t = parseLambdaBody(body.trim());
      expect(Object.keys(t?.phasesMs ?? {})).toEqual(['sandboxCreate', 'init', 'execute', 'cleanup']);
      expect(t?.simulated).toBe(true);
      expect(t?.totalMs).toBeCloseTo(Object.values(t!.phasesMs).reduce((a, b) => a + b, 0), 2);
    } finally {
      await worker.stop();
    }
    expect(parseLambdaBody('42')).toBeUndefined();
    expect(parseLambdaBody('{"result": 1}')).toBeUndefined();
    expect(parseLambdaBody('not json')).toBeUndefined();
  });

  const body = (ms: number) => JSON.stringify({ lambda: 'process', input: 1, phasesMs: { sandboxCreate: ms, init: 2 * ms, execute: 3, cleanup: 1 }, totalMs: 3 * ms + 4, simulated: true });
  const burst = (workers: { exit: number; body: string; meta?: string }[], wallNs = 1_250_000_000) =>
    `ae-burst-wall-ns ${wallNs}\n${workers.map((w, i) => `ae-burst-worker ${i} port ${5000 + i} exit ${w.exit}\n${w.body}\n${w.meta ?? `200 0.${i + 5}00000`}\n`).join('')}`;

  it('parseBurst', () => {
    expect(parseBurst(burst([{ exit: 0, body: body(100) }, { exit: 7, body: 'curl: (7) Failed to connect to 10.4.4.222 port 5001', meta: '000 0.000100' }]))).toEqual({
      wallSeconds: 1.25,
      workers: [
        { index: 0, port: 5000, exitCode: 0, httpStatus: 200, seconds: 0.5, body: body(100), timings: parseLambdaBody(body(100)) },
        { index: 1, port: 5001, exitCode: 7, httpStatus: 0, seconds: 0.0001, body: 'curl: (7) Failed to connect to 10.4.4.222 port 5001' },
      ],
    });
    expect(() => parseBurst('ae-burst-worker 0 port 5000 exit 0\n')).toThrow(BenchOutputError);
  });

  it('judged: wall time, per-phase means and maxima; a failed call fails a burst of 2', () => {
    const c = parseVariant('E2', 'openlambda', 2);
    const good = judgeBenchmark(c, [ok('burst', burst([{ exit: 0, body: body(100) }, { exit: 0, body: body(200) }]))], ctx(2));
    expect(good).toEqual({
      ok: true,
      simulated: true,
      metrics: {
        wallSeconds: 1.25,
        workers: 2,
        failedWorkers: 0,
        curlMaxSeconds: 0.6,
        sandboxCreateMs: 150,
        sandboxCreateMaxMs: 200,
        initMs: 300,
        initMaxMs: 400,
        executeMs: 3,
        executeMaxMs: 3,
        cleanupMs: 1,
        cleanupMaxMs: 1,
        lambdaTotalMs: 454,
        lambdaTotalMaxMs: 604,
      },
      units: expect.objectContaining({ wallSeconds: 's', initMs: 'ms', workers: 'workers' }) as unknown,
    });
    const plain = judgeBenchmark(c, [ok('burst', burst([{ exit: 0, body: '"done"' }, { exit: 0, body: '"done"' }]))], ctx(2));
    expect(plain).toMatchObject({ ok: true, simulated: false, metrics: { wallSeconds: 1.25, workers: 2, failedWorkers: 0 } });
    expect(plain.ok && Object.keys(plain.metrics)).toEqual(['wallSeconds', 'workers', 'failedWorkers', 'curlMaxSeconds']);
    expect(judgeBenchmark(c, [ok('burst', burst([{ exit: 0, body: body(1) }, { exit: 0, body: 'error', meta: '502 0.1' }]))], ctx(2))).toMatchObject({
      ok: false,
      reason: '1 of 2 lambda calls failed: port 5001: curl exit 0, HTTP 502',
    });
    expect(judgeBenchmark(c, [ok('burst', burst([{ exit: 0, body: body(1) }]))], ctx(2))).toMatchObject({ ok: false, reason: 'the burst reported 1 of 2 workers' });
  });

  it('burstCommand: the real sh and curl against two sim workers', async () => {
    // The command targets <ip>:5000+i; a local sh runs it against 127.0.0.1 only when 5000/5001 are free, so the
    // workers listen where the command points: port 5000 + i on 127.0.0.1.
    const model = createModel(MODEL, { seed: 5, timeScale: 0 });
    const workers = [];
    try {
      for (let i = 0; i < 2; i++) workers.push(await startOpenLambdaWorker({ model, hypervisor: 'fragvisor', nodes: 2, port: 5000 + i, mask: () => 1 << i, name: `ol${i}` }));
    } catch (err) {
      await Promise.all(workers.map((w) => w.stop()));
      throw new Error(`ports 5000/5001 are taken on this machine: ${(err as Error).message}`);
    }
    try {
      const cmd = burstCommand('127.0.0.1', 2, 0);
      const out = await run(['sh', '-c', cmd]);
      expect(out).toMatchObject({ exitCode: 0, stderr: '' });
      const outcome = judgeBenchmark(parseVariant('E2', 'openlambda', 2), [{ ...out, what: 'burst' }], ctx(2));
      expect(outcome).toMatchObject({ ok: true, simulated: true, metrics: { workers: 2, failedWorkers: 0 } });
      if (outcome.ok) {
        expect(outcome.metrics.wallSeconds).toBeGreaterThan(0);
        expect(outcome.metrics.wallSeconds).toBeLessThan(10);
        // vCPU 1 is remote: every phase costs more there (FragVisor's remoteFactor > 1), so the max exceeds the mean.
        expect(outcome.metrics.initMaxMs).toBeGreaterThan(outcome.metrics.initMs);
      }
    } finally {
      await Promise.all(workers.map((w) => w.stop()));
    }
  });
});

// ---- variants, commands, keys, plan ----

describe('variants', () => {
  it.each([
    ['E1', 'php-25ms', 4, { kind: 'php', level: '25ms', loops: 190_000 }],
    ['E1', 'php-500ms', 1, { kind: 'php', level: '500ms', loops: 38_000_000 }],
    ['E2', 'openlambda', 4, { kind: 'openlambda' }],
    ['E3', 'net-1048576-delegated', 2, { kind: 'net', bytes: 1048576, pinning: 'delegated' }],
    ['E3', 'disk-local', 1, { kind: 'disk', pinning: 'local', vcpu: 0 }],
    ['E3', 'disk-delegated', 4, { kind: 'disk', pinning: 'delegated', vcpu: 1 }],
    ['E3', 'npb-cg.B-vcpu3', 4, { kind: 'npb', kernel: 'cg.B', vcpu: 3 }],
  ] as const)('%s %s on %d node(s)', (experiment, variant, n, expected) => {
    const c = parseVariant(experiment, variant, n);
    expect(c).toMatchObject({ experiment, ...expected });
    expect(variantName(c)).toBe(variant);
  });

  it.each([
    ['E1', 'php-30ms', 4, /expected php-<level> with a level of 25ms, 40ms, 250ms, 500ms/],
    ['E2', 'php-25ms', 4, /expected openlambda/],
    ['E3', 'net-16-delegated', 1, /needs a remote vCPU/],
    ['E3', 'disk-delegated', 1, /needs a remote vCPU/],
    ['E3', 'npb-ep.B-vcpu4', 4, /vCPU 4 does not exist on 4 node/],
    ['E3', 'net-0-local', 4, /expected net-<bytes>/],
    ['E3', 'openlambda', 4, /expected net-<bytes>/],
  ] as const)('refuses %s %s on %d node(s)', (experiment, variant, n, message) => {
    expect(() => parseVariant(experiment, variant, n)).toThrow(BenchVariantError);
    expect(() => parseVariant(experiment, variant, n)).toThrow(message);
  });

  it('benchVariants: E1 four levels, E2 one, E3 sizes x both cases then storage then NPB per vCPU', () => {
    expect(benchVariants('E1', 4)).toEqual(PHP_LEVELS.map((l) => ({ variant: `php-${l.label}` })));
    expect(benchVariants('E2', 4)).toEqual([{ variant: 'openlambda' }]);
    const e3 = benchVariants('E3', 2, { npb: { kernels: ['ep.B', 'is.B'] } });
    expect(e3).toEqual([
      ...NET_SIZES.map((b) => ({ variant: `net-${b}-local`, pinning: 'local' })),
      ...NET_SIZES.map((b) => ({ variant: `net-${b}-delegated`, pinning: 'delegated' })),
      { variant: 'disk-local' },
      { variant: 'disk-delegated' },
      { variant: 'npb-ep.B-vcpu0' },
      { variant: 'npb-ep.B-vcpu1' },
      { variant: 'npb-is.B-vcpu0' },
      { variant: 'npb-is.B-vcpu1' },
    ]);
    for (const v of e3) expect(variantName(parseVariant('E3', v.variant, 2))).toBe(v.variant);
    expect(benchVariants('E3', 1).filter((v) => v.variant.includes('delegated'))).toEqual([]);
  });

  it('benchSettings: artifact defaults; bad values say what was expected', () => {
    expect(benchSettings()).toEqual({
      lemp: { requests: 100, concurrency: 10, levels: ['25ms', '40ms', '250ms', '500ms'] },
      network: { requests: 1000, concurrency: 10, sizes: [...NET_SIZES], settleSeconds: 3 },
      openLambda: { gapSeconds: 5 },
      storage: { mib: 1024, ops: ['read', 'write'] },
      npb: { kernels: ['ep.B', 'bt.B', 'cg.B', 'ft.B', 'is.B', 'lu.B', 'mg.B', 'sp.B'] },
      maxErrorRatio: 0.1,
    });
    expect(() => benchSettings({ lemp: { requests: 5 } })).toThrow('expected concurrency (ab -c) at most requests (ab -n)');
    expect(() => benchSettings({ network: { sizes: [1, 1] } })).toThrow('expected each of page sizes once');
    expect(() => benchSettings({ npb: { kernels: ['ep'] } })).toThrow('expected an NPB kernel like ep.B');
    expect(() => benchSettings({ lemp: { levels: ['1ms' as never] } })).toThrow('expected a PHP level: 25ms, 40ms, 250ms, 500ms');
  });
});

describe('commands', () => {
  const settings = benchSettings();
  it.each([
    ['E1', 'php-40ms', [['guest', 'cat > /usr/local/nginx/html/web.php.ae-tmp && mv -f /usr/local/nginx/html/web.php.ae-tmp /usr/local/nginx/html/web.php && sync'], ['client', 'ab -n 100 -c 10 http://10.4.4.222/']]],
    [
      'E3',
      'net-64-local',
      [
        ['guest', "head -c 64 /dev/zero | tr '\\0' a > /usr/local/nginx/html/index.html.ae-tmp && mv -f /usr/local/nginx/html/index.html.ae-tmp /usr/local/nginx/html/index.html && sync && stat -c %s /usr/local/nginx/html/index.html && sleep 3"],
        ['client', 'ab -n 1000 -c 10 http://10.4.4.222/'],
      ],
    ],
    [
      'E3',
      'disk-delegated',
      [
        ['guest', 'env LC_ALL=C taskset -c 1 dd if=/dev/vda of=/dev/null bs=1M count=1024 iflag=direct 2>&1'],
        ['guest', 'env LC_ALL=C taskset -c 1 dd if=/dev/zero of=/dev/vda bs=1M count=1024 oflag=direct conv=fsync 2>&1'],
      ],
    ],
    ['E3', 'npb-mg.B-vcpu3', [['guest', 'env LC_ALL=C taskset -c 3 /root/NPB/bin/mg.B 2>&1']]],
  ] as const)('%s %s', (experiment, variant, expected) => {
    const cmds = benchCommands(parseVariant(experiment, variant, 4), ctx(4, settings));
    expect(cmds.map((c) => [c.host, c.command])).toEqual(expected);
  });

  it('web.php: the generated script of each level names its loop count the way the sim reads it', () => {
    for (const level of PHP_LEVELS) {
      const [write] = benchCommands(parseVariant('E1', `php-${level.label}`, 4), ctx());
      expect(write.stdin).toBe(phpScript(level.loops));
      expect(scriptLoops(write.stdin!, MODEL)).toBe(level.loops);
    }
    expect(phpScript(19_000_000)).toContain('function test_Math($count = 140000)');
    expect(phpScript(1_900_000)).toContain('function test_IfElse($count = 900000)');
  });

  it('pageCommand writes exactly the size (the real head and tr)', async () => {
    for (const bytes of [1, 229, 65536]) {
      const line = pageCommand(bytes, 0).split(' && mv')[0].replace(/> \S+$/, '| wc -c');
      const out = await run(['sh', '-c', line]);
      expect(out.stdout.trim()).toBe(String(bytes));
    }
    expect(pageCommand(16, 0)).not.toContain('sleep');
  });

  it('burstCommand: one line of sh -c with a POST per worker and the pause first', () => {
    const line = burstCommand('10.4.4.222', 3, 5);
    expect(line.startsWith("sh -c 'sleep 5\n")).toBe(true);
    for (const port of [5000, 5001, 5002]) expect(line).toContain(toCommandLine(['curl', '-sS', '-w', '\n%{http_code} %{time_total}\n', '-d', '1', `http://10.4.4.222:${port}/run/process`]).replace(/'/g, "'\\''"));
    expect(line).not.toContain('5003');
  });
});

describe('measurement keys', () => {
  const key = (over: Partial<MeasurementKey>): MeasurementKey => ({ hypervisor: 'fragvisor', experiment: 'E3', nodeCount: 4, variant: 'net-2-local', repetition: 1, ...over });
  it('ids and order', () => {
    expect(measurementKeyId(key({ variant: 'npb-ep.B-vcpu0', repetition: 3 }))).toBe('fragvisor.E3.n4.npb-ep.B-vcpu0.rep3');
    expect(() => measurementKeyId(key({ variant: '../x' }))).toThrow(BenchVariantError);
    expect(() => measurementKeyId(key({ variant: 'a..b' }))).toThrow(BenchVariantError);
    expect(() => measurementKeyId(key({ repetition: 0 }))).toThrow(BenchVariantError);
    const keys = [
      key({ variant: 'net-16-local' }),
      key({ hypervisor: 'giantvm' }),
      key({ variant: 'net-2-local', repetition: 10 }),
      key({ nodeCount: 2 }),
      key({ experiment: 'E1', variant: 'php-500ms' }),
      key({ experiment: 'E1', variant: 'php-40ms' }),
      key({ variant: 'net-2-local', repetition: 2 }),
    ];
    expect([...keys].sort(compareMeasurementKeys).map(measurementKeyId)).toEqual([
      'fragvisor.E1.n4.php-40ms.rep1',
      'fragvisor.E1.n4.php-500ms.rep1',
      'fragvisor.E3.n2.net-2-local.rep1',
      'fragvisor.E3.n4.net-2-local.rep2',
      'fragvisor.E3.n4.net-2-local.rep10',
      'fragvisor.E3.n4.net-16-local.rep1',
      'giantvm.E3.n4.net-2-local.rep1',
    ]);
  });
});

describe('benchSteps', () => {
  it('E1 on 4 nodes: web.php on the guest, ab on the client host, per level, unique keys', () => {
    const steps = benchSteps({ hypervisor: 'fragvisor', experiment: 'E1', nodeCount: 4, guestIp: '10.4.4.222', clientHost: 'echo5' });
    expect(steps.map((s) => s.key)).toEqual(PHP_LEVELS.flatMap((l) => [`fragvisor/bench-E1-n4/guest/php-${l.label}/web-php`, `fragvisor/bench-E1-n4/echo5/php-${l.label}/ab`]));
    expect(steps[1]).toMatchObject({ host: { node: 'echo5' }, commands: ['ab -n 100 -c 10 http://10.4.4.222/'] });
    expect(steps[1].note).toMatch(/BenchmarkFailed/);
  });

  it('E3 on 2 nodes with a separate client and custom counts; E2', () => {
    const steps = benchSteps({ hypervisor: 'giantvm', experiment: 'E3', nodeCount: 2, guestIp: '10.4.4.222', clientHost: 'client', settings: { network: { requests: 50, sizes: [1, 2] }, npb: { kernels: ['ep.B'] } } });
    expect(new Set(steps.map((s) => s.key)).size).toBe(steps.length);
    expect(steps.filter((s) => s.commands[0].startsWith('ab ')).map((s) => [s.host, s.commands[0], s.title])).toEqual([
      [{ node: 'client' }, 'ab -n 50 -c 10 http://10.4.4.222/', 'E3 net-1-local (nginx worker pinned local): ab on client'],
      [{ node: 'client' }, 'ab -n 50 -c 10 http://10.4.4.222/', 'E3 net-2-local (nginx worker pinned local): ab on client'],
      [{ node: 'client' }, 'ab -n 50 -c 10 http://10.4.4.222/', 'E3 net-1-delegated (nginx worker pinned delegated): ab on client'],
      [{ node: 'client' }, 'ab -n 50 -c 10 http://10.4.4.222/', 'E3 net-2-delegated (nginx worker pinned delegated): ab on client'],
    ]);
    expect(steps.filter((s) => 'node' in s.host && s.host.node === 'guest').map((s) => s.key.split('/').slice(3).join('/'))).toEqual([
      'net-1-local/page',
      'net-2-local/page',
      'net-1-delegated/page',
      'net-2-delegated/page',
      'disk-local/read',
      'disk-local/write',
      'disk-delegated/read',
      'disk-delegated/write',
      'npb-ep.B-vcpu0/npb',
      'npb-ep.B-vcpu1/npb',
    ]);
    const e2 = benchSteps({ hypervisor: 'fragvisor', experiment: 'E2', nodeCount: 4, guestIp: '10.4.4.222', clientHost: 'echo5' });
    expect(e2).toEqual([expect.objectContaining({ key: 'fragvisor/bench-E2-n4/echo5/openlambda/burst', commands: [burstCommand('10.4.4.222', 4, 5)] })]);
  });
});
