import http from 'node:http';
import { openLambdaPhasesMs } from '../model/model';
import { measure, sleepMs, type SimModel } from '../model/runtime';
import { OPENLAMBDA_PHASES, type Hypervisor, type OpenLambdaPhase } from '../model/schema';
import { closeServer, listenLoopback, type RunningServer } from './listen';
import { maskToVcpu } from './pinning';
import { Sleeper, Timelines } from './timeline';

export interface OpenLambdaOptions {
  model: SimModel;
  hypervisor: Hypervisor;
  nodes: number;
  port?: number;
  /** Affinity mask of this `ol worker` process, read per request (taskset may change it). */
  mask: () => number;
  /** Stable name of this worker for the noise keys (`ol0`), independent of the port. */
  name: string;
  /** Shared by all servers of one guest (they share its vCPUs); created if absent. */
  timelines?: Timelines;
}

/** What the simulated lambda answers: per-phase times come from the response body (ARTIFACT.md, E2). */
export interface OpenLambdaResult {
  lambda: string;
  input: unknown;
  phasesMs: Record<OpenLambdaPhase, number>;
  totalMs: number;
  simulated: true;
}

const MAX_BODY = 64 * 1024;

/**
 * One `ol worker`: `POST /run/<lambda>` runs the lambda, `GET /status` says ready. A worker is
 * pinned to one vCPU and runs one invocation at a time on it; the response is held for the
 * invocation's (time-scaled) total.
 */
export async function startOpenLambdaWorker(opts: OpenLambdaOptions): Promise<RunningServer> {
  const timelines = opts.timelines ?? new Timelines();
  // Own sleeper: stopping this server cancels only its own held responses.
  const sleeper = new Sleeper(timelines.now);
  const { model, hypervisor, nodes } = opts;
  let seq = 0;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://guest');
    if (req.method === 'GET' && url.pathname === '/status') return reply(res, 200, 'ready\n', 'text/plain');
    const run = /^\/run\/([A-Za-z0-9_-]+)$/.exec(url.pathname);
    if (!run) return reply(res, 404, `unknown path ${url.pathname}\n`, 'text/plain');
    if (req.method !== 'POST') return reply(res, 405, 'use POST to run a lambda\n', 'text/plain');
    const raw = await readBody(req);
    if (raw === undefined) return reply(res, 413, 'request body too large\n', 'text/plain');

    const arrived = timelines.now();
    const key = `${opts.name}#${seq++}`;
    const vcpu = maskToVcpu(opts.mask(), nodes);
    const mean = openLambdaPhasesMs(model.spec, { hypervisor, nodes, vcpu });
    const phasesMs = {} as Record<OpenLambdaPhase, number>;
    for (const p of OPENLAMBDA_PHASES) phasesMs[p] = round3(measure(model, mean[p], `${key}:${p}`));
    const totalMs = round3(OPENLAMBDA_PHASES.reduce((sum, p) => sum + phasesMs[p], 0));
    const slot = timelines.earliest([`ol:v${vcpu}`], arrived);
    const end = timelines.reserve(slot.key, slot.start, sleepMs(model, totalMs));
    const result: OpenLambdaResult = { lambda: run[1], input: parseInput(raw), phasesMs, totalMs, simulated: true };
    if (await sleeper.until(end)) reply(res, 200, `${JSON.stringify(result)}\n`, 'application/json');
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) reply(res, 500, 'internal error\n', 'text/plain');
      else res.destroy();
    });
  });
  const port = await listenLoopback(server, opts.port ?? 0);
  return {
    port,
    stop: async () => {
      sleeper.cancelAll();
      await closeServer(server);
    },
  };
}

function reply(res: http.ServerResponse, status: number, body: string, type: string): void {
  res.writeHead(status, { 'Content-Type': type, 'Content-Length': String(Buffer.byteLength(body)) });
  res.end(body);
}

/** The request body, or undefined when it is larger than any lambda input we expect. */
async function readBody(req: http.IncomingMessage): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `-d '1'` arrives as the JSON number 1; anything that is not JSON is passed on as text. */
function parseInput(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return raw;
  }
}

function round3(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}
