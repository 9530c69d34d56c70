import fs from 'node:fs';
import type { Duplex } from 'node:stream';
import type { SshSettings } from '../../config/schema';
import { openHop, type Link } from './connect';
import { loadCredentials } from './credentials';
import { SshCommandAbortedError, SshCommandTimeoutError, SshConnectError, SshConnectionLostError } from './errors';
import { runCommand, type ExecResult } from './exec';
import { SessionSlots } from './sessions';
import { parseKnownHosts, type KnownHostEntry } from './knownHosts';
import { memoizeByText } from './memo';
import { toCommandLine } from '../../workflows/commands/quote';
import { localContext, planRoute, type Hop, type SshTarget } from './route';
import type { LocalContext } from './sshConfig';

export type { SshTarget } from './route';
export type { ExecResult } from './exec';

/**
 * One SSH connection per node, opened on first use and reused by every later command (the worker
 * makes one pool). Concurrent callers share one in-flight connect; a connection that closes or errors
 * is evicted, so the next command reconnects. Commands beyond the node's session limit wait for a
 * free session (sessions.ts); the caller's timeout and signal cover that wait, as they cover connecting.
 */

export interface ExecOptions {
  /** Limit for the whole call, connecting included; on expiry the command is killed. */
  timeoutMs?: number;
  stdin?: string | Buffer;
  /** Full stdout+stderr is appended here, whatever maxOutputBytes keeps in memory. */
  logFile?: string;
  signal?: AbortSignal;
  /** Per stream, in memory; defaults to settings.maxOutputBytes. */
  maxOutputBytes?: number;
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
}

/** A connection to a node: the session to the node itself plus the jump hosts it is tunnelled through. */
class Connection {
  readonly sessions: SessionSlots;
  constructor(
    readonly target: Link,
    readonly jumps: readonly Link[],
    maxSessions: number,
  ) {
    this.sessions = new SessionSlots(maxSessions);
    // Every running command listens for the connection's close (exec.ts): as many as it has sessions.
    target.client.setMaxListeners(this.sessions.capacity + 10);
  }
  /** Ends every link; resolves when the target's socket has closed (or after a short grace period). */
  async end(): Promise<void> {
    for (const l of [this.target, ...[...this.jumps].reverse()]) l.end();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.target.closed, new Promise<void>((r) => (timer = setTimeout(r, 2000)))]);
    clearTimeout(timer);
  }
}

/** Read at every connect (an added key counts at once), parsed once per content (see memo.ts). */
const parseKnownHostsCached = memoizeByText(parseKnownHosts);

function readKnownHosts(file: string): readonly KnownHostEntry[] {
  try {
    return parseKnownHostsCached(fs.readFileSync(file, 'utf8'));
  } catch (err) {
    // No file means no known hosts: every key is then "unknown" and refused, with a message saying how to add it.
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/**
 * A session channel the server would not open: OpenSSH answers one beyond MaxSessions with "open
 * failed", reason 2 (connect failed); other servers say 1 (administratively prohibited).
 */
function isSessionRefused(err: unknown): boolean {
  const reason = err instanceof SshConnectError && err.code === 'ECHANNEL' ? (err.cause as { reason?: unknown } | undefined)?.reason : undefined;
  return reason === 1 || reason === 2;
}

/** Opens a forwarded channel through `via` to the hop, to carry the next SSH connection. */
function forward(via: Link, node: string, hop: Hop): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    try {
      via.client.forwardOut('127.0.0.1', 0, hop.hostname, hop.port, (err, ch) => {
        if (err) reject(new SshConnectError(`node ${node}: jump host ${via.hop.alias} could not reach ${hop.hostname}:${hop.port}: ${err.message}`, node, 'EJUMP', { cause: err }));
        else resolve(ch);
      });
    } catch (err) {
      reject(new SshConnectError(`node ${node}: jump host ${via.hop.alias} connection closed`, node, 'EJUMP', { cause: err }));
    }
  });
}

