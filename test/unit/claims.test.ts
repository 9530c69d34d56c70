import { readFileSync } from 'node:fs';
import path from 'node:path';
import { judgeClaims, morePointsNeeded, type ClaimId, type ClaimsReport } from '../../workflows/claims/claims';
import type { BaselineFigures, ClaimPoint } from '../../workflows/claims/rules';
import { claimSettings, type ClaimSettingsInput } from '../../workflows/claims/settings';
import { meanCi95, ratioCi95, sampleStddev, summarize, T95_TABLE, tCritical95, welchDf, Z975, type Estimate } from '../../workflows/claims/stats';
import { benchSettings, judgeBenchmark, measurementKeyId, parseVariant, type CommandOutput, type Measurement, type MeasurementKey } from '../../workflows/commands/bench';
import type { Experiment, Hypervisor } from '../../workflows/inputs';

/** Claim rules C1-C3 on hand-made result sets, their statistics, and which points get more repetitions. */

// ---- Student's t, independently: the density integrated numerically (Simpson), then its quantile by bisection ----

function lgamma(x: number): number {
  // Lanczos (g = 7, n = 9).
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  if (x < 0.5) return Math.log(Math.PI / Math.sin(Math.PI * x)) - lgamma(1 - x);
  const y = x - 1;
  let a = c[0];
  for (let i = 1; i < 9; i++) a += c[i] / (y + i);
  const t = y + 7.5;
  return 0.5 * Math.log(2 * Math.PI) + (y + 0.5) * Math.log(t) - t + Math.log(a);
}
function tCdf(x: number, df: number): number {
  const c = lgamma((df + 1) / 2) - lgamma(df / 2) - 0.5 * Math.log(df * Math.PI);
  const density = (t: number) => Math.exp(c - ((df + 1) / 2) * Math.log(1 + (t * t) / df));
  const steps = 4000;
  const h = x / steps;
  let s = density(0) + density(x);
  for (let i = 1; i < steps; i++) s += (i % 2 === 1 ? 4 : 2) * density(i * h);
  return 0.5 + (s * h) / 3;
}
function tQuantile975(df: number): number {
  let [lo, hi] = [1, 20];
  for (let i = 0; i < 50; i++) {
    const mid = (lo + hi) / 2;
    if (tCdf(mid, df) < 0.975) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

describe('stats', () => {
  it('the t table: t(0.975; df) for df = 1..30 against the integrated t density, and textbook values', () => {
    expect(T95_TABLE).toHaveLength(30);
    T95_TABLE.forEach((t, i) => expect(Math.abs(tCdf(t, i + 1) - 0.975)).toBeLessThan(1e-7));
    // Any printed t table (3 decimals).
    expect([1, 2, 5, 9, 10, 20, 29, 30].map((df) => Number(tCritical95(df).toFixed(3)))).toEqual([12.706, 4.303, 2.571, 2.262, 2.228, 2.086, 2.045, 2.042]);
  });

  it('beyond 30 df: close to the exact quantile, continuous at 30, falling towards the normal 1.96', () => {
    for (const df of [30.5, 31, 40, 45.5, 60, 120, 1000]) expect(Math.abs(tCritical95(df) - tQuantile975(df))).toBeLessThan(2e-6);
    expect(Math.abs(tCritical95(30.000001) - T95_TABLE[29])).toBeLessThan(1e-5);
    expect(tCritical95(Infinity)).toBe(Z975);
    expect(tCritical95(1e9)).toBeCloseTo(1.959964, 6);
    const xs = [1, 2, 3, 10, 29, 30, 31, 50, 100, 1e4];
    xs.slice(1).forEach((df, i) => expect(tCritical95(df)).toBeLessThan(tCritical95(xs[i])));
  });

  it('a fractional df up to 30 rounds down (a wider interval); below 1 df is an error', () => {
    expect(tCritical95(17.776)).toBe(T95_TABLE[16]);
    expect(tCritical95(2.9)).toBe(T95_TABLE[1]);
    expect(() => tCritical95(0.5)).toThrow(RangeError);
    expect(() => tCritical95(NaN)).toThrow(RangeError);
  });

  // Student's sleep data (Cushny & Peebles), R's `sleep$extra` by group.
  const g1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0];
  const g2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4];

  it("a textbook CI: R's t.test(sleep$extra[1:10]) gives mean 0.75, 95% CI -0.5297804 .. 2.0297804", () => {
    const s = summarize(g1);
    expect(s).toMatchObject({ n: 10, df: 9 });
    expect(s.mean).toBeCloseTo(0.75, 12);
    expect(s.stddev).toBeCloseTo(1.78901, 5);
    const [lo, hi] = meanCi95(s);
    expect(lo).toBeCloseTo(-0.5297804, 6);
    expect(hi).toBeCloseTo(2.0297804, 6);
    expect(sampleStddev([2, 4, 4, 4, 5, 5, 7, 9])).toBeCloseTo(Math.sqrt(32 / 7), 12);
    expect(() => sampleStddev([1])).toThrow(RangeError);
    expect(meanCi95({ mean: 5, se: 0, df: Infinity })).toEqual([5, 5]);
  });

  it("Welch's df: R's t.test(extra ~ group, data = sleep) gives df = 17.776", () => {
    expect(welchDf(summarize(g1), summarize(g2))).toBeCloseTo(17.776, 3);
    // A known error (df Infinity) adds nothing to the denominator; two of them give the normal case.
    expect(welchDf(summarize(g1), { mean: 1, se: 0.1, df: Infinity })).toBeGreaterThan(9);
    expect(welchDf({ mean: 1, se: 0.1, df: Infinity }, { mean: 1, se: 0, df: Infinity })).toBe(Infinity);
  });

  it("the ratio's Fieller interval: its ends solve the pivot, it matches a brute-force scan, and reduces to CI(a)/b for an exact b", () => {
    const a = summarize([12.2, 12.5, 12.9, 12.4]);
    const b = summarize([10.1, 9.7, 10.3]);
    const r = ratioCi95(a, b);
    expect(r.estimate).toBeCloseTo(a.mean / b.mean, 12);
    const t = tCritical95(r.df);
    const pivot = (x: number) => (a.mean - x * b.mean) ** 2 - t ** 2 * (a.se ** 2 + x ** 2 * b.se ** 2);
    const [lo, hi] = r.ci95!;
    expect(Math.abs(pivot(lo))).toBeLessThan(1e-9);
    expect(Math.abs(pivot(hi))).toBeLessThan(1e-9);
    const inside = Array.from({ length: 200_001 }, (_, i) => 1 + i * 1e-6 * 2).filter((x) => pivot(x) <= 0);
    expect(Math.abs(inside[0] - lo)).toBeLessThan(3e-6);
    expect(Math.abs(inside[inside.length - 1] - hi)).toBeLessThan(3e-6);
    expect(r.df).toBeCloseTo(welchDf(a, b, r.estimate), 12);

    const exact: Estimate = { mean: 4, se: 0, df: Infinity };
    const [alo, ahi] = meanCi95(a);
    expect(ratioCi95(a, exact).ci95![0]).toBeCloseTo(alo / 4, 12);
    expect(ratioCi95(a, exact).ci95![1]).toBeCloseTo(ahi / 4, 12);
    expect(ratioCi95({ mean: 3, se: 0, df: Infinity }, exact)).toEqual({ estimate: 0.75, df: Infinity, ci95: [0.75, 0.75] });
  });

  it('the ratio is unbounded when the denominator cannot be told from 0', () => {
    expect(ratioCi95({ mean: 2, se: 0.1, df: 9 }, { mean: 1, se: 0.6, df: 9 }).ci95).toBeUndefined();
    expect(() => ratioCi95({ mean: 2, se: 0.1, df: 9 }, { mean: 0, se: 0, df: Infinity })).toThrow(RangeError);
  });
});

