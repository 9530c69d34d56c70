import { createHash } from 'node:crypto';

/** The run-id charset of workflows/inputs.ts (`runId`): it also names the run's folder in the run store. */
const OUTSIDE_CHARSET = /[^A-Za-z0-9_.:@+-]+/g;
const MAX_LENGTH = 200;

/**
 * The workflow id of the run a webhook starts: one per (repository, commit, cluster), so a redelivery
 * of the same push (or the generic route reporting the same commit) joins the run already started.
 * `ci-<owner>-<name>-<sha12>-<cluster>`, lower-case repository (GitHub names are case-insensitive),
 * sanitized to the run-id charset; too long, it is cut and made unique again with a hash of the whole.
 */
export function webhookWorkflowId({ repository, commit, cluster }: { repository: string; commit: string; cluster: string }): string {
  const raw = ['ci', repository.toLowerCase().replace('/', '-'), commit.toLowerCase().slice(0, 12), cluster].join('-');
  const id = raw
    .replace(OUTSIDE_CHARSET, '-')
    .replace(/\.{2,}/g, '.')
    .replace(/-{2,}/g, '-')
    .replace(/-$/, '');
  if (id.length <= MAX_LENGTH) return id;
  const hash = createHash('sha256').update(raw).digest('hex').slice(0, 12);
  return `${id.slice(0, MAX_LENGTH - hash.length - 1)}-${hash}`;
}
