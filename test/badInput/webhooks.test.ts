import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { stringify as toYaml } from 'yaml';
import { startWebhookListener, type WebhookListener } from '../../webhook/server';
import { signatureHeader } from '../../webhook/signature';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import { listExecutions, startTestWorker, testClient, uniqueTaskQueue, workflowExists } from '../helpers/temporal';

/**
 * Bad-input corpus, part 3: bad deliveries against a real webhook listener on 127.0.0.1 that starts
 * real runs on the dev server (a worker runs them: the one delivery that is good, replayed, becomes a
 * dry run of the echo profile, which touches no node). Each bad one gets its status and a message
 * saying what to fix, and starts nothing: listing the workflows by the id prefix every run of this
 * file's repository gets (`ci-<owner>-fragvisor-`) and by the task queue proves it.
 */

jest.setTimeout(90_000);

const GH_SECRET = randomBytes(24).toString('hex');
const GENERIC_SECRET = randomBytes(24).toString('hex');
const OWNER = `badhook${process.pid}x${Date.now()}`;
const REPO = `${OWNER}/FragVisor`;
const PREFIX = `ci-${OWNER}-fragvisor-`;
const taskQueue = uniqueTaskQueue('badhook');
/** In every body: must never reach a log line. */
const BODY_CANARY = `body-canary-${randomBytes(6).toString('hex')}`;

let dir: string;
let client: Client;
let closeClient: () => Promise<void>;
let stopWorker: () => Promise<void>;
let listener: WebhookListener;
const logs: string[] = [];

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-badhook-'));
  const configFile = path.join(dir, 'webhooks.yaml');
  writeFileSync(
    configFile,
    toYaml({
      // The corpus sends more than the default burst from one address: the rate limit is not under test here.
      limits: { perSource: { burst: 1000, perSecond: 100 } },
      rules: [{ repository: REPO, branches: ['main'], cluster: 'echo', input: { experiments: [], hypervisors: ['fragvisor'], dryRun: true } }],
    }),
  );
  ({ client, close: closeClient } = await testClient());
  ({ stop: stopWorker } = await startTestWorker(taskQueue));
  listener = await startWebhookListener({ port: 0, client, taskQueue, log: (l) => logs.push(l), env: { AE_WEBHOOK_GITHUB_SECRET: GH_SECRET, AE_WEBHOOK_GENERIC_SECRET: GENERIC_SECRET }, configFile });
});

afterAll(async () => {
  await listener?.close();
  await stopWorker?.();
  await closeClient?.();
  rmSync(dir, { recursive: true, force: true });
});

const newCommit = () => randomBytes(20).toString('hex');
const idOf = (commit: string) => `${PREFIX}${commit.slice(0, 12)}-echo`;
const push = (commit: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ ref: 'refs/heads/main', after: commit, repository: { full_name: REPO }, pusher: { name: BODY_CANARY }, ...extra });
const generic = (commit: string, extra: Record<string, unknown> = {}) => JSON.stringify({ repository: REPO, ref: 'main', commit, note: undefined, ...extra });

interface Answer {
  status: number;
  error?: string;
  json: Record<string, unknown>;
}

async function post(route: string, body: string, headers: Record<string, string>, method = 'POST'): Promise<Answer> {
  // Bytes, not a string: fetch would add Content-Type: text/plain to a string body.
  const res = await fetch(`${listener.url}${route}`, { method, ...(method === 'POST' ? { body: Buffer.from(body) } : {}), headers });
  const json = (await res.json()) as Record<string, unknown>;
  return { status: res.status, json, ...(typeof json.error === 'string' ? { error: json.error } : {}) };
}

/** A GitHub delivery, signed with the right secret unless `signature` says otherwise (null: no header). */
function github(body: string, opts: { event?: string | null; delivery?: string; signature?: string | null; contentType?: string | null } = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'X-GitHub-Delivery': opts.delivery ?? randomUUID() };
  if (opts.contentType !== null) headers['Content-Type'] = opts.contentType ?? 'application/json';
  if (opts.event !== null) headers['X-GitHub-Event'] = opts.event ?? 'push';
  const signature = opts.signature === undefined ? signatureHeader(GH_SECRET, body) : opts.signature;
  if (signature !== null) headers['X-Hub-Signature-256'] = signature;
  return post('/webhooks/github', body, headers);
}

const bearer = (body: string, secret = GENERIC_SECRET) => post('/webhooks/generic', body, { 'Content-Type': 'application/json', Authorization: `Bearer ${secret}` });

