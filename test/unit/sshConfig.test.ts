import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileConfigSource } from '../../activities/ssh/configFiles';
import { parseJumpSpec, planRoute } from '../../activities/ssh/route';
import { parseSshConfig, resolveSshConfig, type CommandLineOptions, type LocalContext } from '../../activities/ssh/sshConfig';

/**
 * Every case is resolved by our code and by the real `ssh -G -F <file>` (and, for expanded IdentityFile
 * paths, by `ssh -v` with a no-op ProxyCommand, which prints the identity files it would load).
 */

let dir: string;
/** A fake $HOME for relative Includes (ssh globs "~/.ssh/..." through $HOME). */
let fakeHome: string;
const realHome = os.userInfo().homedir;

interface Case {
  name: string;
  config?: string; // `$DIR` stands for the temp dir; undefined: no config file at all
  host: string;
  cli?: CommandLineOptions;
  /** Resolve relative Includes under the fake $HOME (then `~` in identity paths is not cross-checked). */
  fakeHome?: boolean;
  expect: { hostname?: string; user?: string; port?: number; rawIdentityFiles?: string[]; proxyJump?: string | undefined; proxyCommand?: string };
}

const CASES: Case[] = [
  {
    name: 'a Host alias with HostName, User, Port, IdentityFile',
    config: 'Host node1\n  HostName 10.4.6.15\n  User ae\n  Port 2222\n  IdentityFile ~/.ssh/id_node1\n',
    host: 'node1',
    expect: { hostname: '10.4.6.15', user: 'ae', port: 2222, rawIdentityFiles: ['~/.ssh/id_node1'] },
  },
  {
    name: 'the first obtained value wins across blocks',
    config: 'Host *.lab\n  User first\nHost node*.lab\n  User second\n  Port 2200\nHost *\n  Port 22\n  User third\n',
    host: 'node1.lab',
    expect: { user: 'first', port: 2200, hostname: 'node1.lab' },
  },
  ...[
    ['web1', 'webuser'],
    ['web9', 'other'],
    ['web12', 'other'],
    ['db', 'webuser'],
  ].map(
    ([host, user]): Case => ({
      name: `several patterns, ? and !negation on one Host line: ${host}`,
      config: 'Host web? !web9 db\n  User webuser\nHost *\n  User other\n',
      host,
      expect: { user },
    }),
  ),
  {
    name: 'Host patterns are case-sensitive, HostName is lower-cased',
    config: 'Host node1\n  Port 1111\nHost NODE1\n  HostName Node-%h.Example.ORG\n',
    host: 'NODE1',
    expect: { port: 22, hostname: 'node-node1.example.org' },
  },
  {
    name: 'HostName with %h and %%',
    config: 'Host *.short\n  HostName %h.example.org\n',
    host: 'a.short',
    expect: { hostname: 'a.short.example.org' },
  },
  {
    name: 'command-line values beat the file',
    config: 'Host node1\n  HostName 10.0.0.1\n  User fileuser\n  Port 2222\n  ProxyJump filejump\n  IdentityFile /file/id\n',
    host: 'node1',
    cli: { user: 'cliuser', port: 2022, proxyJump: 'clijump:2200', identityFiles: ['$DIR/cli_id'] },
    expect: { hostname: '10.0.0.1', user: 'cliuser', port: 2022, proxyJump: 'clijump:2200', rawIdentityFiles: ['$DIR/cli_id', '/file/id'] },
  },
  {
    name: 'identity files accumulate, duplicates dropped per origin, tokens expanded',
    config:
      'Host n*\n  HostName real-%h\n  User bob\n  Port 2200\n  IdentityFile ~/.ssh/k_%h_%r_%p_%n_%u_%%\n  IdentityFile %d/.ssh/%i_%l_%L\n' +
      '  IdentityFile ${AE_TEST_KEYDIR}/env_key\n  IdentityFile /abs/one\nHost *\n  IdentityFile /abs/one\n  IdentityFile /abs/two\n',
    host: 'n1',
    cli: { identityFiles: ['$DIR/cli_id'] },
    expect: {
      hostname: 'real-n1',
      rawIdentityFiles: ['$DIR/cli_id', '~/.ssh/k_%h_%r_%p_%n_%u_%%', '%d/.ssh/%i_%l_%L', '${AE_TEST_KEYDIR}/env_key', '/abs/one', '/abs/two'],
    },
  },
  {
    name: 'a ProxyJump list',
    config: 'Host behind\n  ProxyJump none\nHost *\n  ProxyJump bastion,jumper@b2:2022\n',
    host: 'front',
    expect: { proxyJump: 'bastion,jumper@b2:2022' },
  },
  {
    name: 'ProxyJump none stops later ProxyJump lines',
    config: 'Host behind\n  ProxyJump none\nHost *\n  ProxyJump bastion,jumper@b2:2022\n',
    host: 'behind',
    expect: { proxyJump: undefined },
  },
  {
    name: 'ProxyCommand obtained first beats ProxyJump',
    config: 'Host web9\n  ProxyCommand nc %h %p\nHost *\n  ProxyJump jx\n',
    host: 'web9',
    expect: { proxyJump: undefined, proxyCommand: 'nc %h %p' },
  },
  {
    name: 'keyword=value, quotes, tabs, trailing comments, any-case keywords',
    config: '# top comment\nHOST=quoted "with space" q\n\thostname = "10.1.2.3"   # trailing comment\n  PORT\t2200\n  identityfile "/path with space/id"\n',
    host: 'q',
    expect: { hostname: '10.1.2.3', port: 2200, rawIdentityFiles: ['/path with space/id'] },
  },
  {
    name: 'Match all applies to every host',
    config: 'Host other\n  User x\nMatch all\n  User matched\n  Port 2300\n',
    host: 'node1',
    expect: { user: 'matched', port: 2300 },
  },
  {
    name: 'absolute Include with a glob, files in sorted order',
    config: 'Include $DIR/conf.d/*.conf\nHost *\n  Port 7\n',
    host: 'inc',
    expect: { port: 1234, user: 'incuser' },
  },
  {
    name: 'Include inside a non-matching Host block never applies',
    config: 'Host elsewhere\n  Include $DIR/conf.d/b.conf\nHost inc\n  Port 9\n',
    host: 'inc',
    expect: { port: 9 },
  },
  {
    name: 'Include inside a matching Host block applies, and the block resumes after it',
    config: 'Host inc\n  Include $DIR/conf.d/top.conf\n  Port 4321\n',
    host: 'inc',
    expect: { user: 'topuser', port: 4321 },
  },
  {
    name: 'nested Include',
    config: 'Include $DIR/conf.d/nest1.conf\n',
    host: 'deep',
    expect: { user: 'deepuser' },
  },
  {
    name: 'relative Include resolves under ~/.ssh',
    config: 'Include conf.d/*.conf\n',
    host: 'inc',
    fakeHome: true,
    expect: { port: 1234, user: 'incuser' },
  },
  {
    name: 'an Include matching no file is skipped',
    config: 'Include $DIR/none/*.conf\nHost *\n  User afterall\n',
    host: 'x',
    expect: { user: 'afterall' },
  },
  {
    name: 'no config file: defaults',
    host: 'plain.example.org',
    expect: { hostname: 'plain.example.org', port: 22, user: os.userInfo().username, rawIdentityFiles: [] },
  },
];

