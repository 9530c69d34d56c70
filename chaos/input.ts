import type { BenchSettingsInput } from '../workflows/commands/bench';
import type { ReproduceClaimsInput } from '../workflows/inputs';

/**
 * The AE run every chaos run makes: the whole reproduceClaims (every experiment, both hypervisors,
 * 4 nodes) with the benchmarks cut down so that it takes a minute or two on the simulated cluster.
 * Two repetitions, and the claims judged on two (no added rounds): the verdicts come from the data,
 * yet a run's work is fixed, so an unfaulted run and a faulted one can be compared action by action.
 */
export const CHAOS_BENCH: BenchSettingsInput = {
  lemp: { requests: 20, concurrency: 5, levels: ['250ms', '500ms'] },
  network: { requests: 40, concurrency: 5, sizes: [4096], settleSeconds: 0 },
  openLambda: { gapSeconds: 0 },
  storage: { mib: 8 },
  npb: { kernels: ['ep.B'] },
};

export function chaosInput(profile: string, repetitions: number): ReproduceClaimsInput {
  return {
    cluster: profile,
    experiments: ['E1', 'E2', 'E3'],
    hypervisors: ['fragvisor', 'giantvm'],
    nodeCounts: [4],
    repetitions,
    bench: CHAOS_BENCH,
    claims: { minRepetitions: Math.max(2, repetitions), maxRepetitions: Math.max(2, repetitions) },
  };
}
