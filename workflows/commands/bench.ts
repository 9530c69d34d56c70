/**
 * The benchmarks of ARTIFACT.md step 6 as pure data: what runs where for each measurement variant,
 * the parsers of what the tools print (by field name, never by line offset), the verdict on one run
 * and the measurement key. No I/O: activities/bench.ts runs the commands, `ae plan` prints them.
 *
 * Variants (docs/BENCHMARKS.md): E1 `php-<level>`, E2 `openlambda`, E3 network
 * `net-<bytes>-local|delegated`, and our two reconstructions in the E3 guest: storage
 * `disk-local|delegated` (dd on the virtio disk from vCPU 0 / from vCPU 1) and NPB
 * `npb-<kernel>-vcpu<i>` (an NPB binary pinned to vCPU i).
 */
import { z } from 'zod';
import type { Experiment, Hypervisor } from '../inputs';
import { mean } from '../claims/stats';
import type { PlanStep } from '../plan/types';
import { shellQuote, toCommandLine } from './quote';

// ---- constants of the guests (ARTIFACT.md steps 5 and 6) ----

/** nginx's html dir in the E1 and E3 ramdisks (`root html` under the /usr/local/nginx prefix). */
export const GUEST_HTML_DIR = '/usr/local/nginx/html';
/** Where the NPB binaries are in ramdisk_NPB_ATC.gz. */
export const NPB_BIN_DIR = '/root/NPB/bin';
/** The E3 guest's virtio disk. */
export const GUEST_DISK = '/dev/vda';
/** `ol worker` i listens on 5000 + i (ARTIFACT.md step 5). */
export const OPENLAMBDA_BASE_PORT = 5000;
/** The artifact's lambda and its input (`curl -d '1' 10.4.4.222:<port>/run/process`). */
export const OPENLAMBDA_LAMBDA = 'process';

/**
 * The four PHP work levels (labels: the artifact's "25/40/250/500 ms" variants). The artifact's
 * php-script-*.php were never published; we generate the classic PHP benchmark script they are
 * based on with `test_Loops($count = loops)` and its other loop counts scaled alike (250ms is the
 * script as published, 19000000 loops). The simulated guest reads the same `test_Loops` count.
 */
export const PHP_LEVELS = [
  { label: '25ms', loops: 190_000 },
  { label: '40ms', loops: 1_900_000 },
  { label: '250ms', loops: 19_000_000 },
  { label: '500ms', loops: 38_000_000 },
] as const;
export type PhpLevel = (typeof PHP_LEVELS)[number]['label'];
const PHP_LABELS = PHP_LEVELS.map((l) => l.label) as [PhpLevel, ...PhpLevel[]];

/** E3 network page sizes in bytes (Figure 6). */
export const NET_SIZES = [1, 2, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576] as const;
/** The NPB kernels of ramdisk_NPB_ATC.gz (serial, class B). */
export const NPB_KERNELS = ['ep.B', 'bt.B', 'cg.B', 'ft.B', 'is.B', 'lu.B', 'mg.B', 'sp.B'] as const;

export const PINNINGS = ['local', 'delegated'] as const;
/** E3's two cases: the worker (or dd) on vCPU 0, the origin, or on a remote vCPU whose I/O is delegated to the origin. */
export type Pinning = (typeof PINNINGS)[number];
/** The remote vCPU of the delegated cases: vCPU 1, as the artifact's E3 case 2 (mask 0x2). */
export const DELEGATED_VCPU = 1;

export const DISK_OPS = ['read', 'write'] as const;
export type DiskOp = (typeof DISK_OPS)[number];

// ---- settings ----

const count = (what: string, max: number) =>
  z.number({ error: `expected ${what} (a number)` }).int(`expected a whole number (${what})`).min(1, `expected at least 1 (${what})`).max(max, `expected at most ${max} (${what})`);
const seconds = (what: string) => z.number({ error: `expected ${what} in seconds (a number)` }).min(0, `expected ${what} of at least 0 s`).max(600, `expected ${what} of at most 600 s`);
const unique = <T>(xs: readonly T[]) => new Set(xs).size === xs.length;
const list = <T extends z.ZodType>(item: T, what: string) => z.array(item, { error: `expected a list of ${what}` }).min(1, `expected at least one of ${what}`).refine(unique, `expected each of ${what} once`);
const requests = count('ab -n: requests', 10_000_000);
const concurrency = count('ab -c: concurrent requests', 20_000).default(10);
// ab refuses -c above -n: "Cannot use concurrency level greater than total number of requests".
const abFits = [(s: { requests: number; concurrency: number }) => s.concurrency <= s.requests, 'expected concurrency (ab -c) at most requests (ab -n)'] as const;

const lempSchema = z
  .strictObject({
    requests: requests.default(100),
    concurrency,
    levels: list(z.enum(PHP_LABELS, { error: `expected a PHP level: ${PHP_LABELS.join(', ')}` }), 'PHP levels').default([...PHP_LABELS]),
  })
  .refine(...abFits);
const networkSchema = z
  .strictObject({
    requests: requests.default(1000),
    concurrency,
    sizes: list(count('a page size in bytes', 1 << 30), 'page sizes').default([...NET_SIZES]),
    settleSeconds: seconds('the settle time after writing the page').default(3),
  })
  .refine(...abFits);
const openLambdaSchema = z.strictObject({ gapSeconds: seconds('the pause between bursts').default(5) });
const storageSchema = z.strictObject({
  mib: count('MiB per dd', 8192).default(1024),
  ops: list(z.enum(DISK_OPS, { error: 'expected read or write' }), 'disk operations').default([...DISK_OPS]),
});
const npbSchema = z.strictObject({
  kernels: list(z.string({ error: 'expected an NPB kernel like ep.B' }).regex(/^[a-z]{2}\.[A-Z]$/, 'expected an NPB kernel like ep.B (benchmark.class)'), 'NPB kernels').default([...NPB_KERNELS]),
});

/**
 * What a run may change about the benchmarks (the workflow input passes it through); every field
 * defaults to the artifact's value.
 */