// ---- hand-made result sets ----

function measurement(key: MeasurementKey, metrics: Record<string, number>): Measurement {
  return { key, metrics, units: {}, raw: `raw/${measurementKeyId(key)}.txt`, simulated: false, measuredAt: '2024-05-01T00:00:00.000Z', attempt: 1 };
}

/** One measurement per repetition: metric -> its value in repetition 1, 2, ... */
function series(hypervisor: Hypervisor, experiment: Experiment, nodeCount: number, variant: string, metrics: Record<string, number[]>): Measurement[] {
  const n = Math.max(...Object.values(metrics).map((xs) => xs.length));
  return Array.from({ length: n }, (_, i) =>
    measurement({ hypervisor, experiment, nodeCount, variant, repetition: i + 1 }, Object.fromEntries(Object.entries(metrics).flatMap(([k, xs]) => (i < xs.length ? [[k, xs[i]]] : [])))),
  );
}

/** n values with exactly this mean and sample standard deviation. */
function sample(mean: number, sd: number, n = 3): number[] {
  const scale = Math.sqrt((n * (n + 1)) / 12);
  return Array.from({ length: n }, (_, i) => mean + (sd * (i - (n - 1) / 2)) / scale);
}
/** A sample with a relative spread (coefficient of variation) `cv`. */
const around = (mean: number, cv = 0.02, n = 3) => sample(mean, mean * cv, n);

const e1 = (hypervisor: Hypervisor, rps: Record<string, number[]>, nodeCount = 4) =>
  Object.entries(rps).flatMap(([level, xs]) => series(hypervisor, 'E1', nodeCount, `php-${level}`, { requestsPerSecond: xs }));

type Phase = 'sandboxCreate' | 'init' | 'execute' | 'cleanup';
/** E2 as judgeBurst records it: wallSeconds and, when the lambdas report them, <phase>Ms with <phase>MaxMs. */
function e2(hypervisor: Hypervisor, wall: number[], phases: Partial<Record<Phase, number[]>> = {}, nodeCount = 4): Measurement[] {
  const metrics: Record<string, number[]> = { wallSeconds: wall, workers: wall.map(() => nodeCount), failedWorkers: wall.map(() => 0) };
  for (const [p, xs] of Object.entries(phases)) {
    metrics[`${p}Ms`] = xs;
    metrics[`${p}MaxMs`] = xs.map((x) => x * 1.2);
  }
  return series(hypervisor, 'E2', nodeCount, 'openlambda', metrics);
}
const fvPhases = (n = 3) => ({ sandboxCreate: around(180, 0.02, n), init: around(450, 0.02, n), execute: around(60, 0.02, n), cleanup: around(40, 0.02, n) });
const gvPhases = (n = 3) => ({ sandboxCreate: around(260, 0.02, n), init: around(620, 0.02, n), execute: around(75, 0.02, n), cleanup: around(65, 0.02, n) });

interface E3Case {
  sizes?: Record<number, { local: number[]; delegated: number[] }>;
  disk?: { local: Record<string, number[]>; delegated: Record<string, number[]> };
}
function e3(c: E3Case, nodeCount = 4, hypervisor: Hypervisor = 'fragvisor'): Measurement[] {
  return [
    ...Object.entries(c.sizes ?? {}).flatMap(([bytes, s]) => [
      ...series(hypervisor, 'E3', nodeCount, `net-${bytes}-local`, { requestsPerSecond: s.local, transferRateKBps: s.local.map((x) => x * 4.2) }),
      ...series(hypervisor, 'E3', nodeCount, `net-${bytes}-delegated`, { requestsPerSecond: s.delegated, transferRateKBps: s.delegated.map((x) => x * 4.2) }),
    ]),
    ...(c.disk ? [...series(hypervisor, 'E3', nodeCount, 'disk-local', c.disk.local), ...series(hypervisor, 'E3', nodeCount, 'disk-delegated', c.disk.delegated)] : []),
  ];
}
const net = (local: number, factor: number, cv = 0.02, n = 3) => ({ local: around(local, cv, n), delegated: around(local * factor, cv, n) });
const disk = (factor: number, n = 3) => ({
  local: { readMBps: around(420, 0.02, n), writeMBps: around(310, 0.02, n) },
  delegated: { readMBps: around(420 * factor, 0.02, n), writeMBps: around(310 * factor, 0.02, n) },
});