function sub(s: string): string {
  return s.replace(/\$DIR/g, dir);
}

function cliArgs(cli: CommandLineOptions = {}): string[] {
  return [
    ...(cli.user ? ['-l', cli.user] : []),
    ...(cli.port ? ['-p', String(cli.port)] : []),
    ...(cli.identityFiles ?? []).flatMap((f) => ['-i', sub(f)]),
    ...(cli.proxyJump ? ['-J', cli.proxyJump] : []),
  ];
}

const SSH_DEFAULT_IDENTITIES = ['id_rsa', 'id_ecdsa', 'id_ecdsa_sk', 'id_ed25519', 'id_ed25519_sk', 'id_xmss', 'id_dsa'].map((f) => `~/.ssh/${f}`);

function sshG(configFile: string, c: Case, env: NodeJS.ProcessEnv): Record<string, string[]> {
  const out = execFileSync('ssh', ['-G', '-F', configFile, ...cliArgs(c.cli), c.host], { encoding: 'utf8', env, stdio: ['ignore', 'pipe', 'ignore'] });
  const map: Record<string, string[]> = {};
  for (const line of out.split('\n')) {
    const i = line.indexOf(' ');
    if (i > 0) (map[line.slice(0, i)] ??= []).push(line.slice(i + 1));
  }
  return map;
}