export const benchSettingsSchema = z.strictObject({
  /** E1: `ab -n 100 -c 10` per PHP level. */
  lemp: lempSchema.default(() => lempSchema.parse({})),
  /** E3 network: `ab -n 1000 -c 10` per page size, after `sync` and a settle time of 3 s. */
  network: networkSchema.default(() => networkSchema.parse({})),
  /** E2: the pause before each burst (the artifact sleeps 5 s between iterations). */
  openLambda: openLambdaSchema.default(() => openLambdaSchema.parse({})),
  /** Storage (our reconstruction): dd of `mib` MiB, O_DIRECT, read and/or write. */
  storage: storageSchema.default(() => storageSchema.parse({})),
  /** NPB (our reconstruction): the kernels timed on each vCPU. */
  npb: npbSchema.default(() => npbSchema.parse({})),
  /**
   * A run whose failed requests (non-2xx plus ab's failed requests) or failed lambda calls exceed
   * this fraction of the run is BenchmarkFailed; below it the run is recorded with its counts.
   */
  maxErrorRatio: z.number({ error: 'expected a fraction 0..1' }).min(0, 'expected a fraction 0..1').max(1, 'expected a fraction 0..1').default(0.1),
});
export type BenchSettingsInput = z.input<typeof benchSettingsSchema>;
export type BenchSettings = z.output<typeof benchSettingsSchema>;

/** Defaults filled in; throws a ZodError on a bad value. */
export function benchSettings(input: BenchSettingsInput = {}): BenchSettings {
  return benchSettingsSchema.parse(input);
}

// ---- measurement keys ----

export interface MeasurementKey {
  hypervisor: Hypervisor;
  experiment: Experiment;
  nodeCount: number;
  variant: string;
  /** 1-based. */
  repetition: number;
}

export interface Measurement {
  key: MeasurementKey;
  /** Parsed numbers by name (requestsPerSecond, wallSeconds, readMBps, seconds, ...). */
  metrics: Record<string, number>;
  /** Unit of each metric. */
  units: Record<string, string>;
  /** The raw tool output, relative to the run folder. */
  raw: string;
  /** Measured on the simulated cluster (its numbers come from a performance model). */
  simulated: boolean;
  /** When the measured command started (ISO 8601). */
  measuredAt: string;
  /** The activity attempt that measured it. */
  attempt: number;
}

/** Variant names: also file names in the run store. */
const VARIANT = /^[a-z](?:[A-Za-z0-9-]|\.(?!\.)){0,80}$/;

/** `fragvisor.E1.n4.php-25ms.rep1`: a stable id of a key (a file name, a set member). */
export function measurementKeyId(k: MeasurementKey): string {
  if (!VARIANT.test(k.variant)) throw new BenchVariantError(`variant ${JSON.stringify(k.variant)}: expected a letter, then letters, digits, "-" and single "."`);
  if (!Number.isInteger(k.nodeCount) || k.nodeCount < 1 || !Number.isInteger(k.repetition) || k.repetition < 1) {
    throw new BenchVariantError(`expected a whole node count and repetition of at least 1, got ${k.nodeCount} and ${k.repetition}`);
  }
  return `${k.hypervisor}.${k.experiment}.n${k.nodeCount}.${k.variant}.rep${k.repetition}`;
}

