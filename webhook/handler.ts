import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import type { WebhookConfig } from './config';
import type { DeliveryWindow } from './deliveries';
import { readBody, requireJson } from './body';
import { HttpError } from './httpError';
import { planRun, type PlannedRun, type RunRequest } from './mapping';
import { genericRequest, githubEvent, parseJsonBody } from './payload';
import type { RateLimiter } from './rateLimit';
import { validBearer, validSignature } from './signature';
import type { StartedRun } from './start';

export interface HandlerDeps {
  config: WebhookConfig;
  /** The secrets' values, read from the environment at start; undefined = that route is off (503). */
  secrets: { github?: string; generic?: string };
  startRun(run: PlannedRun): Promise<StartedRun>;
  limiter: RateLimiter;
  deliveries: DeliveryWindow<StartedRun>;
  log(line: string): void;
}

interface Answer {
  status: number;
  body: Record<string, unknown>;
  headers?: Record<string, string>;
  workflowId?: string;
}

interface Route {
  secret: 'github' | 'generic';
  /** How the caller proves it holds the secret; false = 401. */
  authentic(secret: string, headers: IncomingHttpHeaders, body: Buffer): boolean;
  unauthorized: string;
  handle(deps: HandlerDeps, headers: IncomingHttpHeaders, body: Buffer): Promise<Answer>;
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** A delivery id fit for a log line; anything else is not echoed. */
function deliveryId(headers: IncomingHttpHeaders): string | undefined {
  const id = header(headers, 'x-github-delivery');
  return id && /^[A-Za-z0-9-]{1,64}$/.test(id) ? id : undefined;
}

function started(run: StartedRun): Answer {
  return { status: 202, body: { ...run }, workflowId: run.workflowId };
}

async function startRequested(deps: HandlerDeps, request: RunRequest): Promise<StartedRun> {
  return deps.startRun(planRun(deps.config, request));
}

const ROUTES: Record<string, Route> = {
  '/webhooks/github': {
    secret: 'github',
    authentic: (secret, headers, body) => validSignature(secret, body, header(headers, 'x-hub-signature-256')),
    unauthorized: 'missing or wrong X-Hub-Signature-256: it must be sha256=<HMAC-SHA256 of the body with the webhook secret>',
    async handle(deps, headers, body) {
      const event = githubEvent(header(headers, 'x-github-event'), parseJsonBody(body));
      if (event.kind === 'ping') return { status: 200, body: { ok: true, message: 'pong: push and workflow_dispatch events start runs' } };
      if (event.kind === 'ignored') return { status: 202, body: { ignored: event.reason } };
      const delivery = deliveryId(headers);
      if (!delivery) return started(await startRequested(deps, event.request));
      // A replayed delivery gets the first one's answer, without asking Temporal again.
      const { result, replay } = deps.deliveries.once(delivery, () => startRequested(deps, event.request));
      const run = await result;
      return started(replay ? { ...run, joined: true } : run);
    },
  },
  '/webhooks/generic': {
    secret: 'generic',
    authentic: (secret, headers, body) => validBearer(secret, header(headers, 'authorization')) || validSignature(secret, body, header(headers, 'x-signature-256')),
    unauthorized: 'missing or wrong credentials: send Authorization: Bearer <secret> or X-Signature-256: sha256=<HMAC-SHA256 of the body>',
    async handle(deps, _headers, body) {
      return started(await startRequested(deps, genericRequest(parseJsonBody(body))));
    },
  },
};

const ROUTE_LIST = Object.keys(ROUTES).map((r) => `POST ${r}`).join(', ');

async function answer(deps: HandlerDeps, req: IncomingMessage, pathname: string): Promise<Answer> {
  const route = ROUTES[pathname];
  if (!route) throw new HttpError(404, `no such route: this listener answers ${ROUTE_LIST}`);
  if (req.method !== 'POST') throw new HttpError(405, `${pathname} takes POST only`, { Allow: 'POST' });
  const wait = deps.limiter.take(req.socket.remoteAddress ?? 'unknown');
  if (wait !== undefined) throw new HttpError(429, `too many requests: retry in ${wait} s`, { 'Retry-After': String(wait) });
  const secret = deps.secrets[route.secret];
  if (!secret) throw new HttpError(503, `this route is off: set ${deps.config.secrets[route.secret]} (the shared secret) in the listener's environment; unsigned deliveries are never accepted`);
  requireJson(header(req.headers, 'content-type'));
  const body = await readBody(req, deps.config.limits.maxBodyBytes);
  if (!route.authentic(secret, req.headers, body)) throw new HttpError(401, route.unauthorized);
  return route.handle(deps, req.headers, body);
}

/** What an unexpected error may tell the caller: its first line, never a stack. */
function internal(err: unknown): Answer {
  const message = err instanceof Error ? err.message.split('\n')[0] : String(err);
  return { status: 500, body: { error: `could not handle the delivery: ${message}` } };
}

/** The request's path without its query; a target that does not parse is no route (404). */
function pathOf(target: string | undefined): string {
  try {
    return new URL(target ?? '/', 'http://listener').pathname;
  } catch {
    return '(unparsable)';
  }
}

/** Printable and short: a path the caller chose goes into our log. */
function loggable(pathname: string): string {
  const clean = pathname.replace(/[^\x21-\x7e]/g, '?');
  return clean.length > 100 ? `${clean.slice(0, 100)}...` : clean;
}

/**
 * The request pipeline: route, method, rate limit, secret configured, content type, body size,
 * signature, then the route's own handling. Every refusal comes before anything starts. One log line
 * per request: method, route, status, delivery id, workflow id, and for a 5xx our error (never the
 * body or a secret).
 */
export function createHandler(deps: HandlerDeps): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const pathname = pathOf(req.url);
    let out: Answer;
    try {
      out = await answer(deps, req, pathname);
    } catch (err) {
      out = err instanceof HttpError ? { status: err.status, body: { error: err.message }, headers: err.headers } : internal(err);
    }
    const text = JSON.stringify(out.body);
    res.writeHead(out.status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), ...out.headers });
    res.end(text);
    // Our own failures say why (the operator has to act); the caller's mistakes are in the answer only.
    const why = out.status >= 500 ? ` error=${JSON.stringify(out.body.error)}` : '';
    deps.log(`${req.method ?? '?'} ${loggable(pathname)} ${out.status} delivery=${deliveryId(req.headers) ?? '-'} workflow=${out.workflowId ?? '-'}${why}`);
  };
}
