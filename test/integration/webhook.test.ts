import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { stringify as toYaml } from 'yaml';
import { notifyActivities } from '../../activities/notify';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { startWebhookListener, type WebhookListener } from '../../webhook/server';
import { signatureHeader } from '../../webhook/signature';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import { waitUntil } from '../helpers/sim';
import { startFixtureWorker, startTestWorker, testAddress, testClient, uniqueTaskQueue, workflowExists } from '../helpers/temporal';

/**
 * The webhook listener on 127.0.0.1 against the real dev server. Listener A starts the real
 * reproduceClaims with `dryRun: true` on a real simulated cluster's profile (a dry run loads the
 * profile, plans and writes the run store, and touches no node: a start is proven without hours of
 * builds); its callback reports the dry run's (empty) verdicts. Listener B targets a worker whose
 * `reproduceClaims` is a fixture that ends at once with verdicts, so the callback's verdicts are real
 * data through the real notifyWhenDone; B also has tight rate limits (the flood) and no generic
 * secret (503).
 */

jest.setTimeout(120_000);

const GH_SECRET = randomBytes(24).toString('hex');
const GENERIC_SECRET = randomBytes(24).toString('hex');
const CALLBACK_ENV = 'AE_TEST_WEBHOOK_CALLBACK_SECRET';
const CALLBACK_SECRET = randomBytes(24).toString('hex');
const REPO = 'acme/FragVisor';
const KVMTOOL_REPO = 'acme/fragvisor-kvmtool';

interface Received {
  path: string;
  headers: http.IncomingHttpHeaders;
  body: string;
}

let dir: string;
let sim: SimCluster;
let client: Client;
let closeClient: () => Promise<void>;
const stops: (() => Promise<void>)[] = [];
let a: WebhookListener;
let b: WebhookListener;
const logs: string[] = [];
const callbacks: Received[] = [];
let receiverUrl: string;
const previousEnv = { sim: process.env.AE_SIM_STATE_DIR, callback: process.env[CALLBACK_ENV] };