/** Digit runs compared as numbers, the rest by code unit (no locale: the same order in workflow code everywhere). */
function natural(a: string, b: string): number {
  const pa = a.match(/\d+|\D+/g) ?? [];
  const pb = b.match(/\d+|\D+/g) ?? [];
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const [x, y] = [pa[i], pb[i]];
    if (x === y) continue;
    if (/^\d/.test(x) && /^\d/.test(y)) return Number(x) - Number(y) || (x < y ? -1 : 1);
    return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** Results order: hypervisor, experiment, node count, variant (numbers in it compared as numbers), repetition. */
export function compareMeasurementKeys(a: MeasurementKey, b: MeasurementKey): number {
  return natural(a.hypervisor, b.hypervisor) || natural(a.experiment, b.experiment) || a.nodeCount - b.nodeCount || natural(a.variant, b.variant) || a.repetition - b.repetition;
}

// ---- variants ----

export class BenchVariantError extends Error {
  override readonly name = 'BenchVariantError';
}

export type BenchCase =
  | { kind: 'php'; experiment: 'E1'; level: PhpLevel; loops: number }
  | { kind: 'openlambda'; experiment: 'E2' }
  | { kind: 'net'; experiment: 'E3'; bytes: number; pinning: Pinning }
  | { kind: 'disk'; experiment: 'E3'; pinning: Pinning; vcpu: number }
  | { kind: 'npb'; experiment: 'E3'; kernel: string; vcpu: number };

export function variantName(c: BenchCase): string {
  switch (c.kind) {
    case 'php':
      return `php-${c.level}`;
    case 'openlambda':
      return 'openlambda';
    case 'net':
      return `net-${c.bytes}-${c.pinning}`;
    case 'disk':
      return `disk-${c.pinning}`;
    case 'npb':
      return `npb-${c.kernel}-vcpu${c.vcpu}`;
  }
}

const vcpuOf = (pinning: Pinning) => (pinning === 'local' ? 0 : DELEGATED_VCPU);

/** What a variant of an experiment measures on `nodeCount` vCPUs; BenchVariantError when it names nothing we run. */
export function parseVariant(experiment: Experiment, variant: string, nodeCount: number): BenchCase {
  const bad = (why: string) => new BenchVariantError(`${experiment} variant ${JSON.stringify(variant)}: ${why}`);
  const remoteOk = (pinning: Pinning) => {
    if (pinning === 'delegated' && nodeCount < 2) throw bad(`the delegated case needs a remote vCPU (vCPU ${DELEGATED_VCPU}), and ${nodeCount} node(s) give only vCPU 0`);
  };
  let m: RegExpExecArray | null;
  if (experiment === 'E1') {
    m = /^php-(.+)$/.exec(variant);
    const level = PHP_LEVELS.find((l) => l.label === m?.[1]);
    if (!level) throw bad(`expected php-<level> with a level of ${PHP_LABELS.join(', ')}`);
    return { kind: 'php', experiment, level: level.label, loops: level.loops };
  }
  if (experiment === 'E2') {
    if (variant !== 'openlambda') throw bad('expected openlambda');
    return { kind: 'openlambda', experiment };
  }
  if ((m = /^net-([1-9]\d{0,9})-(local|delegated)$/.exec(variant))) {
    const bytes = Number(m[1]);
    if (bytes > 1 << 30) throw bad('expected a page of at most 1 GiB');
    const pinning = m[2] as Pinning;
    remoteOk(pinning);
    return { kind: 'net', experiment, bytes, pinning };
  }
  if ((m = /^disk-(local|delegated)$/.exec(variant))) {
    const pinning = m[1] as Pinning;
    remoteOk(pinning);
    return { kind: 'disk', experiment, pinning, vcpu: vcpuOf(pinning) };
  }
  if ((m = /^npb-([a-z]{2}\.[A-Z])-vcpu(\d{1,3})$/.exec(variant))) {
    const vcpu = Number(m[2]);
    if (vcpu >= nodeCount) throw bad(`vCPU ${vcpu} does not exist on ${nodeCount} node(s) (vCPU i runs on node i)`);
    return { kind: 'npb', experiment, kernel: m[1], vcpu };
  }
  throw bad('expected net-<bytes>-local|delegated, disk-local|delegated or npb-<kernel>-vcpu<i>');
}

export interface PlannedVariant {
  variant: string;
  /** E3 network: the nginx pinning case pinGuest must have set up before this variant runs. */
  pinning?: Pinning;
}

/**
 * The variants of one epoch in run order. E3: every size with nginx pinned locally, then every size
 * with the worker on the remote vCPU (the epoch re-pins in between), then storage and NPB (which pin
 * their own process). On 1 node there is no remote vCPU: no delegated variants.
 */
export function benchVariants(experiment: Experiment, nodeCount: number, input: BenchSettingsInput = {}): PlannedVariant[] {
  const settings = benchSettings(input);
  if (experiment === 'E1') return settings.lemp.levels.map((l) => ({ variant: `php-${l}` }));
  if (experiment === 'E2') return [{ variant: 'openlambda' }];
  const pinnings = PINNINGS.filter((p) => p === 'local' || nodeCount > 1);
  return [
    ...pinnings.flatMap((pinning) => settings.network.sizes.map((bytes) => ({ variant: `net-${bytes}-${pinning}`, pinning }))),
    ...pinnings.map((p) => ({ variant: `disk-${p}` })),
    ...settings.npb.kernels.flatMap((k) => Array.from({ length: nodeCount }, (_, v) => ({ variant: `npb-${k}-vcpu${v}` }))),
  ];
}

// ---- commands ----

/** One command of a measurement: where it runs, the line, what goes on its stdin. */
export interface BenchCommand {
  /** Stable name within the measurement (`page`, `ab`, `burst`, `read`, `write`, `npb`). */
  what: string;
  /** The guest (root over its SSH endpoint) or the load-generator host (the origin unless the profile names a client). */
  host: 'guest' | 'client';
  command: string;
  stdin?: string;
}

export interface BenchCommandContext {
  guestIp: string;
  nodeCount: number;
  settings: BenchSettings;
}

/** `ab -n N -c C http://<guest ip>/`. */
export function abArgv(guestIp: string, requests: number, concurrency: number): string[] {
  return ['ab', '-n', String(requests), '-c', String(concurrency), `http://${guestIp}/`];
}

/**
 * The PHP benchmark script the artifact's levels are variants of (PHP BENCHMARK SCRIPT, Code24 BV),
 * with every loop count scaled by loops / 19000000. The page it prints has the layout the simulated
 * guest prints.
 */
export function phpScript(loops: number): string {
  const scale = (n: number) => Math.max(1, Math.round((n * loops) / 19_000_000));
  return `<?php
// fragvisor-ae: the E1 PHP work level with test_Loops($count = ${loops}) (generated; the artifact's own
// php-script-*.php were never published). Based on the PHP benchmark script by Alessandro Torrisi.
set_time_limit(0);
$line = str_pad("-", 38, "-");
echo "<pre>$line\\n|" . str_pad("PHP BENCHMARK SCRIPT", 36, " ", STR_PAD_BOTH) . "|\\n$line\\nStart : " . date("Y-m-d H:i:s") . "\\nServer : {$_SERVER['SERVER_NAME']}@{$_SERVER['SERVER_ADDR']}\\nPHP version : " . PHP_VERSION . "\\nPlatform : " . PHP_OS . "\\n$line\\n";
$total = 0;
foreach (array("test_Math", "test_StringManipulation", "test_Loops", "test_IfElse") as $test) {
  $result = $test();
  $total += $result;
  echo str_pad($test, 25) . " : " . number_format($result, 3) . " sec.\\n";
}
echo "$line\\n" . str_pad("Total time:", 25) . " : " . number_format($total, 3) . " sec.</pre>";

function test_Math($count = ${scale(140_000)}) {
  $time_start = microtime(true);
  $mathFunctions = array("abs", "acos", "asin", "atan", "bindec", "floor", "exp", "sin", "tan", "pi", "is_finite", "is_nan", "sqrt");
  for ($i = 0; $i < $count; $i++) {
    foreach ($mathFunctions as $function) {
      $r = call_user_func_array($function, array($i));
    }
  }
  return microtime(true) - $time_start;
}

function test_StringManipulation($count = ${scale(130_000)}) {
  $time_start = microtime(true);
  $stringFunctions = array("addslashes", "chunk_split", "metaphone", "strip_tags", "md5", "sha1", "strtoupper", "strtolower", "strrev", "strlen", "soundex", "ord");
  $string = "the quick brown fox jumps over the lazy dog";
  for ($i = 0; $i < $count; $i++) {
    foreach ($stringFunctions as $function) {
      $r = call_user_func_array($function, array($string));
    }
  }
  return microtime(true) - $time_start;
}

function test_Loops($count = ${loops}) {
  $time_start = microtime(true);
  for ($i = 0; $i < $count; ++$i);
  $i = 0;
  while ($i < $count) ++$i;
  return microtime(true) - $time_start;
}

function test_IfElse($count = ${scale(9_000_000)}) {
  $time_start = microtime(true);
  for ($i = 0; $i < $count; $i++) {
    if ($i == -1) {
    } elseif ($i == -2) {
    } else if ($i == -3) {
    }
  }
  return microtime(true) - $time_start;
}
`;
}

const html = (name: string) => `${GUEST_HTML_DIR}/${name}`;

/** Writes stdin to `file` atomically (nginx never serves half a file), then `sync`. */
function writeFromStdin(file: string): string {
  const tmp = `${file}.ae-tmp`;
  return `${toCommandLine(['cat'])} > ${shellQuote(tmp)} && ${toCommandLine(['mv', '-f', tmp, file])} && sync`;
}

/**
 * index.html of exactly `bytes` bytes (`a` repeated), written atomically, `sync`, its size printed
 * (checked), then the settle time the artifact waits.
 */
export function pageCommand(bytes: number, settleSeconds: number): string {
  const file = html('index.html');
  const tmp = `${file}.ae-tmp`;
  const write = `${toCommandLine(['head', '-c', String(bytes), '/dev/zero'])} | ${toCommandLine(['tr', '\\0', 'a'])} > ${shellQuote(tmp)}`;
  const settle = settleSeconds > 0 ? ` && ${toCommandLine(['sleep', String(settleSeconds)])}` : '';
  return `${write} && ${toCommandLine(['mv', '-f', tmp, file])} && sync && ${toCommandLine(['stat', '-c', '%s', file])}${settle}`;
}

/** `taskset -c <vcpu>` under the C locale (dd's and NPB's numbers must not take a decimal comma). */
const pinnedTo = (vcpu: number, argv: string[]) => toCommandLine(['env', 'LC_ALL=C', 'taskset', '-c', String(vcpu), ...argv]);

/** dd through the page cache's back (O_DIRECT): read the disk to /dev/null, or write zeros over its first `mib` MiB. */
export function ddArgv(op: DiskOp, mib: number): string[] {
  return op === 'read'
    ? ['dd', `if=${GUEST_DISK}`, 'of=/dev/null', 'bs=1M', `count=${mib}`, 'iflag=direct']
    : ['dd', 'if=/dev/zero', `of=${GUEST_DISK}`, 'bs=1M', `count=${mib}`, 'oflag=direct', 'conv=fsync'];
}

/** Marker lines of the OpenLambda burst's output. */
const BURST_WALL = 'ae-burst-wall-ns';
const BURST_WORKER = 'ae-burst-worker';

/**
 * One E2 iteration on the load-generator host: after the pause, start a timer, POST `-d 1` to every
 * worker's /run/process in parallel, wait for all, print the wall time in ns, then each worker's exit
 * code, body and `<http status> <seconds>` (curl -w). Run under sh -c, whatever the login shell.
 */
export function burstCommand(guestIp: string, workers: number, gapSeconds: number): string {
  const posts = Array.from({ length: workers }, (_, i) => {
    const curl = toCommandLine(['curl', '-sS', '-w', '\n%{http_code} %{time_total}\n', '-d', '1', `http://${guestIp}:${OPENLAMBDA_BASE_PORT + i}/run/${OPENLAMBDA_LAMBDA}`]);
    return `{ ${curl} > "$d/${i}" 2>&1; echo $? > "$d/${i}.rc"; } &`;
  });
  const ids = Array.from({ length: workers }, (_, i) => String(i)).join(' ');
  const script = [
    ...(gapSeconds > 0 ? [`sleep ${gapSeconds}`] : []),
    'd=$(mktemp -d) || exit 1',
    't0=$(date +%s%N)',
    ...posts,
    'wait',
    't1=$(date +%s%N)',
    `echo "${BURST_WALL} $((t1 - t0))"`,
    `for i in ${ids}; do echo "${BURST_WORKER} $i port $((${OPENLAMBDA_BASE_PORT} + i)) exit $(cat "$d/$i.rc")"; cat "$d/$i"; done`,
    'rm -rf "$d"',
  ].join('\n');
  return toCommandLine(['sh', '-c', script]);
}

/** The commands of one measurement, in the order they run. */
export function benchCommands(c: BenchCase, ctx: BenchCommandContext): BenchCommand[] {
  const { settings } = ctx;
  switch (c.kind) {
    case 'php':
      return [
        { what: 'web-php', host: 'guest', command: writeFromStdin(html('web.php')), stdin: phpScript(c.loops) },
        { what: 'ab', host: 'client', command: toCommandLine(abArgv(ctx.guestIp, settings.lemp.requests, settings.lemp.concurrency)) },
      ];
    case 'net':
      return [
        { what: 'page', host: 'guest', command: pageCommand(c.bytes, settings.network.settleSeconds) },
        { what: 'ab', host: 'client', command: toCommandLine(abArgv(ctx.guestIp, settings.network.requests, settings.network.concurrency)) },
      ];
    case 'openlambda':
      return [{ what: 'burst', host: 'client', command: burstCommand(ctx.guestIp, ctx.nodeCount, settings.openLambda.gapSeconds) }];
    case 'disk':
      return settings.storage.ops.map((op) => ({ what: op, host: 'guest' as const, command: `${pinnedTo(c.vcpu, ddArgv(op, settings.storage.mib))} 2>&1` }));
    case 'npb':
      return [{ what: 'npb', host: 'guest', command: `${pinnedTo(c.vcpu, [`${NPB_BIN_DIR}/${c.kernel}`])} 2>&1` }];
  }
}

// ---- parsers ----

export class BenchOutputError extends Error {
  override readonly name = 'BenchOutputError';
}

export interface AbFailedBreakdown {
  connect: number;
  receive: number;
  length: number;
  exceptions: number;
}

/** ab's report, field by field. */
export interface AbReport {
  serverSoftware?: string;
  serverHostname?: string;
  serverPort?: number;
  documentPath?: string;
  /** Undefined when ab says `Variable` (-l). */
  documentLengthBytes?: number;
  concurrency: number;
  timeTakenSeconds: number;
  completeRequests: number;
  failedRequests: number;
  /** The line under `Failed requests` (absent when none failed). */
  failed?: AbFailedBreakdown;
  writeErrors: number;
  non2xxResponses: number;
  totalTransferredBytes: number;
  htmlTransferredBytes: number;
  requestsPerSecond: number;
  timePerRequestMs: number;
  /** `Time per request: ... (mean, across all concurrent requests)`. */
  timePerRequestAllMs: number;
  /** ab's Kbytes are 1024 bytes. */
  transferRateKBps: number;
  /** `Percentage of the requests served within a certain time (ms)`: `'50'` -> ms. */
  percentilesMs: Record<string, number>;
  /** The simulated cluster's ab says SIMULATED in its report. */
  simulated: boolean;
}

const NUMBER = '([0-9]+(?:\\.[0-9]+)?)';

/**
 * ab's output parsed by field name (`Field:   value`), wherever the line is: failed requests add
 * lines that shift any fixed window. A required field missing is BenchOutputError naming it.
 */
export function parseAb(text: string): AbReport {
  const fields = new Map<string, string[]>();
  const percentilesMs: Record<string, number> = {};
  let failed: AbFailedBreakdown | undefined;
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trimEnd();
    const breakdown = /^\s*\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)$/.exec(line);
    if (breakdown) {
      failed = { connect: Number(breakdown[1]), receive: Number(breakdown[2]), length: Number(breakdown[3]), exceptions: Number(breakdown[4]) };
      continue;
    }
    const pct = /^\s*(\d{1,3})%\s+(\d+)(?:\s+\(longest request\))?$/.exec(line);
    if (pct) {
      percentilesMs[pct[1]] = Number(pct[2]);
      continue;
    }
    const field = /^([A-Za-z][A-Za-z0-9 -]*[A-Za-z0-9]):\s*(.*)$/.exec(line);
    if (field) fields.set(field[1], [...(fields.get(field[1]) ?? []), field[2]]);
  }
  const missing: string[] = [];
  const value = (name: string, pattern: string, pick?: (values: string[]) => string | undefined): number => {
    const values = fields.get(name) ?? [];
    const v = pick ? pick(values) : values[0];
    const m = v === undefined ? null : new RegExp(`^${pattern}`).exec(v);
    if (!m) {
      missing.push(name);
      return NaN;
    }
    return Number(m[1]);
  };
  const optional = (name: string) => (fields.has(name) ? value(name, '(\\d+)') : 0);
  const perRequest = (across: boolean) => (values: string[]) => values.find((v) => /\(mean, across all concurrent requests\)/.test(v) === across);

  const docLength = fields.get('Document Length')?.[0];
  const report: AbReport = {
    ...(fields.get('Server Software')?.[0] ? { serverSoftware: fields.get('Server Software')![0] } : {}),
    ...(fields.has('Server Hostname') ? { serverHostname: fields.get('Server Hostname')![0] } : {}),
    ...(fields.has('Server Port') ? { serverPort: value('Server Port', '(\\d+)') } : {}),
    ...(fields.has('Document Path') ? { documentPath: fields.get('Document Path')![0] } : {}),
    ...(docLength !== undefined && !/^Variable/.test(docLength) ? { documentLengthBytes: value('Document Length', '(\\d+) bytes') } : {}),
    concurrency: value('Concurrency Level', '(\\d+)'),
    timeTakenSeconds: value('Time taken for tests', `${NUMBER} seconds`),
    completeRequests: value('Complete requests', '(\\d+)'),
    failedRequests: value('Failed requests', '(\\d+)'),
    ...(failed ? { failed } : {}),
    writeErrors: optional('Write errors'),
    non2xxResponses: optional('Non-2xx responses'),
    totalTransferredBytes: value('Total transferred', '(\\d+) bytes'),
    htmlTransferredBytes: value('HTML transferred', '(\\d+) bytes'),
    requestsPerSecond: value('Requests per second', `${NUMBER} \\[#/sec\\]`),
    timePerRequestMs: value('Time per request', `${NUMBER} \\[ms\\] \\(mean\\)`, perRequest(false)),
    timePerRequestAllMs: value('Time per request', `${NUMBER} \\[ms\\] \\(mean, across`, perRequest(true)),
    transferRateKBps: value('Transfer rate', `${NUMBER} \\[Kbytes/sec\\]`),
    percentilesMs,
    simulated: /SIMULATED/.test(text),
  };
  if (missing.length > 0) throw new BenchOutputError(`ab's report lacks ${[...new Set(missing)].join(', ')}`);
  return report;
}

