import { z } from 'zod';
import { claimSettingsSchema } from './claims/settings';
import { benchSettingsSchema } from './commands/bench';

/** A cluster reference: a profile name (`echo`, `sim`) or a path to a .yaml profile on the worker host. */
export const clusterRef = z
  .string({ error: 'expected a cluster profile name like "sim" or "echo", or a path to a .yaml profile' })
  .min(1, 'expected a cluster profile name like "sim" or "echo"')
  .max(1024)
  .refine(
    (s) => /^[A-Za-z][A-Za-z0-9_-]{0,62}$/.test(s) || /^[A-Za-z0-9_./~+@-]+\.ya?ml$/.test(s),
    'expected a profile name (letters, digits, - and _) or a path ending in .yaml without spaces or shell characters',
  );

export const probeClusterInput = z.strictObject({ cluster: clusterRef });
export type ProbeClusterInput = z.input<typeof probeClusterInput>;

export const EXPERIMENTS = ['E1', 'E2', 'E3'] as const;
export const HYPERVISORS = ['fragvisor', 'giantvm'] as const;
export type Experiment = (typeof EXPERIMENTS)[number];
export type Hypervisor = (typeof HYPERVISORS)[number];

/** A workflow id of an earlier run (also a run-store folder name): no "/" or "..". */
export const runId = z
  .string({ error: 'expected the workflow id of an earlier run (a string)' })
  .regex(/^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$/, 'expected a workflow id of letters, digits and _ . : @ + - (no "/", spaces or "..")')
  .refine((s) => !s.includes('..'), 'expected a workflow id without ".."');

const GIT_COMMIT = /^[0-9a-f]{7,40}$/;

export const gitCommit = z.string({ error: 'expected a git commit hash (a string)' }).regex(GIT_COMMIT, 'expected a git commit hash: 7 to 40 lower-case hex digits');

/** A full commit hash, as a push event carries it and a build marker records it (no abbreviation to resolve). */
export const fullGitCommit = z
  .string({ error: 'expected a full git commit hash (a string)' })
  .regex(/^[0-9a-f]{40}$/, 'expected a full git commit hash: 40 lower-case hex digits (`git rev-parse <ref>` prints it)');

/** What loadClusterProfile returned: activities refuse a profile that changed under the run. */
export const profileHash = z.string({ error: 'expected the profile hash (a string)' }).regex(/^[0-9a-f]{64}$/, 'expected the profile hash loadClusterProfile returned (64 hex digits)');

/**
 * The input of reproduceClaims: one JSON object, as the Temporal UI's Start Workflow form sends it.
 * `{"cluster":"sim"}` alone is a complete run (all experiments, 4 nodes, both hypervisors).
 */
export const reproduceClaimsInput = z.strictObject({
  cluster: clusterRef,
  experiments: z
    .array(z.enum(EXPERIMENTS, { error: `expected one of ${EXPERIMENTS.join(', ')}` }), { error: 'expected a list like ["E1","E3"] ([] prepares the cluster only)' })
    .max(EXPERIMENTS.length)
    .refine((xs) => new Set(xs).size === xs.length, 'expected each experiment at most once')
    .default([...EXPERIMENTS]),
  nodeCounts: z
    .array(z.number({ error: 'expected a node count (a number)' }).int('expected a whole number of nodes').min(1, 'expected at least 1 node').max(256), {
      error: 'expected a list of node counts like [2, 4]',
    })
    .min(1, 'expected at least one node count, e.g. [4]')
    .refine((xs) => new Set(xs).size === xs.length, 'expected each node count at most once')
    .default([4]),
  repetitions: z.number({ error: 'expected a number of repetitions' }).int('expected a whole number of repetitions').min(1).max(100).default(3),
  hypervisors: z
    .array(z.enum(HYPERVISORS, { error: `expected one of ${HYPERVISORS.join(', ')}` }), { error: 'expected a list like ["fragvisor","giantvm"]' })
    .min(1, 'expected at least one hypervisor')
    .refine((xs) => new Set(xs).size === xs.length, 'expected each hypervisor at most once')
    .default([...HYPERVISORS]),
  /** Source commit of the host kernel tree to build; default: what the origin's checkout has checked out. */
  kernelCommit: gitCommit.optional(),
  /**
   * fragvisor-kvmtool commit to check out and build (lkvm) on the origin before the first FragVisor VM
   * (needs fragvisor in hypervisors); default: no build, the lkvm the checkout has is used.
   */
  kvmtoolCommit: fullGitCommit.optional(),
  /** `make -jN` for the kernel and kvmtool builds. */
  buildJobs: z.number({ error: 'expected a number of make jobs' }).int().min(1).max(1024).default(16),
  /** Benchmark knobs (ab counts, sizes, NPB kernels, error tolerance); every field defaults to the artifact's value. */
  bench: benchSettingsSchema.optional(),
  /**
   * A GiantVM baseline file on the worker host (docs/BASELINE.md) used instead of measuring GiantVM:
   * giantvm is then dropped from the hypervisors measured.
   */
  baseline: z
    .string({ error: 'expected the path of a baseline file (a string)' })
    .regex(/^[A-Za-z0-9_./~+@-]+\.(?:ya?ml|json)$/, 'expected a path ending in .yaml or .json, without spaces or shell characters')
    .optional(),
  /** How the claims are judged: tolerances, minimum repetitions, which PHP levels count as longer (workflows/claims/settings.ts). */
  claims: claimSettingsSchema.optional(),
  /** An earlier run whose recorded measurements this run adopts instead of measuring them again. */
  resumeFrom: runId.optional(),
  /** When another run holds the cluster: queue behind it (wait), or fail at once with ClusterBusy (refuse). */
  ifBusy: z.enum(['wait', 'refuse'], { error: 'expected "wait" (queue behind the run that holds the cluster) or "refuse" (fail at once)' }).default('wait'),
  /** Plan only: print-worthy steps, nothing runs on the cluster. */
  dryRun: z.boolean({ error: 'expected true or false' }).default(false),
  // The Web UI sends any JSON, or nothing: say what the input is ("a mapping" was all it said).
}, { error: (iss) => (iss.code === 'invalid_type' ? 'expected one JSON object with at least "cluster", e.g. {"cluster":"sim"}' : undefined) });
export type ReproduceClaimsInput = z.input<typeof reproduceClaimsInput>;
export type ReproduceClaimsConfig = z.output<typeof reproduceClaimsInput>;

/**
 * The hypervisors a run measures: a baseline file stands in for GiantVM's measurements, so GiantVM is
 * then not measured. Undefined when nothing is left to measure (a baseline and giantvm alone).
 */
export function withBaseline(input: ReproduceClaimsConfig): ReproduceClaimsConfig | undefined {
  if (!input.baseline) return input;
  const hypervisors = input.hypervisors.filter((h) => h !== 'giantvm');
  return hypervisors.length > 0 ? { ...input, hypervisors } : undefined;
}

export const BASELINE_NEEDS_FRAGVISOR = 'a baseline file replaces measuring GiantVM, so it needs fragvisor in hypervisors';