/** Rejects with the signal's reason as soon as it aborts; the underlying work carries on for others. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e as Error);
      },
    );
  });
}

export class SshPool {
  /** Per key: the connect in flight or done; `conn` is set once it is open (for synchronous eviction). */
  private readonly connections = new Map<string, { promise: Promise<Connection>; conn?: Connection }>();
  private readonly opened = new Map<string, number>();
  private closing = false;

  constructor(private readonly local: () => LocalContext = localContext) {}

  /** SSH connections opened so far to `node` (not counting its jump hosts), or all of them, jumps included. */
  connectionsOpened(node?: string): number {
    if (node !== undefined) return this.opened.get(node) ?? 0;
    let total = 0;
    for (const n of this.opened.values()) total += n;
    return total;
  }

  async exec(target: SshTarget, settings: SshSettings, command: string | readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
    const line = typeof command === 'string' ? command : toCommandLine(command);
    if (this.closing) throw new Error('SshPool is closed');
    // One controller for both ways to stop: the caller's signal and our timeout.
    const ctl = new AbortController();
    const onCallerAbort = () => ctl.abort(opts.signal?.reason instanceof Error ? opts.signal.reason : new SshCommandAbortedError(target.node));
    if (opts.signal?.aborted) onCallerAbort();
    opts.signal?.addEventListener('abort', onCallerAbort, { once: true });
    const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => ctl.abort(new SshCommandTimeoutError(target.node, opts.timeoutMs ?? 0)), opts.timeoutMs);
    try {
      for (let attempt = 0; ; attempt++) {
        if (ctl.signal.aborted) throw ctl.signal.reason; // do not even start connecting
        const key = this.key(target, settings);
        const conn = await untilAborted(this.connection(key, target, settings), ctl.signal);
        const release = await conn.sessions.acquire(ctl.signal);
        try {
          return await runCommand(conn.target, target.node, line, {
            signal: ctl.signal,
            maxOutputBytes: opts.maxOutputBytes ?? settings.maxOutputBytes,
            ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
            ...(opts.logFile !== undefined ? { logFile: opts.logFile } : {}),
            ...(opts.onOutput ? { onOutput: opts.onOutput } : {}),
          });
        } catch (err) {
          // A cached connection that died while idle: the command never left, so one fresh try is safe.
          if (err instanceof SshConnectionLostError && !err.commandStarted && attempt === 0) {
            this.evict(key, conn);
            continue;
          }
          // Refused by the server's session limit while others of ours ran: wait for one of them instead.
          const others = conn.sessions.busy - 1;
          if (isSessionRefused(err) && others > 0) {
            conn.sessions.serverRefusedAt(others);
            continue;
          }
          throw err;
        } finally {
          release();
        }
      }
    } finally {
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onCallerAbort);
    }
  }

  /** Ends every connection. Later exec calls fail. */
  async close(): Promise<void> {
    this.closing = true;
    const pending = [...this.connections.values()].map((e) => e.promise);
    this.connections.clear();
    const settled = await Promise.allSettled(pending);
    await Promise.all(settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value.end()] : [])));
  }

  private key(target: SshTarget, settings: SshSettings): string {
    // Per node, but a different endpoint or settings for the same node name gets its own connection.
    return JSON.stringify([target.node, target.host, target.port, target.user, settings]);
  }

  private connection(key: string, target: SshTarget, settings: SshSettings): Promise<Connection> {
    const existing = this.connections.get(key);
    if (existing) return existing.promise;
    const entry: { promise: Promise<Connection>; conn?: Connection } = { promise: this.open(target, settings) };
    this.connections.set(key, entry);
    entry.promise.then(
      (conn) => {
        entry.conn = conn;
        if (this.closing) void conn.end();
        // Evict on close so the next call reconnects; a dead jump host closes the target's channel too.
        for (const link of [conn.target, ...conn.jumps]) void link.closed.then(() => this.evict(key, conn));
      },
      () => {
        if (this.connections.get(key) === entry) this.connections.delete(key);
      },
    );
    return entry.promise;
  }

  private evict(key: string, conn: Connection): void {
    if (this.connections.get(key)?.conn === conn) this.connections.delete(key);
    void conn.end();
  }

  private async open(target: SshTarget, settings: SshSettings): Promise<Connection> {
    const local = this.local();
    const hops = planRoute(target, settings, undefined, local);
    const knownHosts = readKnownHosts(settings.knownHosts);
    const links: Link[] = [];
    try {
      for (const [i, hop] of hops.entries()) {
        const auth = loadCredentials(target.node, hop, local);
        const sock = i === 0 ? undefined : await forward(links[i - 1], target.node, hop);
        const link = await openHop({ node: target.node, hop, settings, auth, knownHosts, ...(sock ? { sock } : {}) });
        links.push(link);
        const counter = i === hops.length - 1 ? target.node : `${target.node}>jump:${hop.alias}`;
        this.opened.set(counter, (this.opened.get(counter) ?? 0) + 1);
      }
    } catch (err) {
      for (const l of links.reverse()) l.end();
      throw err;
    }
    const targetLink = links[links.length - 1];
    return new Connection(targetLink, links.slice(0, -1), settings.maxSessions);
  }
}
