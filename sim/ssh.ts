import net from 'node:net';
import { constants as osConstants } from 'node:os';
import type { Writable } from 'node:stream';
import { Server, utils, type AuthContext, type ClientInfo, type Connection, type ParsedKey, type ServerChannel, type Session } from 'ssh2';
import { withDecodedKey } from '../activities/ssh/keySign';
import type { NodeCommand } from './sandbox';

/**
 * The SSH front of one simulated node: an ssh2 Server that accepts exactly one user with exactly
 * one public key, runs exec requests through the node's sandbox and reports real exit codes.
 * The listening socket is ours (ssh2 gets sockets through injectSocket), so a reboot can close the
 * listener (clients get ECONNREFUSED) and cut every connection like a power loss would.
 */

export interface SshFrontOptions {
  nodeName: string;
  /** Host private key (OpenSSH format). */
  hostKey: string;
  /** The one public key allowed in (OpenSSH `ssh-ed25519 AAAA...` line). */
  authorizedKey: string;
  user: string;
  /** Starts `command` in the node; the front owns its stdio and its process group from then on. */
  run(command: string, env: Record<string, string>): NodeCommand;
  /** Counters the front bumps. */
  stats: { connections: number; authFailures: number; commands: number };
  /**
   * The `ssh-drop` fault: ms after which a command still running gets its connection dropped, if
   * such a fault is armed (asked when the command starts); `takeDrop` fires it when the time comes
   * (false: it was used up meanwhile).
   */
  dropAfterMs?: () => number | undefined;
  takeDrop?: () => boolean;
}

/** Variables a client may set with `env` requests (what a stock Ubuntu sshd accepts). */
const ACCEPTED_ENV = /^(?:LANG|LC_[A-Z]+|TZ|COLORTERM)$/;
/** Sessions one connection may have open at once: OpenSSH's default MaxSessions. */
const MAX_SESSIONS = 10;

/** Resolves once everything written so far has gone to the SSH layer (window permitting). */
function flushed(stream: Writable): Promise<void> {
  return new Promise((resolve) => {
    if (stream.destroyed || !stream.writable) return resolve();
    stream.write(Buffer.alloc(0), () => resolve());
  });
}

export class SshFront {
  private readonly server: Server;
  private readonly authorized: ParsedKey;
  private listener: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly commands = new Set<NodeCommand>();

  constructor(private readonly opts: SshFrontOptions) {
    const key = utils.parseKey(opts.authorizedKey);
    if (key instanceof Error) throw new Error(`node ${opts.nodeName}: bad authorized key: ${key.message}`);
    // Keys decoded once, not at every handshake (a real sshd loads its keys at start-up too).
    this.authorized = withDecodedKey(key);
    const hostKey = utils.parseKey(opts.hostKey);
    if (hostKey instanceof Error) throw new Error(`node ${opts.nodeName}: bad host key: ${hostKey.message}`);
    this.server = new Server({ hostKeys: [{ key: withDecodedKey(hostKey) }] }, (conn, info) => this.onConnection(conn, info));
    this.server.on('error', () => {});
  }

