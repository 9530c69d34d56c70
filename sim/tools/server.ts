import { chownSync, chmodSync, closeSync, openSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { encodeFrame, FRAME, FrameReader, parseHeader, type CallHeader } from './protocol';
import type { ToolRegistry } from './registry';
import { DELEGATE, type ToolContext, type World, type WorldNode } from './types';

/**
 * The simulator's end of one node's tool channel: a unix socket in the node's state dir (inside the
 * node: /home/.ae-sim/state/ctl.sock) that the node's thin tool clients (sim/bin/_ctl.js) call.
 * Each connection is one tool invocation, dispatched to the registry's handlers for that name.
 */

export interface ToolServerOptions {
  /** Host path of the socket. */
  socketPath: string;
  /** Owner of the socket file (root mode: the node user); the socket is 0600. */
  owner?: { uid: number; gid: number };
  registry: ToolRegistry;
  node: WorldNode;
  world: World;
  log: (line: string) => void;
}

/** sockaddr_un.sun_path holds 108 bytes with the NUL; leave a margin. */
const MAX_SOCKET_PATH = 100;

class Call {
  readonly abort = new AbortController();
  finished = false;
  stdinAsked = false;

  constructor(
    readonly sock: net.Socket,
    readonly header: CallHeader,
  ) {}

  send(type: string, payload?: Buffer | string): Promise<void> {
    return new Promise((resolve) => {
      if (this.sock.destroyed || !this.sock.writable) return resolve();
      this.sock.write(encodeFrame(type, payload), () => resolve());
    });
  }
}

/** 0..255 as a shell sees it; anything that is not an integer counts as a failure. */
function exitCode(code: number): number {
  return Number.isInteger(code) ? ((code % 256) + 256) % 256 : 1;
}

export class ToolServer {
  private server: net.Server | undefined;
  private readonly calls = new Set<Call>();

  constructor(private readonly opts: ToolServerOptions) {}

  /** Invocations running right now. */
  get active(): number {
    return this.calls.size;
  }

  async start(): Promise<void> {
    const { socketPath } = this.opts;
    rmSync(socketPath, { force: true });
    const server = net.createServer((sock) => this.onConnection(sock));
    server.on('error', (err) => this.opts.log(`${this.opts.node.name}: tool channel: ${err.message}`));
    // A long state dir path does not fit in a sockaddr: bind through the directory's fd instead.
    let dirFd: number | undefined;
    let bindPath = socketPath;
    if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
      dirFd = openSync(path.dirname(socketPath), 'r');
      bindPath = `/proc/self/fd/${dirFd}/${path.basename(socketPath)}`;
    }
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(bindPath, () => {
          server.off('error', reject);
          resolve();
        });
      });
    } finally {
      if (dirFd !== undefined) closeSync(dirFd);
    }
    chmodSync(socketPath, 0o600);
    if (this.opts.owner) chownSync(socketPath, this.opts.owner.uid, this.opts.owner.gid);
    this.server = server;
  }

  /** Aborts every running invocation (the node goes down). */
  abortAll(reason: string): void {
    for (const call of this.calls) {
      call.abort.abort(new Error(reason));
      call.sock.destroy();
    }
    this.calls.clear();
  }

  async stop(): Promise<void> {
    this.abortAll('the simulator is stopping');
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(this.opts.socketPath, { force: true });
  }

  private onConnection(sock: net.Socket): void {
    const reader = new FrameReader();
    let call: Call | undefined;
    let stdin: Readable | undefined;
    sock.on('error', () => {});
    sock.on('data', (chunk: Buffer) => {
      let frames;
      try {
        frames = reader.push(chunk);
      } catch {
        sock.destroy();
        return;
      }
      for (const f of frames) {
        if (!call) {
          if (f.type !== FRAME.header) return void sock.destroy();
          let header: CallHeader;
          try {
            header = parseHeader(f.payload);
          } catch (err) {
            sock.end(Buffer.concat([encodeFrame(FRAME.stderr, `ae-sim tool channel: ${(err as Error).message}\n`), encodeFrame(FRAME.exit, '2')]));
            return;
          }
          call = new Call(sock, header);
          const c = call;
          stdin = new Readable({
            read() {
              if (c.stdinAsked) return;
              c.stdinAsked = true;
              void c.send(FRAME.wantStdin);
            },
          });
          void this.run(call, stdin);
        } else if (f.type === FRAME.stdin) stdin?.push(Buffer.from(f.payload));
        else if (f.type === FRAME.stdinEnd) stdin?.push(null);
      }
    });
    sock.on('close', () => {
      if (!call || call.finished) return;
      // The calling process died (Ctrl-C, kill, its node going down): the handler must stop.
      call.abort.abort(new Error('the calling process went away'));
      stdin?.push(null);
      this.calls.delete(call);
    });
  }

  private async run(call: Call, stdin: Readable): Promise<void> {
    this.calls.add(call);
    const { header } = call;
    const stream = (type: string) =>
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          void call.send(type, chunk).then(() => done());
        },
      });
    const stdout = stream(FRAME.stdout);
    const stderr = stream(FRAME.stderr);
    const ctx: ToolContext = {
      node: this.opts.node,
      world: this.opts.world,
      argv: header.argv,
      cwd: header.cwd,
      env: header.env,
      sudo: header.env.AE_SIM_SUDO === '1',
      stdin,
      stdout,
      stderr,
      signal: call.abort.signal,
    };
    let result: number | typeof DELEGATE = DELEGATE;
    try {
      for (const handler of this.opts.registry.handlers(header.tool)) {
        result = await handler(ctx);
        if (result !== DELEGATE) break;
      }
    } catch (err) {
      if (!call.abort.signal.aborted) stderr.write(`${header.argv[0] ?? header.tool}: ${err instanceof Error ? err.message : String(err)}\n`);
      result = 1;
    }
    this.calls.delete(call);
    if (call.abort.signal.aborted) {
      call.sock.destroy();
      return;
    }
    // Everything the handler wrote goes out before the exit frame.
    await Promise.all([new Promise((r) => stdout.end(r)), new Promise((r) => stderr.end(r))]);
    call.finished = true;
    if (result === DELEGATE) await call.send(FRAME.delegate);
    else await call.send(FRAME.exit, String(exitCode(result)));
    call.sock.end();
  }
}
