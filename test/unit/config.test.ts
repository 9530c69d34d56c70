import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { z } from 'zod';
import { InvalidConfigError, describeInput, describeZodError, issuePath, profileErrorMap } from '../../config/errors';
import { availableProfiles, loadProfile, parseProfile, resolveProfileFile } from '../../config/load';
import { clustersDir, simStateDir } from '../../config/paths';

const FIXTURES = path.join(__dirname, '..', 'fixtures', 'profiles');
const ECHO_FILE = path.join(clustersDir(), 'echo.yaml');
const SIM_TEMPLATE = path.join(clustersDir(), 'sim.yaml');
const HOME = os.homedir();

/** The error parseProfile/loadProfile threw, checked to be an InvalidConfigError. */
function configError(fn: () => unknown): InvalidConfigError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidConfigError);
    return err as InvalidConfigError;
  }
  throw new Error('expected an InvalidConfigError, but nothing was thrown');
}

// A fresh, mutable copy of the echo profile as plain data: the base of the invalid cases.
type Data = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const echoData = (): Data => parseYaml(readFileSync(ECHO_FILE, 'utf8')) as Data;

describe('shipped profiles', () => {
  it.each(['echo.yaml', 'fox.yaml', 'sim.yaml'])('%s starts with the yaml-language-server schema line', (file) => {
    const first = readFileSync(path.join(clustersDir(), file), 'utf8').split('\n')[0];
    expect(first).toBe('# yaml-language-server: $schema=../profile.schema.json');
  });

  it('lists echo and fox, not the sim template', () => {
    expect(availableProfiles()).toEqual(expect.arrayContaining(['echo', 'fox']));
    expect(availableProfiles()).not.toContain('sim');
  });

  it('loads echo: the paper testbed, in node-id order, origin first', () => {
    const { profile, file, hash } = loadProfile('echo', {});
    expect(file).toBe(ECHO_FILE);
    expect(hash).toMatch(/^[0-9a-f]{64}$/);
    expect(profile.name).toBe('echo');
    expect(profile.simulated).toBe(false);
    expect(profile.nodes.map((n) => [n.name, n.host, n.rdmaIp, n.origin])).toEqual([
      ['echo5', 'echo5', '10.4.6.15', true],
      ['echo4', 'echo4', '10.4.6.14', false],
      ['echo0', 'echo0', '10.4.6.10', false],
      ['echo1', 'echo1', '10.4.6.11', false],
    ]);
    for (const n of profile.nodes) {
      expect(n.user).toBe('root');
      expect(n.bmc).toEqual({ host: `${n.name}-ipmi`, port: 623, user: 'ADMIN', passwordEnv: `${n.name.toUpperCase()}_BMC_PASSWORD` });
    }
    expect(profile.guest).toEqual({ ip: '10.4.4.222', hostIp: '10.4.4.221', mac: '00:11:22:33:44:55', ssh: { host: '10.4.4.222', port: 22, user: 'root' } });
    expect(profile.paths.kernelTree.startsWith(`${profile.paths.fragvisor}/`)).toBe(true);
    expect(profile.ssh.knownHosts).toBe(path.join(HOME, '.ssh', 'known_hosts'));
    expect(profile.ssh.configFile).toBe(path.join(HOME, '.ssh', 'config'));
    // A kernel build takes tens of minutes at -j16: its timeout must allow that, and be the longest build step.
    expect(profile.timeouts.kernelBuild).toBeGreaterThanOrEqual(3600);
    expect(profile.timeouts.kernelBuild).toBeGreaterThan(profile.timeouts.kernelInstall);
    expect(profile.timeouts.vmBoot).toBeGreaterThanOrEqual(300);
  });

  it('loads fox: the second cluster', () => {
    const { profile } = loadProfile('fox', {});
    expect(profile.nodes.map((n) => n.rdmaIp)).toEqual(['10.4.6.35', '10.4.6.36', '10.4.6.30', '10.4.6.33']);
    expect(profile.nodes[0].origin).toBe(true);
  });

  it('the sim template validates on its own; its relative SSH files resolve against its directory', () => {
    const { profile } = loadProfile(SIM_TEMPLATE, {});
    expect(profile.name).toBe('sim');
    expect(profile.simulated).toBe(true);
    expect(profile.nodes.map((n) => [n.name, n.host, n.port, n.user, n.rdmaIp, n.origin])).toEqual([
      ['node0', '127.0.0.1', 2201, 'ae', '10.4.6.10', true],
      ['node1', '127.0.0.1', 2202, 'ae', '10.4.6.11', false],
      ['node2', '127.0.0.1', 2203, 'ae', '10.4.6.12', false],
      ['node3', '127.0.0.1', 2204, 'ae', '10.4.6.13', false],
    ]);
    expect(profile.paths).toEqual({
      fragvisor: '/home/ae/FragVisor',
      kernelTree: '/home/ae/FragVisor/fragvisor-linux',
      kvmtool: '/home/ae/fragvisor-kvmtool',
      ramdisks: '/home/ae/ramdisks',
    });
    expect(profile.guest).toEqual({ ip: '10.4.4.222', hostIp: '10.4.4.221', mac: '00:11:22:33:44:55', ssh: { host: '127.0.0.1', port: 2222, user: 'root' } });
    expect(profile.ssh.identityFile).toBe(path.join(clustersDir(), 'id_ed25519'));
    expect(profile.ssh.knownHosts).toBe(path.join(clustersDir(), 'known_hosts'));
    expect(profile.ssh.configFile).toBe(path.join(clustersDir(), 'ssh_config'));
    // Simulated steps take seconds: every timeout is shorter than the real cluster's.
    const echo = loadProfile('echo', {}).profile.timeouts;
    for (const [step, seconds] of Object.entries(profile.timeouts)) expect(seconds).toBeLessThanOrEqual(echo[step as keyof typeof echo]);
  });
});