function mapping(name: string, doc: unknown): string {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, toYaml(doc));
  return file;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-webhook-'));
  sim = await startSimCluster({ nodes: 2, stateDir: path.join(dir, 'sim'), timeScale: 0, bmc: false });
  // The worker runs in this process: `cluster: sim` resolves to this sim's profile, and the callback key is here.
  process.env.AE_SIM_STATE_DIR = path.join(dir, 'sim');
  process.env[CALLBACK_ENV] = CALLBACK_SECRET;

  const receiver = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      callbacks.push({ path: req.url ?? '', headers: req.headers, body });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  stops.push(() => new Promise<void>((r) => receiver.close(() => r())));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}`;

  ({ client, close: closeClient } = await testClient());
  const realQueue = uniqueTaskQueue('webhook');
  const fixtureQueue = uniqueTaskQueue('webhook-fixture');
  const [real, fixture] = await Promise.all([
    startTestWorker(realQueue),
    startFixtureWorker({ taskQueue: fixtureQueue, workflowsPath: require.resolve('../fixtures/workflows/webhookRun'), activities: notifyActivities() }),
  ]);
  stops.push(real.stop, fixture.stop);

  const log = (line: string) => logs.push(line);
  a = await startWebhookListener({
    port: 0,
    client,
    taskQueue: realQueue,
    log,
    env: { AE_WEBHOOK_GITHUB_SECRET: GH_SECRET, AE_WEBHOOK_GENERIC_SECRET: GENERIC_SECRET },
    configFile: mapping('a', {
      limits: { perSource: { burst: 1000, perSecond: 100 } },
      rules: [
        {
          repository: REPO,
          branches: ['main', 'release/*'],
          cluster: 'sim',
          input: { experiments: [], hypervisors: ['fragvisor'], nodeCounts: [2], dryRun: true },
          callback: { url: `${receiverUrl}/a`, secretEnv: CALLBACK_ENV },
        },
        {
          repository: KVMTOOL_REPO,
          branches: ['main'],
          cluster: 'sim',
          commitField: 'kvmtoolCommit',
          input: { experiments: [], hypervisors: ['fragvisor'], nodeCounts: [2], dryRun: true },
        },
      ],
    }),
  });
  b = await startWebhookListener({
    port: 0,
    client,
    taskQueue: fixtureQueue,
    log,
    env: { AE_WEBHOOK_GITHUB_SECRET: GH_SECRET },
    configFile: mapping('b', {
      limits: { perSource: { burst: 6, perSecond: 0.01 } },
      rules: [{ repository: REPO, branches: ['main'], cluster: 'sim', callback: { url: `${receiverUrl}/b`, secretEnv: CALLBACK_ENV } }],
    }),
  });
  stops.push(() => a.close(), () => b.close());
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
  await closeClient?.();
  await sim?.stop();
  for (const [key, value] of [['AE_SIM_STATE_DIR', previousEnv.sim], [CALLBACK_ENV, previousEnv.callback]] as const) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  rmSync(dir, { recursive: true, force: true });
});

const newCommit = () => randomBytes(20).toString('hex');
const idOf = (commit: string) => `ci-acme-fragvisor-${commit.slice(0, 12)}-sim`;
const pushBody = (commit: string, branch = 'main', repository = REPO) =>
  JSON.stringify({ ref: `refs/heads/${branch}`, before: '0'.repeat(40), after: commit, repository: { full_name: repository, name: repository.split('/')[1] }, pusher: { name: 'ci' } });

interface Answer {
  status: number;
  headers: Headers;
  json: Record<string, unknown>;
}

async function post(base: string, route: string, body: string, headers: Record<string, string>): Promise<Answer> {
  const res = await fetch(`${base}${route}`, { method: 'POST', body, headers });
  return { status: res.status, headers: res.headers, json: (await res.json()) as Record<string, unknown> };
}

/** A GitHub delivery: signed with the webhook secret unless told otherwise. */
function github(base: string, body: string, opts: { event?: string; delivery?: string; secret?: string; signature?: string | null; contentType?: string } = {}): Promise<Answer> {
  const headers: Record<string, string> = {
    'Content-Type': opts.contentType ?? 'application/json',
    'X-GitHub-Event': opts.event ?? 'push',
    'X-GitHub-Delivery': opts.delivery ?? randomUUID(),
    'User-Agent': 'GitHub-Hookshot/test',
  };
  const signature = opts.signature === undefined ? signatureHeader(opts.secret ?? GH_SECRET, body) : opts.signature;
  if (signature !== null) headers['X-Hub-Signature-256'] = signature;
  return post(base, '/webhooks/github', body, headers);
}

async function callbackFor(workflowId: string): Promise<Received> {
  let found: Received | undefined;
  await waitUntil(`the callback for ${workflowId}`, () => (found = callbacks.find((c) => (JSON.parse(c.body) as { workflowId: string }).workflowId === workflowId)) !== undefined, 60_000, 100);
  return found!;
}

it('a correctly signed push starts reproduceClaims (dry run on the sim) with the pushed commit; the callback reports it, signed', async () => {
  const commit = newCommit();
  const r = await github(a.url, pushBody(commit));
  expect(r.status).toBe(202);
  expect(r.json).toEqual({ workflowId: idOf(commit), runId: expect.any(String), url: `http://127.0.0.1:8233/namespaces/default/workflows/${idOf(commit)}`, joined: false });

  const handle = client.workflow.getHandle(idOf(commit));
  const result = (await handle.result()) as ReproduceClaimsResult;
  expect(result).toMatchObject({ runId: idOf(commit), cluster: 'sim', simulated: true, dryRun: true });
  expect(JSON.parse(readFileSync(path.join(result.runDir, 'input.json'), 'utf8'))).toMatchObject({ cluster: 'sim', kernelCommit: commit, nodeCounts: [2], dryRun: true });
  expect((await handle.describe()).runId).toBe(r.json.runId);

  const cb = await callbackFor(idOf(commit));
  expect(cb.path).toBe('/a');
  expect(cb.headers['x-signature-256']).toBe(signatureHeader(CALLBACK_SECRET, cb.body));
  expect(JSON.parse(cb.body)).toEqual({ workflowId: idOf(commit), status: 'completed', verdicts: [], report: null });
});