export interface DdSummary {
  bytes: number;
  seconds: number;
  /** bytes / seconds / 1e6, computed here (dd's own rate has varying units); 0 when dd says 0 s. */
  mbps: number;
}

/**
 * dd's last summary line: `1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.55 s, 421 MB/s` (coreutils;
 * older ones and BusyBox word it slightly differently: `..., 2.55 seconds, 421 MB/s`).
 */
export function parseDdSummary(text: string): DdSummary {
  let found: DdSummary | undefined;
  for (const line of text.split(/\r?\n/)) {
    const m = /^(\d+) bytes\b.*\bcopied, ([0-9]+(?:\.[0-9]+)?(?:e[-+]?\d+)?) s(?:econds?)?\b/.exec(line.trim());
    if (m) {
      const bytes = Number(m[1]);
      const seconds = Number(m[2]);
      found = { bytes, seconds, mbps: seconds > 0 ? bytes / seconds / 1e6 : 0 };
    }
  }
  if (!found) throw new BenchOutputError("dd printed no summary line (`<n> bytes ... copied, <t> s, <rate>`)");
  return found;
}

export interface NpbReport {
  /** `EP` from `... - EP Benchmark` / ` EP Benchmark Completed.`. */
  benchmark?: string;
  class?: string;
  seconds: number;
  mopsTotal?: number;
  verification: string;
  simulated: boolean;
}