describe('the `sim` cluster is the profile the running sim generated', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ae-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('loads DIR/cluster.yaml and resolves its relative SSH files against DIR', () => {
    writeFileSync(path.join(dir, 'cluster.yaml'), readFileSync(SIM_TEMPLATE, 'utf8'));
    const env = { AE_SIM_STATE_DIR: dir };
    expect(resolveProfileFile('sim', env)).toBe(path.join(dir, 'cluster.yaml'));
    const { profile, file } = loadProfile('sim', env);
    expect(file).toBe(path.join(dir, 'cluster.yaml'));
    expect(profile.ssh.identityFile).toBe(path.join(dir, 'id_ed25519'));
    expect(profile.ssh.knownHosts).toBe(path.join(dir, 'known_hosts'));
    expect(profile.ssh.configFile).toBe(path.join(dir, 'ssh_config'));
  });

  it('says how to start the sim when it is not running', () => {
    const err = configError(() => loadProfile('sim', { AE_SIM_STATE_DIR: dir }));
    expect(err.message).toContain(path.join(dir, 'cluster.yaml'));
    expect(err.message).toMatch(/simulated cluster is not running: start the local stack with `npm start`/);
  });
});

describe('defaults and local paths', () => {
  it('applies every default to a minimal profile', () => {
    const { profile } = loadProfile(path.join(FIXTURES, 'minimal.yaml'), {});
    expect(profile.simulated).toBe(false);
    expect(profile.nodes[1].origin).toBe(false);
    expect(profile.nodes[0].port).toBeUndefined();
    expect(profile.nodes[0].user).toBeUndefined();
    expect(profile.nodes[1].bmc?.port).toBe(623);
    expect(profile.guest.ssh).toEqual({ host: '10.4.4.222', port: 22, user: 'root' });
    expect(profile.ssh).toEqual({
      identityFile: path.join(FIXTURES, 'keys', 'id_ed25519'),
      knownHosts: path.resolve(FIXTURES, '..', 'known_hosts'),
      configFile: path.join(HOME, '.ssh', 'config'),
      connectTimeoutSeconds: 20,
      keepaliveIntervalSeconds: 10,
      keepaliveCountMax: 3,
      maxSessions: 10,
      maxOutputBytes: 1024 * 1024,
    });
    expect(profile.timeouts).toEqual({
      probe: 300,
      kernelBuild: 4 * 3600,
      kernelInstall: 1800,
      reboot: 900,
      messagingLayer: 300,
      vmBoot: 600,
      benchmark: 7200,
      operator: 86400,
    });
  });

  it('fills the rest of a partial ssh or timeouts section', () => {
    const data = echoData();
    data.ssh = { connectTimeoutSeconds: 5 };
    data.timeouts = { kernelBuild: 3600 };
    const { profile } = parseProfile(stringifyYaml(data), 'partial.yaml', '/base');
    expect(profile.ssh.connectTimeoutSeconds).toBe(5);
    expect(profile.ssh.keepaliveCountMax).toBe(3);
    expect(profile.ssh.knownHosts).toBe(path.join(HOME, '.ssh', 'known_hosts'));
    expect(profile.timeouts.kernelBuild).toBe(3600);
    expect(profile.timeouts.vmBoot).toBe(600);
  });

  it.each([
    { given: '~/.ssh/id_ed25519', expected: path.join(HOME, '.ssh', 'id_ed25519') },
    { given: '/etc/ae/id_ed25519', expected: '/etc/ae/id_ed25519' },
    { given: 'id_ed25519', expected: '/profiles/dir/id_ed25519' },
    { given: 'keys/id_ed25519', expected: '/profiles/dir/keys/id_ed25519' },
    { given: '../keys/id_ed25519', expected: '/profiles/keys/id_ed25519' },
  ])('resolves identityFile $given against the profile dir and ~', ({ given, expected }) => {
    const data = echoData();
    data.ssh.identityFile = given;
    expect(parseProfile(stringifyYaml(data), 'x.yaml', '/profiles/dir').profile.ssh.identityFile).toBe(expected);
  });

  it('hashes the normalised profile: comments and key order do not matter, values do', () => {
    const text = readFileSync(ECHO_FILE, 'utf8');
    const a = parseProfile(text, 'a.yaml', '/x').hash;
    expect(parseProfile(`# another comment\n${text}`, 'b.yaml', '/x').hash).toBe(a);
    const data = echoData();
    data.timeouts.vmBoot = 601;
    expect(parseProfile(stringifyYaml(data), 'c.yaml', '/x').hash).not.toBe(a);
  });
});

