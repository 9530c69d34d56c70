import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { SshSettings } from '../../config/schema';
import {
  HostKeyChangedError,
  HostKeyUnknownError,
  isRetryableSshError,
  SshAuthError,
  SshCommandTimeoutError,
  SshConnectError,
  SshConnectionLostError,
  SshIdentityFileError,
  toActivityFailure,
} from '../../activities/ssh/errors';
import { SshPool, type SshTarget } from '../../activities/ssh/pool';
import { localContext } from '../../activities/ssh/route';
import { startOpensshServer, type OpensshServer } from '../helpers/opensshServer';

/** The SSH layer against a real sshd: every behaviour the worker relies on, end to end. */

let server: OpensshServer;
let dir: string;
let knownHosts: string;
const pools: SshPool[] = [];

/** A pool that ignores any ssh-agent of the person running the tests, so results do not depend on it. */
function newPool(): SshPool {
  const pool = new SshPool(() => ({ ...localContext(), env: { ...process.env, SSH_AUTH_SOCK: undefined } }));
  pools.push(pool);
  return pool;
}

function settings(over: Partial<SshSettings> = {}): SshSettings {
  return {
    identityFile: server.clientKey,
    knownHosts,
    configFile: path.join(dir, 'no-such-config'),
    connectTimeoutSeconds: 5,
    keepaliveIntervalSeconds: 10,
    keepaliveCountMax: 3,
    maxSessions: 10,
    maxOutputBytes: 1024 * 1024,
    ...over,
  };
}

const target = (): SshTarget => ({ node: 'n1', host: '127.0.0.1', port: server.port, user: 'root' });

function acceptedLogins(): number {
  return server.logs().match(/Accepted publickey for root/g)?.length ?? 0;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitFor(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  server = await startOpensshServer();
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ae-ssh-conf-'));
  knownHosts = path.join(dir, 'known_hosts');
  fs.writeFileSync(knownHosts, `${server.knownHostsLine()}\n`);
});

afterAll(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await server?.dispose();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

describe('exec', () => {
  let pool: SshPool;
  beforeAll(() => {
    pool = newPool();
  });

  it('returns stdout and exit code 0', async () => {
    const r = await pool.exec(target(), settings(), 'echo hello');
    expect(r).toMatchObject({ stdout: 'hello\n', stderr: '', exitCode: 0, stdoutTruncated: false, stderrTruncated: false });
    expect(r.durationMs).toBeGreaterThanOrEqual(0);
  });

  it.each([0, 3, 255])('reports exit code %d', async (code) => {
    expect((await pool.exec(target(), settings(), `exit ${code}`)).exitCode).toBe(code);
  });

  it('keeps stderr separate from stdout', async () => {
    const r = await pool.exec(target(), settings(), 'echo out; echo err >&2; exit 1');
    expect(r).toMatchObject({ stdout: 'out\n', stderr: 'err\n', exitCode: 1 });
  });

  it('reports a command killed by a signal', async () => {
    const r = await pool.exec(target(), settings(), 'kill -TERM $$');
    expect(r.exitCode).toBeNull();
    expect(r.signal).toBe('SIGTERM');
  });

  it('caps output in memory but writes all of it to the log file', async () => {
    const logFile = path.join(dir, 'big.log');
    const r = await pool.exec(target(), settings(), 'seq 1 300000; echo tail >&2', { maxOutputBytes: 64 * 1024, logFile });
    const full = execFileSync('seq', ['1', '300000'], { encoding: 'utf8', maxBuffer: 16 << 20 });
    expect(r.stdout).toHaveLength(64 * 1024);
    expect(full.startsWith(r.stdout)).toBe(true);
    expect(r.stdoutTruncated).toBe(true);
    expect(r).toMatchObject({ stderr: 'tail\n', stderrTruncated: false, exitCode: 0 });
    const logged = fs.readFileSync(logFile, 'utf8');
    // stderr's chunk lands somewhere among stdout's; take it out and stdout is intact.
    expect(logged.replace('tail\n', '')).toBe(full);
    expect(fs.statSync(logFile).mode & 0o777).toBe(0o600);
  });

  it('appends to an existing log file', async () => {
    const logFile = path.join(dir, 'append.log');
    fs.writeFileSync(logFile, 'before\n', { mode: 0o600 });
    await pool.exec(target(), settings(), 'echo after', { logFile });
    expect(fs.readFileSync(logFile, 'utf8')).toBe('before\nafter\n');
  });

  it('streams output chunks to onOutput', async () => {
    const seen: string[] = [];
    await pool.exec(target(), settings(), 'echo a; echo b >&2', { onOutput: (chunk, stream) => seen.push(`${stream}:${chunk.toString()}`) });
    expect(seen.sort()).toEqual(['stderr:b\n', 'stdout:a\n']);
  });

  it('feeds stdin, then EOF', async () => {
    expect((await pool.exec(target(), settings(), 'cat', { stdin: 'line1\nline2' })).stdout).toBe('line1\nline2');
    const blob = Buffer.alloc(300 * 1024, 7);
    expect((await pool.exec(target(), settings(), 'wc -c', { stdin: blob })).stdout.trim()).toBe(String(blob.length));
    // Without stdin the command sees EOF at once instead of hanging.
    expect((await pool.exec(target(), settings(), 'cat; echo done', { timeoutMs: 5000 })).stdout).toBe('done\n');
  });

  it('runs an argv exactly, whatever it contains', async () => {
    const nasty = ['', "it's", '"q"', '$(touch /tmp/ae-pwned)', '`id`', 'a\nb', ' sp ', '*', '$HOME', '\\', 'héllo ✓ 🚀', '-n', 'x;y|z&'];
    const r = await pool.exec(target(), settings(), ['printf', '%s\\0', ...nasty]);
    expect(r.stdout.split('\0').slice(0, -1)).toEqual(nasty);
    expect(fs.existsSync('/tmp/ae-pwned')).toBe(false);
  });

  it("reuses one connection for many commands, concurrent ones included (more than sshd's 10 sessions)", async () => {
    const p = newPool();
    await p.exec(target(), settings(), 'true');
    await p.exec(target(), settings(), 'true');
    expect(p.connectionsOpened('n1')).toBe(1);
    const fresh = newPool();
    const results = await Promise.all(Array.from({ length: 15 }, (_, i) => fresh.exec(target(), settings(), `echo ${i}; sleep 0.2`)));
    expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 15 }, (_, i) => `${i}\n`));
    expect(fresh.connectionsOpened('n1')).toBe(1);
  });
});