/** NPB's closing report, by field name (`Time in seconds = 95.12`). */
export function parseNpb(text: string): NpbReport {
  const fields = new Map<string, string>();
  let benchmark: string | undefined;
  for (const line of text.split(/\r?\n/)) {
    const done = /^\s*([A-Z]{2}) Benchmark Completed\.?\s*$/.exec(line);
    if (done) benchmark = done[1];
    const f = /^\s*([A-Za-z][A-Za-z/ ]*?)\s*=\s*(.*?)\s*$/.exec(line);
    if (f) fields.set(f[1], f[2]);
  }
  const seconds = Number(fields.get('Time in seconds'));
  const verification = fields.get('Verification');
  if (benchmark === undefined || !Number.isFinite(seconds) || fields.get('Time in seconds') === undefined || verification === undefined) {
    throw new BenchOutputError('NPB printed no completed report (`<XX> Benchmark Completed.`, `Time in seconds =`, `Verification =`)');
  }
  const mops = Number(fields.get('Mop/s total'));
  return {
    benchmark,
    ...(fields.has('Class') ? { class: fields.get('Class')! } : {}),
    seconds,
    ...(Number.isFinite(mops) && fields.has('Mop/s total') ? { mopsTotal: mops } : {}),
    verification,
    simulated: /SIMULATED/.test(text),
  };
}

