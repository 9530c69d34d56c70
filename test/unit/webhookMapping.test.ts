import { InvalidConfigError } from '../../config/errors';
import { DEFAULT_CONFIG_FILE, loadWebhookConfig, parseWebhookConfig, type WebhookConfig } from '../../webhook/config';
import { branchMatches, matchRule, planRun } from '../../webhook/mapping';
import { refusal } from '../helpers/httpRefusal';

const SHA = 'abcdef0123456789abcdef0123456789abcdef01';

it.each([
  ['main', 'main', true],
  ['main', 'main2', false],
  ['main', 'feature/main', false],
  ['release/*', 'release/1.2', true],
  ['release/*', 'release/1.2/rc1', false],
  ['release/*', 'release/', true],
  ['release/**', 'release/1.2/rc1', true],
  ['**', 'any/thing/at/all', true],
  ['v?.x', 'v1.x', true],
  ['v?.x', 'v10.x', false],
  ['v1.x', 'v1-x', false], // the dot is literal
  ['feat+(a)', 'feat+(a)', true], // so are regex characters
  ['*-stable', 'linux-4.4-stable', true],
])('branch pattern %s vs %s -> %s', (pattern, branch, ok) => {
  expect(branchMatches(pattern, branch)).toBe(ok);
});

const config: WebhookConfig = parseWebhookConfig(
  {
    rules: [
      { repository: 'acme/FragVisor', branches: ['main', 'release/*'], cluster: 'sim', input: { experiments: [], hypervisors: ['fragvisor'], dryRun: true } },
      { repository: 'acme/FragVisor', branches: ['eval/**'], cluster: 'echo', callback: { url: 'https://ci.example/done', secretEnv: 'CB_SECRET' } },
      { repository: 'acme/other', branches: ['**'], cluster: 'fox', input: { repetitions: 5 } },
      { repository: 'acme/fragvisor-kvmtool', branches: ['main'], cluster: 'sim', commitField: 'kvmtoolCommit', input: { experiments: ['E1'], hypervisors: ['fragvisor'] } },
    ],
  },
  'test mapping',
);

it.each([
  ['acme/FragVisor', 'main', 'sim'],
  ['ACME/fragvisor', 'main', 'sim'], // GitHub names are case-insensitive
  ['acme/FragVisor', 'release/2', 'sim'],
  ['acme/FragVisor', 'eval/paper/final', 'echo'],
  ['acme/other', 'anything/goes', 'fox'],
  ['acme/FragVisor', 'feature/x', undefined],
  ['acme/FragVisor-fork', 'main', undefined],
  ['evil/FragVisor', 'main', undefined],
])('%s %s -> rule for %s', (repository, branch, cluster) => {
  expect(matchRule(config.rules, repository, branch)?.cluster).toBe(cluster);
});

it('plans the rule input with the pushed commit as kernelCommit, validated with defaults', () => {
  const run = planRun(config, { repository: 'acme/FragVisor', branch: 'main', commit: SHA });
  expect(run.workflowId).toBe('ci-acme-fragvisor-abcdef012345-sim');
  expect(run.input).toEqual({ cluster: 'sim', kernelCommit: SHA, experiments: [], hypervisors: ['fragvisor'], dryRun: true, nodeCounts: [4], repetitions: 3, buildJobs: 16, ifBusy: 'wait' });
  expect(run.rule.callback).toBeUndefined();
});

it('a push to the kvmtool repository (commitField kvmtoolCommit) pins kvmtoolCommit and leaves kernelCommit to the origin', () => {
  const run = planRun(config, { repository: 'acme/fragvisor-kvmtool', branch: 'main', commit: SHA });
  expect(run.workflowId).toBe('ci-acme-fragvisor-kvmtool-abcdef012345-sim');
  expect(run.input).toMatchObject({ cluster: 'sim', kvmtoolCommit: SHA, experiments: ['E1'], hypervisors: ['fragvisor'] });
  expect(run.input.kernelCommit).toBeUndefined();
});

it('the example mapping (config/webhooks.yaml) maps its FragVisor rule to kernelCommit and its kvmtool rule to kvmtoolCommit', () => {
  const example = loadWebhookConfig(DEFAULT_CONFIG_FILE);
  expect(planRun(example, { repository: 'example/FragVisor', branch: 'main', commit: SHA }).input).toMatchObject({ kernelCommit: SHA, dryRun: true });
  const kvmtool = planRun(example, { repository: 'example/fragvisor-kvmtool', branch: 'main', commit: SHA }).input;
  expect(kvmtool).toMatchObject({ kvmtoolCommit: SHA, hypervisors: ['fragvisor'], dryRun: true });
  expect(kvmtool.kernelCommit).toBeUndefined();
});

