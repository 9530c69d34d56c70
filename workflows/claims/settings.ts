import { z } from 'zod';
import { PHP_LEVELS, type PhpLevel } from '../commands/bench';

/**
 * How the claims are judged (workflow input `claims`): repetitions, tolerances, which PHP levels are
 * C1's "longer requests", and the bounds on the repetitions a run may add to narrow an interval.
 * Every field has a default; the report echoes the values used.
 */

const PHP_LABELS = PHP_LEVELS.map((l) => l.label) as [PhpLevel, ...PhpLevel[]];
const repetitions = (what: string) =>
  z.number({ error: `expected ${what} (a number)` }).int(`expected a whole number (${what})`).min(2, `expected at least 2 (${what}: an interval needs two)`).max(100, `expected at most 100 (${what})`);
const fraction = (what: string) => z.number({ error: `expected ${what} (a fraction 0..1)` }).min(0, `expected ${what} of at least 0`).max(0.99, `expected ${what} below 1`);

const c1Schema = z.strictObject({
  /** C1's "longer requests": the PHP levels compared (default the two longest). */
  longerLevels: z
    .array(z.enum(PHP_LABELS, { error: `expected a PHP level: ${PHP_LABELS.join(', ')}` }), { error: 'expected a list of PHP levels like ["250ms","500ms"]' })
    .min(1, 'expected at least one PHP level')
    .refine((xs) => new Set(xs).size === xs.length, 'expected each PHP level once')
    .default(PHP_LABELS.slice(-2)),
  /** How much higher FragVisor's throughput must be: its ratio to GiantVM's must exceed 1 + margin. */
  margin: fraction('the margin FragVisor must lead by').default(0),
});
const c2Schema = z.strictObject({
  /** How much faster FragVisor must be: its time over GiantVM's must stay below 1 - margin. */
  margin: fraction('the margin FragVisor must lead by').default(0),
});
const c3Schema = z.strictObject({
  /** "Close": the delegated case's throughput must be at least (1 - tolerance) x the local case's. */
  tolerance: fraction('the tolerance of the delegated case').default(0.2),
  /** The E3 network throughput compared: ab's requests per second, or its transfer rate. */
  netMetric: z.enum(['requestsPerSecond', 'transferRateKBps'], { error: 'expected requestsPerSecond or transferRateKBps' }).default('requestsPerSecond'),
});

export const claimSettingsSchema = z
  .strictObject({
    /** Fewer repetitions than this on a measured side make a point inconclusive. */
    minRepetitions: repetitions('the minimum repetitions per compared point').default(3),
    /** The most repetitions a variant may reach when the run adds some to narrow an interval. */
    maxRepetitions: repetitions('the maximum repetitions per variant').default(10),
    /** Wall-clock time the run may spend adding repetitions before it judges with what it has. */
    timeBudgetMinutes: z.number({ error: 'expected a time budget in minutes (a number)' }).min(0, 'expected a time budget of at least 0 minutes').max(10_080, 'expected a time budget of at most a week (10080 minutes)').default(240),
    c1: c1Schema.default(() => c1Schema.parse({})),
    c2: c2Schema.default(() => c2Schema.parse({})),
    c3: c3Schema.default(() => c3Schema.parse({})),
  })
  .refine((s) => s.maxRepetitions >= s.minRepetitions, { error: 'expected maxRepetitions at least minRepetitions', path: ['maxRepetitions'] });

export type ClaimSettingsInput = z.input<typeof claimSettingsSchema>;
export type ClaimSettings = z.output<typeof claimSettingsSchema>;

/** Defaults filled in; throws a ZodError on a bad value. */
export function claimSettings(input: ClaimSettingsInput = {}): ClaimSettings {
  return claimSettingsSchema.parse(input);
}
