import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The `sha256=<hex>` signature GitHub sends in X-Hub-Signature-256 (and we send in X-Signature-256):
 * HMAC-SHA256 of the exact bytes of the body, keyed with the shared secret.
 */
export function signatureHeader(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** Constant-time equality; unequal lengths are refused first (timingSafeEqual throws on them). */
function sameBytes(given: string, expected: string): boolean {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Whether `header` is the signature of `body` under `secret`. */
export function validSignature(secret: string, body: Buffer, header: string | undefined): boolean {
  return header !== undefined && sameBytes(header, signatureHeader(secret, body));
}

/** Whether `Authorization` is `Bearer <secret>`. */
export function validBearer(secret: string, header: string | undefined): boolean {
  const m = /^Bearer (.+)$/.exec(header ?? '');
  return m !== null && sameBytes(m[1], secret);
}
