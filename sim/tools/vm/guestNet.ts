import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { findExecutable } from '../../sandbox';
import { GUEST_ROUTES_FILE, writeFileAtomic } from '../../state';
import { asSimWorldNode } from '../../world';
import type { ToolContext, WorldNode } from '../types';
import { currentVm } from './vmState';

/**
 * Reaching the guest from a node. The guest's IP (10.4.4.222, on br0/tap0 of the origin) is not
 * routable on this machine: its ports are loopback ports (sim/guest/endpoints.ts). The `ab` and
 * `curl` imitations rewrite a guest URL to 127.0.0.1:<its port> and run the real tool from the
 * simulator. They never send anything off this machine: loopback targets run as they are, any
 * other address gets "No route to host" (so does the guest from another node, or while no VM runs).
 */

export type Target =
  | { kind: 'loopback' }
  | { kind: 'guest'; ip: string; guestPort: number; port: number }
  | { kind: 'refused'; host: string; port: number }
  | { kind: 'unreachable'; host: string; port: number };

const LOOPBACK = /^(?:localhost|127(?:\.\d{1,3}){3}|\[?::1\]?)$/i;

/** Where `url` (`http://h[:p]/x` or `h[:p]/x`) goes when used on `node`. */
export function targetOf(ctx: Pick<ToolContext, 'world'>, node: WorldNode, url: URL): Target {
  const host = url.hostname;
  const port = Number(url.port || (url.protocol === 'https:' ? 443 : 80));
  if (LOOPBACK.test(host)) return { kind: 'loopback' };
  const vm = currentVm(ctx.world);
  if (!vm || vm.phase !== 'running' || !vm.guest || !vm.guestIp || host !== vm.guestIp || node.index !== vm.nodes[0].index) return { kind: 'unreachable', host, port };
  const mapped = vm.guest.ports.get(port);
  return mapped === undefined ? { kind: 'refused', host, port } : { kind: 'guest', ip: host, guestPort: port, port: mapped };
}

/** A URL as curl and ab accept it (the scheme may be left out). */
export function parseUrl(text: string): URL | undefined {
  if (text.startsWith('-')) return undefined;
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
    return url.hostname ? url : undefined;
  } catch {
    return undefined;
  }
}

export function rewriteUrl(text: string, t: Extract<Target, { kind: 'guest' }>): string {
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`);
  url.hostname = '127.0.0.1';
  url.port = String(t.port);
  return url.toString();
}

/** Puts the guest's address back where the real tool printed the loopback one. */
export function unrewrite(text: string, targets: readonly Extract<Target, { kind: 'guest' }>[]): string {
  let out = text;
  for (const t of targets) out = out.split(`127.0.0.1:${t.port}`).join(`${t.ip}:${t.guestPort}`).split(`127.0.0.1 port ${t.port}`).join(`${t.ip} port ${t.guestPort}`);
  return out;
}

/** The real tool on this machine's PATH, if installed. */
export function realTool(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').concat(['/usr/bin', '/usr/sbin']);
  return findExecutable(name, dirs.filter((dir) => dir && !dir.includes('.ae-sim')));
}

/**
 * A node path for a file the real tool reads or writes from the simulator: the node's own
 * directories map to their host dirs; elsewhere a node sees the host read-only, so reads may use
 * the path as it is and writes are refused (undefined).
 */
export function mapNodeFile(node: WorldNode, cwd: string, p: string, write: boolean): string | undefined {
  const nodePath = node.resolve(cwd, p);
  if (/^\/dev\/(?:null|stdout|stderr|zero)$/.test(nodePath)) return nodePath;
  try {
    return node.hostPath(nodePath);
  } catch {
    return write ? undefined : nodePath;
  }
}

/** Applies `fn` to whole lines of a stream (a partial last line waits for the rest). */
export class LineRewriter {
  private pending = '';

  constructor(private readonly fn: (line: string) => string) {}

  push(chunk: string): string {
    const text = this.pending + chunk;
    const cut = text.lastIndexOf('\n');
    if (cut < 0) {
      this.pending = text;
      return '';
    }
    this.pending = text.slice(cut + 1);
    return text
      .slice(0, cut + 1)
      .split('\n')
      .map((l, i, all) => (i === all.length - 1 ? l : this.fn(l)))
      .join('\n');
  }

  end(): string {
    const rest = this.pending;
    this.pending = '';
    return rest ? this.fn(rest) : '';
  }
}

/** Runs the real tool from the simulator, output through the rewriters; killed when the call is aborted. */
export function runReal(ctx: ToolContext, file: string, args: string[], cwd: string, out: LineRewriter, err: LineRewriter): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(file, args, { cwd, env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: ctx.env.LANG ?? 'C' }, stdio: ['pipe', 'pipe', 'pipe'] });
    child.stdin!.on('error', () => {});
    ctx.stdin.on('error', () => {});
    ctx.stdin.pipe(child.stdin!);
    child.stdout!.on('data', (d: Buffer) => ctx.stdout.write(out.push(d.toString())));
    child.stderr!.on('data', (d: Buffer) => ctx.stderr.write(err.push(d.toString())));
    const kill = () => child.kill('SIGKILL');
    ctx.signal.addEventListener('abort', kill, { once: true });
    child.once('error', (e) => {
      ctx.stderr.write(`${path.basename(file)}: ${e.message}\n`);
      resolve(127);
    });
    child.once('close', (code, signal) => {
      ctx.signal.removeEventListener('abort', kill);
      ctx.stdin.unpipe(child.stdin!);
      ctx.stdout.write(out.end());
      ctx.stderr.write(err.end());
      resolve(code ?? (signal ? 137 : 1));
    });
  });
}

/** `curl --connect-to` routes to the guest: `GUEST_IP:PORT:127.0.0.1:LOOPBACK_PORT`, one per line. */
export function guestRoutes(guestIp: string, ports: readonly (readonly [number, number])[]): string {
  return ports.map(([guestPort, loopback]) => `${guestIp}:${guestPort}:127.0.0.1:${loopback}\n`).join('');
}

/**
 * Publishes the guest's routes in the origin's state for the curl wrapper (sim/bin/curl), which
 * then runs the real curl in the node instead of a round trip through the tool channel: E2 times
 * its bursts with `date`, and ~50 ms of Node start-up per curl would outweigh the modelled
 * lambdas at small time scales. Kept current while the guest's ports change; returns the unpublish.
 */
export function publishGuestRoutes(origin: WorldNode, guestIp: string, ports: { entries(): [number, number][]; onChange(listener: () => void): void }): () => void {
  // Only a real node has the wrapper that reads them (a test's fake world has no sandbox).
  const node = asSimWorldNode(origin);
  if (!node) return () => {};
  const file = path.join(node.sim.stateDir, GUEST_ROUTES_FILE);
  let published = true;
  const write = () => {
    if (published) writeFileAtomic(file, guestRoutes(guestIp, ports.entries()));
  };
  write();
  ports.onChange(write);
  return () => {
    published = false;
    rmSync(file, { force: true });
  };
}