it('a generic caller overrides the cluster and input fields: the id follows the cluster', () => {
  const run = planRun(config, { repository: 'acme/other', branch: 'x', commit: SHA, cluster: 'echo', input: { nodeCounts: [2] } });
  expect(run.input).toMatchObject({ cluster: 'echo', repetitions: 5, nodeCounts: [2], kernelCommit: SHA });
  expect(run.workflowId).toBe('ci-acme-other-abcdef012345-echo');
});

it.each([
  ['no rule for the branch: 422', { repository: 'acme/FragVisor', branch: 'feature/x', commit: SHA }, 422, /no rule .* acme\/FragVisor branch feature\/x: nothing started/],
  ['no rule for the repository: 422', { repository: 'x/y', branch: 'main', commit: SHA }, 422, /x\/y/],
  ['an override the workflow refuses: 400', { repository: 'acme/other', branch: 'main', commit: SHA, input: { nodeCounts: [0] } }, 400, /input\.nodeCounts\[0\]: expected at least 1 node/],
])('%s', (_what, req, status, message) => {
  const r = refusal(() => planRun(config, req));
  expect(r.startsWith(`${status} `)).toBe(true);
  expect(r).toMatch(message);
});

it("a rule whose input the workflow refuses (the mapping's fault) -> 500", () => {
  // A mapping built in code, past the file's validation: the plan still refuses it before anything starts.
  const bad = { ...config, rules: [{ ...config.rules[0], input: { ...config.rules[0].input, buildJobs: 0 } }] };
  expect(refusal(() => planRun(bad, { repository: 'acme/FragVisor', branch: 'main', commit: SHA }))).toMatch(/^500 the webhook mapping's rule for acme\/FragVisor .*buildJobs/);
});

function configProblems(raw: unknown): string[] {
  try {
    parseWebhookConfig(raw, 'm.yaml');
  } catch (err) {
    if (err instanceof InvalidConfigError) return err.problems;
    throw err;
  }
  return [];
}

it.each([
  ['a valid minimal mapping', { rules: [{ repository: 'a/b', branches: ['main'], cluster: 'sim' }] }, []],
  ['no rules list', {}, ['rules: expected a list of rules (repository, branches, cluster, input)']],
  ['repository without owner', { rules: [{ repository: 'FragVisor', branches: ['main'], cluster: 'sim' }] }, ['rules[0].repository: expected a repository "owner/name" as GitHub spells it, e.g. "acme/FragVisor"']],
  ['empty branches', { rules: [{ repository: 'a/b', branches: [], cluster: 'sim' }] }, ['rules[0].branches: expected at least one branch, e.g. [main]']],
  ['a cluster with shell characters', { rules: [{ repository: 'a/b', branches: ['main'], cluster: 'sim;rm' }] }, [expect.stringMatching(/^rules\[0\]\.cluster: expected a profile name/)]],
  ['commitField kvmtoolCommit', { rules: [{ repository: 'a/b', branches: ['main'], cluster: 'sim', commitField: 'kvmtoolCommit' }] }, []],
  [
    'an unknown commitField',
    { rules: [{ repository: 'a/b', branches: ['main'], cluster: 'sim', commitField: 'linuxCommit' }] },
    ['rules[0].commitField: expected "kernelCommit" (a push to the FragVisor repository: the kernel tree the run builds) or "kvmtoolCommit" (a push to fragvisor-kvmtool: the lkvm the run builds on the origin)'],
  ],
  ['kvmtoolCommit in the input', { rules: [{ repository: 'a/b', branches: ['main'], cluster: 'sim', input: { kvmtoolCommit: SHA } }] }, ['rules[0].input.kvmtoolCommit: not allowed here: the pushed commit sets it (commitField: kvmtoolCommit)']],
  ['kernelCommit in the input', { rules: [{ repository: 'a/b', branches: ['main'], cluster: 'sim', input: { kernelCommit: SHA } }] }, [expect.stringMatching(/^rules\[0\]\.input\.kernelCommit: not allowed here/)]],
  ['a bad input field', { rules: [{ repository: 'a/b', branches: ['main'], cluster: 'sim', input: { experiments: ['E7'] } }] }, ['rules[0].input.experiments[0]: expected one of E1, E2, E3']],
  ['an unknown input field', { rules: [{ repository: 'a/b', branches: ['main'], cluster: 'sim', input: { reps: 2 } }] }, ['rules[0].input.reps: unknown field: check the spelling or remove it']],
  ['a non-http callback', { rules: [{ repository: 'a/b', branches: ['main'], cluster: 'sim', callback: { url: 'file:///etc/passwd' } }] }, ['rules[0].callback.url: expected an http:// or https:// URL']],
  ['a secret instead of a variable name', { secrets: { github: 's3cr3t-value' }, rules: [] }, [expect.stringMatching(/^secrets\.github: expected the NAME of an environment variable/)]],
  ['a typo in limits', { limits: { maxBody: 10 }, rules: [] }, ['limits.maxBody: unknown field: check the spelling or remove it']],
])('mapping: %s', (_what, raw, problems) => {
  expect(configProblems(raw)).toEqual(problems);
});