// FragVisor ahead by 25% at the longer levels; GiantVM slightly ahead at the shortest (it does not count).
const C1_FV = { '25ms': around(900), '250ms': around(12.5), '500ms': around(6.25) };
const C1_GV = { '25ms': around(950), '250ms': around(10), '500ms': around(5) };

const BASELINE: BaselineFigures = {
  file: 'lab/giantvm.yaml',
  source: 'hand-made for the tests',
  approximate: false,
  measurements: [
    { experiment: 'E1', nodeCount: 4, variant: 'php-250ms', metric: 'requestsPerSecond', value: 10, unit: '#/s', repetitions: 3, stddev: 0.2 },
    { experiment: 'E1', nodeCount: 4, variant: 'php-500ms', metric: 'requestsPerSecond', value: 5, unit: '#/s' },
    { experiment: 'E2', nodeCount: 4, variant: 'openlambda', metric: 'wallSeconds', value: 1.5, unit: 's', repetitions: 5, stddev: 0.05 },
    { experiment: 'E2', nodeCount: 4, variant: 'openlambda', metric: 'sandboxCreateMs', value: 260, unit: 'ms', stddev: 5 },
    { experiment: 'E2', nodeCount: 4, variant: 'openlambda', metric: 'initMs', value: 620, unit: 'ms' },
    { experiment: 'E2', nodeCount: 4, variant: 'openlambda', metric: 'executeMs', value: 75, unit: 'ms' },
    { experiment: 'E2', nodeCount: 4, variant: 'openlambda', metric: 'cleanupMs', value: 65, unit: 'ms' },
  ],
};
const baselineWith = (keep: (e: BaselineFigures['measurements'][number]) => boolean, change: Partial<BaselineFigures['measurements'][number]> = {}): BaselineFigures => ({
  ...BASELINE,
  measurements: BASELINE.measurements.filter(keep).map((e) => ({ ...e, ...change })),
});

interface Row {
  claim: ClaimId;
  name: string;
  measurements: Measurement[];
  baseline?: BaselineFigures;
  settings?: ClaimSettingsInput;
  verdict: 'pass' | 'fail' | 'inconclusive';
  /** Each point: its verdict, and its reason when inconclusive. */
  points: string[];
  why?: RegExp;
}