/** The identity files ssh would load, expanded: `ssh -v` prints them before the (no-op) proxy fails. */
function sshIdentityFiles(configFile: string, c: Case, env: NodeJS.ProcessEnv): string[] {
  const r = spawnSync('ssh', ['-v', '-F', configFile, '-o', 'ProxyCommand=true', '-o', 'BatchMode=yes', ...cliArgs(c.cli), c.host, 'true'], { encoding: 'utf8', env });
  return [...r.stderr.matchAll(/^debug1: identity file (.*) type -?\d+$/gm)].map((m) => m[1]).filter((f) => !f.endsWith('-cert'));
}

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sshconfig-'));
  fakeHome = path.join(dir, 'home');
  const confd = path.join(dir, 'conf.d');
  fs.mkdirSync(confd);
  fs.mkdirSync(path.join(fakeHome, '.ssh/conf.d'), { recursive: true });
  for (const d of [confd, path.join(fakeHome, '.ssh/conf.d')]) {
    fs.writeFileSync(path.join(d, 'a.conf'), 'Host inc\n  Port 1234\n');
    fs.writeFileSync(path.join(d, 'b.conf'), 'Host inc\n  Port 5555\n  User incuser\n');
    fs.writeFileSync(path.join(d, '.hidden.conf'), 'Host *\n  User hidden\n');
  }
  fs.writeFileSync(path.join(confd, 'top.conf'), 'User topuser\n');
  fs.writeFileSync(path.join(confd, 'nest1.conf'), `Include ${confd}/nest2.conf\n`);
  fs.writeFileSync(path.join(confd, 'nest2.conf'), 'Host deep\n  User deepuser\n');
  fs.writeFileSync(path.join(dir, 'cli_id'), '');
});

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('resolveSshConfig agrees with ssh -G', () => {
  it.each(CASES.map((c) => [c.name, c] as const))('%s', (_name, c) => {
    const configFile = path.join(dir, `config-${CASES.indexOf(c)}`);
    if (c.config !== undefined) fs.writeFileSync(configFile, sub(c.config));
    const home = c.fakeHome ? fakeHome : realHome;
    const env = { ...process.env, HOME: home, AE_TEST_KEYDIR: path.join(dir, 'keys') };
    const info = os.userInfo();
    const local: LocalContext = { home, user: info.username, uid: info.uid, hostname: os.hostname(), env };
    const cli = c.cli && { ...c.cli, identityFiles: c.cli.identityFiles?.map(sub) };
    const ours = resolveSshConfig(c.host, { configFile, source: fileConfigSource, local, ...(cli ? { cli } : {}) });

    // What the case says...
    const defined = Object.fromEntries(Object.entries(c.expect).filter(([, v]) => v !== undefined));
    const want = { ...defined, ...(c.expect.rawIdentityFiles ? { rawIdentityFiles: c.expect.rawIdentityFiles.map(sub) } : {}) };
    expect(ours).toMatchObject(want);
    if ('proxyJump' in c.expect && c.expect.proxyJump === undefined) expect(ours.proxyJump).toBeUndefined();

    // ...is what ssh says.
    const ssh = sshG(c.config === undefined ? '/dev/null' : configFile, c, env);
    expect(ours.hostname).toBe(ssh.hostname[0]);
    expect(ours.user).toBe(ssh.user[0]);
    expect(ours.port).toBe(Number(ssh.port[0]));
    expect(ours.proxyJump).toBe(ssh.proxyjump?.[0]);
    expect(ours.proxyCommand).toBe(ssh.proxycommand?.[0]);
    expect(ssh.identityfile).toEqual(ours.rawIdentityFiles.length > 0 ? ours.rawIdentityFiles : SSH_DEFAULT_IDENTITIES);
    if (!c.fakeHome && !c.cli?.proxyJump && ours.rawIdentityFiles.length > 0) {
      expect(ours.identityFiles).toEqual(sshIdentityFiles(c.config === undefined ? '/dev/null' : configFile, c, env));
    }
  });
});