describe('host keys', () => {
  const hostFingerprint = () => execFileSync('ssh-keygen', ['-lf', path.join(server.dir, 'host_ed25519.pub')], { encoding: 'utf8' }).split(' ')[1];

  it('refuses an unknown host key before running anything', async () => {
    const empty = path.join(dir, 'known_hosts.empty');
    fs.writeFileSync(empty, '');
    const marker = path.join(dir, 'ran-unknown');
    const pool = newPool();
    const logins = acceptedLogins();
    const err = await pool.exec(target(), settings({ knownHosts: empty }), ['touch', marker]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyUnknownError);
    const e = err as HostKeyUnknownError;
    expect(e).toMatchObject({ node: 'n1', host: '127.0.0.1', port: server.port, fingerprint: hostFingerprint() });
    expect(e.message).toContain('node n1');
    expect(e.message).toContain(hostFingerprint());
    expect(e.message).toContain(`ssh-keyscan -p ${server.port} 127.0.0.1 >> ${empty}`);
    expect(fs.existsSync(marker)).toBe(false);
    expect(pool.connectionsOpened('n1')).toBe(0);
    expect(acceptedLogins()).toBe(logins); // no credential was ever sent
    const failure = toActivityFailure(err);
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'HostKeyUnknownError', nonRetryable: true });
  });

  it('treats a missing known_hosts file as knowing nothing', async () => {
    const err = await newPool().exec(target(), settings({ knownHosts: path.join(dir, 'absent') }), 'true').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyUnknownError);
  });

  it('refuses a changed host key', async () => {
    const other = path.join(dir, 'other_host_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
    const changed = path.join(dir, 'known_hosts.changed');
    fs.writeFileSync(changed, `[127.0.0.1]:${server.port} ${fs.readFileSync(`${other}.pub`, 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    const marker = path.join(dir, 'ran-changed');
    const err = await newPool().exec(target(), settings({ knownHosts: changed }), ['touch', marker]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyChangedError);
    expect((err as HostKeyChangedError).message).toMatch(/HOST KEY CHANGED.*line 1/);
    expect((err as HostKeyChangedError).fingerprint).toBe(hostFingerprint());
    expect(fs.existsSync(marker)).toBe(false);
    expect(toActivityFailure(err)).toMatchObject({ type: 'HostKeyChangedError', nonRetryable: true });
  });
});

describe('credentials', () => {
  it('fails authentication with a key the server does not know, non-retryably', async () => {
    const stranger = path.join(dir, 'stranger_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
    const err = await newPool().exec(target(), settings({ identityFile: stranger }), 'true').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshAuthError);
    expect(isRetryableSshError(err)).toBe(false);
    expect(toActivityFailure(err)).toMatchObject({ type: 'SshAuthError', nonRetryable: true });
  });

  it('names a missing identity file from the profile', async () => {
    const err = await newPool().exec(target(), settings({ identityFile: path.join(dir, 'nope') }), 'true').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshIdentityFileError);
    expect(toActivityFailure(err)).toMatchObject({ type: 'SshIdentityFileError', nonRetryable: true });
  });

  it('refuses a private key others can read', async () => {
    const loose = path.join(dir, 'loose_key');
    fs.copyFileSync(server.clientKey, loose);
    fs.chmodSync(loose, 0o644);
    const err = await newPool().exec(target(), settings({ identityFile: loose }), 'true').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshIdentityFileError);
    expect((err as Error).message).toMatch(/too open/);
  });
  // Parsed keys are kept (with their decoded signer) while the file is unchanged: each key type must
  // still sign in to a real sshd, from the first connection and from later ones.
  it.each([
    ['rsa', '3072'],
    ['ecdsa', '256'],
    ['ecdsa', '384'],
    ['ecdsa', '521'],
  ])('signs in with a %s-%s identity file, again on a new connection', async (type, bits) => {
    const key = path.join(dir, `client_${type}${bits}`);
    execFileSync('ssh-keygen', ['-q', '-t', type, '-b', bits, '-N', '', '-f', key]);
    fs.appendFileSync(path.join(server.dir, 'authorized_keys'), fs.readFileSync(`${key}.pub`));
    for (const pool of [newPool(), newPool()]) {
      expect((await pool.exec(target(), settings({ identityFile: key }), 'echo in')).stdout).toBe('in\n');
    }
  });

  it('reads an identity file again once it is replaced', async () => {
    const key = path.join(dir, 'replaced_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
    expect(await newPool().exec(target(), settings({ identityFile: key }), 'true').catch((e: unknown) => e)).toBeInstanceOf(SshAuthError);
    fs.copyFileSync(server.clientKey, key);
    expect((await newPool().exec(target(), settings({ identityFile: key }), 'echo in')).stdout).toBe('in\n');
  });
});

describe('connection failures', () => {
  it('a refused connection is a retryable SshConnectError', async () => {
    const err = await newPool().exec({ ...target(), port: 1 }, settings(), 'true').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshConnectError);
    expect((err as SshConnectError).code).toBe('ECONNREFUSED');
    expect(isRetryableSshError(err)).toBe(true);
    expect(toActivityFailure(err)).toBe(err);
  });

  it('a connection dropped mid-command rejects with SshConnectionLostError, and the next call reconnects', async () => {
    const pool = newPool();
    let started!: () => void;
    const sawStart = new Promise<void>((r) => (started = r));
    const running = pool.exec(target(), settings(), 'echo started; sleep 20; echo finished', {
      onOutput: (chunk) => chunk.toString().includes('started') && started(),
    });
    const outcome = running.then(
      (r) => ({ ok: true as const, r }),
      (e: unknown) => ({ ok: false as const, e }),
    );
    await sawStart;
    await server.dropConnections();
    const res = await outcome;
    expect(res.ok).toBe(false);
    expect(!res.ok && res.e).toBeInstanceOf(SshConnectionLostError);
    expect(!res.ok && isRetryableSshError(res.e)).toBe(true);
    expect((await pool.exec(target(), settings(), 'echo again')).stdout).toBe('again\n');
    expect(pool.connectionsOpened('n1')).toBe(2);
  });

  it('reconnects after sshd restarts on the same port', async () => {
    const pool = newPool();
    expect((await pool.exec(target(), settings(), 'echo before')).stdout).toBe('before\n');
    await server.restart();
    expect((await pool.exec(target(), settings(), 'echo after')).stdout).toBe('after\n');
    expect(pool.connectionsOpened('n1')).toBe(2);
  });
});

describe('timeouts and aborts', () => {
  it('timeoutMs kills a long command and its process', async () => {
    const pidFile = path.join(dir, 'sleep.pid');
    const t0 = Date.now();
    const err = await newPool()
      .exec(target(), settings(), `echo $$ > ${pidFile}; exec sleep 30`, { timeoutMs: 1500 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshCommandTimeoutError);
    expect(Date.now() - t0).toBeLessThan(5000);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    await waitFor(() => !isAlive(pid)); // sshd delivered our KILL to the command's process group
  });

  it('an aborted signal stops the command and rejects with its reason', async () => {
    const ctl = new AbortController();
    const reason = new Error('operator cancelled');
    setTimeout(() => ctl.abort(reason), 300);
    await expect(newPool().exec(target(), settings(), 'sleep 30', { signal: ctl.signal })).rejects.toBe(reason);
    const already = new AbortController();
    already.abort(reason);
    await expect(newPool().exec(target(), settings(), 'true', { signal: already.signal })).rejects.toBe(reason);
  });
});

describe('session limit (sshd MaxSessions 3)', () => {
  let limited: OpensshServer;
  const at = (): SshTarget => ({ node: 'n3', host: '127.0.0.1', port: limited.port, user: 'root' });
  beforeAll(async () => {
    limited = await startOpensshServer({ extraConfig: ['MaxSessions 3'] });
    fs.appendFileSync(knownHosts, `${limited.knownHostsLine()}\n`);
  });
  afterAll(async () => {
    await limited?.dispose();
  });

  /** Eight commands at once, each noting how many of them were running when it started. */
  async function eightAtOnce(pool: SshPool, maxSessions: number): Promise<number[]> {
    const running = fs.mkdtempSync(path.join(dir, 'running-'));
    const results = await Promise.all(
      Array.from({ length: 8 }, (_, i) => pool.exec(at(), settings({ identityFile: limited.clientKey, maxSessions }), `touch ${running}/${i}; ls ${running} | wc -l; sleep 0.3; rm ${running}/${i}`)),
    );
    expect(results.map((r) => r.exitCode)).toEqual(Array(8).fill(0));
    return results.map((r) => Number(r.stdout));
  }

  it('runs more commands than the server allows sessions, two at a time (one session kept for a kill), on one connection', async () => {
    const pool = newPool();
    const concurrent = await eightAtOnce(pool, 3);
    expect(Math.max(...concurrent)).toBe(2);
    expect(pool.connectionsOpened('n3')).toBe(1);
  });

  it('finds out a server limit lower than the profile says and keeps to it', async () => {
    const pool = newPool();
    const concurrent = await eightAtOnce(pool, 10);
    // The first refusal came with 3 open: from then on, 2 at a time.
    expect(Math.max(...concurrent)).toBeLessThanOrEqual(3);
    expect(pool.connectionsOpened('n3')).toBe(1);
    expect(Math.max(...(await eightAtOnce(pool, 10)))).toBe(2);
  });

  it("kills a timed-out command's processes while the other sessions are busy", async () => {
    const pool = newPool();
    const pidFile = path.join(dir, 'limited-sleep.pid');
    const s = settings({ identityFile: limited.clientKey, maxSessions: 3 });
    const busy = pool.exec(at(), s, 'sleep 2');
    const err = await pool.exec(at(), s, `echo $$ > ${pidFile}; exec sleep 30`, { timeoutMs: 800 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SshCommandTimeoutError);
    const pid = Number(fs.readFileSync(pidFile, 'utf8'));
    await waitFor(() => !isAlive(pid), 3000);
    expect((await busy).exitCode).toBe(0);
  });

  it('kills every command that times out at once, taking turns on the one free session', async () => {
    const pool = newPool();
    const s = settings({ identityFile: limited.clientKey, maxSessions: 3 });
    const pidFiles = [0, 1].map((i) => path.join(dir, `limited-both-${i}.pid`));
    const errs = await Promise.all(pidFiles.map((f) => pool.exec(at(), s, `echo $$ > ${f}; exec sleep 30`, { timeoutMs: 800 }).catch((e: unknown) => e)));
    expect(errs.every((e) => e instanceof SshCommandTimeoutError)).toBe(true);
    const pids = pidFiles.map((f) => Number(fs.readFileSync(f, 'utf8')));
    await waitFor(() => pids.every((pid) => !isAlive(pid)), 5000);
  });

  it("a command's timeout covers its wait for a session", async () => {
    const pool = newPool();
    const s = settings({ identityFile: limited.clientKey, maxSessions: 3 });
    const long = [pool.exec(at(), s, 'sleep 1.5'), pool.exec(at(), s, 'sleep 1.5')];
    const t0 = Date.now();
    await expect(pool.exec(at(), s, 'true', { timeoutMs: 400 })).rejects.toBeInstanceOf(SshCommandTimeoutError);
    expect(Date.now() - t0).toBeLessThan(1200);
    expect((await Promise.all(long)).map((r) => r.exitCode)).toEqual([0, 0]);
    // The queue did not keep the timed-out one: the next command runs as soon as a session frees.
    expect((await pool.exec(at(), s, 'echo ok')).stdout).toBe('ok\n');
  });
});

describe('ssh_config', () => {
  function writeConfig(name: string, body: string): string {
    const file = path.join(dir, name);
    fs.writeFileSync(file, body, { mode: 0o600 });
    return file;
  }

  it('honours HostName, Port, User and IdentityFile for a Host alias', async () => {
    const configFile = writeConfig('config.alias', `Host cfg-alias\n  HostName 127.0.0.1\n  Port ${server.port}\n  User root\n  IdentityFile ${server.clientKey}\n`);
    const pool = newPool();
    const r = await pool.exec({ node: 'nc', host: 'cfg-alias' }, settings({ configFile, identityFile: undefined }), 'echo $USER');
    expect(r.stdout).toBe('root\n');
    // Control: the same alias without the Port line goes to port 22, where nothing listens for us.
    const noPort = writeConfig('config.noport', `Host cfg-alias\n  HostName 127.0.0.1\n  Port 1\n  IdentityFile ${server.clientKey}\n`);
    await expect(newPool().exec({ node: 'nc', host: 'cfg-alias' }, settings({ configFile: noPort, identityFile: undefined }), 'true')).rejects.toBeInstanceOf(SshConnectError);
    // Control: without IdentityFile (and no default keys, no agent) there is nothing to authenticate with.
    const noKey = writeConfig('config.nokey', `Host cfg-alias\n  HostName 127.0.0.1\n  Port ${server.port}\n  User root\n`);
    const home = path.join(dir, 'empty-home');
    const isolated = new SshPool(() => ({ ...localContext(), home, env: {} }));
    pools.push(isolated);
    await expect(isolated.exec({ node: 'nc', host: 'cfg-alias' }, settings({ configFile: noKey, identityFile: undefined }), 'true')).rejects.toBeInstanceOf(SshAuthError);
  });

  it('goes through a ProxyJump host (the same sshd, reached through itself)', async () => {
    const configFile = writeConfig(
      'config.jump',
      `Host jump\n  HostName 127.0.0.1\n  Port ${server.port}\n  User root\n  IdentityFile ${server.clientKey}\n` +
        `Host behind\n  HostName 127.0.0.1\n  Port ${server.port}\n  User root\n  IdentityFile ${server.clientKey}\n  ProxyJump jump\n`,
    );
    const pool = newPool();
    const s = settings({ configFile, identityFile: undefined });
    expect((await pool.exec({ node: 'nj', host: 'behind' }, s, 'echo via-jump')).stdout).toBe('via-jump\n');
    expect((await pool.exec({ node: 'nj', host: 'behind' }, s, 'echo again')).stdout).toBe('again\n');
    expect(pool.connectionsOpened('nj')).toBe(1);
    expect(pool.connectionsOpened()).toBe(2); // the jump connection plus the tunnelled one
    // The tunnelled session's TCP peer is sshd itself (the jump session forwarding), not this process.
    const clientPort = (await pool.exec({ node: 'nj', host: 'behind' }, s, 'echo $SSH_CLIENT')).stdout.split(' ')[1];
    const owner = execFileSync('ss', ['-tnpH', `( sport = :${clientPort} )`], { encoding: 'utf8' });
    expect(owner).toMatch(/"sshd"/);
    expect(owner).not.toContain(`pid=${process.pid},`);
  });

  it('settings.jumpHost works like ssh -J', async () => {
    const configFile = writeConfig('config.jumphost', `Host j\n  HostName 127.0.0.1\n  Port ${server.port}\n  User root\n`);
    const pool = newPool();
    const r = await pool.exec(target(), settings({ configFile, jumpHost: 'root@j' }), 'echo jumped');
    expect(r.stdout).toBe('jumped\n');
    expect(pool.connectionsOpened()).toBe(2);
  });

  it('refuses the target host key through a jump just like directly', async () => {
    const configFile = writeConfig('config.jumpkey', `Host j\n  HostName 127.0.0.1\n  Port ${server.port}\n  User root\n`);
    const known = path.join(dir, 'known_hosts.jumponly');
    // The jump endpoint is known under another name; the target's name is not in the file at all.
    fs.writeFileSync(known, `${server.knownHostsLine()}\n`);
    const err = await newPool()
      .exec({ node: 'n2', host: 'localhost', port: server.port }, settings({ configFile, jumpHost: 'root@j', knownHosts: known }), 'true')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(HostKeyUnknownError);
    expect((err as HostKeyUnknownError).host).toBe('localhost');
  });
});

describe('close', () => {
  it('closes every connection and refuses new work', async () => {
    const pool = newPool();
    await pool.exec(target(), settings(), 'true');
    await pool.close();
    await expect(pool.exec(target(), settings(), 'true')).rejects.toThrow(/closed/);
  });
});
