/**
 * Small-sample statistics for judging the claims: means, sample standard deviations, 95% confidence
 * intervals with Student's t, and the ratio of two independent means with a 95% interval (Fieller).
 * Pure and deterministic (workflow code may run it): no Node built-ins, no randomness.
 */

/** Two-sided 95% critical values of Student's t, t(0.975; df) for df = 1..30. */
export const T95_TABLE: readonly number[] = [
  12.706204736, 4.30265273, 3.182446305, 2.776445105, 2.570581836, 2.446911851, 2.364624252, 2.306004135, 2.262157163, 2.228138852, 2.20098516, 2.17881283, 2.160368656,
  2.144786688, 2.131449546, 2.119905299, 2.109815578, 2.10092204, 2.093024054, 2.085963447, 2.079613845, 2.073873068, 2.06865761, 2.063898562, 2.059538553, 2.055529439,
  2.051830516, 2.048407142, 2.045229642, 2.042272456,
];

/** The standard normal's 97.5% quantile: t's limit as df grows. */
export const Z975 = 1.959963984540054;

/**
 * t(0.975; df). df up to 30 from the table; a fractional df (Welch) is rounded down, which widens the
 * interval (t falls as df grows). Beyond 30, the Cornish-Fisher expansion of t around the normal
 * quantile (Abramowitz & Stegun 26.7.5; within 1e-6 of the exact value there, and continuous with the
 * table at 30); Infinity gives the normal quantile.
 */
export function tCritical95(df: number): number {
  if (!(df >= 1)) throw new RangeError(`tCritical95: expected at least 1 degree of freedom, got ${df}`);
  if (df === Infinity) return Z975;
  if (df <= 30) return T95_TABLE[Math.floor(df) - 1];
  const z = Z975;
  const [z3, z5, z7, z9] = [z ** 3, z ** 5, z ** 7, z ** 9];
  const g1 = (z3 + z) / 4;
  const g2 = (5 * z5 + 16 * z3 + 3 * z) / 96;
  const g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384;
  const g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160;
  return z + g1 / df + g2 / df ** 2 + g3 / df ** 3 + g4 / df ** 4;
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) throw new RangeError('mean: expected at least one value');
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** The sample standard deviation (n - 1 in the denominator). */
export function sampleStddev(xs: readonly number[]): number {
  if (xs.length < 2) throw new RangeError(`sampleStddev: expected at least two values, got ${xs.length}`);
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/**
 * A mean with its standard error and the degrees of freedom of that error: n - 1 for a sample;
 * Infinity when the error is known rather than estimated (0 for a figure taken as exact).
 */
export interface Estimate {
  mean: number;
  se: number;
  df: number;
}

export interface Summary extends Estimate {
  n: number;
  stddev: number;
}

/** Mean, sample standard deviation and standard error of at least two values. */
export function summarize(xs: readonly number[]): Summary {
  const stddev = sampleStddev(xs);
  return { n: xs.length, mean: mean(xs), stddev, se: stddev / Math.sqrt(xs.length), df: xs.length - 1 };
}

/** The 95% interval of a mean: mean +- t(0.975; df) x se. */
export function meanCi95(e: Estimate): [number, number] {
  const h = e.se === 0 ? 0 : tCritical95(e.df) * e.se;
  return [e.mean - h, e.mean + h];
}

/**
 * Welch-Satterthwaite degrees of freedom of a.mean - r x b.mean (r = 1: Welch's two-sample test).
 * Infinity when neither error is estimated from a sample.
 */
export function welchDf(a: Estimate, b: Estimate, r = 1): number {
  const va = a.se ** 2;
  const vb = r ** 2 * b.se ** 2;
  const term = (v: number, df: number) => (v === 0 || df === Infinity ? 0 : v ** 2 / df);
  const denominator = term(va, a.df) + term(vb, b.df);
  return denominator === 0 ? Infinity : Math.max(1, (va + vb) ** 2 / denominator);
}

export interface RatioCi {
  /** a.mean / b.mean. */
  estimate: number;
  /** The degrees of freedom the interval used (Infinity: both errors known or zero). */
  df: number;
  /** Absent when the interval is unbounded: b's mean cannot be told from 0 at this confidence. */
  ci95?: [number, number];
}

/**
 * The 95% interval of a.mean / b.mean for independent a and b, by Fieller's theorem: every r with
 * (a.mean - r b.mean)^2 <= t^2 (a.se^2 + r^2 b.se^2). Chosen over the delta method because it is
 * exact for normal means and stays right when b is noisy; and an r lies outside the interval exactly
 * when the Welch-type test of a.mean = r x b.mean rejects, so "the interval clears the threshold"
 * is that test. t uses the Welch-Satterthwaite df at the estimated ratio. b.mean must not be 0.
 */
export function ratioCi95(a: Estimate, b: Estimate): RatioCi {
  if (b.mean === 0) throw new RangeError('ratioCi95: the denominator mean is 0');
  const estimate = a.mean / b.mean;
  const df = welchDf(a, b, estimate);
  const va = a.se ** 2;
  const vb = b.se ** 2;
  if (va === 0 && vb === 0) return { estimate, df, ci95: [estimate, estimate] };
  const t2 = tCritical95(df) ** 2;
  // Quadratic in r: A r^2 - 2 a b r + C <= 0; bounded only when A > 0.
  const A = b.mean ** 2 - t2 * vb;
  if (A <= 0) return { estimate, df };
  const root = Math.sqrt(t2 * (va * A + vb * a.mean ** 2));
  const lo = (a.mean * b.mean - root) / A;
  const hi = (a.mean * b.mean + root) / A;
  return { estimate, df, ci95: [lo, hi] };
}
