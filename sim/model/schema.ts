import { z } from 'zod';

/**
 * The performance model of the simulated testbed, as declared in config/models/*.yaml. Every number
 * is "model time" (what the real testbed would take); the sim's timeScale turns it into sleeping.
 * Strict objects throughout: a misspelt field is an error naming its path, never a silent default.
 */

const positive = z.number().positive();
const nonNegative = z.number().min(0);

/** Slowdown multiplier: 1 = as fast as the local/origin case. Bounded to catch unit mix-ups (ms vs s). */
const factor = z.number().min(0.01).max(100);

const phaseSchema = z.strictObject({
  /** Phase time with the worker on the origin vCPU (0) of a 1-node VM. */
  localMs: positive,
  /** Multiplier when the worker is pinned to a remote vCPU. */
  remoteFactor: factor,
});

/** Phases of one OpenLambda invocation, as the lambda's response body reports them. */
export const OPENLAMBDA_PHASES = ['sandboxCreate', 'init', 'execute', 'cleanup'] as const;
export type OpenLambdaPhase = (typeof OPENLAMBDA_PHASES)[number];

const hypervisorSchema = z.strictObject({
  /** Everything slows by this fraction per node beyond the first (DSM coherence traffic, IPIs). */
  contentionPerExtraNode: z.number().min(0).max(1),
  /** E3 network: nginx serving a static file; cost = overhead + (body + headers) / bandwidth. */
  network: z.strictObject({
    requestOverheadMs: positive,
    bandwidthMBps: positive,
    /** The nginx worker on a remote vCPU: its I/O is delegated to the origin. */
    delegated: z.strictObject({ overheadFactor: factor, bandwidthFactor: factor }),
  }),
  /** E1 LEMP: nginx on the origin relaying to php-fpm workers, one per node. */
  lemp: z.strictObject({
    /** nginx's FastCGI relay per PHP request, on top of the network cost of the response. */
    fastcgiMs: nonNegative,
    /** Extra per request when the php-fpm worker runs on another vCPU than the nginx worker. */
    remoteWorkerMs: nonNegative,
    /** PHP compute slowdown on a remote vCPU. */
    remoteComputeFactor: factor,
  }),
  /** E2 OpenLambda: per-phase times of one invocation. */
  openLambda: z.strictObject(Object.fromEntries(OPENLAMBDA_PHASES.map((p) => [p, phaseSchema])) as Record<OpenLambdaPhase, typeof phaseSchema>),
  /** E3 storage: virtio-disk throughput seen by a process on the origin; a remote one is delegated. */
  storage: z.strictObject({ readMBps: positive, writeMBps: positive, delegatedFactor: factor }),
  /** NPB: run time = kernel's localSeconds x localFactor, x (1 + remotePenalty x memoryIntensity) off the origin. */
  npb: z.strictObject({ localFactor: factor, remotePenalty: nonNegative }),
});

const levelSchema = z.strictObject({
  /** The artifact's name for the script ("25ms"), used by claims and reports. */
  label: z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, 'expected a short label of letters, digits, . _ -'),
  /** `test_Loops($count = N)` of the artifact's script: how web.php is recognised. */
  loops: z.number().int().min(0),
});

const npbKernelSchema = z.strictObject({
  /** Serial run time on the origin vCPU of a 1-node VM. */
  localSeconds: positive,
  /** 0 = pure compute (ep), 1 = every access may touch remote memory; scales the remote penalty. */
  memoryIntensity: z.number().min(0).max(1),
});

/** Levels go from short to long ("each about 10x the work of the one before"): their order is C1's order. */
const levelsSchema = z
  .array(levelSchema)
  .min(1)
  .superRefine((levels, ctx) => {
    const seen = new Set<string>();
    levels.forEach((level, i) => {
      if (seen.has(level.label)) ctx.addIssue({ code: 'custom', path: [i, 'label'], message: `duplicate level label ${JSON.stringify(level.label)}` });
      seen.add(level.label);
      if (i > 0 && level.loops <= levels[i - 1].loops) {
        ctx.addIssue({ code: 'custom', path: [i, 'loops'], message: 'expected more loops than the level before (levels go from short to long)' });
      }
    });
  });

// Key names are checked here: zod's own record-key error does not say what was expected.
const kernelsSchema = z.record(z.string(), npbKernelSchema).superRefine((kernels, ctx) => {
  const names = Object.keys(kernels);
  if (names.length === 0) ctx.addIssue({ code: 'custom', path: [], message: 'expected at least one NPB kernel' });
  for (const name of names) {
    if (!/^[a-z]{2}\.[A-Z]$/.test(name)) ctx.addIssue({ code: 'custom', path: [name], message: 'expected an NPB kernel name like ep.B (benchmark.class)' });
  }
});

export const modelSpecSchema = z.strictObject({
  name: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,62}$/, 'expected a name of letters, digits, - and _'),
  description: z.string().optional(),
  /** Relative amplitude of the seeded noise: a value v is reported as v x (1 +- noise), uniform. */
  noise: z.number().min(0).max(0.5),
  network: z.strictObject({
    /** Bytes of HTTP response headers sent with every body (nginx's are about 229). */
    headerBytes: z.number().int().min(0),
  }),
  lemp: z.strictObject({
    /** Per request, whatever the loop count: PHP startup, parsing, output. */
    startupMs: nonNegative,
    /** Compute per million `test_Loops` iterations (the script's other loops scale with it). */
    msPerMillionLoops: positive,
    levels: levelsSchema,
  }),
  npb: z.strictObject({ kernels: kernelsSchema }),
  hypervisors: z.strictObject({ fragvisor: hypervisorSchema, giantvm: hypervisorSchema }),
});

export type ModelSpec = z.infer<typeof modelSpecSchema>;
export type HypervisorSpec = ModelSpec['hypervisors']['fragvisor'];
export const HYPERVISORS = ['fragvisor', 'giantvm'] as const;
export type Hypervisor = (typeof HYPERVISORS)[number];