/** Declares a body over the limit and sends none of it: the listener must answer from the headers alone. */
function declaredHuge(bytes: number): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${listener.url}/webhooks/github`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'Content-Length': String(bytes), 'X-GitHub-Event': 'push', 'X-Hub-Signature-256': signatureHeader(GH_SECRET, 'x') },
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => {
        req.destroy();
        const json = JSON.parse(text) as Record<string, unknown>;
        resolve({ status: res.statusCode ?? 0, json, error: json.error as string });
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

interface Case {
  name: string;
  send: (commit: string) => Promise<Answer>;
  status: number;
  says: RegExp;
}

const cases: Case[] = [
  // Signatures.
  { name: 'missing signature', send: (c) => github(push(c), { signature: null }), status: 401, says: /^missing or wrong X-Hub-Signature-256: it must be sha256=<HMAC-SHA256 of the body with the webhook secret>$/ },
  { name: 'signed with the wrong secret', send: (c) => github(push(c), { signature: signatureHeader('not-the-secret', push(c)) }), status: 401, says: /X-Hub-Signature-256/ },
  { name: 'signature of another body (tampered)', send: (c) => github(push(c, { forced: true }), { signature: signatureHeader(GH_SECRET, push(c)) }), status: 401, says: /X-Hub-Signature-256/ },
  { name: 'signature without sha256=', send: (c) => github(push(c), { signature: signatureHeader(GH_SECRET, push(c)).slice('sha256='.length) }), status: 401, says: /X-Hub-Signature-256/ },
  { name: 'upper-case hex signature', send: (c) => github(push(c), { signature: signatureHeader(GH_SECRET, push(c)).toUpperCase() }), status: 401, says: /X-Hub-Signature-256/ },
  { name: 'generic route without credentials', send: (c) => post('/webhooks/generic', generic(c), { 'Content-Type': 'application/json' }), status: 401, says: /^missing or wrong credentials: send Authorization: Bearer <secret> or X-Signature-256/ },
  { name: 'generic route with the GitHub secret as bearer', send: (c) => bearer(generic(c), GH_SECRET), status: 401, says: /^missing or wrong credentials/ },
  { name: 'generic route with an empty bearer', send: (c) => post('/webhooks/generic', generic(c), { 'Content-Type': 'application/json', Authorization: 'Bearer ' }), status: 401, says: /^missing or wrong credentials/ },
  // Bodies.
  { name: 'truncated JSON', send: (c) => github(push(c).slice(0, -25)), status: 400, says: /^the body is not valid JSON: / },
  { name: 'empty body', send: () => github(''), status: 400, says: /^the body is not valid JSON: / },
  { name: 'a JSON list', send: (c) => github(JSON.stringify([push(c)])), status: 400, says: /^invalid push event: \(top level\): expected a mapping, got a list$/ },
  { name: 'huge body (declared)', send: () => declaredHuge(64 * 1024 * 1024), status: 413, says: /^the body is larger than 1048576 bytes$/ },
  { name: 'huge body (sent)', send: (c) => github(push(c, { padding: 'x'.repeat(1100 * 1024) })), status: 413, says: /^the body is larger than 1048576 bytes$/ },
  // Content types.
  { name: 'form-encoded (GitHub default)', send: (c) => github(`payload=${encodeURIComponent(push(c))}`, { contentType: 'application/x-www-form-urlencoded' }), status: 415, says: /^unsupported content type "application\/x-www-form-urlencoded": in the GitHub webhook settings choose Content type "application\/json"$/ },
  { name: 'text/plain', send: (c) => github(push(c), { contentType: 'text/plain' }), status: 415, says: /^unsupported content type "text\/plain": send the payload as JSON with Content-Type: application\/json$/ },
  { name: 'no content type', send: (c) => github(push(c), { contentType: null }), status: 415, says: /^unsupported content type "\(none\)"/ },
  // Events and fields.
  { name: 'no X-GitHub-Event', send: (c) => github(push(c), { event: null }), status: 400, says: /^missing X-GitHub-Event header$/ },
  { name: 'short commit', send: (c) => github(push(c, { after: c.slice(0, 7) })), status: 400, says: /^invalid push event: after: expected a full 40-digit commit hash$/ },
  { name: 'repository with shell characters', send: (c) => github(push(c, { repository: { full_name: `${OWNER}/FragVisor;reboot` } })), status: 400, says: /^invalid push event: repository\.full_name: expected a repository "owner\/name" as GitHub spells it/ },
  { name: 'workflow_dispatch without a commit input', send: (c) => github(push(c, { inputs: {} }), { event: 'workflow_dispatch' }), status: 400, says: /^invalid workflow_dispatch event: inputs\.commit: / },
  { name: 'unknown repository', send: (c) => github(push(c, { repository: { full_name: `${OWNER}/other` } })), status: 422, says: new RegExp(`^no rule in the webhook mapping maps ${OWNER}/other branch main: nothing started$`) },
  { name: 'unmapped branch', send: (c) => github(push(c, { ref: 'refs/heads/evil' })), status: 422, says: /branch evil: nothing started$/ },
  { name: 'generic: cluster given as a path', send: (c) => bearer(generic(c, { cluster: '../../etc/x.yaml' })), status: 400, says: /^invalid payload: cluster: expected a cluster profile name like "sim" or "echo" \(not a path\)$/ },
  { name: 'generic: resumeFrom traversing', send: (c) => bearer(generic(c, { input: { resumeFrom: '../x' } })), status: 400, says: /^invalid payload: input\.resumeFrom: expected a workflow id of letters, digits/ },
  { name: 'generic: kernelCommit overridden', send: (c) => bearer(generic(c, { input: { kernelCommit: c } })), status: 400, says: /^invalid payload: input\.kernelCommit: not allowed here: the pushed commit sets it \(commitField\)$/ },
  { name: 'generic: unknown field', send: (c) => bearer(generic(c, { branch: 'main' })), status: 400, says: /^invalid payload: branch: unknown field/ },
  { name: 'generic: unknown input field', send: (c) => bearer(generic(c, { input: { nodes: 4 } })), status: 400, says: /^invalid payload: input\.nodes: unknown field/ },
  { name: 'generic: nodeCounts absurd', send: (c) => bearer(generic(c, { input: { nodeCounts: [100000] } })), status: 400, says: /^invalid payload: input\.nodeCounts\[0\]: expected a value of at most 256$/ },
  // Routes and methods.
  { name: 'GET', send: () => post('/webhooks/github', '', {}, 'GET'), status: 405, says: /^\/webhooks\/github takes POST only$/ },
  { name: 'unknown route', send: (c) => post('/webhooks/../admin', push(c), { 'Content-Type': 'application/json' }), status: 404, says: /^no such route: this listener answers POST \/webhooks\/github, POST \/webhooks\/generic$/ },
];

const replayed = newCommit();

describe('bad webhook deliveries are refused with their status and start nothing', () => {
  it.each(cases)('$name -> $status', async ({ send, status, says }) => {
    const commit = newCommit();
    const r = await send(commit);
    expect({ status: r.status, error: r.error }).toEqual({ status, error: expect.stringMatching(says) });
    expect(await workflowExists(client, idOf(commit))).toBe(false);
  });

  it('a replayed delivery (same id, then a new id for the same push) joins the one run it started: 202 joined', async () => {
    const delivery = randomUUID();
    const first = await github(push(replayed), { delivery });
    expect(first).toMatchObject({ status: 202, json: { workflowId: idOf(replayed), joined: false } });
    const again = await github(push(replayed), { delivery });
    const redelivered = await github(push(replayed));
    for (const r of [again, redelivered]) expect(r).toEqual({ status: 202, json: { ...first.json, joined: true } });
    const result = (await client.workflow.getHandle(idOf(replayed)).result()) as ReproduceClaimsResult;
    expect(result).toMatchObject({ dryRun: true, cluster: 'echo' });
    expect(readdirSync(result.runDir).sort()).toEqual(['input.json', 'plan.json']);
  });

  it('listing by id prefix and by task queue finds that one run only', async () => {
    const byPrefix = await listExecutions(client, `WorkflowId STARTS_WITH '${PREFIX}'`);
    expect(byPrefix.map((w) => w.workflowId)).toEqual([idOf(replayed)]);
    expect(await listExecutions(client, `TaskQueue = '${taskQueue}'`)).toEqual(byPrefix);
  });

  it('the listener logs one line per request, never a secret or a body', () => {
    const requests = logs.filter((l) => !l.startsWith('webhook: listening'));
    expect(requests.length).toBeGreaterThanOrEqual(cases.length + 3);
    const all = logs.join('\n');
    for (const secret of [GH_SECRET, GENERIC_SECRET, BODY_CANARY]) expect(all).not.toContain(secret);
  });
});
