import { randomBytes } from 'node:crypto';
import net from 'node:net';

/**
 * The guest's tool channel: the imitation tools inside the guest (bin/_shim -> bin/_guestctl.js)
 * connect to an abstract unix socket (the guest shares this machine's network namespace, so no
 * file has to be shared; the name carries a random part) and send one JSON line:
 * {tool, args, cwd, pid, ppid} with guest pids. The simulator answers with frames
 * `type (1 byte) | length (4 bytes BE) | payload`: o = stdout, e = stderr, x = exit code,
 * d = delegate ({path, args}: the client runs that real tool instead). The client dying (kill,
 * Ctrl-C, the SSH session closing) aborts the call's signal.
 */

export interface GuestToolCall {
  tool: string;
  args: string[];
  cwd: string;
  /** Guest pid of the calling process (the tool itself: shims exec the client). */
  pid: number;
  ppid: number;
  stdout: { write(data: string | Buffer): void };
  stderr: { write(data: string | Buffer): void };
  signal: AbortSignal;
}

export type GuestToolResult = number | { delegate: string; args: string[] };
export type GuestToolHandler = (call: GuestToolCall) => Promise<GuestToolResult>;

const MAX_HEADER = 256 * 1024;

function frame(type: string, payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

export class GuestChannel {
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    /** Abstract socket name, without the leading NUL. */
    readonly name: string,
  ) {}

  static listen(handler: GuestToolHandler): Promise<GuestChannel> {
    const name = `ae-sim-guest-${process.pid}-${randomBytes(8).toString('hex')}`;
    const server = net.createServer();
    const channel = new GuestChannel(server, name);
    server.on('connection', (socket) => channel.serve(socket, handler));
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: `\0${name}` }, () => {
        server.off('error', reject);
        server.on('error', () => {});
        resolve(channel);
      });
    });
  }

  private serve(socket: net.Socket, handler: GuestToolHandler): void {
    this.sockets.add(socket);
    const abort = new AbortController();
    socket.on('error', () => {});
    socket.once('close', () => {
      this.sockets.delete(socket);
      abort.abort(new Error('the calling process went away'));
    });
    let head = '';
    const onData = (d: Buffer) => {
      head += d.toString('utf8');
      const nl = head.indexOf('\n');
      if (nl < 0) {
        if (head.length > MAX_HEADER) socket.destroy();
        return;
      }
      socket.off('data', onData);
      let call: Pick<GuestToolCall, 'tool' | 'args' | 'cwd' | 'pid' | 'ppid'>;
      try {
        call = JSON.parse(head.slice(0, nl)) as typeof call;
      } catch {
        socket.destroy();
        return;
      }
      const send = (type: string) => (data: string | Buffer) => {
        if (!socket.destroyed) socket.write(frame(type, data));
      };
      const stdout = { write: send('o') };
      const stderr = { write: send('e') };
      handler({ ...call, args: Array.isArray(call.args) ? call.args.map(String) : [], stdout, stderr, signal: abort.signal })
        .catch((err: Error) => {
          stderr.write(`${call.tool}: ${err.message}\n`);
          return 1;
        })
        .then((result) => {
          if (socket.destroyed) return;
          if (typeof result === 'number') socket.end(frame('x', String(result)));
          else socket.end(frame('d', JSON.stringify({ path: result.delegate, args: result.args })));
        })
        .catch(() => {});
    };
    socket.on('data', onData);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