/** Per-phase times a lambda's response body carries (the simulated OpenLambda: `{"phasesMs":{...},"totalMs":n}`). */
export interface LambdaTimings {
  phasesMs: Record<string, number>;
  totalMs?: number;
  simulated: boolean;
}

/** The timings in a response body, or undefined when it carries none (the artifact's lambdas print none). */
export function parseLambdaBody(body: string): LambdaTimings | undefined {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return undefined;
  }
  if (typeof json !== 'object' || json === null) return undefined;
  const o = json as Record<string, unknown>;
  const phases = o.phasesMs;
  if (typeof phases !== 'object' || phases === null) return undefined;
  const phasesMs: Record<string, number> = {};
  for (const [name, v] of Object.entries(phases)) if (typeof v === 'number' && Number.isFinite(v) && /^[A-Za-z][A-Za-z0-9_]*$/.test(name)) phasesMs[name] = v;
  if (Object.keys(phasesMs).length === 0) return undefined;
  return { phasesMs, ...(typeof o.totalMs === 'number' ? { totalMs: o.totalMs } : {}), simulated: o.simulated === true };
}

export interface BurstWorker {
  index: number;
  port: number;
  /** curl's exit code. */
  exitCode: number;
  /** From curl -w; undefined when curl printed none. */
  httpStatus?: number;
  seconds?: number;
  body: string;
  timings?: LambdaTimings;
}

export interface BurstReport {
  wallSeconds: number;
  workers: BurstWorker[];
}

/** The output of burstCommand. */
export function parseBurst(text: string): BurstReport {
  const lines = text.split(/\r?\n/);
  let wallNs: number | undefined;
  const workers: BurstWorker[] = [];
  let current: { head: Omit<BurstWorker, 'body' | 'httpStatus' | 'seconds' | 'timings'>; lines: string[] } | undefined;
  const close = () => {
    if (!current) return;
    const body = [...current.lines];
    while (body.length > 0 && body[body.length - 1] === '') body.pop();
    const meta = body.length > 0 ? /^(\d{3}) ([0-9]+(?:[.,][0-9]+)?)$/.exec(body[body.length - 1]) : null;
    if (meta) body.pop();
    const text = body.join('\n').trim();
    const timings = parseLambdaBody(text);
    workers.push({ ...current.head, ...(meta ? { httpStatus: Number(meta[1]), seconds: Number(meta[2].replace(',', '.')) } : {}), body: text, ...(timings ? { timings } : {}) });
    current = undefined;
  };
  for (const line of lines) {
    const wall = new RegExp(`^${BURST_WALL} (\\d+)$`).exec(line);
    const worker = new RegExp(`^${BURST_WORKER} (\\d+) port (\\d+) exit (\\d+)$`).exec(line);
    if (wall) {
      close();
      wallNs = Number(wall[1]);
    } else if (worker) {
      close();
      current = { head: { index: Number(worker[1]), port: Number(worker[2]), exitCode: Number(worker[3]) }, lines: [] };
    } else current?.lines.push(line);
  }
  close();
  if (wallNs === undefined) throw new BenchOutputError(`the burst printed no wall time (${BURST_WALL})`);
  return { wallSeconds: wallNs / 1e9, workers };
}

// ---- the verdict on one run ----

export interface CommandOutput {
  what: string;
  exitCode: number | null;
  stdout: string;
  stderr: string;
}

export type BenchOutcome =
  | { ok: true; metrics: Record<string, number>; units: Record<string, string>; simulated: boolean }
  | { ok: false; reason: string; lines: string[] };

const tail = (text: string, n = 10) => text.trim().split(/\r?\n/).slice(-n);

/** Numbers from ab's report, named for results.json. */
function abMetrics(r: AbReport): { metrics: Record<string, number>; units: Record<string, string> } {
  const metrics: Record<string, number> = {
    requestsPerSecond: r.requestsPerSecond,
    timeTakenSeconds: r.timeTakenSeconds,
    timePerRequestMs: r.timePerRequestMs,
    timePerRequestAllMs: r.timePerRequestAllMs,
    transferRateKBps: r.transferRateKBps,
    concurrency: r.concurrency,
    completeRequests: r.completeRequests,
    failedRequests: r.failedRequests,
    failedConnect: r.failed?.connect ?? 0,
    failedReceive: r.failed?.receive ?? 0,
    failedLength: r.failed?.length ?? 0,
    failedExceptions: r.failed?.exceptions ?? 0,
    writeErrors: r.writeErrors,
    non2xxResponses: r.non2xxResponses,
    totalTransferredBytes: r.totalTransferredBytes,
    htmlTransferredBytes: r.htmlTransferredBytes,
    ...(r.documentLengthBytes !== undefined ? { documentLengthBytes: r.documentLengthBytes } : {}),
  };
  for (const [p, ms] of Object.entries(r.percentilesMs)) metrics[`p${p}Ms`] = ms;
  const units: Record<string, string> = {};
  for (const name of Object.keys(metrics)) {
    units[name] = /Ms$/.test(name)
      ? 'ms'
      : /Seconds$/.test(name)
        ? 's'
        : /Bytes$/.test(name)
          ? 'bytes'
          : name === 'requestsPerSecond'
            ? 'requests/s'
            : name === 'transferRateKBps'
              ? 'KiB/s'
              : name === 'concurrency'
                ? 'connections'
                : 'requests';
  }
  return { metrics, units };
}

/**
 * Requests that did not measure the page: non-2xx responses, ab's failed requests (connect, receive,
 * exceptions and wrong lengths: a connection closed without a response counts as a wrong length, and
 * the pages of both benchmarks keep one length) and write errors. An upper bound: ab counts a non-2xx
 * response of another length twice.
 */
