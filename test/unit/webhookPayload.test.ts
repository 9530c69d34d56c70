import { genericRequest, githubEvent, parseJsonBody } from '../../webhook/payload';
import { requireJson } from '../../webhook/body';
import { refusal } from '../helpers/httpRefusal';

const SHA = 'abcdef0123456789abcdef0123456789abcdef01';
const repository = { full_name: 'acme/FragVisor', private: false, owner: { login: 'acme' } };

it.each([
  ['push to a branch', 'push', { ref: 'refs/heads/main', before: '0'.repeat(40), after: SHA, repository, pusher: { name: 'x' } }, { kind: 'run', request: { repository: 'acme/FragVisor', branch: 'main', commit: SHA } }],
  ['push with an upper-case sha', 'push', { ref: 'refs/heads/release/1', after: SHA.toUpperCase(), repository }, { kind: 'run', request: { repository: 'acme/FragVisor', branch: 'release/1', commit: SHA } }],
  ['push of a tag', 'push', { ref: 'refs/tags/v1', after: SHA, repository }, { kind: 'ignored', reason: 'refs/tags/v1 is not a branch (tags and other refs start nothing)' }],
  ['branch deletion', 'push', { ref: 'refs/heads/old', after: '0'.repeat(40), deleted: true, repository }, { kind: 'ignored', reason: 'a branch deletion: nothing to build' }],
  ['workflow_dispatch with a commit input', 'workflow_dispatch', { ref: 'refs/heads/main', inputs: { commit: SHA, other: 'x' }, repository, workflow: '.github/workflows/ae.yml' }, { kind: 'run', request: { repository: 'acme/FragVisor', branch: 'main', commit: SHA } }],
  ['ping', 'ping', { zen: 'Keep it logically awesome.', hook_id: 1 }, { kind: 'ping' }],
  ['another event', 'issues', { action: 'opened' }, { kind: 'ignored', reason: 'event "issues" starts nothing: only push and workflow_dispatch do' }],
])('GitHub %s', (_what, event, json, expected) => {
  expect(githubEvent(event, json)).toEqual(expected);
});

it.each([
  ['push without after', 'push', { ref: 'refs/heads/main', repository }, /^400 invalid push event: after: expected a commit hash \(a string\)/],
  ['push with a short sha', 'push', { ref: 'refs/heads/main', after: 'abc1234', repository }, /^400 invalid push event: after: expected a full 40-digit commit hash/],
  ['push without repository.full_name', 'push', { ref: 'refs/heads/main', after: SHA, repository: { name: 'x' } }, /^400 invalid push event: repository\.full_name: expected a repository "owner\/name"/],
  ['push with a bad repository name', 'push', { ref: 'refs/heads/main', after: SHA, repository: { full_name: 'a/b/c' } }, /repository\.full_name: expected a repository "owner\/name"/],
  ['workflow_dispatch without inputs', 'workflow_dispatch', { ref: 'refs/heads/main', repository }, /^400 invalid workflow_dispatch event: inputs: expected the workflow_dispatch inputs with a "commit" input/],
  ['workflow_dispatch without a commit input', 'workflow_dispatch', { ref: 'refs/heads/main', repository, inputs: {} }, /inputs\.commit: expected a commit hash/],
  ['no X-GitHub-Event', undefined, {}, /^400 missing X-GitHub-Event header/],
  ['a JSON array', 'push', [], /^400 invalid push event: \(top level\): expected a mapping, got an empty list/],
])('GitHub refuses %s', (_what, event, json, message) => {
  expect(refusal(() => githubEvent(event, json))).toMatch(message);
});

it.each([
  ['a branch name', { repository: 'acme/FragVisor', ref: 'main', commit: SHA }, { repository: 'acme/FragVisor', branch: 'main', commit: SHA }],
  ['refs/heads/', { repository: 'acme/FragVisor', ref: 'refs/heads/dev/x', commit: SHA.toUpperCase() }, { repository: 'acme/FragVisor', branch: 'dev/x', commit: SHA }],
  ['cluster and input', { repository: 'a/b', ref: 'main', commit: SHA, cluster: 'echo', input: { repetitions: 5 } }, { repository: 'a/b', branch: 'main', commit: SHA, cluster: 'echo', input: { repetitions: 5 } }],
])('generic payload with %s', (_what, json, expected) => {
  expect(genericRequest(json)).toEqual(expected);
});

it.each([
  ['no commit', { repository: 'a/b', ref: 'main' }, /^400 invalid payload: commit: expected a commit hash/],
  ['a short commit', { repository: 'a/b', ref: 'main', commit: 'abc1234' }, /commit: expected a full 40-digit commit hash/],
  ['a tag ref', { repository: 'a/b', ref: 'refs/tags/v1', commit: SHA }, /^400 invalid payload: ref: expected a branch/],
  ['a cluster path', { repository: 'a/b', ref: 'main', commit: SHA, cluster: '/etc/x.yaml' }, /cluster: expected a cluster profile name like "sim" or "echo" \(not a path\)/],
  ['kernelCommit in input', { repository: 'a/b', ref: 'main', commit: SHA, input: { kernelCommit: SHA } }, /input\.kernelCommit: not allowed here/],
  ['kvmtoolCommit in input', { repository: 'a/b', ref: 'main', commit: SHA, input: { kvmtoolCommit: SHA } }, /input\.kvmtoolCommit: not allowed here/],
  ['a bad input field', { repository: 'a/b', ref: 'main', commit: SHA, input: { nodeCounts: 'four' } }, /input\.nodeCounts: expected a list of node counts/],
  ['an unknown field', { repository: 'a/b', ref: 'main', commit: SHA, branch: 'main' }, /branch: unknown field/],
  ['not an object', 'push', /\(top level\): expected a mapping/],
])('generic payload refuses %s', (_what, json, message) => {
  expect(refusal(() => genericRequest(json))).toMatch(message);
});

it.each([
  ['{"a":1}', { a: 1 }],
  ['{"ref": "refs/heads/main", "after": "ab', /^400 the body is not valid JSON: /],
  ['', /^400 the body is not valid JSON/],
  ['ref=main&after=x', /^400 the body is not valid JSON/],
])('JSON body %j', (text, expected) => {
  if (expected instanceof RegExp) expect(refusal(() => parseJsonBody(Buffer.from(text)))).toMatch(expected);
  else expect(parseJsonBody(Buffer.from(text))).toEqual(expected);
});

it.each([
  ['application/json', undefined],
  ['application/json; charset=utf-8', undefined],
  ['Application/JSON', undefined],
  ['application/x-www-form-urlencoded', /^415 .*in the GitHub webhook settings choose Content type "application\/json"/],
  ['text/plain', /^415 unsupported content type "text\/plain": send the payload as JSON/],
  [undefined, /^415 unsupported content type "\(none\)"/],
])('Content-Type %s', (type, expected) => {
  if (expected) expect(refusal(() => requireJson(type))).toMatch(expected);
  else expect(() => requireJson(type)).not.toThrow();
});
