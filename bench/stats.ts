/** Pure summaries and verdicts of the bench's figures (tested in test/unit/benchStats.test.ts). */

export interface Spread {
  n: number;
  median: number;
  min: number;
  max: number;
  /** Interquartile range ends (linear interpolation between order statistics). */
  q1: number;
  q3: number;
}

/** The q-quantile (0..1) of ascending `sorted`, interpolating linearly between neighbours. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const at = (sorted.length - 1) * q;
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo);
}

export function spread(values: readonly number[]): Spread {
  const s = [...values].sort((a, b) => a - b);
  return { n: s.length, median: quantile(s, 0.5), min: s[0] ?? NaN, max: s[s.length - 1] ?? NaN, q1: quantile(s, 0.25), q3: quantile(s, 0.75) };
}

/** A target on a figure's median: `< 30` (ms per activity), `>= 0.95` (efficiency). */
export interface Target {
  op: '<' | '<=' | '>=';
  value: number;
}

export function meets(target: Target, value: number): boolean {
  if (!Number.isFinite(value)) return false;
  if (target.op === '<') return value < target.value;
  if (target.op === '<=') return value <= target.value;
  return value >= target.value;
}

/** Length of the union of [start, end] intervals: the time at least one of them was running. */
export function unionLength(intervals: readonly (readonly [number, number])[]): number {
  const s = intervals.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  let total = 0;
  let curStart = -Infinity;
  let curEnd = -Infinity;
  for (const [a, b] of s) {
    if (a > curEnd) {
      if (curEnd > curStart) total += curEnd - curStart;
      curStart = a;
      curEnd = b;
    } else curEnd = Math.max(curEnd, b);
  }
  if (curEnd > curStart) total += curEnd - curStart;
  return total;
}
