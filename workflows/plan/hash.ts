/**
 * A stable content hash in pure JS (workflow code has no node:crypto): FNV-1a 64 over the UTF-8 bytes
 * of canonical JSON (object keys sorted, no whitespace). Not a security hash: it names content so
 * that the same plan always gets the same hash and any change gets another.
 */

/** JSON with object keys sorted at every level; `undefined` fields are dropped, as JSON.stringify does. */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const entries = Object.keys(value)
    .sort()
    .filter((k) => (value as Record<string, unknown>)[k] !== undefined)
    .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
  return `{${entries.join(',')}}`;
}

const OFFSET = 0xcbf29ce484222325n;
const PRIME = 0x100000001b3n;
const MASK = 0xffffffffffffffffn;

/** FNV-1a 64 of a string's UTF-8 encoding, as 16 hex digits. */
export function fnv1a64(text: string): string {
  let h = OFFSET;
  const mix = (byte: number) => {
    h = ((h ^ BigInt(byte)) * PRIME) & MASK;
  };
  for (const ch of text) {
    const c = ch.codePointAt(0)!;
    if (c < 0x80) mix(c);
    else if (c < 0x800) {
      mix(0xc0 | (c >> 6));
      mix(0x80 | (c & 0x3f));
    } else if (c < 0x10000) {
      mix(0xe0 | (c >> 12));
      mix(0x80 | ((c >> 6) & 0x3f));
      mix(0x80 | (c & 0x3f));
    } else {
      mix(0xf0 | (c >> 18));
      mix(0x80 | ((c >> 12) & 0x3f));
      mix(0x80 | ((c >> 6) & 0x3f));
      mix(0x80 | (c & 0x3f));
    }
  }
  return h.toString(16).padStart(16, '0');
}
