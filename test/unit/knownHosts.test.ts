import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { checkHostKey, entriesFor, fingerprint, keyTypeOf, knownHostName, knownKeyTypes, parseKnownHosts, type HostKeyStatus } from '../../activities/ssh/knownHosts';

interface Key {
  line: string; // "type base64"
  blob: Buffer;
  keygenFingerprint: string;
}

let dir: string;
const keys: Record<'ed1' | 'ed2' | 'ec' | 'rsa' | 'revoked', Key> = {} as never;

function makeKey(name: string, type: string, bits?: number): Key {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', type, ...(bits ? ['-b', String(bits)] : []), '-N', '', '-C', name, '-f', file]);
  const [keyType, b64] = fs.readFileSync(`${file}.pub`, 'utf8').trim().split(' ');
  // `256 SHA256:... comment (ED25519)`: the second field is the fingerprint.
  const keygenFingerprint = execFileSync('ssh-keygen', ['-lf', `${file}.pub`], { encoding: 'utf8' }).split(' ')[1];
  return { line: `${keyType} ${b64}`, blob: Buffer.from(b64, 'base64'), keygenFingerprint };
}

/** known_hosts lines `ssh-keygen -F name` reports for the host, markers excluded. */
function keygenFind(file: string, name: string): number[] {
  const r = spawnSync('ssh-keygen', ['-F', name, '-f', file], { encoding: 'utf8' });
  return [...r.stdout.matchAll(/^# Host .* found: line (\d+) ?(\S*)$/gm)].filter((m) => m[2] === '').map((m) => Number(m[1]));
}

let plainFile: string;
let hashedFile: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'knownhosts-'));
  keys.ed1 = makeKey('ed1', 'ed25519');
  keys.ed2 = makeKey('ed2', 'ed25519');
  keys.ec = makeKey('ec', 'ecdsa', 256);
  keys.rsa = makeKey('rsa', 'rsa', 2048);
  keys.revoked = makeKey('revoked', 'ed25519');

  plainFile = path.join(dir, 'known_hosts');
  fs.writeFileSync(
    plainFile,
    [
      '# a comment, then a blank line',
      '',
      `alpha ${keys.ed1.line} alpha's key`,
      `beta,gamma.example.org,10.0.0.7 ${keys.ed1.line}`,
      `[alpha]:2222 ${keys.ed2.line}`,
      `[delta]:2200,delta ${keys.ec.line}`,
      `*.wild.test,!bad.wild.test ${keys.ed2.line}`,
      `@revoked * ${keys.revoked.line}`,
      `@cert-authority *.ca.test ${keys.ed1.line}`,
      `epsilon ${keys.rsa.line}`,
      `   indented.test ${keys.ed2.line}`,
      `broken ssh-ed25519 not-base64!`,
      `mismatch ssh-rsa ${keys.ed1.line.split(' ')[1]}`,
      `sshone 1024 35 1234567`,
      `@bogus-marker alpha ${keys.ed2.line}`,
    ].join('\n'),
  );

  // Hashed entries made by the real tool (it leaves wildcard lines alone, so give it only plain names).
  hashedFile = path.join(dir, 'known_hosts.hashed');
  fs.writeFileSync(hashedFile, [`alpha ${keys.ed1.line}`, `[alpha]:2222 ${keys.ed2.line}`, `hashed.test ${keys.ec.line}`, `[hashed.test]:2022 ${keys.ed2.line}`].join('\n') + '\n');
  execFileSync('ssh-keygen', ['-H', '-f', hashedFile], { stdio: 'ignore' });
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

// `line` is always given (null for none): jest would pass its `done` callback in a missing last slot.
type Case = [host: string, port: number, key: keyof typeof keys, status: HostKeyStatus, line: number | null];

const PLAIN_CASES: Case[] = [
  ['alpha', 22, 'ed1', 'match', 3],
  ['ALPHA', 22, 'ed1', 'match', 3],
  ['alpha', 22, 'ed2', 'changed', 3],
  ['alpha', 2222, 'ed2', 'match', 5],
  ['alpha', 2222, 'ed1', 'changed', 5],
  ['alpha', 2200, 'ed1', 'unknown', null],
  ['beta', 22, 'ed1', 'match', 4],
  ['gamma.example.org', 22, 'ed1', 'match', 4],
  ['10.0.0.7', 22, 'ed1', 'match', 4],
  ['10.0.0.7', 2222, 'ed1', 'unknown', null],
  ['delta', 22, 'ec', 'match', 6],
  ['delta', 2200, 'ec', 'match', 6],
  ['delta', 22, 'ed1', 'changed', 6],
  ['x.wild.test', 22, 'ed2', 'match', 7],
  ['a.b.wild.test', 22, 'ed2', 'match', 7],
  ['bad.wild.test', 22, 'ed2', 'unknown', null],
  ['wild.test', 22, 'ed2', 'unknown', null],
  ['alpha', 22, 'revoked', 'revoked', 8],
  ['nowhere.test', 22, 'revoked', 'revoked', 8],
  ['host.ca.test', 22, 'ed1', 'unknown', null],
  ['epsilon', 22, 'rsa', 'match', 10],
  ['epsilon', 22, 'ed1', 'changed', 10],
  ['indented.test', 22, 'ed2', 'match', 11],
  ['broken', 22, 'ed1', 'unknown', null],
  ['mismatch', 22, 'ed1', 'unknown', null],
  ['sshone', 22, 'ed1', 'unknown', null],
];