export function abErrorCount(r: AbReport): number {
  return r.non2xxResponses + r.failedRequests + r.writeErrors;
}

function judgeAb(out: CommandOutput, requests: number, opts: { expectedLength?: number; maxErrorRatio: number }): BenchOutcome {
  if (out.exitCode !== 0) return { ok: false, reason: `ab exited with ${out.exitCode ?? 'a signal'}`, lines: tail(`${out.stdout}\n${out.stderr}`) };
  let r: AbReport;
  try {
    r = parseAb(out.stdout);
  } catch (err) {
    return { ok: false, reason: (err as Error).message, lines: tail(`${out.stdout}\n${out.stderr}`) };
  }
  if (r.completeRequests !== requests) return { ok: false, reason: `ab completed ${r.completeRequests} of ${requests} requests`, lines: tail(out.stdout) };
  if (opts.expectedLength !== undefined && r.documentLengthBytes !== opts.expectedLength) {
    return { ok: false, reason: `the guest served a page of ${r.documentLengthBytes ?? 'variable'} bytes, not the ${opts.expectedLength} bytes written`, lines: tail(out.stdout, 30) };
  }
  const errors = abErrorCount(r);
  if (errors > opts.maxErrorRatio * requests) {
    return {
      ok: false,
      reason: `${errors} of ${requests} requests failed (non-2xx ${r.non2xxResponses}, failed ${r.failedRequests}${r.failed ? ` = connect ${r.failed.connect}, receive ${r.failed.receive}, length ${r.failed.length}, exceptions ${r.failed.exceptions}` : ''}), more than the allowed ${opts.maxErrorRatio * 100}%`,
      lines: tail(out.stdout, 30),
    };
  }
  return { ok: true, ...abMetrics(r), simulated: r.simulated };
}

function judgeBurst(out: CommandOutput, workers: number, maxErrorRatio: number): BenchOutcome {
  const lines = tail(`${out.stdout}\n${out.stderr}`, 20);
  if (out.exitCode !== 0) return { ok: false, reason: `the OpenLambda burst exited with ${out.exitCode ?? 'a signal'}`, lines };
  let r: BurstReport;
  try {
    r = parseBurst(out.stdout);
  } catch (err) {
    return { ok: false, reason: (err as Error).message, lines };
  }
  if (r.workers.length !== workers) return { ok: false, reason: `the burst reported ${r.workers.length} of ${workers} workers`, lines };
  const failed = r.workers.filter((w) => w.exitCode !== 0 || w.httpStatus === undefined || w.httpStatus < 200 || w.httpStatus > 299);
  if (failed.length > maxErrorRatio * workers) {
    return {
      ok: false,
      reason: `${failed.length} of ${workers} lambda calls failed: ${failed.map((w) => `port ${w.port}: curl exit ${w.exitCode}, HTTP ${w.httpStatus ?? 'none'}`).join('; ')}`,
      lines: failed.flatMap((w) => tail(w.body, 3)),
    };
  }
  const metrics: Record<string, number> = { wallSeconds: r.wallSeconds, workers, failedWorkers: failed.length };
  const units: Record<string, string> = { wallSeconds: 's', workers: 'workers', failedWorkers: 'workers' };
  const ok = r.workers.filter((w) => !failed.includes(w));
  const seconds = ok.flatMap((w) => (w.seconds === undefined ? [] : [w.seconds]));
  if (seconds.length > 0) {
    metrics.curlMaxSeconds = Math.max(...seconds);
    units.curlMaxSeconds = 's';
  }
  // Per-phase times only when every successful call carries them: a mean over some workers would mislead.
  const timed = ok.flatMap((w) => (w.timings ? [w.timings] : []));
  if (timed.length === ok.length && timed.length > 0) {
    const phases = Object.keys(timed[0].phasesMs).filter((p) => timed.every((t) => p in t.phasesMs));
    for (const p of phases) {
      const xs = timed.map((t) => t.phasesMs[p]);
      metrics[`${p}Ms`] = mean(xs);
      metrics[`${p}MaxMs`] = Math.max(...xs);
      units[`${p}Ms`] = units[`${p}MaxMs`] = 'ms';
    }
    const totals = timed.flatMap((t) => (t.totalMs === undefined ? [] : [t.totalMs]));
    if (totals.length === timed.length) {
      metrics.lambdaTotalMs = mean(totals);
      metrics.lambdaTotalMaxMs = Math.max(...totals);
      units.lambdaTotalMs = units.lambdaTotalMaxMs = 'ms';
    }
  }
  return { ok: true, metrics, units, simulated: /SIMULATED/.test(out.stdout) || timed.some((t) => t.simulated) };
}

function judgeDd(ops: readonly DiskOp[], get: (what: string) => CommandOutput, mib: number): BenchOutcome {
  const metrics: Record<string, number> = {};
  const units: Record<string, string> = {};
  let simulated = false;
  for (const op of ops) {
    const out = get(op);
    const lines = tail(`${out.stdout}\n${out.stderr}`);
    if (out.exitCode !== 0) return { ok: false, reason: `dd (${out.what}) exited with ${out.exitCode ?? 'a signal'}`, lines };
    let s: DdSummary;
    try {
      s = parseDdSummary(out.stdout);
    } catch (err) {
      return { ok: false, reason: `dd (${out.what}): ${(err as Error).message}`, lines };
    }
    if (s.bytes !== mib * 1024 * 1024) return { ok: false, reason: `dd (${out.what}) copied ${s.bytes} bytes, not ${mib} MiB`, lines };
    if (!(s.seconds > 0)) return { ok: false, reason: `dd (${out.what}) reported ${s.seconds} s: no rate`, lines };
    simulated ||= /SIMULATED/.test(out.stdout);
    Object.assign(metrics, { [`${out.what}MBps`]: s.mbps, [`${out.what}Seconds`]: s.seconds, [`${out.what}Bytes`]: s.bytes });
    Object.assign(units, { [`${out.what}MBps`]: 'MB/s', [`${out.what}Seconds`]: 's', [`${out.what}Bytes`]: 'bytes' });
  }
  return { ok: true, metrics, units, simulated };
}

