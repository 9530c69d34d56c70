import { promises as fs, type Stats } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { lempFrontMs, lempPhpMs, staticRequestMs } from '../model/model';
import { measure, sleepMs, staticPageSleepMs, type SimModel } from '../model/runtime';
import type { Hypervisor } from '../model/schema';
import { closeServer, listenLoopback, type RunningServer } from './listen';
import { maskToVcpu, type GuestPinning } from './pinning';
import { PHP_PAGE_BYTES, renderBenchmarkPage, scriptLoops } from './php';
import { phpHeaders, sendError, staticHeaders } from './responses';
import { Sleeper, Timelines } from './timeline';

export interface NginxOptions {
  model: SimModel;
  hypervisor: Hypervisor;
  nodes: number;
  /** The guest's nginx html dir: index.html, web.php and whatever else is served as is. */
  htmlDir: string;
  /** Loopback port; 0 picks a free one. */
  port?: number;
  /**
   * nginx's `index` directive for URLs ending in `/`: the first file that exists is served. The
   * default serves web.php when there is one (the LEMP guest) and index.html otherwise (E3).
   */
  index?: readonly string[];
  pinning: () => Pick<GuestPinning, 'nginxWorkers' | 'phpFpmWorkers'>;
  /** PHP's $_SERVER['SERVER_ADDR'] in the page. */
  guestIp?: string;
  /** Shared by all servers of one guest (they share its vCPUs); created if absent. */
  timelines?: Timelines;
}

/**
 * nginx with one php-fpm pool, as the E1 and E3 guests run them. Each request books its nginx
 * worker's vCPU for the model's front time and, for PHP, then the earliest free php-fpm worker's
 * vCPU for the model's compute time; the response is held until that booking ends. So at most one
 * request per worker is in service, the rest queue, and ab's requests per second follow the model.
 * A static page's booking never runs faster than STATIC_PAGE_MIN_SCALE (runtime.ts): shorter ones
 * would drown in the sim's own HTTP path.
 */
export async function startNginx(opts: NginxOptions): Promise<RunningServer> {
  const timelines = opts.timelines ?? new Timelines();
  // Own sleeper: stopping this server cancels only its own held responses.
  const sleeper = new Sleeper(timelines.now);
  const index = opts.index ?? ['web.php', 'index.html'];
  const root = path.resolve(opts.htmlDir);
  const { model, hypervisor, nodes } = opts;
  let seq = 0;

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const arrived = timelines.now();
    const key = `nginx#${seq++}`;
    const pins = opts.pinning();
    const nginxVcpus = pins.nginxWorkers.map((m) => maskToVcpu(m, nodes));
    if (nginxVcpus.length === 0) {
      // No worker process: nothing accepts the connection's request.
      req.socket.destroy();
      return;
    }
    const head = req.method === 'HEAD';
    const found = await locate(root, req.url ?? '/', index);

    // The nginx worker's share: every request pays it, whatever it asks for.
    const bytes = found.kind === 'file' ? found.stat.size : 0;
    const php = found.kind === 'file' && found.file.endsWith('.php');
    const front = timelines.earliest(distinctKeys('nginx', nginxVcpus), arrived);
    const nginxVcpu = vcpuOf(front.key);
    const frontMs = php
      ? lempFrontMs(model.spec, { hypervisor, nodes, nginxVcpu, responseBytes: PHP_PAGE_BYTES })
      : staticRequestMs(model.spec, { hypervisor, nodes, workerVcpu: nginxVcpu, bytes });
    const frontModelMs = measure(model, frontMs, `${key}:front`);
    let end = timelines.reserve(front.key, front.start, php ? sleepMs(model, frontModelMs) : staticPageSleepMs(model, frontModelMs));

    if (req.method !== 'GET' && !head) return finish(end, () => sendError(res, 405));
    if (found.kind !== 'file') return finish(end, () => sendError(res, found.kind === 'dir' ? 403 : 404, head));
    if (!php) {
      const body = head ? undefined : await fs.readFile(found.file);
      return finish(end, () => {
        res.sendDate = false;
        res.writeHead(200, 'OK', staticHeaders(found.file, body?.length ?? bytes, found.stat.mtime));
        res.end(body);
      });
    }

    const phpVcpus = pins.phpFpmWorkers.map((m) => maskToVcpu(m, nodes));
    if (phpVcpus.length === 0) return finish(end, () => sendError(res, 502, head));
    const loops = scriptLoops(await fs.readFile(found.file, 'utf8'), model.spec);
    const worker = timelines.earliest(distinctKeys('php', phpVcpus), end);
    const workMs = measure(model, lempPhpMs(model.spec, { hypervisor, nodes, loops, nginxVcpu, phpVcpu: vcpuOf(worker.key) }), `${key}:php`);
    end = timelines.reserve(worker.key, worker.start, sleepMs(model, workMs));
    const page = renderBenchmarkPage({ workMs, start: new Date(), serverName: 'localhost', serverAddr: opts.guestIp ?? '10.4.4.222' });
    return finish(end, () => {
      res.sendDate = false;
      res.writeHead(200, 'OK', phpHeaders());
      res.end(head ? undefined : page);
    });
  }

  async function finish(at: number, respond: () => void): Promise<void> {
    if (await sleeper.until(at)) respond();
  }

  const server = http.createServer((req, res) => {
    handle(req, res).catch(() => {
      if (!res.headersSent) sendError(res, 500);
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

type Located = { kind: 'file'; file: string; stat: Stats } | { kind: 'dir' } | { kind: 'missing' };

/** The file a URL names under the html dir; never a path outside it. */
async function locate(root: string, url: string, index: readonly string[]): Promise<Located> {
  let rel: string;
  try {
    rel = decodeURIComponent(new URL(url, 'http://guest').pathname);
  } catch {
    return { kind: 'missing' };
  }
  const target = path.join(root, path.posix.normalize(rel));
  if (target !== root && !target.startsWith(root + path.sep)) return { kind: 'missing' };
  const stat = await fs.stat(target).catch(() => undefined);
  if (stat?.isFile() && !rel.endsWith('/')) return { kind: 'file', file: target, stat };
  if (!stat?.isDirectory()) return { kind: 'missing' };
  for (const name of index) {
    const file = path.join(target, name);
    const st = await fs.stat(file).catch(() => undefined);
    if (st?.isFile()) return { kind: 'file', file, stat: st };
  }
  return { kind: 'dir' };
}

/** One timeline per vCPU: workers pinned to the same vCPU share its time. */
function distinctKeys(kind: string, vcpus: readonly number[]): string[] {
  return [...new Set(vcpus)].map((v) => `${kind}:v${v}`);
}

function vcpuOf(key: string): number {
  return Number(key.slice(key.lastIndexOf(':v') + 2));
}