const HASHED_CASES: Case[] = [
  ['alpha', 22, 'ed1', 'match', 1],
  ['Alpha', 22, 'ed1', 'match', 1],
  ['alpha', 22, 'ec', 'changed', 1],
  ['alpha', 2222, 'ed2', 'match', 2],
  ['hashed.test', 22, 'ec', 'match', 3],
  ['hashed.test', 22, 'ed1', 'changed', 3],
  ['hashed.test', 2022, 'ed2', 'match', 4],
  ['hashed.test', 2023, 'ed2', 'unknown', null],
  ['other.test', 22, 'ed1', 'unknown', null],
];

describe.each([
  ['plain', () => plainFile, PLAIN_CASES],
  ['hashed by ssh-keygen -H', () => hashedFile, HASHED_CASES],
])('checkHostKey on a %s known_hosts', (_kind, file, cases) => {
  it.each(cases)('%s port %d with key %s -> %s', (host, port, key, status, line) => {
    const entries = parseKnownHosts(fs.readFileSync(file(), 'utf8'));
    const check = checkHostKey(entries, host, port, keys[key].blob);
    expect(check.status).toBe(status);
    expect(check.fingerprint).toBe(keys[key].keygenFingerprint);
    expect(check.line ?? null).toBe(line);
    // The lines we consider "for this host" are exactly the ones `ssh-keygen -F` finds, markers aside and
    // among lines with a parseable key (-F matches names only; ssh itself skips lines with a broken key).
    const valid = new Set(entries.map((e) => e.line));
    const found = keygenFind(file(), knownHostName(host, port)).filter((l) => valid.has(l));
    expect(entriesFor(entries, host, port).map((e) => e.line)).toEqual(found);
  });
});

describe('parseKnownHosts', () => {
  it('keeps valid entries, drops comments, cert authorities, unknown markers and malformed lines', () => {
    const entries = parseKnownHosts(fs.readFileSync(plainFile, 'utf8'));
    expect(entries.map((e) => e.line)).toEqual([3, 4, 5, 6, 7, 8, 10, 11]);
    expect(entries.filter((e) => e.revoked).map((e) => e.line)).toEqual([8]);
  });

  it('accepts CRLF line endings', () => {
    const text = `alpha ${keys.ed1.line}\r\nbeta ${keys.ed2.line}\r\n`;
    expect(checkHostKey(parseKnownHosts(text), 'beta', 22, keys.ed2.blob).status).toBe('match');
  });

  it('treats an empty file as knowing nothing', () => {
    expect(checkHostKey(parseKnownHosts(''), 'alpha', 22, keys.ed1.blob)).toMatchObject({ status: 'unknown', keyType: 'ssh-ed25519' });
  });
});

describe('helpers', () => {
  it.each(['ed1', 'ec', 'rsa'] as const)('fingerprint(%s) equals ssh-keygen -lf', (k) => {
    expect(fingerprint(keys[k].blob)).toBe(keys[k].keygenFingerprint);
  });

  it('reads the key type from the blob', () => {
    expect(keyTypeOf(keys.ed1.blob)).toBe('ssh-ed25519');
    expect(keyTypeOf(keys.ec.blob)).toBe('ecdsa-sha2-nistp256');
    expect(keyTypeOf(keys.rsa.blob)).toBe('ssh-rsa');
    expect(keyTypeOf(Buffer.from([0, 0, 0, 99, 1]))).toBeUndefined();
  });

  it.each([
    ['Node1', 22, 'node1'],
    ['node1', 2222, '[node1]:2222'],
    ['10.4.6.15', 22, '10.4.6.15'],
  ] as const)('knownHostName(%s, %d) = %s', (host, port, name) => {
    expect(knownHostName(host, port)).toBe(name);
  });

  it('lists the key types known for a host (for host key algorithm preference)', () => {
    const entries = parseKnownHosts(fs.readFileSync(plainFile, 'utf8'));
    expect(knownKeyTypes(entries, 'delta', 22)).toEqual(['ecdsa-sha2-nistp256']);
    expect(knownKeyTypes(entries, 'nowhere', 22)).toEqual([]);
  });
});