const rows: Row[] = [
  // C1
  { claim: 'C1', name: 'clear pass (FragVisor 25% ahead at 250ms and 500ms; the shortest level does not count)', measurements: [...e1('fragvisor', C1_FV), ...e1('giantvm', C1_GV)], verdict: 'pass', points: ['pass', 'pass'], why: /^all 2 compared points pass; the closest: n4 php-(250|500)ms requestsPerSecond: FragVisor\/GiantVM requestsPerSecond 1\.25 \(95% CI .*\) lies above 1$/ },
  { claim: 'C1', name: 'clear fail (GiantVM 25% ahead)', measurements: [...e1('fragvisor', { '250ms': around(8), '500ms': around(4) }), ...e1('giantvm', C1_GV)], verdict: 'fail', points: ['fail', 'fail'], why: /^2 of 2 compared points fail: n4 php-250ms requestsPerSecond: FragVisor\/GiantVM requestsPerSecond 0\.8 \(95% CI .*\) lies entirely below 1;/ },
  { claim: 'C1', name: 'borderline: 2% ahead with 5% noise overlaps 1', measurements: [...e1('fragvisor', { '250ms': around(10.2, 0.05), '500ms': C1_FV['500ms'] }), ...e1('giantvm', { '250ms': around(10, 0.05), '500ms': C1_GV['500ms'] })], verdict: 'inconclusive', points: ['inconclusive too-wide', 'pass'], why: /1 of 2 compared points pass, 1 inconclusive: n4 php-250ms requestsPerSecond: FragVisor\/GiantVM requestsPerSecond 1\.02 \(95% CI 0\.\d+\.\.1\.\d+\) overlaps 1$/ },
  { claim: 'C1', name: 'too few repetitions: a clear lead in 2 runs is never a pass', measurements: [...e1('fragvisor', { '250ms': around(12.5, 0.02, 2), '500ms': around(6.25, 0.02, 2) }), ...e1('giantvm', C1_GV)], verdict: 'inconclusive', points: ['inconclusive too-few', 'inconclusive too-few'], why: /too few repetitions: FragVisor 2 \(at least 3\)/ },
  { claim: 'C1', name: 'a clear loss in 2 runs is no fail either', measurements: [...e1('fragvisor', { '250ms': around(5, 0.02, 2), '500ms': around(2, 0.02, 2) }), ...e1('giantvm', C1_GV)], verdict: 'inconclusive', points: ['inconclusive too-few', 'inconclusive too-few'] },
  { claim: 'C1', name: 'GiantVM neither measured nor in a baseline file', measurements: e1('fragvisor', C1_FV), verdict: 'inconclusive', points: ['inconclusive missing', 'inconclusive missing'], why: /GiantVM was not measured and no baseline file was given/ },
  { claim: 'C1', name: 'GiantVM measured, but not E1', measurements: [...e1('fragvisor', C1_FV), ...e2('giantvm', around(1.5))], verdict: 'inconclusive', points: ['inconclusive missing', 'inconclusive missing'], why: /no GiantVM measurement of E1 n4 php-250ms with requestsPerSecond/ },
  { claim: 'C1', name: 'E1 not measured at all', measurements: e2('fragvisor', around(1)), verdict: 'inconclusive', points: [], why: /^E1 \(LEMP\) was not measured on FragVisor$/ },
  { claim: 'C1', name: 'every node count measured: GiantVM at 2 and 4, FragVisor at 4 only', measurements: [...e1('fragvisor', C1_FV), ...e1('giantvm', C1_GV), ...e1('giantvm', C1_GV, 2)], verdict: 'inconclusive', points: ['inconclusive missing', 'inconclusive missing', 'pass', 'pass'], why: /no FragVisor measurement of E1 n2 php-250ms with requestsPerSecond/ },
  { claim: 'C1', name: 'baseline file instead of measured GiantVM (it wins over contrary GiantVM measurements)', measurements: [...e1('fragvisor', C1_FV), ...e1('giantvm', { '250ms': around(20), '500ms': around(10) })], baseline: BASELINE, verdict: 'pass', points: ['pass', 'pass'] },
  { claim: 'C1', name: 'baseline file without the 500ms figure', measurements: e1('fragvisor', C1_FV), baseline: baselineWith((e) => e.variant !== 'php-500ms'), verdict: 'inconclusive', points: ['pass', 'inconclusive missing'], why: /the baseline file has no GiantVM figure for E1 n4 php-500ms requestsPerSecond/ },
  { claim: 'C1', name: 'baseline figures from 2 runs', measurements: e1('fragvisor', C1_FV), baseline: baselineWith((e) => e.experiment === 'E1', { repetitions: 2, stddev: 0.1 }), verdict: 'inconclusive', points: ['inconclusive too-few', 'inconclusive too-few'], why: /GiantVM 2 \(baseline file\)/ },
  { claim: 'C1', name: "GiantVM's interval includes 0: the ratio's is unbounded", measurements: [...e1('fragvisor', C1_FV), ...e1('giantvm', { '250ms': [0.5, 10, 19.5], '500ms': C1_GV['500ms'] })], verdict: 'inconclusive', points: ['inconclusive too-wide', 'pass'], why: /the interval is unbounded \(GiantVM's mean cannot be told from 0\)/ },
  { claim: 'C1', name: 'a baseline figure of 0 gives no ratio', measurements: e1('fragvisor', C1_FV), baseline: { ...BASELINE, measurements: BASELINE.measurements.map((e) => (e.variant === 'php-500ms' ? { ...e, value: 0 } : e)) }, verdict: 'inconclusive', points: ['pass', 'inconclusive invalid'], why: /requestsPerSecond: a mean that is not positive \(FragVisor 6\.25, GiantVM 0\) gives no ratio/ },
  { claim: 'C1', name: 'longerLevels: only 25ms counts, where GiantVM is ahead', measurements: [...e1('fragvisor', C1_FV), ...e1('giantvm', C1_GV)], settings: { c1: { longerLevels: ['25ms'] } }, verdict: 'fail', points: ['fail'] },
  { claim: 'C1', name: 'margin 0.5: a 25% lead is not enough', measurements: [...e1('fragvisor', C1_FV), ...e1('giantvm', C1_GV)], settings: { c1: { margin: 0.5 } }, verdict: 'fail', points: ['fail', 'fail'], why: /lies entirely below 1\.5/ },
  { claim: 'C1', name: 'minRepetitions 4: 3 runs are too few', measurements: [...e1('fragvisor', C1_FV), ...e1('giantvm', C1_GV)], settings: { minRepetitions: 4 }, verdict: 'inconclusive', points: ['inconclusive too-few', 'inconclusive too-few'], why: /FragVisor 3, GiantVM 3 \(at least 4\)/ },

  // C2
  { claim: 'C2', name: 'clear pass: wall time and every phase faster', measurements: [...e2('fragvisor', around(1), fvPhases()), ...e2('giantvm', around(1.5), gvPhases())], verdict: 'pass', points: ['pass', 'pass', 'pass', 'pass', 'pass'] },
  { claim: 'C2', name: 'clear fail: execute slower on FragVisor', measurements: [...e2('fragvisor', around(1), { ...fvPhases(), execute: around(90) }), ...e2('giantvm', around(1.5), gvPhases())], verdict: 'fail', points: ['pass', 'pass', 'pass', 'fail', 'pass'], why: /^1 of 5 compared points fail: n4 openlambda executeMs: FragVisor\/GiantVM executeMs 1\.2 \(95% CI .*\) lies entirely above 1$/ },
  { claim: 'C2', name: 'borderline wall time', measurements: [...e2('fragvisor', around(1, 0.05), fvPhases()), ...e2('giantvm', around(1.02, 0.05), gvPhases())], verdict: 'inconclusive', points: ['inconclusive too-wide', 'pass', 'pass', 'pass', 'pass'], why: /n4 openlambda wallSeconds: .* overlaps 1$/ },
  { claim: 'C2', name: 'too few repetitions', measurements: [...e2('fragvisor', around(1, 0.02, 2), fvPhases(2)), ...e2('giantvm', around(1.5), gvPhases())], verdict: 'inconclusive', points: Array(5).fill('inconclusive too-few') },
  { claim: 'C2', name: 'GiantVM missing', measurements: [...e2('fragvisor', around(1), fvPhases()), ...e1('giantvm', C1_GV)], verdict: 'inconclusive', points: Array(5).fill('inconclusive missing'), why: /no GiantVM measurement of E2 n4 openlambda with wallSeconds/ },
  { claim: 'C2', name: "GiantVM's responses carry no phases: the phases FragVisor's carry cannot be compared", measurements: [...e2('fragvisor', around(1), fvPhases()), ...e2('giantvm', around(1.5))], verdict: 'inconclusive', points: ['pass', ...Array(4).fill('inconclusive missing')], why: /no GiantVM measurement of E2 n4 openlambda with sandboxCreateMs/ },
  { claim: 'C2', name: "the artifact's lambdas (no phases on either side): wall time alone", measurements: [...e2('fragvisor', around(1)), ...e2('giantvm', around(1.5))], verdict: 'pass', points: ['pass'] },
  { claim: 'C2', name: 'baseline file instead of measured GiantVM', measurements: e2('fragvisor', around(1), fvPhases()), baseline: BASELINE, verdict: 'pass', points: Array(5).fill('pass') },
  { claim: 'C2', name: 'baseline file without the init phase', measurements: e2('fragvisor', around(1), fvPhases()), baseline: baselineWith((e) => e.metric !== 'initMs'), verdict: 'inconclusive', points: ['pass', 'pass', 'inconclusive missing', 'pass', 'pass'], why: /the baseline file has no GiantVM figure for E2 n4 openlambda initMs/ },

  // C3
  { claim: 'C3', name: 'clear pass: network within 10%, storage too', measurements: e3({ sizes: { 1: net(3000, 0.92), 4096: net(2500, 0.9) }, disk: disk(0.9) }), verdict: 'pass', points: Array(4).fill('pass') },
  { claim: 'C3', name: 'clear fail: the delegated case at half the throughput', measurements: e3({ sizes: { 1: net(3000, 0.92), 4096: net(2500, 0.5) }, disk: disk(0.9) }), verdict: 'fail', points: ['pass', 'fail', 'pass', 'pass'], why: /n4 net-4096 delegated\/local requestsPerSecond: delegated\/local requestsPerSecond 0\.5 \(95% CI .*\) lies entirely below 0\.8/ },
  { claim: 'C3', name: 'borderline: 0.82 with 5% noise overlaps 0.8', measurements: e3({ sizes: { 1: net(3000, 0.82, 0.05), 4096: net(2500, 0.9) } }), verdict: 'inconclusive', points: ['inconclusive too-wide', 'pass'] },
  { claim: 'C3', name: 'too few repetitions', measurements: e3({ sizes: { 1: net(3000, 0.92, 0.02, 2), 4096: net(2500, 0.9, 0.02, 2) } }), verdict: 'inconclusive', points: ['inconclusive too-few', 'inconclusive too-few'], why: /too few repetitions: delegated 2, local 2 \(at least 3\)/ },
  { claim: 'C3', name: 'a size without its delegated case', measurements: e3({ sizes: { 1: net(3000, 0.92) } }).concat(series('fragvisor', 'E3', 4, 'net-4096-local', { requestsPerSecond: around(2500) })), verdict: 'inconclusive', points: ['pass', 'inconclusive missing'], why: /no FragVisor delegated-case measurement of E3 n4 net-4096-delegated with requestsPerSecond/ },
  { claim: 'C3', name: 'storage measured only locally', measurements: [...e3({ sizes: { 1: net(3000, 0.92) } }), ...series('fragvisor', 'E3', 4, 'disk-local', disk(0.9).local)], verdict: 'inconclusive', points: ['pass', 'inconclusive missing', 'inconclusive missing'] },
  { claim: 'C3', name: 'E3 on 1 node only: no delegated case', measurements: e3({ sizes: { 1: net(3000, 0.92) } }, 1), verdict: 'inconclusive', points: [], why: /the delegated case needs a remote vCPU \(2 nodes or more\); E3 was measured on 1 node\(s\) only/ },
  { claim: 'C3', name: 'E3 not measured on FragVisor (GiantVM E3 does not count)', measurements: e3({ sizes: { 1: net(3000, 0.92) } }, 4, 'giantvm'), verdict: 'inconclusive', points: [], why: /E3 \(network and storage\) was not measured on FragVisor/ },
  { claim: 'C3', name: 'a baseline file changes nothing (C3 compares FragVisor with itself)', measurements: e3({ sizes: { 1: net(3000, 0.92) } }), baseline: BASELINE, verdict: 'pass', points: ['pass'] },
  { claim: 'C3', name: 'tolerance 0.05: 0.9 is too far', measurements: e3({ sizes: { 1: net(3000, 0.9) } }), settings: { c3: { tolerance: 0.05 } }, verdict: 'fail', points: ['fail'], why: /below 0\.95/ },
];

describe('the claim rules on hand-made result sets', () => {
  it.each(rows)('$claim: $name -> $verdict', ({ claim, measurements, baseline, settings, verdict, points, why }) => {
    const report = judgeClaims({ measurements, ...(baseline ? { baseline } : {}), ...(settings ? { settings } : {}) });
    const c = report.claims.find((x) => x.id === claim)!;
    expect(report.claims.map((x) => x.id)).toEqual(['C1', 'C2', 'C3']);
    expect(c.verdict).toBe(verdict);
    expect(c.points.map((p) => (p.reason ? `${p.verdict} ${p.reason}` : p.verdict))).toEqual(points);
    if (why) expect(c.why).toMatch(why);
    // Every point's evidence is exactly the measurements of its two sides, and JSON keeps it whole.
    for (const p of c.points) {
      const ids = measurements.filter((m) => [p.variants.fragvisor, p.variants.reference].some((v) => v && v.hypervisor === m.key.hypervisor && v.experiment === m.key.experiment && v.nodeCount === m.key.nodeCount && v.variant === m.key.variant) && p.metric in m.metrics).map((m) => measurementKeyId(m.key));
      expect([...p.keys].sort()).toEqual(ids.sort());
    }
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
  });
});

describe('points: statistics, rule and evidence', () => {
  const point = (r: ClaimsReport, claim: ClaimId, label: string): ClaimPoint => r.claims.find((c) => c.id === claim)!.points.find((p) => p.label === label)!;

  it('C1: repetitions, mean, stddev and the 95% interval per side; the ratio; the measurement ids as evidence', () => {
    const report = judgeClaims({ measurements: [...e1('fragvisor', C1_FV), ...e1('giantvm', C1_GV)] });
    const p = point(report, 'C1', 'n4 php-250ms requestsPerSecond');
    const half = (sd: number) => (T95_TABLE[1] * sd) / Math.sqrt(3);
    expect(p.fragvisor).toMatchObject({ source: 'measured', n: 3 });
    expect(p.fragvisor!.mean).toBeCloseTo(12.5, 12);
    expect(p.fragvisor!.stddev).toBeCloseTo(0.25, 12);
    expect(p.fragvisor!.ci95![0]).toBeCloseTo(12.5 - half(0.25), 10);
    expect(p.fragvisor!.ci95![1]).toBeCloseTo(12.5 + half(0.25), 10);
    expect(p.reference!.mean).toBeCloseTo(10, 12);
    expect(p.ratio!.estimate).toBeCloseTo(1.25, 12);
    expect(p.ratio!.ci95![0]).toBeGreaterThan(1);
    expect(p.ratio!.df).toBeCloseTo(4, 6);
    expect(p).toMatchObject({ threshold: 1, direction: 'above', metric: 'requestsPerSecond', variants: { fragvisor: { hypervisor: 'fragvisor', experiment: 'E1', nodeCount: 4, variant: 'php-250ms' }, reference: { hypervisor: 'giantvm', variant: 'php-250ms' } } });
    expect(p.keys).toEqual(['fragvisor.E1.n4.php-250ms.rep1', 'fragvisor.E1.n4.php-250ms.rep2', 'fragvisor.E1.n4.php-250ms.rep3', 'giantvm.E1.n4.php-250ms.rep1', 'giantvm.E1.n4.php-250ms.rep2', 'giantvm.E1.n4.php-250ms.rep3']);
    const c1 = report.claims[0];
    expect(c1.statement).toMatch(/higher throughput than GiantVM for longer requests/);
    expect(c1.rule).toEqual({ compares: expect.stringMatching(/requestsPerSecond .* at PHP levels 250ms, 500ms .* above 1$/) as unknown, reference: 'GiantVM measured in this run (hypervisor giantvm)', tolerance: 0, minRepetitions: 3 });
  });

  it("a baseline figure: with stddev and repetitions, a sample; without, taken as exact and said so; its entry is the evidence", () => {
    const report = judgeClaims({ measurements: e1('fragvisor', C1_FV), baseline: BASELINE });
    const sampled = point(report, 'C1', 'n4 php-250ms requestsPerSecond');
    expect(sampled.reference).toEqual({ source: 'baseline', n: 3, mean: 10, stddev: 0.2, ci95: [10 - (T95_TABLE[1] * 0.2) / Math.sqrt(3), 10 + (T95_TABLE[1] * 0.2) / Math.sqrt(3)] });
    expect(sampled).toMatchObject({ baselineEntry: 0, keys: ['fragvisor.E1.n4.php-250ms.rep1', 'fragvisor.E1.n4.php-250ms.rep2', 'fragvisor.E1.n4.php-250ms.rep3'] });
    expect(sampled.variants.reference).toBeUndefined();
    const exact = point(report, 'C1', 'n4 php-500ms requestsPerSecond');
    expect(exact.reference).toEqual({ source: 'baseline', mean: 5, ci95: [5, 5] });
    expect(exact.why).toMatch(/GiantVM's figure has no stddev in the baseline file and is taken as exact$/);
    // FragVisor's interval over the exact figure.
    expect(exact.ratio!.ci95![0]).toBeCloseTo(exact.fragvisor!.ci95![0] / 5, 12);
    // A stddev without repetitions: the stddev bounds the error of the mean (normal quantile).
    const sdOnly = point(judgeClaims({ measurements: e2('fragvisor', around(1), fvPhases()), baseline: BASELINE }), 'C2', 'n4 openlambda sandboxCreateMs');
    expect(sdOnly.reference).toEqual({ source: 'baseline', mean: 260, stddev: 5, ci95: [260 - Z975 * 5, 260 + Z975 * 5] });
    expect(report.claims[0].rule.reference).toBe("GiantVM's figures from the baseline file lab/giantvm.yaml (source: hand-made for the tests)");
    expect(judgeClaims({ measurements: [], baseline: { ...BASELINE, approximate: true } }).claims[1].rule.reference).toMatch(/, read off a plot \(approximate\)$/);
  });

  it('C3: the delegated case against the local case, the chosen throughput metric, storage per operation', () => {
    const measurements = e3({ sizes: { 4096: net(2500, 0.9) }, disk: disk(0.9) });
    const report = judgeClaims({ measurements, settings: { c3: { netMetric: 'transferRateKBps' } } });
    const c3 = report.claims[2];
    expect(c3.points.map((p) => p.label)).toEqual(['n4 net-4096 delegated/local transferRateKBps', 'n4 disk delegated/local readMBps', 'n4 disk delegated/local writeMBps']);
    expect(c3.points[0].variants).toEqual({ fragvisor: { hypervisor: 'fragvisor', experiment: 'E3', nodeCount: 4, variant: 'net-4096-delegated' }, reference: { hypervisor: 'fragvisor', experiment: 'E3', nodeCount: 4, variant: 'net-4096-local' } });
    expect(c3.points[0].ratio!.estimate).toBeCloseTo(0.9, 12);
    expect(c3.points.every((p) => p.threshold === 0.8 && p.direction === 'above')).toBe(true);
    expect(c3.rule).toMatchObject({ tolerance: 0.2, reference: expect.stringMatching(/local case/) as unknown });
  });

  it('the settings: defaults, echoed in the report; bad values refused', () => {
    expect(claimSettings()).toEqual({ minRepetitions: 3, maxRepetitions: 10, timeBudgetMinutes: 240, c1: { longerLevels: ['250ms', '500ms'], margin: 0 }, c2: { margin: 0 }, c3: { tolerance: 0.2, netMetric: 'requestsPerSecond' } });
    expect(judgeClaims({ measurements: [], settings: { c3: { tolerance: 0.1 } } }).settings.c3.tolerance).toBe(0.1);
    expect(() => claimSettings({ minRepetitions: 5, maxRepetitions: 4 })).toThrow(/maxRepetitions at least minRepetitions/);
    expect(() => claimSettings({ minRepetitions: 1 })).toThrow(/at least 2/);
    expect(() => claimSettings({ c1: { longerLevels: ['1s' as '25ms'] } })).toThrow(/expected a PHP level: 25ms, 40ms, 250ms, 500ms/);
    expect(() => claimSettings({ c3: { tolerance: 1 } })).toThrow(/below 1/);
    expect(() => claimSettings({ c4: {} } as ClaimSettingsInput)).toThrow(/c4/);
  });
});

// ---- the metric names the rules read are those judgeBenchmark records ----

describe('metric names: measurements made by judgeBenchmark from real tool output', () => {
  const fixture = (name: string) => readFileSync(path.join(__dirname, '..', 'fixtures', 'ab', name), 'utf8');
  const ok = (what: string, stdout = ''): CommandOutput => ({ what, exitCode: 0, stdout, stderr: '' });
  const settings = benchSettings({ network: { requests: 200, sizes: [4096] } });
  const abAt = (text: string, rps: number) => text.replace(/^Requests per second:.*$/m, `Requests per second:    ${rps.toFixed(2)} [#/sec] (mean)`);
  const dd = (seconds: number) => `1024+0 records in\n1024+0 records out\n1073741824 bytes (1.1 GB, 1.0 GiB) copied, ${seconds} s, 1 MB/s\n`;
  const body = (scale: number) => JSON.stringify({ phasesMs: { sandboxCreate: 180 * scale, init: 450 * scale, execute: 60 * scale, cleanup: 40 * scale }, totalMs: 730 * scale });
  const burst = (wallNs: number, scale: number) =>
    `ae-burst-wall-ns ${wallNs}\n${[0, 1].map((i) => `ae-burst-worker ${i} port ${5000 + i} exit 0\n${body(scale)}\n200 0.5\n`).join('')}`;

  function measured(hypervisor: Hypervisor, experiment: Experiment, variant: string, values: number[], outputs: (x: number) => CommandOutput[]): Measurement[] {
    return values.map((x, i) => {
      const outcome = judgeBenchmark(parseVariant(experiment, variant, 2), outputs(x), { guestIp: '10.4.4.222', nodeCount: 2, settings });
      if (!outcome.ok) throw new Error(outcome.reason);
      return measurement({ hypervisor, experiment, nodeCount: 2, variant, repetition: i + 1 }, outcome.metrics);
    });
  }

  it('E1 ab, E2 bursts with phases, E3 ab and dd: all three claims pass on what judgeBenchmark records', () => {
    const php = fixture('sim-php.txt');
    const page = fixture('static-4096.txt');
    const measurements = [
      ...(['fragvisor', 'giantvm'] as const).flatMap((hv) =>
        ['250ms', '500ms'].flatMap((level) => measured(hv, 'E1', `php-${level}`, around(hv === 'fragvisor' ? 12.5 : 10), (rps) => [ok('web-php'), ok('ab', abAt(php, rps))])),
      ),
      ...measured('fragvisor', 'E2', 'openlambda', around(1), (s) => [ok('burst', burst(Math.round(s * 1e9), s))]),
      ...measured('giantvm', 'E2', 'openlambda', around(1.5), (s) => [ok('burst', burst(Math.round(s * 1e9), s))]),
      ...measured('fragvisor', 'E3', 'net-4096-local', around(2500), (rps) => [ok('page', '4096\n'), ok('ab', abAt(page, rps))]),
      ...measured('fragvisor', 'E3', 'net-4096-delegated', around(2250), (rps) => [ok('page', '4096\n'), ok('ab', abAt(page, rps))]),
      ...measured('fragvisor', 'E3', 'disk-local', around(2.5), (s) => [ok('read', dd(s)), ok('write', dd(s * 1.3))]),
      ...measured('fragvisor', 'E3', 'disk-delegated', around(2.8), (s) => [ok('read', dd(s)), ok('write', dd(s * 1.3))]),
    ];
    const report = judgeClaims({ measurements });
    expect(report.claims.map((c) => [c.id, c.verdict, c.points.map((p) => p.metric)])).toEqual([
      ['C1', 'pass', ['requestsPerSecond', 'requestsPerSecond']],
      ['C2', 'pass', ['wallSeconds', 'sandboxCreateMs', 'initMs', 'executeMs', 'cleanupMs']],
      ['C3', 'pass', ['requestsPerSecond', 'readMBps', 'writeMBps']],
    ]);
    expect(report.claims[1].points[0].reference!.mean).toBeCloseTo(1.5, 6);
  });
});

// ---- more repetitions ----

describe('morePointsNeeded', () => {
  const keysOf = (ms: Measurement[]) => ms.map((m) => m.key);
  const asks = (r: ReturnType<typeof morePointsNeeded>) => r.map((x) => `${x.hypervisor}.${x.experiment}.n${x.nodeCount}.${x.variant} ${x.have}+${x.more} [${x.repetitions.join(',')}]`);

  it('picks exactly the too-wide and too-few points of undecided claims; never missing data, passes or decided claims', () => {
    const measurements = [
      // C1: 250ms too wide, 500ms passes.
      ...e1('fragvisor', { '250ms': around(10.2, 0.05), '500ms': C1_FV['500ms'] }),
      ...e1('giantvm', { '250ms': around(10, 0.05), '500ms': C1_GV['500ms'] }),
      // C2: GiantVM missing (no repetitions can help).
      ...e2('fragvisor', around(1)),
      // C3: 2 repetitions of a clear case.
      ...e3({ sizes: { 1: net(3000, 0.92, 0.02, 2) } }),
    ];
    const report = judgeClaims({ measurements });
    expect(report.claims.map((c) => c.verdict)).toEqual(['inconclusive', 'inconclusive', 'inconclusive']);
    const more = morePointsNeeded(report, { already: keysOf(measurements) });
    expect(asks(more)).toEqual(['fragvisor.E1.n4.php-250ms 3+7 [4,5,6,7,8,9,10]', 'fragvisor.E3.n4.net-1-delegated 2+1 [3]', 'fragvisor.E3.n4.net-1-local 2+1 [3]', 'giantvm.E1.n4.php-250ms 3+7 [4,5,6,7,8,9,10]']);
    expect(more[0].points).toEqual(['C1 n4 php-250ms requestsPerSecond']);

    // A claim that failed gets none, even for its too-wide points.
    const failed = [...measurements.filter((m) => m.key.experiment !== 'E1'), ...e1('fragvisor', { '250ms': around(10.2, 0.05), '500ms': around(3) }), ...e1('giantvm', { '250ms': around(10, 0.05), '500ms': C1_GV['500ms'] })];
    const failedReport = judgeClaims({ measurements: failed });
    expect(failedReport.claims[0].verdict).toBe('fail');
    expect(asks(morePointsNeeded(failedReport, { already: keysOf(failed) })).filter((a) => a.includes('E1'))).toEqual([]);
  });

  it('respects maxRepetitions (have + more), numbers the new repetitions after the highest recorded', () => {
    const measurements = [...e1('fragvisor', { '250ms': around(10.2, 0.05), '500ms': C1_FV['500ms'] }), ...e1('giantvm', { '250ms': around(10, 0.05), '500ms': C1_GV['500ms'] })];
    const report = judgeClaims({ measurements });
    expect(asks(morePointsNeeded(report, { already: keysOf(measurements), maxRepetitions: 5 }))).toEqual(['fragvisor.E1.n4.php-250ms 3+2 [4,5]', 'giantvm.E1.n4.php-250ms 3+2 [4,5]']);
    expect(morePointsNeeded(report, { already: keysOf(measurements), maxRepetitions: 3 })).toEqual([]);
    // Recorded repetitions 1, 2 and 7 (others failed and were given up): the next are 8, 9.
    const gappy = keysOf(measurements).map((k) => (k.repetition === 3 ? { ...k, repetition: 7 } : k));
    expect(asks(morePointsNeeded(report, { already: gappy, maxRepetitions: 5 }))).toEqual(['fragvisor.E1.n4.php-250ms 3+2 [8,9]', 'giantvm.E1.n4.php-250ms 3+2 [8,9]']);
  });

  it('asks for the fewest repetitions that would decide with the same means and spreads, and that many do', () => {
    // FragVisor 8% ahead with 4% noise: inconclusive at 3 repetitions.
    const run = (n: number) => [...e1('fragvisor', { '250ms': around(10.8, 0.04, n), '500ms': around(6.25, 0.02, n) }), ...e1('giantvm', { '250ms': around(10, 0.04, n), '500ms': around(5, 0.02, n) })];
    const report = judgeClaims({ measurements: run(3) });
    expect(report.claims[0].points.map((p) => p.reason ?? p.verdict)).toEqual(['too-wide', 'pass']);
    const more = morePointsNeeded(report, { already: keysOf(run(3)) });
    expect(more.map((m) => m.variant)).toEqual(['php-250ms', 'php-250ms']);
    const target = 3 + more[0].more;
    expect(target).toBeGreaterThan(3);
    expect(target).toBeLessThan(10);
    expect(judgeClaims({ measurements: run(target) }).claims[0].verdict).toBe('pass');
    expect(judgeClaims({ measurements: run(target - 1) }).claims[0].points[0].reason).toBe('too-wide');
  });

  it('a tie never decides: up to maxRepetitions; a baseline figure is never re-measured; its own few repetitions are left alone', () => {
    const tie = [...e1('fragvisor', { '250ms': around(10, 0.05), '500ms': C1_FV['500ms'] }), ...e1('giantvm', { '250ms': around(10, 0.05), '500ms': C1_GV['500ms'] })];
    expect(asks(morePointsNeeded(judgeClaims({ measurements: tie }), { already: keysOf(tie), maxRepetitions: 6 }))).toEqual(['fragvisor.E1.n4.php-250ms 3+3 [4,5,6]', 'giantvm.E1.n4.php-250ms 3+3 [4,5,6]']);

    const fv = e1('fragvisor', { '250ms': around(10.2, 0.05), '500ms': C1_FV['500ms'] });
    const withBaseline = judgeClaims({ measurements: fv, baseline: BASELINE });
    expect(withBaseline.claims[0].points.map((p) => p.reason ?? p.verdict)).toEqual(['too-wide', 'pass']);
    expect(asks(morePointsNeeded(withBaseline, { already: keysOf(fv) }))).toEqual(['fragvisor.E1.n4.php-250ms 3+7 [4,5,6,7,8,9,10]']);

    const fewBaseline = judgeClaims({ measurements: fv, baseline: baselineWith((e) => e.experiment === 'E1', { repetitions: 2, stddev: 0.1 }) });
    expect(fewBaseline.claims[0].points.map((p) => p.reason)).toEqual(['too-few', 'too-few']);
    expect(morePointsNeeded(fewBaseline, { already: keysOf(fv) })).toEqual([]);
  });

  it('a single repetition (no spread yet) asks for minRepetitions', () => {
    const one = [...e1('fragvisor', { '250ms': [12.5], '500ms': [6.25] }), ...e1('giantvm', C1_GV)];
    expect(asks(morePointsNeeded(judgeClaims({ measurements: one }), { already: keysOf(one) }))).toEqual(['fragvisor.E1.n4.php-250ms 1+2 [2,3]', 'fragvisor.E1.n4.php-500ms 1+2 [2,3]']);
  });

  it("reasons: ['too-wide'] (what a run acts on) leaves points short of minRepetitions alone", () => {
    const one = [...e1('fragvisor', { '250ms': [12.5], '500ms': [6.25] }), ...e1('giantvm', C1_GV)];
    expect(morePointsNeeded(judgeClaims({ measurements: one }), { already: keysOf(one), reasons: ['too-wide'] })).toEqual([]);
    const wide = [...e1('fragvisor', { '250ms': around(10.2, 0.05), '500ms': C1_FV['500ms'] }), ...e1('giantvm', { '250ms': around(10, 0.05), '500ms': C1_GV['500ms'] })];
    expect(asks(morePointsNeeded(judgeClaims({ measurements: wide }), { already: keysOf(wide), reasons: ['too-wide'], maxRepetitions: 4 }))).toEqual(['fragvisor.E1.n4.php-250ms 3+1 [4]', 'giantvm.E1.n4.php-250ms 3+1 [4]']);
  });
});
