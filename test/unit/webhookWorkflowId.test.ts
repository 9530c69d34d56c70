import { runId } from '../../workflows/inputs';
import { webhookWorkflowId } from '../../webhook/workflowId';

const SHA = '0123456789abcdef0123456789abcdef01234567';

it.each([
  ['owner/name, profile name', { repository: 'acme/FragVisor', commit: SHA, cluster: 'sim' }, 'ci-acme-fragvisor-0123456789ab-sim'],
  ['repository case does not matter', { repository: 'ACME/FragVisor', commit: SHA, cluster: 'sim' }, 'ci-acme-fragvisor-0123456789ab-sim'],
  ['upper-case commit', { repository: 'acme/FragVisor', commit: SHA.toUpperCase(), cluster: 'echo' }, 'ci-acme-fragvisor-0123456789ab-echo'],
  ['dots and underscores are kept', { repository: 'my_org/frag.visor', commit: SHA, cluster: 'lab_1' }, 'ci-my_org-frag.visor-0123456789ab-lab_1'],
  ['a profile path is sanitized', { repository: 'acme/fv', commit: SHA, cluster: '/etc/ae/my lab.yaml' }, 'ci-acme-fv-0123456789ab-etc-ae-my-lab.yaml'],
  ['".." never survives', { repository: 'acme/fv..x', commit: SHA, cluster: '../lab.yaml' }, 'ci-acme-fv.x-0123456789ab-.-lab.yaml'],
])('%s', (_what, key, id) => {
  expect(webhookWorkflowId(key)).toBe(id);
  expect(runId.safeParse(id).success).toBe(true);
});

it('differs by commit and by cluster, not by anything else', () => {
  const base = { repository: 'acme/fv', commit: SHA, cluster: 'sim' };
  expect(webhookWorkflowId({ ...base, commit: `f${SHA.slice(1)}` })).not.toBe(webhookWorkflowId(base));
  expect(webhookWorkflowId({ ...base, cluster: 'echo' })).not.toBe(webhookWorkflowId(base));
  expect(webhookWorkflowId({ ...base })).toBe(webhookWorkflowId(base));
});

it('a very long key is cut to the run-id limit and stays unique', () => {
  const long = (c: string) => webhookWorkflowId({ repository: `acme/${'x'.repeat(100)}`, commit: SHA, cluster: `/${'d'.repeat(150)}${c}/lab.yaml` });
  expect(long('a').length).toBeLessThanOrEqual(200);
  expect(runId.safeParse(long('a')).success).toBe(true);
  expect(long('a')).not.toBe(long('b'));
});
