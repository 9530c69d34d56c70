import { z } from 'zod';
import { EXPERIMENTS } from '../workflows/inputs';

/**
 * A GiantVM baseline read from a file instead of measured (docs/BASELINE.md): the figures GiantVM
 * reached for the same measurement keys, each with its unit, and where they came from. A run that
 * uses one copies it into its run store and records which baseline it used.
 */

const text = (what: string, max: number) => z.string({ error: `expected ${what} (a string)` }).min(1, `expected ${what}`).max(max, `expected ${what} of at most ${max} characters`);

export const baselineEntrySchema = z.strictObject({
  experiment: z.enum(EXPERIMENTS, { error: `expected one of ${EXPERIMENTS.join(', ')}` }),
  nodeCount: z.number({ error: 'expected a node count (a number)' }).int('expected a whole number of nodes').min(1).max(256),
  /** The variant name the measurements use (docs/BENCHMARKS.md): php-250ms, openlambda, net-4096-delegated, ... */
  variant: z.string({ error: 'expected a variant name like php-250ms (a string)' }).regex(/^[a-z][a-z0-9.-]{0,80}$/, 'expected a variant name like php-250ms or net-4096-local'),
  /** A metric name of that variant's measurements: requestsPerSecond, wallSeconds, ... */
  metric: z.string({ error: 'expected a metric name like requestsPerSecond (a string)' }).regex(/^[A-Za-z][A-Za-z0-9]{0,63}$/, 'expected a metric name like requestsPerSecond'),
  value: z.number({ error: 'expected the value (a number)' }).finite('expected a finite number'),
  unit: text('the unit, e.g. "#/s" or "s"', 32),
  /** How many runs the value summarises, and their spread, when the source says. */
  repetitions: z.number({ error: 'expected a number of repetitions' }).int().min(1).optional(),
  stddev: z.number({ error: 'expected the standard deviation (a number)' }).min(0).optional(),
});

export const baselineFileSchema = z.strictObject({
  hypervisor: z.literal('giantvm', { error: 'expected hypervisor: giantvm (the baseline FragVisor is compared with)' }),
  /** Where the numbers come from: a paper's figure, a run on named hardware, who and when. */
  source: text('where the numbers come from (paper and figure, or the cluster, date and who measured)', 2000),
  /** True when the figures were read off a plot rather than measured. */
  approximate: z.boolean({ error: 'expected true or false' }).default(false),
  measurements: z.array(baselineEntrySchema, { error: 'expected a list of measurements' }).min(1, 'expected at least one measurement'),
});

export type BaselineFile = z.output<typeof baselineFileSchema>;
