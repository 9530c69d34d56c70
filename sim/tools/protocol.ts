/**
 * The tool channel's wire format, between the node-side client (sim/bin/_ctl.js, plain CommonJS:
 * keep the two in step) and the simulator (sim/tools/server.ts), over the node's unix socket.
 *
 * Frames: 1 byte type, 4 bytes big-endian payload length, payload.
 *   client -> sim:  h  header (JSON: {v, tool, argv, cwd, env})  i  stdin bytes  z  stdin EOF
 *   sim -> client:  o  stdout bytes  e  stderr bytes  w  send me your stdin (asked only when the
 *                   handler reads it: a tool that never reads stdin never consumes the caller's)
 *                   x  exit (payload: the code as decimal text)  d  run the real tool instead
 */

export const PROTOCOL_VERSION = 1;

export const FRAME = {
  header: 'h',
  stdin: 'i',
  stdinEnd: 'z',
  stdout: 'o',
  stderr: 'e',
  wantStdin: 'w',
  exit: 'x',
  delegate: 'd',
} as const;

/** Caps a frame so that a confused peer cannot make us buffer without end. */
export const MAX_FRAME = 16 * 1024 * 1024;

export function encodeFrame(type: string, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

/** Splits a byte stream into frames; throws on an oversized frame. */
export class FrameReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): { type: string; payload: Buffer }[] {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    const frames: { type: string; payload: Buffer }[] = [];
    while (this.buf.length >= 5) {
      const len = this.buf.readUInt32BE(1);
      if (len > MAX_FRAME) throw new Error(`tool channel: frame of ${len} bytes is too large`);
      if (this.buf.length < 5 + len) break;
      frames.push({ type: String.fromCharCode(this.buf[0]), payload: this.buf.subarray(5, 5 + len) });
      this.buf = this.buf.subarray(5 + len);
    }
    return frames;
  }
}

export interface CallHeader {
  v: number;
  tool: string;
  argv: string[];
  cwd: string;
  env: Record<string, string>;
}

/** The header, validated; throws with a readable reason. */
export function parseHeader(payload: Buffer): CallHeader {
  const raw = JSON.parse(payload.toString('utf8')) as Partial<CallHeader>;
  if (raw.v !== PROTOCOL_VERSION) throw new Error(`unsupported tool channel version ${String(raw.v)} (expected ${PROTOCOL_VERSION})`);
  if (typeof raw.tool !== 'string' || raw.tool === '') throw new Error('the header names no tool');
  if (!Array.isArray(raw.argv) || raw.argv.length === 0 || !raw.argv.every((a) => typeof a === 'string')) throw new Error('argv must be a non-empty list of strings');
  if (typeof raw.cwd !== 'string' || !raw.cwd.startsWith('/')) throw new Error('cwd must be an absolute path');
  const env: Record<string, string> = {};
  if (raw.env && typeof raw.env === 'object') for (const [k, v] of Object.entries(raw.env)) if (typeof v === 'string') env[k] = v;
  return { v: raw.v, tool: raw.tool, argv: raw.argv, cwd: raw.cwd, env };
}