it('a signed push to the kvmtool repository starts a run whose input pins kvmtoolCommit (kernelCommit left to the origin)', async () => {
  const commit = newCommit();
  const r = await github(a.url, pushBody(commit, 'main', KVMTOOL_REPO));
  const id = `ci-acme-fragvisor-kvmtool-${commit.slice(0, 12)}-sim`;
  expect([r.status, r.json.workflowId, r.json.joined]).toEqual([202, id, false]);
  const result = (await client.workflow.getHandle(id).result()) as ReproduceClaimsResult;
  expect(result).toMatchObject({ dryRun: true, cluster: 'sim' });
  const input = JSON.parse(readFileSync(path.join(result.runDir, 'input.json'), 'utf8')) as Record<string, unknown>;
  expect(input).toMatchObject({ cluster: 'sim', kvmtoolCommit: commit, hypervisors: ['fragvisor'], dryRun: true });
  expect(input.kernelCommit).toBeUndefined();
  // The plan builds kvmtool at the pushed commit before anything else.
  const plan = JSON.parse(readFileSync(path.join(result.runDir, 'plan.json'), 'utf8')) as { kvmtoolCommit: string; stages: { key: string; steps: { commands: string[] }[] }[] };
  expect(plan.kvmtoolCommit).toBe(commit);
  expect(plan.stages[0].key).toBe('fragvisor/kvmtool');
  expect(plan.stages[0].steps[0].commands.join('\n')).toContain(`checkout --quiet --detach ${commit}`);
});

it('a wrong or missing signature answers 401 and starts nothing', async () => {
  const commit = newCommit();
  const wrong = await github(a.url, pushBody(commit), { secret: 'not-the-secret' });
  const missing = await github(a.url, pushBody(commit), { signature: null });
  // Signed, then changed: the signature covers the exact bytes.
  const changed = pushBody(commit).replace('"name":"ci"', '"name":"mallory"');
  expect(changed).not.toBe(pushBody(commit));
  const tampered = await github(a.url, changed, { signature: signatureHeader(GH_SECRET, pushBody(commit)) });
  for (const r of [wrong, missing, tampered]) {
    expect(r.status).toBe(401);
    expect(r.json.error).toMatch(/X-Hub-Signature-256/);
  }
  expect(await workflowExists(client, idOf(commit))).toBe(false);
});

