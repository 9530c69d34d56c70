import { withNoise } from './prng';
import type { ModelSpec } from './schema';

/**
 * A model as the running sim uses it: the declared spec, the run's seed and the one time-scale
 * knob. timeScale multiplies every model duration the sim sleeps for: 1 = real time, 0.01 = a
 * hundred times faster, 0 = no sleeping at all (tests).
 */
export interface SimModel {
  readonly spec: ModelSpec;
  readonly seed: number;
  readonly timeScale: number;
}

export function createModel(spec: ModelSpec, opts: { seed?: number; timeScale?: number } = {}): SimModel {
  const seed = opts.seed ?? 1;
  const timeScale = opts.timeScale ?? 1;
  if (!Number.isSafeInteger(seed)) throw new RangeError(`seed must be an integer, got ${seed}`);
  if (!Number.isFinite(timeScale) || timeScale < 0) throw new RangeError(`timeScale must be a finite number >= 0, got ${timeScale}`);
  return { spec, seed, timeScale };
}

/** A measured value: the model's mean with the declared noise, keyed by a stable per-measurement key. */
export function measure(model: SimModel, mean: number, key: string): number {
  return withNoise(mean, model.spec.noise, model.seed, key);
}

/** Real milliseconds to sleep for `modelMs` of model time. */
export function sleepMs(model: SimModel, modelMs: number): number {
  return modelMs * model.timeScale;
}
