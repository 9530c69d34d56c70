import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { matchPatternList } from './pattern';

/**
 * OpenSSH known_hosts, pure: parse the text, then judge a presented host key. We only ever trust keys
 * written there (no trust on first use); `@cert-authority` lines are dropped because we do not accept
 * host certificates.
 */

type HostField = { kind: 'patterns'; patterns: string[] } | { kind: 'hashed'; salt: Buffer; hash: Buffer };

export interface KnownHostEntry {
  revoked: boolean;
  hosts: HostField;
  keyType: string;
  key: Buffer;
  /** 1-based line number, for messages. */
  line: number;
}

export type HostKeyStatus = 'match' | 'unknown' | 'changed' | 'revoked';

export interface HostKeyCheck {
  status: HostKeyStatus;
  /** Fingerprint of the presented key, `SHA256:<base64 without padding>` like `ssh-keygen -l`. */
  fingerprint: string;
  keyType: string;
  /** The known_hosts line that matched, conflicted or revoked it. */
  line?: number;
}

/** `SHA256:...` fingerprint of an SSH public key blob, as OpenSSH prints it. */
export function fingerprint(keyBlob: Buffer): string {
  return `SHA256:${createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '')}`;
}

/** The algorithm name a key blob starts with (its first SSH string), or undefined if malformed. */
export function keyTypeOf(keyBlob: Buffer): string | undefined {
  if (keyBlob.length < 4) return undefined;
  const len = keyBlob.readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > keyBlob.length) return undefined;
  return keyBlob.subarray(4, 4 + len).toString('latin1');
}

/** The name known_hosts files use for an endpoint: `host` on port 22, `[host]:port` elsewhere. */
export function knownHostName(host: string, port: number): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

function parseHostField(field: string): HostField | undefined {
  if (field.startsWith('|1|')) {
    const [salt, hash] = field.slice(3).split('|');
    if (!salt || !hash) return undefined;
    const s = Buffer.from(salt, 'base64');
    const h = Buffer.from(hash, 'base64');
    // HMAC-SHA1: 20-byte salt (the key) and 20-byte digest.
    return s.length === 20 && h.length === 20 ? { kind: 'hashed', salt: s, hash: h } : undefined;
  }
  const patterns = field.split(',').filter((p) => p !== '');
  return patterns.length > 0 ? { kind: 'patterns', patterns: patterns.map((p) => p.toLowerCase()) } : undefined;
}

/** Parses known_hosts text. Malformed lines, unknown markers and SSH-1 keys are skipped, as ssh does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const fields = line.split(/[ \t]+/);
    let revoked = false;
    if (fields[0].startsWith('@')) {
      const marker = fields.shift();
      if (marker === '@revoked') revoked = true;
      else return; // @cert-authority (unsupported: no host certificates) or an unknown marker
    }
    const [hostField, keyType, keyB64] = fields;
    if (!hostField || !keyType || !keyB64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(keyB64)) return;
    const hosts = parseHostField(hostField);
    const key = Buffer.from(keyB64, 'base64');
    // The blob names its own type; a line whose two names disagree is corrupt (or an SSH-1 "bits e n" line).
    if (!hosts || keyTypeOf(key) !== keyType) return;
    entries.push({ revoked, hosts, keyType, key, line: i + 1 });
  });
  return entries;
}

function hostMatches(field: HostField, name: string): boolean {
  if (field.kind === 'patterns') return matchPatternList(name, field.patterns);
  const digest = createHmac('sha1', field.salt).update(name).digest();
  return timingSafeEqual(digest, field.hash);
}

/** The (non-revoked) entries that name this endpoint. */
export function entriesFor(entries: readonly KnownHostEntry[], host: string, port: number): KnownHostEntry[] {
  const name = knownHostName(host, port);
  return entries.filter((e) => !e.revoked && hostMatches(e.hosts, name));
}

/** Key types known_hosts holds for this endpoint, so the client can ask the server for one of those first. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  return [...new Set(entriesFor(entries, host, port).map((e) => e.keyType))];
}

/**
 * Judges the key a server presented for `host:port`. A revoked key is refused whatever host its line
 * names (a compromised key is compromised everywhere). Otherwise: some line for this host with this exact
 * key -> match; lines for this host but none with this key -> changed; no line for this host -> unknown.
 */
export function checkHostKey(entries: readonly KnownHostEntry[], host: string, port: number, keyBlob: Buffer): HostKeyCheck {
  const base = { fingerprint: fingerprint(keyBlob), keyType: keyTypeOf(keyBlob) ?? 'unknown' };
  const revoked = entries.find((e) => e.revoked && e.key.equals(keyBlob));
  if (revoked) return { ...base, status: 'revoked', line: revoked.line };
  const forHost = entriesFor(entries, host, port);
  const same = forHost.find((e) => e.key.equals(keyBlob));
  if (same) return { ...base, status: 'match', line: same.line };
  // Prefer reporting the line holding a key of the same type: that is the one that "changed".
  const conflict = forHost.find((e) => e.keyType === base.keyType) ?? forHost[0];
  if (conflict) return { ...base, status: 'changed', line: conflict.line };
  return { ...base, status: 'unknown' };
}
