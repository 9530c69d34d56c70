import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { utils } from 'ssh2';
import { writeFileAtomic } from './state';

export interface KeyPair {
  /** OpenSSH private key. */
  private: string;
  /** `ssh-ed25519 AAAA... comment` */
  public: string;
}

/**
 * The ed25519 key pair at `file` (+ `file.pub`), generated on first use and kept afterwards, so a
 * restarted simulator keeps its host keys (known_hosts stays valid) and its client key.
 */
export function loadOrCreateKeyPair(file: string, comment: string): KeyPair {
  const pubFile = `${file}.pub`;
  if (existsSync(file) && existsSync(pubFile)) {
    const pair = { private: readFileSync(file, 'utf8'), public: readFileSync(pubFile, 'utf8').trim() };
    const priv = utils.parseKey(pair.private);
    const pub = utils.parseKey(pair.public);
    if (!(priv instanceof Error) && !(pub instanceof Error) && priv.type === 'ssh-ed25519' && priv.getPublicSSH().equals(pub.getPublicSSH())) {
      chmodSync(file, 0o600);
      return pair;
    }
  }
  const pair = generateParsable(comment);
  writeFileAtomic(file, pair.private, 0o600);
  writeFileAtomic(pubFile, `${pair.public.trim()}\n`, 0o644);
  return { private: pair.private, public: pair.public.trim() };
}

/**
 * A fresh ed25519 pair that ssh2 can read back: about 1 in 250 of the keys its own
 * generateKeyPairSync makes are refused by its parser ("Malformed OpenSSH private key"), which
 * failed a simulator start now and then.
 */
export function generateParsable(comment = ''): { private: string; public: string } {
  for (let attempt = 0; ; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519', { comment });
    if (!(utils.parseKey(pair.private) instanceof Error) && !(utils.parseKey(pair.public) instanceof Error)) return pair;
    if (attempt >= 20) throw new Error('could not generate a usable ed25519 key pair');
  }
}

/** `ssh-ed25519 AAAA...` without the comment, as known_hosts wants it. */
export function publicKeyBlob(publicLine: string): string {
  return publicLine.trim().split(/\s+/).slice(0, 2).join(' ');
}