describe('cluster references', () => {
  it('maps names to config/clusters, `sim` to the sim state dir, .yaml paths to themselves', () => {
    expect(resolveProfileFile('echo', {})).toBe(ECHO_FILE);
    expect(resolveProfileFile('sim', { AE_SIM_STATE_DIR: '/tmp/s' })).toBe('/tmp/s/cluster.yaml');
    expect(resolveProfileFile('sim', {})).toBe(path.join(simStateDir({}), 'cluster.yaml'));
    expect(resolveProfileFile('./my-cluster.yaml', {})).toBe(path.resolve('my-cluster.yaml'));
    expect(resolveProfileFile('/abs/c.yml', {})).toBe('/abs/c.yml');
  });

  it.each(['../../etc/passwd', 'echo; reboot', '$(id)', 'echo cluster', ''])('rejects %j: neither a profile name nor a .yaml path', (ref) => {
    const err = configError(() => loadProfile(ref, {}));
    expect(err.message).toContain(`cluster: ${JSON.stringify(ref)} is neither a profile name`);
    expect(err.message).toContain(clustersDir());
    expect(err.message).toMatch(/expected one of echo, fox, sim/);
  });

  it('an unknown profile name says where profiles live and which exist', () => {
    const err = configError(() => loadProfile('nosuchcluster', {}));
    expect(err.message).toContain(`no profile at ${path.join(clustersDir(), 'nosuchcluster.yaml')}`);
    expect(err.message).toContain(`profiles live in ${clustersDir()}`);
    expect(err.message).toMatch(/expected one of echo, fox, sim \(.*"sim" is the simulated cluster the local stack runs\)/);
  });

  it('a missing .yaml path is reported as such', () => {
    expect(configError(() => loadProfile('/nonexistent/c.yaml', {})).message).toContain('no profile at /nonexistent/c.yaml');
  });

  it('a directory named like a profile is not a profile', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ae-dir-'));
    try {
      const fake = path.join(dir, 'x.yaml');
      mkdirSync(fake);
      expect(configError(() => loadProfile(fake, {})).message).toContain(`${fake} is not a file`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

interface InvalidCase {
  name: string;
  /** Change the echo profile (data), or give the whole text. */
  mutate?: (p: Data) => void;
  text?: string;
  /** The field path the problem line must start with, e.g. `nodes[0].port`. */
  at: string;
  /** What the rest of that line must say. */
  says: RegExp;
  /** A value that must not appear anywhere in the error (secrets). */
  secret?: string;
}

const invalid: InvalidCase[] = [
  { name: 'no origin', mutate: (p) => (p.nodes[0].origin = false), at: 'nodes', says: /^expected exactly one node with `origin: true`.*none of echo5, echo4, echo0, echo1 has it/ },
  { name: 'two origins', mutate: (p) => (p.nodes[2].origin = true), at: 'nodes[2].origin', says: /^expected exactly one origin node; echo5 \(nodes\[0\]\) and echo0 \(nodes\[2\]\) are marked origin/ },
  {
    name: 'origin not first',
    mutate: (p) => {
      p.nodes[0].origin = false;
      p.nodes[1].origin = true;
    },
    at: 'nodes[1].origin',
    says: /^expected the origin to be the first node: node id = position in `nodes`.*move echo4 to the top/,
  },
  { name: 'duplicate node name', mutate: (p) => (p.nodes[2].name = 'echo5'), at: 'nodes[2].name', says: /^duplicate name "echo5" \(also nodes\[0\]\)/ },
  { name: 'duplicate rdmaIp', mutate: (p) => (p.nodes[3].rdmaIp = '10.4.6.14'), at: 'nodes[3].rdmaIp', says: /^duplicate rdmaIp "10.4.6.14" \(also nodes\[1\]\)/ },
  { name: 'duplicate SSH endpoint', mutate: (p) => (p.nodes[1].host = 'echo5'), at: 'nodes[1].host', says: /^duplicate SSH endpoint "echo5" \(also nodes\[0\]\)/ },
  { name: 'rdmaIp with 3 parts', mutate: (p) => (p.nodes[1].rdmaIp = '10.4.6'), at: 'nodes[1].rdmaIp', says: /^expected an IPv4 address like 10\.4\.6\.15 .*, got string "10\.4\.6"$/ },
  { name: 'rdmaIp out of range', mutate: (p) => (p.nodes[0].rdmaIp = '300.1.1.1'), at: 'nodes[0].rdmaIp', says: /^expected an IPv4 address .*0\.\.255.*, got string "300\.1\.1\.1"$/ },
  { name: 'rdmaIp a YAML number', text: readFileSync(ECHO_FILE, 'utf8').replace('rdmaIp: 10.4.6.14', 'rdmaIp: 10.4'), at: 'nodes[1].rdmaIp', says: /^expected an IPv4 address like 10\.4\.6\.15 \(a string\), got number 10\.4$/ },
  { name: 'host an invalid IP', mutate: (p) => (p.nodes[0].host = '300.1.1.1'), at: 'nodes[0].host', says: /^expected a host name .* or an IPv4 address .*, got string "300\.1\.1\.1"$/ },
  { name: 'name with ;', mutate: (p) => (p.nodes[0].name = 'echo5;reboot'), at: 'nodes[0].name', says: /^expected a node name like echo5: a letter, then letters, digits, "-" or "_" .*no spaces or shell characters.*, got string "echo5;reboot"$/ },
  { name: 'host with $()', mutate: (p) => (p.nodes[1].host = '$(id)'), at: 'nodes[1].host', says: /^expected a host name .*shell characters, got string "\$\(id\)"$/ },
  { name: 'host with user@', mutate: (p) => (p.nodes[1].host = 'root@echo4'), at: 'nodes[1].host', says: /without user@, :port.*, got string "root@echo4"$/ },
  { name: 'user with ;', mutate: (p) => (p.nodes[2].user = 'root;reboot'), at: 'nodes[2].user', says: /^expected a Unix user name like root or ae .*, got string "root;reboot"$/ },
  { name: 'path with backticks', mutate: (p) => (p.paths.fragvisor = '/root/`reboot`'), at: 'paths.fragvisor', says: /^expected a path of letters, digits, "\/" and _ \. \+ @ - only \(no spaces, quotes or shell characters\), got string "\/root\/`reboot`"$/ },
  { name: 'path with a space', mutate: (p) => (p.paths.kernelTree = '/root/Frag Visor/linux'), at: 'paths.kernelTree', says: /^expected a path of letters, digits.*no spaces.*, got string "\/root\/Frag Visor\/linux"$/ },
  { name: 'path with $()', mutate: (p) => (p.paths.ramdisks = '/nfs/$(id)'), at: 'paths.ramdisks', says: /^expected a path of letters, digits.*shell characters\), got string "\/nfs\/\$\(id\)"$/ },
  { name: 'path with ..', mutate: (p) => (p.paths.kvmtool = '/nfs/../etc'), at: 'paths.kvmtool', says: /^expected a path without "\.\." segments .*, got string "\/nfs\/\.\.\/etc"$/ },
  { name: 'path ending in ..', mutate: (p) => (p.paths.kvmtool = '/nfs/..'), at: 'paths.kvmtool', says: /^expected a path without "\.\." segments/ },
  { name: 'relative remote path', mutate: (p) => (p.paths.fragvisor = 'FragVisor'), at: 'paths.fragvisor', says: /^expected an absolute path starting with "\/" .*, got string "FragVisor"$/ },
  { name: '~ remote path', mutate: (p) => (p.paths.fragvisor = '~/FragVisor'), at: 'paths.fragvisor', says: /^expected an absolute path starting with "\/" \(a relative or ~ path depends on the remote shell/ },
  { name: 'local path with a space', mutate: (p) => (p.ssh.identityFile = '~/my key'), at: 'ssh.identityFile', says: /^expected a file path of .*no spaces or shell characters\), got string "~\/my key"$/ },
  { name: 'jump host that is an ssh option', mutate: (p) => (p.ssh.jumpHost = '-oProxyCommand=reboot'), at: 'ssh.jumpHost', says: /^expected \[user@\]host\[:port\] or an ssh_config alias, got string/ },
  { name: 'MAC with 5 pairs', mutate: (p) => (p.guest.mac = '00:11:22:33:44'), at: 'guest.mac', says: /^expected a MAC address like 00:11:22:33:44:55 .*, got string "00:11:22:33:44"$/ },
  { name: 'MAC with bad hex', mutate: (p) => (p.guest.mac = '00:11:22:33:44:GG'), at: 'guest.mac', says: /^expected a MAC address like 00:11:22:33:44:55/ },
  { name: 'guest IP = host tap IP', mutate: (p) => (p.guest.hostIp = '10.4.4.222'), at: 'guest.hostIp', says: /^expected the host tap IP to differ from the guest IP \(both are 10\.4\.4\.222\)$/ },
  { name: 'port 0', mutate: (p) => (p.nodes[0].port = 0), at: 'nodes[0].port', says: /^expected a TCP port of at least 1, got number 0$/ },
  { name: 'port 70000', mutate: (p) => (p.nodes[1].port = 70000), at: 'nodes[1].port', says: /^expected a TCP port of at most 65535, got number 70000$/ },
  { name: 'port "22"', mutate: (p) => (p.nodes[0].port = '22'), at: 'nodes[0].port', says: /^expected a number \(a TCP port, 1\.\.65535\), got string "22"$/ },
  { name: 'port 22.5', mutate: (p) => (p.guest.ssh.port = 22.5), at: 'guest.ssh.port', says: /^expected a whole number \(a TCP port\), got number 22\.5$/ },
  { name: 'BMC port 0', mutate: (p) => (p.nodes[3].bmc.port = 0), at: 'nodes[3].bmc.port', says: /^expected a TCP port of at least 1/ },
  {
    name: 'typo rdma_ip',
    mutate: (p) => {
      p.nodes[1].rdma_ip = p.nodes[1].rdmaIp;
      delete p.nodes[1].rdmaIp;
    },
    at: 'nodes[1].rdma_ip',
    says: /^unknown field \(did you mean "rdmaIp"\?\); expected only name, host, port, user, rdmaIp, origin, bmc$/,
  },
  { name: 'typo at the top level', mutate: (p) => (p.timeout = {}), at: 'timeout', says: /^unknown field \(did you mean "timeouts"\?\)/ },
  { name: 'unrelated unknown field', mutate: (p) => (p.guest.vlan = 12), at: 'guest.vlan', says: /^unknown field; expected only ip, hostIp, mac, ssh$/ },
  {
    name: 'BMC with a literal password',
    mutate: (p) => (p.nodes[0].bmc.password = 'Sup3rSecret'),
    at: 'nodes[0].bmc.password',
    says: /^a secret never goes in a profile: remove it, put the secret in an environment variable and name that variable in `passwordEnv`/,
    secret: 'Sup3rSecret',
  },
  {
    name: 'BMC password instead of passwordEnv',
    mutate: (p) => {
      p.nodes[1].bmc.password = 'Sup3rSecret';
      delete p.nodes[1].bmc.passwordEnv;
    },
    at: 'nodes[1].bmc.password',
    says: /^a secret never goes in a profile/,
    secret: 'Sup3rSecret',
  },
  {
    name: 'passwordEnv holding a password',
    mutate: (p) => (p.nodes[0].bmc.passwordEnv = 'hunter2!'),
    at: 'nodes[0].bmc.passwordEnv',
    says: /^expected the NAME of an environment variable that holds the secret .*never the secret itself, got something else \(value not shown\)$/,
    secret: 'hunter2!',
  },
  { name: 'passwordEnv with $', mutate: (p) => (p.nodes[0].bmc.passwordEnv = '$ECHO5_BMC_PASSWORD'), at: 'nodes[0].bmc.passwordEnv', says: /^expected the NAME of an environment variable .*no "\$"/ },
  { name: 'BMC user with ;', mutate: (p) => (p.nodes[2].bmc.user = 'ADMIN;id'), at: 'nodes[2].bmc.user', says: /^expected a BMC user name like ADMIN .*, got string "ADMIN;id"$/ },
  { name: 'negative timeout', mutate: (p) => (p.timeouts.kernelBuild = -60), at: 'timeouts.kernelBuild', says: /^expected the kernel build timeout greater than 0 seconds, got number -60$/ },
  { name: 'zero timeout', mutate: (p) => (p.timeouts.vmBoot = 0), at: 'timeouts.vmBoot', says: /^expected the VM boot timeout greater than 0 seconds, got number 0$/ },
  { name: 'absurd timeout', mutate: (p) => (p.timeouts.probe = 1e9), at: 'timeouts.probe', says: /^expected the probe timeout of at most 86400 seconds \(24 h\), got number 1000000000$/ },
  { name: 'infinite timeout', text: readFileSync(ECHO_FILE, 'utf8').replace(/operator: \d+/, 'operator: .inf'), at: 'timeouts.operator', says: /^expected the operator wait deadline in seconds \(a number\), got number Infinity$/ },
  { name: 'timeout with a unit', mutate: (p) => (p.timeouts.kernelBuild = '2h'), at: 'timeouts.kernelBuild', says: /^expected the kernel build timeout in seconds \(a number\), got string "2h"$/ },
  { name: 'SSH connect timeout too long', mutate: (p) => (p.ssh.connectTimeoutSeconds = 3600), at: 'ssh.connectTimeoutSeconds', says: /^expected the SSH connect timeout of at most 600 seconds \(10 min\), got number 3600$/ },
  { name: 'keepalive count 0', mutate: (p) => (p.ssh.keepaliveCountMax = 0), at: 'ssh.keepaliveCountMax', says: /^expected a keepalive count of at least 1, got number 0$/ },
  { name: 'no SSH sessions', mutate: (p) => (p.ssh.maxSessions = 0), at: 'ssh.maxSessions', says: /^expected a session count of at least 1, got number 0$/ },
  { name: 'origin: yes', mutate: (p) => (p.nodes[0].origin = 'yes'), at: 'nodes[0].origin', says: /^expected true or false, got string "yes"$/ },
  { name: 'simulated: 1', mutate: (p) => (p.simulated = 1), at: 'simulated', says: /^expected true or false, got number 1$/ },
  { name: 'missing rdmaIp', mutate: (p) => delete p.nodes[2].rdmaIp, at: 'nodes[2].rdmaIp', says: /^missing: expected an IPv4 address like 10\.4\.6\.15/ },
  { name: 'missing guest', mutate: (p) => delete p.guest, at: 'guest', says: /^missing: expected the guest VM: a mapping with ip, hostIp, mac and ssh$/ },
  { name: 'missing name', mutate: (p) => delete p.name, at: 'name', says: /^missing: expected a profile name like echo/ },
  { name: 'empty nodes', mutate: (p) => (p.nodes = []), at: 'nodes', says: /^expected at least one node \(the origin first\), got an empty list$/ },
  { name: 'nodes as a mapping', mutate: (p) => (p.nodes = { echo5: { host: 'echo5' } }), at: 'nodes', says: /^expected a list of nodes .*, got a mapping$/ },
  { name: 'a node that is a string', mutate: (p) => (p.nodes[3] = 'echo1'), at: 'nodes[3]', says: /^expected a node: a mapping with name, host and rdmaIp, got string "echo1"$/ },
  { name: 'paths as a list', mutate: (p) => (p.paths = ['/root/FragVisor']), at: 'paths', says: /^expected the remote paths: a mapping .*, got a list$/ },
  { name: 'description too long', mutate: (p) => (p.description = 'x'.repeat(501)), at: 'description', says: /^expected a description of at most 500 characters, got string "x{60}\.\.\."$/ },
  { name: 'not YAML at all', text: 'name: [echo\n  nodes: {{{\n', at: 'x.yaml', says: /^not valid YAML: .*at line \d+, column \d+/s },
  { name: 'duplicate YAML keys', text: 'name: echo\nname: fox\n', at: 'x.yaml', says: /^not valid YAML: Map keys must be unique at line 2/ },
  { name: 'YAML that is a list', text: '- name: echo5\n- name: echo4\n', at: '(top level)', says: /^expected a cluster profile: a YAML mapping with name, nodes, paths and guest, got a list$/ },
  { name: 'YAML that is a string', text: 'just some words\n', at: '(top level)', says: /^expected a cluster profile: .*, got string "just some words"$/ },
  { name: 'empty file', text: '# nothing but a comment\n', at: '(top level)', says: /^expected a cluster profile: .*, got an empty document$/ },
];

describe('invalid profiles: each problem names the field and what was expected', () => {
  it.each(invalid)('$name -> $at', ({ mutate, text, at, says, secret }) => {
    let yamlText = text;
    if (yamlText === undefined) {
      const data = echoData();
      mutate!(data);
      yamlText = stringifyYaml(data);
    }
    const err = configError(() => parseProfile(yamlText, 'x.yaml', '/base'));
    expect(err.message.startsWith('x.yaml:')).toBe(true);
    // A problem line (or, for YAML syntax errors, the message itself) is `<at>: <what was expected>`.
    const lines = err.problems.length > 0 ? err.problems : [err.message];
    const line = lines.find((l) => l.startsWith(`${at}: `));
    if (line === undefined) throw new Error(`no problem at ${at}; got:\n${lines.join('\n')}`);
    expect(line.slice(at.length + 2)).toMatch(says);
    if (err.problems.length > 0) expect(err.message).toContain(line);
    if (secret) {
      expect(err.message).not.toContain(secret);
      expect(JSON.stringify(err)).not.toContain(secret);
    }
  });

  it('empty nodes is one problem, not also "no origin"', () => {
    const data = echoData();
    data.nodes = [];
    expect(configError(() => parseProfile(stringifyYaml(data), 'x.yaml', '/')).problems).toEqual(['nodes: expected at least one node (the origin first), got an empty list']);
  });

  it('reports every problem at once, one line each', () => {
    const data = echoData();
    data.nodes[0].port = '22';
    data.nodes[1].rdma_ip = '10.4.6.14';
    data.guest.mac = 'nope';
    const { problems } = configError(() => parseProfile(stringifyYaml(data), 'x.yaml', '/'));
    expect(problems).toEqual([
      'nodes[0].port: expected a number (a TCP port, 1..65535), got string "22"',
      'nodes[1].rdma_ip: unknown field (did you mean "rdmaIp"?); expected only name, host, port, user, rdmaIp, origin, bmc',
      'guest.mac: expected a MAC address like 00:11:22:33:44:55 (six hex pairs separated by ":"), got string "nope"',
    ]);
  });

  it.each([
    { file: 'bmc-password.yaml', at: 'nodes[0].bmc.password', says: /^a secret never goes in a profile/ },
    { file: 'list.yaml', at: '(top level)', says: /got a list$/ },
    { file: 'not-yaml.yaml', at: path.join(FIXTURES, 'not-yaml.yaml'), says: /^not valid YAML/ },
  ])('fixture $file is rejected at $at', ({ file, at, says }) => {
    const err = configError(() => loadProfile(path.join(FIXTURES, file), {}));
    expect(err.message.startsWith(`${path.join(FIXTURES, file)}:`)).toBe(true);
    const line = [...err.problems, err.message].find((l) => l.startsWith(`${at}: `));
    expect(line?.slice(at.length + 2)).toMatch(says);
    expect(err.message).not.toContain('Sup3rSecret');
  });
});

describe('describeZodError renders zod 4 issues', () => {
  const lines = (schema: z.ZodType, input: unknown, withMap = false) => {
    const r = schema.safeParse(input, withMap ? { error: profileErrorMap } : undefined);
    if (r.success) throw new Error('expected a failure');
    return describeZodError(r.error);
  };

  it.each([
    { name: 'invalid_type, stock message', schema: z.object({ a: z.number() }), input: { a: 'x' }, expected: ['a: expected a number'] },
    { name: 'invalid_type with the parse-time map', schema: z.object({ a: z.number() }), input: { a: 'x' }, withMap: true, expected: ['a: expected a number, got string "x"'] },
    { name: 'missing field with the map', schema: z.object({ a: z.object({ b: z.string() }) }), input: { a: {} }, withMap: true, expected: ['a.b: missing: expected a string'] },
    { name: 'wrong container', schema: z.object({ a: z.array(z.string()) }), input: { a: {} }, withMap: true, expected: ['a: expected a list, got a mapping'] },
    { name: 'unrecognized_keys, one line per key', schema: z.strictObject({ a: z.string() }), input: { a: 'x', b: 1, 'c d': 2 }, expected: ['b: unknown field: check the spelling or remove it', '["c d"]: unknown field: check the spelling or remove it'] },
    { name: 'too_small on a list', schema: z.object({ xs: z.array(z.string()).min(2) }), input: { xs: ['a'] }, expected: ['xs: expected at least 2 item(s)'] },
    { name: 'too_big on a number', schema: z.object({ n: z.number().max(5) }), input: { n: 6 }, expected: ['n: expected a value of at most 5'] },
    { name: 'too_small exclusive', schema: z.number().positive(), input: -1, expected: ['(top level): expected a value greater than 0'] },
    { name: 'invalid_value', schema: z.object({ e: z.enum(['a', 'b']) }), input: { e: 'c' }, expected: ['e: expected one of "a", "b"'] },
    { name: 'custom keeps its message', schema: z.object({ a: z.string().refine((s) => s === 'ok', 'expected ok') }), input: { a: 'no' }, expected: ['a: expected ok'] },
    { name: 'regex without message', schema: z.object({ s: z.string().regex(/^a+$/) }), input: { s: 'b' }, expected: ['s: expected a value matching /^a+$/'] },
    { name: 'union: the branch that got furthest', schema: z.object({ u: z.union([z.string(), z.object({ k: z.number() })]) }), input: { u: { k: 'x' } }, expected: ['u.k: expected a number'] },
  ])('$name', ({ schema, input, withMap, expected }) => {
    expect(lines(schema, input, withMap)).toEqual(expected);
  });

  it('issuePath', () => {
    expect(issuePath([])).toBe('(top level)');
    expect(issuePath(['nodes', 1, 'rdmaIp'])).toBe('nodes[1].rdmaIp');
    expect(issuePath(['ssh', 'a b'])).toBe('ssh["a b"]');
    expect(issuePath([0, 'x'])).toBe('[0].x');
  });

  it.each([
    [undefined, 'nothing (the field is missing)'],
    [null, 'null (an empty value)'],
    [[], 'an empty list'],
    [[1], 'a list'],
    [{}, 'a mapping'],
    ['22', 'string "22"'],
    [22, 'number 22'],
    [Number.NaN, 'NaN'],
    [true, 'boolean true'],
  ])('describeInput(%p) = %s', (input, expected) => {
    expect(describeInput(input)).toBe(expected);
  });
});

describe('regexes stay linear on hostile input', () => {
  it.each([
    ['paths.fragvisor', (p: Data, s: string) => (p.paths.fragvisor = s), `/${'a/'.repeat(5000)}!`],
    ['ssh.identityFile', (p: Data, s: string) => (p.ssh.identityFile = s), `${'a/'.repeat(5000)}!`],
    ['nodes[0].host', (p: Data, s: string) => (p.nodes[0].host = s), `${'a.'.repeat(5000)}!`],
  ])('%s', (at, set, hostile) => {
    const data = echoData();
    set(data, hostile);
    const started = Date.now();
    const { problems } = configError(() => parseProfile(stringifyYaml(data), 'x.yaml', '/'));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(problems.some((l) => l.startsWith(`${at}:`))).toBe(true);
  });
});
