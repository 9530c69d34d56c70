import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { describeZodError, InvalidConfigError, profileErrorMap } from '../config/errors';
import { PROJECT_ROOT } from '../config/paths';
import { clusterRef, reproduceClaimsInput } from '../workflows/inputs';

/**
 * The webhook mapping file (config/webhooks.yaml): which environment variables hold the secrets, the
 * listener's limits, and the rules that decide what a push runs. Errors name the field:
 * `rules[0].branches: expected at least 1 item(s)`.
 */

export const DEFAULT_CONFIG_FILE = path.join(PROJECT_ROOT, 'config', 'webhooks.yaml');
export const GITHUB_SECRET_ENV = 'AE_WEBHOOK_GITHUB_SECRET';
export const GENERIC_SECRET_ENV = 'AE_WEBHOOK_GENERIC_SECRET';

const envName = z
  .string({ error: 'expected the NAME of an environment variable (never the secret itself)' })
  .regex(/^[A-Z_][A-Z0-9_]{0,127}$/, 'expected the NAME of an environment variable like AE_WEBHOOK_GITHUB_SECRET (never the secret itself)');

export const repositoryName = z
  .string({ error: 'expected a repository "owner/name" (a string)' })
  .regex(/^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/, 'expected a repository "owner/name" as GitHub spells it, e.g. "acme/FragVisor"');

const branchPattern = z
  .string({ error: 'expected a branch name or glob (a string)' })
  .regex(/^[^\s~^:\\]{1,255}$/, 'expected a branch name or glob like main or release/* (no spaces or ~ ^ : \\)');

const httpUrl = z
  .string({ error: 'expected an http(s) URL (a string)' })
  .max(2048)
  .regex(/^https?:\/\/[^\s/?#]+[^\s]*$/i, 'expected an http:// or https:// URL');

const bucket = z.strictObject({
  burst: z.number().int().min(1).max(100_000),
  perSecond: z.number().positive().max(100_000),
});

/** Fields of the reproduceClaims input a rule (or a generic caller) may not set: they come from elsewhere. */
const RESERVED_INPUT = {
  cluster: 'the rule\'s (or the payload\'s) "cluster" sets it',
  kernelCommit: 'the pushed commit sets it (commitField)',
  kvmtoolCommit: 'the pushed commit sets it (commitField: kvmtoolCommit)',
} as const;

/** The source revisions a push can pin: the FragVisor checkout (kernel tree) or fragvisor-kvmtool. */
export const COMMIT_FIELDS = ['kernelCommit', 'kvmtoolCommit'] as const;

/** A partial reproduceClaims input, checked against the workflow's own schema with a placeholder commit. */
export const partialRunInput = z.record(z.string(), z.unknown(), { error: 'expected a mapping of reproduceClaims input fields, e.g. {experiments: [E1]}' }).superRefine((input, ctx) => {
  for (const [field, why] of Object.entries(RESERVED_INPUT)) {
    if (field in input) ctx.addIssue({ code: 'custom', path: [field], message: `not allowed here: ${why}` });
  }
  const result = reproduceClaimsInput.safeParse({ ...input, cluster: 'placeholder', kernelCommit: '0'.repeat(40), kvmtoolCommit: '0'.repeat(40) }, { error: profileErrorMap });
  if (!result.success) for (const issue of result.error.issues) ctx.addIssue({ ...issue, input: undefined } as never);
});

export const webhookRule = z.strictObject({
  repository: repositoryName,
  branches: z.array(branchPattern, { error: 'expected a list of branch names or globs, e.g. [main, "release/*"]' }).min(1, 'expected at least one branch, e.g. [main]'),
  /** Profile name or path on the worker host, as reproduceClaims takes it. */
  cluster: clusterRef,
  input: partialRunInput.optional(),
  /** The reproduceClaims field the pushed commit sets. */
  commitField: z
    .enum(COMMIT_FIELDS, {
      error: 'expected "kernelCommit" (a push to the FragVisor repository: the kernel tree the run builds) or "kvmtoolCommit" (a push to fragvisor-kvmtool: the lkvm the run builds on the origin)',
    })
    .default('kernelCommit'),
  callback: z
    .strictObject({
      url: httpUrl,
      /** Environment variable (on the worker host) holding the key that signs the callback's X-Signature-256. */
      secretEnv: envName.optional(),
    })
    .optional(),
});
export type WebhookRule = z.output<typeof webhookRule>;

export const webhookConfigSchema = z.strictObject({
  secrets: z
    .strictObject({
      github: envName.default(GITHUB_SECRET_ENV),
      generic: envName.default(GENERIC_SECRET_ENV),
    })
    .prefault({}),
  limits: z
    .strictObject({
      maxBodyBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
      perSource: bucket.default({ burst: 20, perSecond: 1 }),
      global: bucket.default({ burst: 100, perSecond: 10 }),
      /** How long an X-GitHub-Delivery id is remembered: a replay within it joins without asking Temporal. */
      deliveryWindowSeconds: z.number().int().min(1).max(7 * 24 * 3600).default(3600),
    })
    .prefault({}),
  rules: z.array(webhookRule, { error: 'expected a list of rules (repository, branches, cluster, input)' }),
});
export type WebhookConfig = z.output<typeof webhookConfigSchema>;

/** Validates a parsed mapping document; `source` names it in errors. */
export function parseWebhookConfig(raw: unknown, source: string): WebhookConfig {
  const result = webhookConfigSchema.safeParse(raw ?? {}, { error: profileErrorMap });
  if (!result.success) {
    const problems = describeZodError(result.error);
    throw new InvalidConfigError(`${source}: invalid webhook mapping:\n  ${problems.join('\n  ')}`, problems);
  }
  return result.data;
}

export function loadWebhookConfig(file: string): WebhookConfig {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new InvalidConfigError(`webhook mapping ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new InvalidConfigError(`${file}: not valid YAML: ${(err as Error).message.trim()}`);
  }
  return parseWebhookConfig(raw, file);
}
