import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { utils, type ParsedKey } from 'ssh2';
import { defaultSignHash, withDecodedKey } from '../../activities/ssh/keySign';

/** Keys made by ssh-keygen, parsed twice: once as ssh2 leaves them, once with decoded KeyObjects. */
let dir: string;
const keyFile = (name: string, type: string, bits: number) => {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, '-b', String(bits), '-N', '', '-f', file]);
  return file;
};
const parse = (file: string) => utils.parseKey(fs.readFileSync(file)) as ParsedKey;

const KEYS = [
  { name: 'ed25519', type: 'ed25519', bits: 256, algos: [undefined] },
  { name: 'ecdsa256', type: 'ecdsa', bits: 256, algos: [undefined] },
  { name: 'ecdsa384', type: 'ecdsa', bits: 384, algos: [undefined] },
  { name: 'ecdsa521', type: 'ecdsa', bits: 521, algos: [undefined] },
  { name: 'rsa', type: 'rsa', bits: 2048, algos: [undefined, 'sha256', 'sha512'] },
];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keysign-'));
  for (const k of KEYS) keyFile(k.name, k.type, k.bits);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('defaultSignHash', () => {
  it.each([
    ['ssh-ed25519', null],
    ['ssh-rsa', 'sha1'],
    ['ssh-dss', 'sha1'],
    ['ecdsa-sha2-nistp256', 'sha256'],
    ['ecdsa-sha2-nistp384', 'sha384'],
    ['ecdsa-sha2-nistp521', 'sha512'],
    ['sk-ssh-ed25519@openssh.com', undefined],
    ['', undefined],
    ['toString', undefined],
  ])('%s -> %s', (type, hash) => {
    expect(defaultSignHash(type)).toBe(hash);
  });
});

describe('withDecodedKey', () => {
  const data = randomBytes(300);
  for (const k of KEYS) {
    for (const algo of k.algos) {
      it(`${k.name}${algo ? ` ${algo}` : ''}: signs and verifies exactly like ssh2 itself`, () => {
        const plain = parse(path.join(dir, k.name));
        const decoded = withDecodedKey(parse(path.join(dir, k.name)));
        expect(decoded.sign).not.toBe(plain.sign);
        const ours = decoded.sign(data, algo);
        const theirs = plain.sign(data, algo);
        expect(ours).toBeInstanceOf(Buffer);
        expect(plain.verify(data, ours, algo)).toBe(true);
        expect(decoded.verify(data, theirs, algo)).toBe(true);
        expect(decoded.verify(Buffer.concat([data, Buffer.from('x')]), theirs, algo)).toBe(false);
        // ed25519 and RSA PKCS#1 v1.5 signatures are deterministic: byte for byte the same.
        if (k.type !== 'ecdsa') expect(ours.equals(theirs)).toBe(true);
      });
    }
  }

  it('a public key gets the decoded verify only', () => {
    const pub = utils.parseKey(fs.readFileSync(path.join(dir, 'ed25519.pub'))) as ParsedKey;
    const signature = parse(path.join(dir, 'ed25519')).sign(data);
    const decoded = withDecodedKey(pub);
    expect(decoded.verify(data, signature)).toBe(true);
    expect(decoded.sign(data)).toBeInstanceOf(Error);
  });
});