it('a redelivery joins the run: same delivery id (remembered), a new delivery id, and the generic route', async () => {
  const commit = newCommit();
  const delivery = randomUUID();
  const first = await github(a.url, pushBody(commit), { delivery });
  expect(first.json.joined).toBe(false);
  const replay = await github(a.url, pushBody(commit), { delivery });
  const redelivered = await github(a.url, pushBody(commit));
  const generic = await post(a.url, '/webhooks/generic', JSON.stringify({ repository: REPO, ref: 'refs/heads/main', commit }), { 'Content-Type': 'application/json', Authorization: `Bearer ${GENERIC_SECRET}` });
  for (const r of [replay, redelivered, generic]) {
    expect(r.status).toBe(202);
    expect(r.json).toEqual({ ...first.json, joined: true });
  }
  // One run: its first execution is the one the first delivery started.
  const runs: string[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${idOf(commit)}'` })) runs.push(w.runId);
  expect(runs).toEqual([first.json.runId]);
});

it('the generic route takes Bearer or X-Signature-256, and refuses anything else with 401', async () => {
  const commit = newCommit();
  const body = JSON.stringify({ repository: REPO, ref: 'release/2', commit, input: { repetitions: 2 } });
  const wrong = await post(a.url, '/webhooks/generic', body, { 'Content-Type': 'application/json', Authorization: `Bearer ${GH_SECRET}` });
  expect([wrong.status, await workflowExists(client, idOf(commit))]).toEqual([401, false]);
  const signed = await post(a.url, '/webhooks/generic', body, { 'Content-Type': 'application/json', 'X-Signature-256': signatureHeader(GENERIC_SECRET, body) });
  expect(signed.status).toBe(202);
  expect(signed.json).toMatchObject({ workflowId: idOf(commit), joined: false });
  const result = (await client.workflow.getHandle(idOf(commit)).result()) as ReproduceClaimsResult;
  expect(JSON.parse(readFileSync(path.join(result.runDir, 'input.json'), 'utf8'))).toMatchObject({ kernelCommit: commit, repetitions: 2 });
});

/** A raw request whose body is written as `chunks` (or only declared), for the size limit; resolves with the status and body. */
function rawPost(url: string, headers: Record<string, string>, chunks: Buffer[]): Promise<{ status: number; body: string; written: number }> {
  return new Promise((resolve, reject) => {
    let written = 0;
    let answered = false;
    const req = http.request(`${url}/webhooks/github`, { method: 'POST', headers }, (res) => {
      answered = true;
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, written }));
    });
    // The listener may close the connection while we still write: fine once its answer is here (or arrives soon).
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (!['EPIPE', 'ECONNRESET'].includes(err.code ?? '')) reject(err);
      else setTimeout(() => answered || reject(new Error(`no answer before the connection closed: ${err.message}`)), 2000);
    });
    req.flushHeaders();
    const next = () => {
      const chunk = chunks.shift();
      if (!chunk) return req.end();
      written += chunk.length;
      if (req.write(chunk)) setImmediate(next);
      else req.once('drain', next);
    };
    next();
  });
}

it('a body over 1 MiB answers 413 (declared or streamed) and starts nothing, even correctly signed', async () => {
  const commit = newCommit();
  const big = Buffer.from(JSON.stringify({ ...(JSON.parse(pushBody(commit)) as object), padding: 'x'.repeat(1536 * 1024) }));
  const signed = { 'Content-Type': 'application/json', 'X-GitHub-Event': 'push', 'X-GitHub-Delivery': randomUUID(), 'X-Hub-Signature-256': signatureHeader(GH_SECRET, big) };

  const declared = await rawPost(a.url, { ...signed, 'Content-Length': String(big.length) }, []);
  expect(declared.status).toBe(413);
  expect(declared.written).toBe(0);
  const chunks = Array.from({ length: Math.ceil(big.length / 65536) }, (_, i) => big.subarray(i * 65536, (i + 1) * 65536));
  const streamed = await rawPost(a.url, { ...signed, 'Transfer-Encoding': 'chunked' }, chunks);
  expect(streamed.status).toBe(413);
  expect(JSON.parse(streamed.body)).toEqual({ error: 'the body is larger than 1048576 bytes' });
  expect(await workflowExists(client, idOf(commit))).toBe(false);
});

