import { describeZodError, profileErrorMap } from '../config/errors';
import { reproduceClaimsInput, type ReproduceClaimsConfig } from '../workflows/inputs';
import type { WebhookConfig, WebhookRule } from './config';
import { HttpError } from './httpError';
import { webhookWorkflowId } from './workflowId';

/** What a delivery asks for, once its event or body is understood. */
export interface RunRequest {
  repository: string;
  branch: string;
  /** 40 lower-case hex digits. */
  commit: string;
  /** Generic route only: a profile name instead of the rule's cluster. */
  cluster?: string;
  /** Generic route only: fields over the rule's input. */
  input?: Record<string, unknown>;
}

export interface PlannedRun {
  workflowId: string;
  input: ReproduceClaimsConfig;
  rule: WebhookRule;
}

/**
 * A branch glob: `*` and `?` stay within one path segment, `**` crosses `/`; anything else is literal.
 * `release/*` matches release/1.2 but not release/1.2/rc1.
 */
export function branchMatches(pattern: string, branch: string): boolean {
  const source = pattern
    .split(/(\*\*|\*|\?)/)
    .map((part) => (part === '**' ? '.*' : part === '*' ? '[^/]*' : part === '?' ? '[^/]' : part.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
    .join('');
  return new RegExp(`^${source}$`).test(branch);
}

/** The first rule for this repository (case-insensitive, as GitHub names are) with a branch pattern that matches. */
export function matchRule(rules: readonly WebhookRule[], repository: string, branch: string): WebhookRule | undefined {
  const repo = repository.toLowerCase();
  return rules.find((r) => r.repository.toLowerCase() === repo && r.branches.some((p) => branchMatches(p, branch)));
}

function validated(raw: Record<string, unknown>): { ok: true; input: ReproduceClaimsConfig } | { ok: false; problems: string[] } {
  const result = reproduceClaimsInput.safeParse(raw, { error: profileErrorMap });
  return result.success ? { ok: true, input: result.data } : { ok: false, problems: describeZodError(result.error) };
}

/**
 * The run a delivery starts, or why none: 422 when no rule maps the repository and branch, 500 when
 * the rule's own input is invalid (the mapping's fault), 400 when the caller's overrides are. The
 * merged input passes reproduceClaims' own schema before anything starts.
 */
export function planRun(config: WebhookConfig, req: RunRequest): PlannedRun {
  const rule = matchRule(config.rules, req.repository, req.branch);
  if (!rule) throw new HttpError(422, `no rule in the webhook mapping maps ${req.repository} branch ${req.branch}: nothing started`);
  const fromRule = { ...rule.input, cluster: rule.cluster, [rule.commitField]: req.commit };
  const base = validated(fromRule);
  if (!base.ok) throw new HttpError(500, `the webhook mapping's rule for ${rule.repository} gives an invalid reproduceClaims input: ${base.problems.join('; ')}`);
  const cluster = req.cluster ?? rule.cluster;
  const merged = validated({ ...fromRule, ...req.input, cluster });
  if (!merged.ok) throw new HttpError(400, `invalid run input: ${merged.problems.map((p) => (p.startsWith('cluster') ? p : `input.${p}`)).join('; ')}`);
  return { workflowId: webhookWorkflowId({ repository: req.repository, commit: req.commit, cluster }), input: merged.input, rule };
}
