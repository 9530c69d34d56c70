import dgram from 'node:dgram';
import { freshPort } from '../ports';

/**
 * RMCP/ASF presence ping (DMTF ASF 2.0, what `rmcp_ping` and `ipmitool -I lan` send first): the one
 * unauthenticated request an IPMI LAN interface answers. Used to know when ipmi_sim is listening,
 * without a session and without running the chassis-control program.
 */
const ASF_IANA = 4542;
const PING = 0x80;
const PONG = 0x40;

export function presencePing(tag: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt8(0x06, 0); // RMCP version 1.0
  b.writeUInt8(0x00, 1); // reserved
  b.writeUInt8(0xff, 2); // sequence: no RMCP ACK wanted
  b.writeUInt8(0x06, 3); // class: ASF
  b.writeUInt32BE(ASF_IANA, 4);
  b.writeUInt8(PING, 8);
  b.writeUInt8(tag & 0xff, 9);
  b.writeUInt8(0x00, 10); // reserved
  b.writeUInt8(0x00, 11); // data length
  return b;
}

export function isPresencePong(msg: Buffer, tag: number): boolean {
  return msg.length >= 12 && msg[0] === 0x06 && msg[3] === 0x06 && msg.readUInt32BE(4) === ASF_IANA && msg[8] === PONG && msg[9] === (tag & 0xff);
}

/**
 * Pings host:port every `intervalMs` until a pong, `isDone()` (e.g. the server process exited) or the
 * deadline. Resolves true on a pong.
 */
export function waitForPong(host: string, port: number, opts: { timeoutMs: number; intervalMs?: number; isDone?: () => boolean }): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const tag = 0x5a;
    let settled = false;
    const finish = (ok: boolean) => {
      if (settled) return;
      settled = true;
      clearInterval(timer);
      clearTimeout(deadline);
      sock.close();
      resolve(ok);
    };
    const send = () => {
      if (opts.isDone?.()) return finish(false);
      sock.send(presencePing(tag), port, host, () => undefined);
    };
    sock.on('message', (msg) => {
      if (isPresencePong(msg, tag)) finish(true);
    });
    sock.on('error', () => undefined); // ICMP port unreachable while the server is not up yet
    const timer = setInterval(send, opts.intervalMs ?? 50);
    const deadline = setTimeout(() => finish(false), opts.timeoutMs);
    sock.bind(0, '127.0.0.1', send);
  });
}

/** A UDP port on 127.0.0.1 that was free a moment ago (and not handed out before: BMCs start in parallel). */
export function freeUdpPort(): Promise<number> {
  return freshPort(
    () =>
      new Promise((resolve, reject) => {
        const sock = dgram.createSocket('udp4');
        sock.once('error', reject);
        sock.bind(0, '127.0.0.1', () => {
          const { port } = sock.address();
          sock.close(() => resolve(port));
        });
      }),
  );
}
