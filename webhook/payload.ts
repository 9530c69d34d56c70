import { z } from 'zod';
import { describeZodError, profileErrorMap } from '../config/errors';
import { partialRunInput, repositoryName } from './config';
import { HttpError } from './httpError';
import type { RunRequest } from './mapping';

/** What a GitHub delivery means for us. */
export type GithubEvent = { kind: 'run'; request: RunRequest } | { kind: 'ping' } | { kind: 'ignored'; reason: string };

const NO_COMMIT = '0'.repeat(40);
const fullCommit = z
  .string({ error: 'expected a commit hash (a string)' })
  .regex(/^[0-9a-fA-F]{40}$/, 'expected a full 40-digit commit hash')
  .transform((s) => s.toLowerCase());
const ref = z.string({ error: 'expected a git ref like refs/heads/main (a string)' }).min(1).max(255);

const pushEvent = z.looseObject({
  ref,
  after: fullCommit,
  deleted: z.boolean().optional(),
  repository: z.looseObject({ full_name: repositoryName }),
});

const dispatchEvent = z.looseObject({
  ref,
  repository: z.looseObject({ full_name: repositoryName }),
  // workflow_dispatch carries no commit: the GitHub workflow passes it as an input (e.g. ${{ github.sha }}).
  inputs: z.looseObject({ commit: fullCommit }, { error: 'expected the workflow_dispatch inputs with a "commit" input (workflow_dispatch carries no commit of its own)' }),
});

/** A profile name only: a webhook caller may not point the worker at an arbitrary file. */
const profileName = z.string({ error: 'expected a cluster profile name (a string)' }).regex(/^[A-Za-z][A-Za-z0-9_-]{0,62}$/, 'expected a cluster profile name like "sim" or "echo" (not a path)');

export const genericPayload = z.strictObject({
  repository: repositoryName,
  ref,
  commit: fullCommit,
  cluster: profileName.optional(),
  input: partialRunInput.optional(),
});

/** The body as JSON, or a 400 saying why not (a truncated body, for one). */
export function parseJsonBody(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new HttpError(400, `the body is not valid JSON: ${(err as Error).message}`);
  }
}

function parsed<S extends z.ZodType>(schema: S, json: unknown, what: string): z.output<S> {
  const result = schema.safeParse(json, { error: profileErrorMap });
  if (!result.success) throw new HttpError(400, `invalid ${what}: ${describeZodError(result.error).join('; ')}`);
  return result.data;
}

/** `refs/heads/x` -> `x`; undefined for tags and other refs. */
export function branchOf(gitRef: string): string | undefined {
  return gitRef.startsWith('refs/heads/') ? gitRef.slice('refs/heads/'.length) : undefined;
}

/** A GitHub delivery by its X-GitHub-Event: push and workflow_dispatch may start a run, ping answers, the rest is ignored. */
export function githubEvent(event: string | undefined, json: unknown): GithubEvent {
  switch (event) {
    case 'ping':
      return { kind: 'ping' };
    case 'push': {
      // Checked before the schema: a deleted branch's push has `after` all zeros.
      const raw = json as { deleted?: unknown; after?: unknown } | null;
      if (raw?.deleted === true || raw?.after === NO_COMMIT) return { kind: 'ignored', reason: 'a branch deletion: nothing to build' };
      const p = parsed(pushEvent, json, 'push event');
      const branch = branchOf(p.ref);
      if (branch === undefined) return { kind: 'ignored', reason: `${p.ref} is not a branch (tags and other refs start nothing)` };
      return { kind: 'run', request: { repository: p.repository.full_name, branch, commit: p.after } };
    }
    case 'workflow_dispatch': {
      const p = parsed(dispatchEvent, json, 'workflow_dispatch event');
      const branch = branchOf(p.ref);
      if (branch === undefined) return { kind: 'ignored', reason: `${p.ref} is not a branch (tags and other refs start nothing)` };
      return { kind: 'run', request: { repository: p.repository.full_name, branch, commit: p.inputs.commit } };
    }
    case undefined:
      throw new HttpError(400, 'missing X-GitHub-Event header');
    default:
      return { kind: 'ignored', reason: `event "${event.slice(0, 64)}" starts nothing: only push and workflow_dispatch do` };
  }
}

/** The generic route's body: {repository, ref, commit, cluster?, input?}; ref is a branch name or refs/heads/<branch>. */
export function genericRequest(json: unknown): RunRequest {
  const p = parsed(genericPayload, json, 'payload');
  const branch = p.ref.startsWith('refs/') ? branchOf(p.ref) : p.ref;
  if (branch === undefined) throw new HttpError(400, `invalid payload: ref: expected a branch (a name or refs/heads/<name>), got ${JSON.stringify(p.ref)}`);
  return { repository: p.repository, branch, commit: p.commit, ...(p.cluster ? { cluster: p.cluster } : {}), ...(p.input ? { input: p.input } : {}) };
}
