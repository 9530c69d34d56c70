import { open, stat } from 'node:fs/promises';
import { unwatchFile, watchFile, type Stats } from 'node:fs';
import net from 'node:net';

/**
 * The node's serial port as ipmi_sim sees it: a TCP server on 127.0.0.1 that ipmi_sim connects to
 * (`sol "tcp:127.0.0.1:PORT"`) and relays to whoever runs `ipmitool ... sol activate`.
 *
 * What the node "prints on its serial console" is whatever is appended to `consoleLogFile` after the
 * BMC started (a serial line has no scrollback: like a real SOL session, `sol activate` shows output
 * from the moment it attaches). Bare LF become CRLF, as a serial console sends them. A file that
 * shrinks (a new boot truncating it) is followed from its start again. Keystrokes typed into the SOL
 * session are read and dropped: the simulated nodes have no serial login.
 */
export class SerialConsole {
  private readonly server = net.createServer((sock) => this.attach(sock));
  private readonly sockets = new Set<net.Socket>();
  private offset = 0;
  private reading = false;
  private again = false;
  private lastWasCr = false;
  private closed = false;

  constructor(private readonly logFile: string | undefined) {}

  /** Starts listening; resolves with the TCP port. */
  async start(): Promise<number> {
    if (this.logFile) {
      this.offset = await stat(this.logFile).then(
        (s) => s.size,
        () => 0,
      );
      watchFile(this.logFile, { interval: 100, persistent: false }, this.onChange);
    }
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => resolve());
    });
    return (this.server.address() as net.AddressInfo).port;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.logFile) unwatchFile(this.logFile, this.onChange);
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private attach(sock: net.Socket): void {
    if (this.closed) {
      sock.destroy();
      return;
    }
    this.sockets.add(sock);
    sock.setNoDelay(true);
    sock.on('data', () => undefined);
    sock.on('error', () => undefined);
    sock.on('close', () => this.sockets.delete(sock));
  }

  private readonly onChange = (cur: Stats): void => {
    if (cur.size < this.offset) this.offset = 0;
    if (cur.size === this.offset) return;
    void this.pump();
  };

  private async pump(): Promise<void> {
    if (this.reading) {
      this.again = true;
      return;
    }
    this.reading = true;
    try {
      do {
        this.again = false;
        await this.readNew();
      } while (this.again && !this.closed);
    } finally {
      this.reading = false;
    }
  }

  private async readNew(): Promise<void> {
    if (!this.logFile) return;
    let fh;
    try {
      fh = await open(this.logFile, 'r');
    } catch {
      return;
    }
    try {
      const { size } = await fh.stat();
      if (size < this.offset) this.offset = 0;
      while (this.offset < size && !this.closed) {
        const buf = Buffer.alloc(Math.min(64 * 1024, size - this.offset));
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.offset);
        if (bytesRead === 0) break;
        this.offset += bytesRead;
        this.broadcast(this.toSerial(buf.subarray(0, bytesRead)));
      }
    } finally {
      await fh.close();
    }
  }

  /** LF -> CRLF (an LF already preceded by CR, even across chunks, stays as it is). */
  private toSerial(chunk: Buffer): Buffer {
    const out: number[] = [];
    for (const byte of chunk) {
      if (byte === 0x0a && !this.lastWasCr) out.push(0x0d);
      out.push(byte);
      this.lastWasCr = byte === 0x0d;
    }
    return Buffer.from(out);
  }

  private broadcast(data: Buffer): void {
    for (const s of this.sockets) if (!s.destroyed) s.write(data);
  }
}