function judgeNpb(out: CommandOutput, kernel: string): BenchOutcome {
  const lines = tail(`${out.stdout}\n${out.stderr}`);
  if (out.exitCode !== 0) return { ok: false, reason: `${kernel} exited with ${out.exitCode ?? 'a signal'}`, lines };
  let r: NpbReport;
  try {
    r = parseNpb(out.stdout);
  } catch (err) {
    return { ok: false, reason: `${kernel}: ${(err as Error).message}`, lines };
  }
  const [bench, cls] = kernel.split('.');
  if (r.benchmark !== bench.toUpperCase() || (r.class !== undefined && r.class !== cls)) {
    return { ok: false, reason: `${kernel} reported ${r.benchmark} class ${r.class ?? '?'}`, lines };
  }
  // A run that did not verify computed something else: its time says nothing about this kernel.
  if (r.verification !== 'SUCCESSFUL') return { ok: false, reason: `${kernel}: verification ${r.verification}`, lines };
  return {
    ok: true,
    metrics: { seconds: r.seconds, ...(r.mopsTotal !== undefined ? { mopsTotal: r.mopsTotal } : {}) },
    units: { seconds: 's', ...(r.mopsTotal !== undefined ? { mopsTotal: 'Mop/s' } : {}) },
    simulated: r.simulated,
  };
}

/**
 * The verdict on one measurement from its commands' outputs (benchCommands' order). A setup command
 * that failed (writing web.php or the page) fails the run; the measured tool is judged as
 * docs/BENCHMARKS.md says: exit code, a complete report, the counts of failed requests.
 */
export function judgeBenchmark(c: BenchCase, outputs: readonly CommandOutput[], ctx: BenchCommandContext): BenchOutcome {
  const { settings } = ctx;
  const get = (what: string): CommandOutput => {
    const out = outputs.find((o) => o.what === what);
    if (!out) throw new Error(`judgeBenchmark: no output for ${what}`);
    return out;
  };
  const setup = (what: string, check?: (out: CommandOutput) => string | undefined): BenchOutcome | undefined => {
    const out = get(what);
    const lines = tail(`${out.stdout}\n${out.stderr}`);
    if (out.exitCode !== 0) return { ok: false, reason: `the guest command (${what}) exited with ${out.exitCode ?? 'a signal'}`, lines };
    const problem = check?.(out);
    return problem === undefined ? undefined : { ok: false, reason: problem, lines };
  };
  switch (c.kind) {
    case 'php':
      return setup('web-php') ?? judgeAb(get('ab'), settings.lemp.requests, { maxErrorRatio: settings.maxErrorRatio });
    case 'net': {
      const size = (out: CommandOutput) => {
        const written = Number(out.stdout.trim().split(/\s+/)[0]);
        return written === c.bytes ? undefined : `index.html has ${out.stdout.trim() || 'no'} bytes after writing ${c.bytes}`;
      };
      return setup('page', size) ?? judgeAb(get('ab'), settings.network.requests, { expectedLength: c.bytes, maxErrorRatio: settings.maxErrorRatio });
    }
    case 'openlambda':
      return judgeBurst(get('burst'), ctx.nodeCount, settings.maxErrorRatio);
    case 'disk':
      return judgeDd(settings.storage.ops, get, settings.storage.mib);
    case 'npb':
      return judgeNpb(get('npb'), c.kernel);
  }
}

// ---- plan ----

export interface BenchPlanInput {
  hypervisor: Hypervisor;
  experiment: Experiment;
  nodeCount: number;
  guestIp: string;
  /** Node name the load generators run on: the origin's, or the profile's client host. */
  clientHost: string;
  settings?: BenchSettingsInput;
}

const GUEST_HOST = 'guest';

/** What the commands alone do not show: the measured command's checks, and what a setup step puts in place. */
const NOTES: Record<BenchCase['kind'], string> = {
  php: 'The run fails (BenchmarkFailed, the repetition retried alone) when ab exits non-zero, completes fewer requests than asked, or more than maxErrorRatio of them are non-2xx or failed (ab counts a dropped connection as a Length failure); otherwise it is recorded with every count.',
  net: 'The run fails when ab exits non-zero, reports a Document Length other than the size written, completes fewer requests than asked, or more than maxErrorRatio of them are non-2xx or failed; otherwise it is recorded with every count.',
  openlambda: 'One iteration per repetition: the pause, then one POST per worker in parallel, timed. Per-phase times come from the response bodies when they carry them. Fails when more than maxErrorRatio of the calls fail.',
  disk: "Our reconstruction of Figure 7 (no script was published): O_DIRECT dd on the virtio disk, pinned to vCPU 0 (local) or vCPU 1 (I/O delegated to the origin); the write overwrites the start of the guest's scratch disk. Fails on a non-zero exit or a short copy.",
  npb: 'Our reconstruction: the NPB binary pinned to one vCPU, its reported time. Fails on a non-zero exit, a missing report or a verification other than SUCCESSFUL.',
};
const SETUP_NOTES: Record<string, string> = {
  'web-php': 'The generated PHP script of this level goes on stdin; nginx serves web.php first (index web.php ...).',
  page: 'Run after pinGuest set up this pinning case. The printed size must be exactly the page size.',
};

/** One repetition of every variant of an epoch, with the exact command lines runBenchmark sends. */
export function benchSteps(input: BenchPlanInput): PlanStep[] {
  const settings = benchSettings(input.settings);
  const ctx: BenchCommandContext = { guestIp: input.guestIp, nodeCount: input.nodeCount, settings };
  const stage = `${input.hypervisor}/bench-${input.experiment}-n${input.nodeCount}`;
  return benchVariants(input.experiment, input.nodeCount, settings).flatMap(({ variant, pinning }) => {
    const c = parseVariant(input.experiment, variant, input.nodeCount);
    return benchCommands(c, ctx).map((cmd): PlanStep => {
      const node = cmd.host === 'guest' ? GUEST_HOST : input.clientHost;
      return {
        key: `${stage}/${node}/${variant}/${cmd.what}`,
        title: `${input.experiment} ${variant}${pinning ? ` (nginx worker pinned ${pinning})` : ''}: ${cmd.what} on ${cmd.host === 'guest' ? 'the guest' : node}`,
        host: { node },
        commands: [cmd.command],
        note: SETUP_NOTES[cmd.what] ?? NOTES[c.kind],
      };
    });
  });
}