describe('errors ssh also reports', () => {
  it.each([
    ['a bad port', 'Host x\n  Port 99999\n', /bad port/],
    ['a port in an inactive block', 'Host other\n  Port 99999\n', /bad port/],
    ['an unterminated quote', 'Host x\n  User "bob\n', /unterminated quote/],
    ['a keyword without argument', 'Host x\n  HostName\n', /no argument/],
    ['an unknown %-token in IdentityFile', 'Host x\n  IdentityFile ~/%Z\n', /unknown or unavailable token "%Z"/],
    ['an unset ${VAR}', 'Host x\n  IdentityFile ${AE_SURELY_UNSET_VAR}/id\n', /AE_SURELY_UNSET_VAR/],
  ])('%s', (_name, config, message) => {
    const file = path.join(dir, 'bad-config');
    fs.writeFileSync(file, config);
    const local: LocalContext = { home: realHome, user: 'me', uid: 0, hostname: 'h', env: {} };
    expect(() => resolveSshConfig('x', { configFile: file, source: fileConfigSource, local })).toThrow(message);
    // ssh -v (not -G: it does not expand IdentityFile) refuses the same file before its key exchange.
    const r = spawnSync('ssh', ['-v', '-F', file, '-o', 'ProxyCommand=true', '-o', 'BatchMode=yes', 'x', 'true'], { encoding: 'utf8' });
    expect(r.stderr).toMatch(/^OpenSSH_/);
    expect(r.stderr).not.toMatch(/Local version string/);
  });

  it('is stricter than ssh about shell characters in HostName', () => {
    const file = path.join(dir, 'bad-hostname');
    fs.writeFileSync(file, 'Host x\n  HostName a;b\n');
    expect(() => resolveSshConfig('x', { configFile: file, source: fileConfigSource, local: { home: realHome, user: 'me' } })).toThrow(/invalid characters/);
  });

  it('refuses an Included file others can write, like ssh', () => {
    const inc = path.join(dir, 'writable-include');
    const file = path.join(dir, 'includes-writable');
    fs.writeFileSync(inc, 'Host x\n  User y\n');
    fs.chmodSync(inc, 0o666);
    fs.writeFileSync(file, `Include ${inc}\n`);
    const local: LocalContext = { home: realHome, user: 'me', env: {} };
    expect(() => resolveSshConfig('x', { configFile: file, source: fileConfigSource, local })).toThrow(/bad owner or permissions/);
    expect(spawnSync('ssh', ['-G', '-F', file, 'x'], { encoding: 'utf8' }).stderr).toMatch(/Bad owner or permissions/);
    // ssh skips this check for the -F file itself; we apply it to the top file too (it decides where we connect).
    fs.chmodSync(file, 0o666);
    expect(() => resolveSshConfig('x', { configFile: file, source: fileConfigSource, local })).toThrow(/bad owner or permissions/);
  });
});

describe('parseSshConfig', () => {
  it('splits keywords and arguments and records where they came from', () => {
    expect(parseSshConfig('Host a b\n  User = "x y" # c\n\n# only a comment\n', 'f')).toEqual([
      { keyword: 'host', args: ['a', 'b'], file: 'f', line: 1 },
      { keyword: 'user', args: ['x y'], file: 'f', line: 2 },
    ]);
  });

  it('notes Match criteria it does not implement and skips their block', () => {
    const file = path.join(dir, 'match-config');
    fs.writeFileSync(file, 'Match host x\n  User matched\n');
    const r = resolveSshConfig('x', { configFile: file, source: fileConfigSource, local: { home: realHome, user: 'me' } });
    expect(r.user).toBe('me');
    expect(r.warnings[0]).toMatch(/Match host x.*not supported/);
  });
});