it('refusals start nothing: 415 form-encoded, 400 truncated JSON, 422 unmapped branch, 400 bad field', async () => {
  const cases: [string, () => Promise<Answer>, number, RegExp][] = [];
  const form = newCommit();
  const formBody = `payload=${encodeURIComponent(pushBody(form))}`;
  cases.push([form, () => github(a.url, formBody, { contentType: 'application/x-www-form-urlencoded' }), 415, /choose Content type "application\/json"/]);
  const truncated = newCommit();
  cases.push([truncated, () => github(a.url, pushBody(truncated).slice(0, -20)), 400, /the body is not valid JSON/]);
  const unmapped = newCommit();
  cases.push([unmapped, () => github(a.url, pushBody(unmapped, 'feature/x')), 422, /no rule .*acme\/FragVisor branch feature\/x: nothing started/]);
  const badField = newCommit();
  const badBody = JSON.stringify({ repository: REPO, ref: 'main', commit: badField, input: { nodeCounts: [0] } });
  cases.push([badField, () => post(a.url, '/webhooks/generic', badBody, { 'Content-Type': 'application/json', Authorization: `Bearer ${GENERIC_SECRET}` }), 400, /input\.nodeCounts\[0\]: expected at least 1 node/]);
  for (const [commit, send, status, message] of cases) {
    const r = await send();
    expect([r.status, r.json.error]).toEqual([status, expect.stringMatching(message)]);
    expect(await workflowExists(client, idOf(commit))).toBe(false);
  }
});

it('ping answers 200; other events, unknown routes and methods are refused explicitly', async () => {
  const ping = await github(a.url, JSON.stringify({ zen: 'Design for failure.', hook_id: 1 }), { event: 'ping' });
  expect(ping.status).toBe(200);
  const issues = await github(a.url, JSON.stringify({ action: 'opened' }), { event: 'issues' });
  expect([issues.status, issues.json]).toEqual([202, { ignored: 'event "issues" starts nothing: only push and workflow_dispatch do' }]);
  const tag = await github(a.url, JSON.stringify({ ref: 'refs/tags/v1', after: newCommit(), repository: { full_name: REPO } }));
  expect(tag.json.ignored).toMatch(/not a branch/);
  const unknown = await post(a.url, '/webhooks/gitlab', '{}', { 'Content-Type': 'application/json' });
  expect([unknown.status, unknown.json.error]).toEqual([404, 'no such route: this listener answers POST /webhooks/github, POST /webhooks/generic']);
  const get = await fetch(`${a.url}/webhooks/github`);
  expect([get.status, get.headers.get('allow')]).toEqual([405, 'POST']);
});

it('a route without its secret answers 503 naming the variable, never accepting unsigned', async () => {
  const commit = newCommit();
  const r = await post(b.url, '/webhooks/generic', JSON.stringify({ repository: REPO, ref: 'main', commit }), { 'Content-Type': 'application/json' });
  expect(r.status).toBe(503);
  expect(r.json.error).toMatch(/set AE_WEBHOOK_GENERIC_SECRET/);
  expect(await workflowExists(client, idOf(commit))).toBe(false);
});