  /** Opens the listener on 127.0.0.1:`port` (0 = any free port); resolves with the port. */
  listen(port: number): Promise<number> {
    return new Promise((resolve, reject) => {
      const listener = net.createServer((socket) => {
        this.sockets.add(socket);
        socket.once('close', () => this.sockets.delete(socket));
        socket.on('error', () => {});
        this.server.injectSocket(socket);
      });
      listener.once('error', reject);
      listener.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
        listener.off('error', reject);
        listener.on('error', () => {});
        this.listener = listener;
        resolve((listener.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stops accepting (new connections are refused) and cuts every connection at once. */
  async cut(): Promise<void> {
    const listener = this.listener;
    this.listener = undefined;
    const closed = listener ? new Promise<void>((resolve) => listener.close(() => resolve())) : Promise.resolve();
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    for (const cmd of this.commands) cmd.kill();
    await closed;
  }

  get listening(): boolean {
    return this.listener !== undefined;
  }

  private onConnection(conn: Connection, info: ClientInfo): void {
    this.opts.stats.connections++;
    // Our own socket under this connection (by the client's port), for a simulated network drop.
    const socket = [...this.sockets].find((s) => s.remotePort === info.port);
    conn.on('error', () => {});
    conn.on('authentication', (ctx) => this.authenticate(ctx));
    conn.on('ready', () => {
      let open = 0;
      conn.on('session', (accept, reject) => {
        // sshd's MaxSessions: one beyond it is refused ("open failed", connect failed), as OpenSSH does.
        if (open >= MAX_SESSIONS) return reject();
        const session = accept();
        if (!session) return;
        open++;
        session.once('close', () => open--);
        this.onSession(session, socket);
      });
    });
  }

  private authenticate(ctx: AuthContext): void {
    if (ctx.method !== 'publickey') {
      if (ctx.method !== 'none') this.opts.stats.authFailures++;
      return ctx.reject(['publickey']);
    }
    const key = this.authorized;
    const ok =
      ctx.username === this.opts.user &&
      ctx.key.algo === key.type &&
      ctx.key.data.equals(key.getPublicSSH()) &&
      (!ctx.signature || key.verify(ctx.blob!, ctx.signature, ctx.hashAlgo) === true);
    if (!ok) {
      this.opts.stats.authFailures++;
      return ctx.reject(['publickey']);
    }
    ctx.accept();
  }

  private onSession(session: Session, socket: net.Socket | undefined): void {
    const env: Record<string, string> = {};
    let pty = false;
    session.on('pty', (accept, _reject, info) => {
      pty = true;
      // ssh2 passes the TERM value along (its type definitions leave it out).
      const term = (info as { term?: unknown }).term;
      if (typeof term === 'string' && /^[A-Za-z0-9._+-]{1,64}$/.test(term)) env.TERM = term;
      accept?.();
    });
    session.on('window-change', (accept) => accept?.());
    session.on('env', (accept, reject, info) => {
      if (ACCEPTED_ENV.test(info.key) && !info.val.includes('\0')) {
        env[info.key] = info.val;
        accept?.();
      } else reject?.();
    });
    // Only exec: no login shell, no subsystems (sftp), no agent or X11 forwarding.
    session.on('shell', (_accept, reject) => reject?.());
    session.on('subsystem', (_accept, reject) => reject?.());
    session.on('sftp', (_accept, reject) => reject?.());
    session.on('auth-agent', (_accept, reject) => reject?.());
    session.on('x11', (_accept, reject) => reject?.());
    session.on('exec', (accept, _reject, info) => {
      const channel = accept();
      if (channel) this.exec(channel, session, info.command, env, pty, socket);
    });
  }

  private exec(channel: ServerChannel, session: Session, command: string, env: Record<string, string>, pty: boolean, socket: net.Socket | undefined): void {
    this.opts.stats.commands++;
    let cmd: NodeCommand;
    try {
      cmd = this.opts.run(command, env);
    } catch (err) {
      channel.stderr.write(`${this.opts.nodeName}: ${(err as Error).message}\n`);
      channel.exit(255);
      channel.end();
      return;
    }
    const child = cmd.process;
    this.commands.add(cmd);
    let finished = false;

    child.stdin!.on('error', () => {});
    channel.pipe(child.stdin!);
    child.stdout!.pipe(channel, { end: false });
    // A pty merges stderr into the terminal; without one, stderr goes on the extended channel.
    child.stderr!.pipe(pty ? channel : channel.stderr, { end: false });

    session.on('signal', (accept, _reject, info) => {
      const name = `SIG${String(info.name).replace(/^SIG/, '')}`;
      if (name in osConstants.signals) {
        cmd.signal(name as NodeJS.Signals);
        accept?.();
      }
    });

    // ssh-drop: the connection goes away under a command that runs long enough, like a flaky link.
    const dropAfter = socket ? this.opts.dropAfterMs?.() : undefined;
    const dropTimer =
      dropAfter === undefined
        ? undefined
        : setTimeout(() => {
            if (!finished && this.opts.takeDrop?.()) socket?.destroy();
          }, dropAfter);
    const finish = (code: number | null, signal: NodeJS.Signals | null, error?: string) => {
      if (finished) return;
      finished = true;
      if (dropTimer) clearTimeout(dropTimer);
      this.commands.delete(cmd);
      void Promise.all([flushed(channel), flushed(channel.stderr)]).then(() => {
        if (error) channel.stderr.write(`${this.opts.nodeName}: ${error}\n`);
        if (code !== null) channel.exit(code);
        else if (signal) channel.exit(signal.replace(/^SIG/, ''), false, '');
        else channel.exit(255);
        channel.end();
      });
    };
    // 'close' comes after the process exited AND its output pipes closed, like sshd waiting for EOF.
    child.once('close', (code, signal) => finish(code, signal));
    child.once('error', (err) => finish(255, null, `cannot start the command: ${err.message}`));
    // The client went away (channel closed, connection dropped): the command dies with it.
    channel.once('close', () => {
      if (!finished) cmd.kill();
    });
  }
}
