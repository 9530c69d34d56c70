import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import type { ParsedKey } from 'ssh2';

/**
 * ssh2 signs and verifies with a key's PEM text, which OpenSSL 3 decodes again for every operation
 * (0.7 ms to sign with an ed25519 key, 15 times the signature itself; 0.26 ms to verify, twice the
 * check). Decoded once into KeyObjects, every handshake after the first saves that. Used by the
 * client (identity files) and by the simulator's SSH servers (host keys, the authorized key).
 */

/** The hash ssh2 signs with when the caller names none (keyParser.js), per key type; undefined: a type we leave to ssh2. */
export function defaultSignHash(keyType: string): string | null | undefined {
  switch (keyType) {
    case 'ssh-ed25519':
      return null;
    case 'ssh-rsa':
    case 'ssh-dss':
      return 'sha1';
    case 'ecdsa-sha2-nistp256':
      return 'sha256';
    case 'ecdsa-sha2-nistp384':
      return 'sha384';
    case 'ecdsa-sha2-nistp521':
      return 'sha512';
    default:
      return undefined;
  }
}

/** Makes `key` sign (if private) and verify with KeyObjects decoded once; types ssh2 alone knows are left as they are. */
export function withDecodedKey(key: ParsedKey): ParsedKey {
  const hash = defaultSignHash(key.type);
  if (hash === undefined) return key;
  const publicKey = createPublicKey(key.getPublicPEM());
  // ssh2 reports a failure as a returned Error (its typings leave that out).
  key.verify = (data, signature, algo) => {
    try {
      return verify(algo || hash, Buffer.from(data), publicKey, signature);
    } catch (err) {
      return err as boolean;
    }
  };
  if (!key.isPrivateKey()) return key;
  const privateKey = createPrivateKey(key.getPrivatePEM());
  key.sign = (data, algo) => {
    try {
      return sign(algo || hash, Buffer.from(data), privateKey);
    } catch (err) {
      return err as Buffer;
    }
  };
  return key;
}