describe('planRoute (profile values act like ssh -l -p -i -J)', () => {
  const settings = {
    knownHosts: '/dev/null',
    configFile: '',
    connectTimeoutSeconds: 5,
    keepaliveIntervalSeconds: 10,
    keepaliveCountMax: 3,
    maxSessions: 10,
    maxOutputBytes: 1 << 20,
  };
  const local: LocalContext = { home: '/home/me', user: 'me', env: {} };

  it('chains ProxyJump hops, each resolved through the config, the target last', () => {
    const configFile = path.join(dir, 'route-config');
    fs.writeFileSync(configFile, 'Host node*\n  ProxyJump outer,gw\n  User root\nHost gw\n  HostName 10.0.0.1\n  Port 2200\nHost outer\n  HostName outer.example.org\n  User jumper\n');
    const hops = planRoute({ node: 'n1', host: 'node1', port: 2222 }, { ...settings, configFile, identityFile: '/keys/id' }, fileConfigSource, local);
    expect(hops.map((h) => [h.alias, h.hostname, h.port, h.user])).toEqual([
      ['outer', 'outer.example.org', 22, 'jumper'],
      ['gw', '10.0.0.1', 2200, 'me'],
      ['node1', 'node1', 2222, 'root'],
    ]);
    expect(hops.every((h) => h.requiredIdentityFiles[0] === '/keys/id')).toBe(true);
  });

  it('settings.jumpHost beats the config ProxyJump; none disables it', () => {
    const configFile = path.join(dir, 'route-config2');
    fs.writeFileSync(configFile, 'Host node1\n  ProxyJump none\nHost node* bastion\n  ProxyJump fromconfig\n');
    const route = (host: string, jumpHost?: string) =>
      planRoute({ node: 'n1', host }, { ...settings, configFile, ...(jumpHost ? { jumpHost } : {}) }, fileConfigSource, local).map((h) => `${h.user}@${h.hostname}:${h.port}`);
    expect(route('node2')).toEqual(['me@fromconfig:22', 'me@node2:22']);
    expect(route('node1')).toEqual(['me@node1:22']);
    // The jump host itself is resolved through the config like any destination (its own ProxyJump applies).
    expect(route('node1', 'ops@bastion:2022')).toEqual(['me@fromconfig:22', 'ops@bastion:2022', 'me@node1:22']);
  });

  it('stops a ProxyJump loop with a config error naming the node', () => {
    const configFile = path.join(dir, 'route-loop');
    fs.writeFileSync(configFile, 'Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n');
    expect(() => planRoute({ node: 'n7', host: 'a' }, { ...settings, configFile }, fileConfigSource, local)).toThrow(/node n7: .*ProxyJump loop/);
  });

  it('refuses ProxyCommand rather than silently connecting directly', () => {
    const configFile = path.join(dir, 'route-proxycommand');
    fs.writeFileSync(configFile, 'Host *\n  ProxyCommand nc %h %p\n');
    expect(() => planRoute({ node: 'n1', host: 'x' }, { ...settings, configFile }, fileConfigSource, local)).toThrow(/ProxyCommand/);
  });

  it.each([
    ['bastion', { host: 'bastion' }],
    ['ops@bastion', { user: 'ops', host: 'bastion' }],
    ['ops@10.0.0.1:2022', { user: 'ops', host: '10.0.0.1', port: 2022 }],
    ['ssh://ops@bastion:2022', { user: 'ops', host: 'bastion', port: 2022 }],
    ['[fe80::1]:22', { host: 'fe80::1', port: 22 }],
  ])('parseJumpSpec(%j)', (spec, want) => {
    expect(parseJumpSpec(spec)).toEqual(want);
  });

  it.each(['', 'a b', 'host:99999', 'host:', 'u@'])('parseJumpSpec rejects %j', (spec) => {
    expect(() => parseJumpSpec(spec)).toThrow(/bad jump host/);
  });
});