it('Temporal unreachable: 500 with the reason, nothing remembered, so the redelivery starts the run', async () => {
  const connection = await Connection.connect({ address: testAddress() });
  const dead = await startWebhookListener({ port: 0, client: new Client({ connection }), log: (l) => logs.push(l), env: { AE_WEBHOOK_GITHUB_SECRET: GH_SECRET }, configFile: path.join(dir, 'a.yaml') });
  stops.push(() => dead.close());
  await connection.close();
  const commit = newCommit();
  const delivery = randomUUID();
  const r = await github(dead.url, pushBody(commit), { delivery });
  expect(r.status).toBe(500);
  expect(r.json.error).toMatch(/^could not handle the delivery: /);
  expect(logs.at(-1)).toMatch(/^webhook: POST \/webhooks\/github 500 delivery=[0-9a-f-]{36} workflow=- error="could not handle the delivery: /);
  expect(await workflowExists(client, idOf(commit))).toBe(false);
  // GitHub's redelivery reaches a listener that can start it (same delivery id: not answered from memory).
  const again = await github(a.url, pushBody(commit), { delivery });
  expect([again.status, again.json.joined]).toEqual([202, false]);
});

it('the callback carries the run verdicts, signed with the callback secret', async () => {
  const commit = newCommit();
  const r = await github(b.url, pushBody(commit));
  expect(r.status).toBe(202);
  const cb = await callbackFor(idOf(commit));
  expect(cb.path).toBe('/b');
  expect(cb.headers['content-type']).toBe('application/json');
  expect(cb.headers['x-signature-256']).toBe(signatureHeader(CALLBACK_SECRET, cb.body));
  expect(cb.headers['x-signature-256']).not.toBe(signatureHeader(GH_SECRET, cb.body));
  expect(JSON.parse(cb.body)).toEqual({
    workflowId: idOf(commit),
    status: 'completed',
    verdicts: [
      { id: 'C1', verdict: 'pass', why: `built ${commit}` },
      { id: 'C2', verdict: 'fail', why: 'slower than GiantVM' },
    ],
    report: { runDir: `/runs/${idOf(commit)}`, html: 'report.html', md: 'report.md', junit: 'junit.xml', claims: 'claims.json' },
  });
  // The notifier is one per run: a redelivery registers no second one.
  await github(b.url, pushBody(commit));
  const notifiers: string[] = [];
  for await (const w of client.workflow.list({ query: `WorkflowId = '${idOf(commit)}.notify'` })) notifiers.push(w.runId);
  expect(notifiers).toHaveLength(1);
});

it('a flood gets 429 with Retry-After, and refused deliveries start nothing', async () => {
  const commits = Array.from({ length: 12 }, newCommit);
  const answers = await Promise.all(commits.map((c) => github(b.url, pushBody(c))));
  const accepted = commits.filter((_, i) => answers[i].status === 202);
  const refused = commits.filter((_, i) => answers[i].status === 429);
  expect(accepted.length + refused.length).toBe(commits.length);
  expect(accepted.length).toBeLessThanOrEqual(6); // the per-source burst, less what earlier tests used
  expect(refused.length).toBeGreaterThanOrEqual(6);
  for (const r of answers.filter((x) => x.status === 429)) {
    expect(Number(r.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(r.json.error).toMatch(/too many requests: retry in \d+ s/);
  }
  for (const c of accepted) expect(await workflowExists(client, idOf(c))).toBe(true);
  for (const c of refused) expect(await workflowExists(client, idOf(c))).toBe(false);
});

it('logs one line per request with method, route, status, delivery and workflow id, never a secret or a body', () => {
  const requests = logs.filter((l) => !l.startsWith('webhook: listening'));
  expect(requests.length).toBeGreaterThan(30);
  for (const line of requests) expect(line).toMatch(/^webhook: (POST|GET) \/webhooks\/\w+ \d{3} delivery=(-|[0-9a-f-]{36}) workflow=(-|ci-[\w.-]+)( error="[^"]+")?$/);
  expect(requests).toContainEqual('webhook: POST /webhooks/generic 503 delivery=- workflow=- error="this route is off: set AE_WEBHOOK_GENERIC_SECRET (the shared secret) in the listener\'s environment; unsigned deliveries are never accepted"');
  expect(requests).toContainEqual(expect.stringMatching(/^webhook: POST \/webhooks\/github 202 delivery=[0-9a-f-]{36} workflow=ci-acme-fragvisor-[0-9a-f]{12}-sim$/));
  const all = logs.join('\n');
  for (const secret of [GH_SECRET, GENERIC_SECRET, CALLBACK_SECRET]) expect(all).not.toContain(secret);
  expect(all).not.toMatch(/refs\/heads|padding|pusher/);
  // Listener A has both secrets, B and the unreachable one only GitHub's.
  expect(logs.filter((l) => l.startsWith('webhook: listening'))).toEqual([
    expect.stringMatching(/AE_WEBHOOK_GITHUB_SECRET set.*AE_WEBHOOK_GENERIC_SECRET set/),
    expect.stringMatching(/AE_WEBHOOK_GITHUB_SECRET set.*AE_WEBHOOK_GENERIC_SECRET NOT set: 503 until it is/),
    expect.stringMatching(/AE_WEBHOOK_GITHUB_SECRET set.*AE_WEBHOOK_GENERIC_SECRET NOT set: 503 until it is/),
  ]);
});
