import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { InvalidConfigError } from '../../config/errors';
import { loadProfile } from '../../config/load';

/**
 * Bad-input corpus, part 1: broken and hostile cluster profiles, as the YAML files a user (or an
 * attacker with write access to a profile) would hand the loader. Each must be refused with one line
 * naming the field and what to write instead; the loader runs nothing and writes nothing. The shell
 * payloads would create MARKER if anything ever ran them.
 */

const dir = mkdtempSync(path.join(os.tmpdir(), 'ae-badprofile-'));
const MARKER = path.join(dir, 'pwned');
const SECRET = 'Canary-Bmc-Pw-7f3a9c';

afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A valid 2-node profile; every case edits it as text, the way a person edits the file. */
const BASE = `name: hostile
nodes:
  - name: n0
    origin: true
    host: 127.0.0.1
    port: 2201
    user: ae
    rdmaIp: 10.4.6.10
    bmc: { host: 127.0.0.1, port: 6230, user: ADMIN, passwordEnv: N0_BMC_PASSWORD }
  - name: n1
    host: 127.0.0.1
    port: 2202
    user: ae
    rdmaIp: 10.4.6.11
paths:
  fragvisor: /home/ae/FragVisor
  kernelTree: /home/ae/FragVisor/fragvisor-linux
  kvmtool: /home/ae/fragvisor-kvmtool
  ramdisks: /home/ae/ramdisks
source:
  repository: https://github.com/ssrg-vt/FragVisor.git
guest:
  ip: 10.4.4.222
  hostIp: 10.4.4.221
  mac: "00:11:22:33:44:55"
  ssh: { host: 127.0.0.1, port: 2222, user: root }
ssh:
  identityFile: id_ed25519
  knownHosts: known_hosts
timeouts:
  reboot: 90
`;

/** BASE with `from` (which must occur exactly once) replaced: a stale `from` fails loudly instead of testing nothing. */
function edit(...pairs: [string, string][]): string {
  let text = BASE;
  for (const [from, to] of pairs) {
    if (text.split(from).length !== 2) throw new Error(`corpus bug: ${JSON.stringify(from)} is not exactly once in BASE`);
    text = text.replace(from, to);
  }
  return text;
}

const sh = `$(touch ${MARKER})`;

interface Case {
  name: string;
  yaml: string;
  /** The field the problem line names (`nodes[1].rdmaIp`), or the file for YAML syntax errors. */
  at: string;
  /** What that line must say after `<at>: `: what was expected (the fix). */
  says: RegExp;
  /** Must not appear anywhere in the error. */
  secret?: string;
}

const cases: Case[] = [
  // Origins and duplicates.
  { name: 'missing origin', yaml: edit(['    origin: true\n', '']), at: 'nodes', says: /^expected exactly one node with `origin: true` .*none of n0, n1 has it$/ },
  { name: 'two origins', yaml: edit(['  - name: n1\n', '  - name: n1\n    origin: true\n']), at: 'nodes[1].origin', says: /^expected exactly one origin node; n0 \(nodes\[0\]\) and n1 \(nodes\[1\]\) are marked origin$/ },
  {
    name: 'origin listed second',
    yaml: edit(['    origin: true\n', ''], ['  - name: n1\n', '  - name: n1\n    origin: true\n']),
    at: 'nodes[1].origin',
    says: /^expected the origin to be the first node.*move n1 to the top$/,
  },
  { name: 'duplicate node names', yaml: edit(['  - name: n1', '  - name: n0']), at: 'nodes[1].name', says: /^duplicate name "n0" \(also nodes\[0\]\); every node needs its own$/ },
  { name: 'duplicate RDMA IPs', yaml: edit(['rdmaIp: 10.4.6.11', 'rdmaIp: 10.4.6.10']), at: 'nodes[1].rdmaIp', says: /^duplicate rdmaIp "10\.4\.6\.10" \(also nodes\[0\]\)/ },
  { name: 'duplicate SSH endpoints', yaml: edit(['port: 2202', 'port: 2201']), at: 'nodes[1].host', says: /^duplicate SSH endpoint "127\.0\.0\.1:2201" \(also nodes\[0\]\)/ },
  // Addresses.
  { name: 'RDMA IP octet over 255', yaml: edit(['10.4.6.11', '10.4.6.256']), at: 'nodes[1].rdmaIp', says: /^expected an IPv4 address like 10\.4\.6\.15 \(four numbers 0\.\.255\), got string "10\.4\.6\.256"$/ },
  { name: 'RDMA IP with three parts (a YAML number)', yaml: edit(['10.4.6.11', '10.4']), at: 'nodes[1].rdmaIp', says: /^expected an IPv4 address like 10\.4\.6\.15 \(a string\), got number 10\.4$/ },
  { name: 'RDMA IP a host name', yaml: edit(['10.4.6.11', 'ib1.example']), at: 'nodes[1].rdmaIp', says: /^expected an IPv4 address .*got string "ib1\.example"$/ },
  { name: 'host an impossible IP', yaml: edit(['    host: 127.0.0.1\n    port: 2202', '    host: 999.0.0.1\n    port: 2202']), at: 'nodes[1].host', says: /^expected a host name .* or an IPv4 address .*got string "999\.0\.0\.1"$/ },
  { name: 'guest IP = tap IP', yaml: edit(['hostIp: 10.4.4.221', 'hostIp: 10.4.4.222']), at: 'guest.hostIp', says: /^expected the host tap IP to differ from the guest IP/ },
  { name: 'MAC with a shell payload', yaml: edit(['"00:11:22:33:44:55"', `"00:11:22:33:44:55;${sh}"`]), at: 'guest.mac', says: /^expected a MAC address like 00:11:22:33:44:55/ },
  // Names with shell metacharacters.
  { name: 'node name with $()', yaml: edit(['name: n1', `name: "n1${sh}"`]), at: 'nodes[1].name', says: /^expected a node name like echo5: a letter, then letters, digits, "-" or "_" .*no spaces or shell characters\), got string "n1\$\(touch / },
  { name: 'node name with ;', yaml: edit(['name: n1', 'name: "n1;reboot"']), at: 'nodes[1].name', says: /no spaces or shell characters\), got string "n1;reboot"$/ },
  { name: 'node name with backticks', yaml: edit(['name: n1', 'name: "n1`reboot`"']), at: 'nodes[1].name', says: /shell characters\), got string "n1`reboot`"$/ },
  { name: 'node name with a newline', yaml: edit(['name: n1', 'name: "n1\\nreboot"']), at: 'nodes[1].name', says: /shell characters\), got string "n1\\nreboot"$/ },
  { name: 'node name with a space', yaml: edit(['name: n1', 'name: "n 1"']), at: 'nodes[1].name', says: /shell characters\), got string "n 1"$/ },
  { name: 'host with ;', yaml: edit(['    host: 127.0.0.1\n    port: 2202', '    host: "127.0.0.1;reboot"\n    port: 2202']), at: 'nodes[1].host', says: /without user@, :port, spaces or shell characters, got string "127\.0\.0\.1;reboot"$/ },
  { name: 'user with $()', yaml: edit(['    user: ae\n    rdmaIp: 10.4.6.11', `    user: "ae${sh}"\n    rdmaIp: 10.4.6.11`]), at: 'nodes[1].user', says: /^expected a Unix user name like root or ae/ },
  { name: 'BMC user with backticks', yaml: edit(['user: ADMIN', 'user: "`id`"']), at: 'nodes[0].bmc.user', says: /^expected a BMC user name like ADMIN/ },
  // Paths with shell metacharacters or traversal.
  { name: 'path with $()', yaml: edit(['fragvisor: /home/ae/FragVisor\n', `fragvisor: "/home/ae/${sh}"\n`]), at: 'paths.fragvisor', says: /^expected a path of letters, digits, "\/" and _ \. \+ @ - only \(no spaces, quotes or shell characters\)/ },
  { name: 'path with ;', yaml: edit(['kernelTree: /home/ae/FragVisor/fragvisor-linux', 'kernelTree: "/home/ae/linux; rm -rf /"']), at: 'paths.kernelTree', says: /^expected a path of letters, digits.*got string "\/home\/ae\/linux; rm -rf \/"$/ },
  { name: 'path with backticks', yaml: edit(['kvmtool: /home/ae/fragvisor-kvmtool', 'kvmtool: "/home/ae/`reboot`"']), at: 'paths.kvmtool', says: /^expected a path of letters, digits/ },
  { name: 'path with a newline', yaml: edit(['ramdisks: /home/ae/ramdisks', 'ramdisks: "/home/ae/ramdisks\\nreboot"']), at: 'paths.ramdisks', says: /^expected a path of letters, digits/ },
  { name: 'path with a space', yaml: edit(['ramdisks: /home/ae/ramdisks', 'ramdisks: "/home/ae/ram disks"']), at: 'paths.ramdisks', says: /no spaces, quotes or shell characters\), got string "\/home\/ae\/ram disks"$/ },
  { name: 'path with .. traversal', yaml: edit(['kvmtool: /home/ae/fragvisor-kvmtool', 'kvmtool: /home/ae/../../etc']), at: 'paths.kvmtool', says: /^expected a path without "\.\." segments \(write the real directory\), got string "\/home\/ae\/\.\.\/\.\.\/etc"$/ },
  { name: 'path ending in ..', yaml: edit(['ramdisks: /home/ae/ramdisks', 'ramdisks: /home/ae/ramdisks/..']), at: 'paths.ramdisks', says: /^expected a path without "\.\." segments/ },
  { name: 'relative path', yaml: edit(['fragvisor: /home/ae/FragVisor\n', 'fragvisor: ../FragVisor\n']), at: 'paths.fragvisor', says: /^expected an absolute path starting with "\/"/ },
  { name: 'local key path with ;', yaml: edit(['identityFile: id_ed25519', 'identityFile: "id_ed25519;reboot"']), at: 'ssh.identityFile', says: /^expected a file path of letters, digits .*no spaces or shell characters\)/ },
  { name: 'known_hosts path with $()', yaml: edit(['knownHosts: known_hosts', `knownHosts: "${sh}"`]), at: 'ssh.knownHosts', says: /^expected a file path of letters/ },
  { name: 'jump host as an ssh option', yaml: edit(['ssh:\n', `ssh:\n  jumpHost: "-oProxyCommand=touch ${MARKER}"\n`]), at: 'ssh.jumpHost', says: /^expected \[user@\]host\[:port\] or an ssh_config alias/ },
  { name: 'git URL with a shell payload', yaml: edit(['FragVisor.git', `FragVisor.git;${sh}`]), at: 'source.repository', says: /^expected the FragVisor repository: https:\/\/host\/path.*got something else \(value not shown\)$/ },
  // Timeouts.
  { name: 'timeout 0', yaml: edit(['reboot: 90', 'reboot: 0']), at: 'timeouts.reboot', says: /^expected the reboot timeout greater than 0 seconds, got number 0$/ },
  { name: 'negative timeout', yaml: edit(['reboot: 90', 'reboot: -90']), at: 'timeouts.reboot', says: /^expected the reboot timeout greater than 0 seconds, got number -90$/ },
  { name: 'timeout of 10 years', yaml: edit(['reboot: 90', 'reboot: 315360000']), at: 'timeouts.reboot', says: /^expected the reboot timeout of at most 86400 seconds \(24 h\), got number 315360000$/ },
  { name: 'timeout with a unit', yaml: edit(['reboot: 90', 'reboot: 90m']), at: 'timeouts.reboot', says: /^expected the reboot timeout in seconds \(a number\), got string "90m"$/ },
  { name: 'timeout .nan', yaml: edit(['reboot: 90', 'reboot: .nan']), at: 'timeouts.reboot', says: /^expected the reboot timeout in seconds \(a number\), got NaN$/ },
  { name: 'SSH connect timeout of a day', yaml: edit(['ssh:\n', 'ssh:\n  connectTimeoutSeconds: 86400\n']), at: 'ssh.connectTimeoutSeconds', says: /^expected the SSH connect timeout of at most 600 seconds \(10 min\)/ },
  // Unknown keys and wrong types.
  { name: 'unknown top-level key (typo)', yaml: edit(['timeouts:', 'timeout:']), at: 'timeout', says: /^unknown field \(did you mean "timeouts"\?\)/ },
  { name: 'unknown node key', yaml: edit(['    rdmaIp: 10.4.6.11', '    rdmaIp: 10.4.6.11\n    vlan: 12']), at: 'nodes[1].vlan', says: /^unknown field; expected only name, host, port, user, rdmaIp, origin, bmc$/ },
  { name: 'port as a string', yaml: edit(['port: 2202', 'port: "2202"']), at: 'nodes[1].port', says: /^expected a number \(a TCP port, 1\.\.65535\), got string "2202"$/ },
  { name: 'port out of range', yaml: edit(['port: 2202', 'port: 70000']), at: 'nodes[1].port', says: /^expected a TCP port of at most 65535, got number 70000$/ },
  { name: 'origin: "yes"', yaml: edit(['origin: true', 'origin: "yes"']), at: 'nodes[0].origin', says: /^expected true or false, got string "yes"$/ },
  { name: 'nodes as a mapping', yaml: edit(['nodes:\n  - name: n0', 'nodes:\n  n0:\n    name: n0'], ['  - name: n1', '  n1:\n    name: n1']), at: 'nodes', says: /^expected a list of nodes.*, got a mapping$/ },
  // Secrets.
  { name: 'BMC password inline', yaml: edit(['passwordEnv: N0_BMC_PASSWORD', `password: ${SECRET}`]), at: 'nodes[0].bmc.password', says: /^a secret never goes in a profile: remove it, put the secret in an environment variable and name that variable in `passwordEnv`/, secret: SECRET },
  {
    name: 'BMC password in passwordEnv',
    yaml: edit(['passwordEnv: N0_BMC_PASSWORD', `passwordEnv: "${SECRET}"`]),
    at: 'nodes[0].bmc.passwordEnv',
    says: /^expected the NAME of an environment variable that holds the secret .*never the secret itself, got something else \(value not shown\)$/,
    secret: SECRET,
  },
  { name: 'passwordEnv as a $reference', yaml: edit(['passwordEnv: N0_BMC_PASSWORD', 'passwordEnv: $N0_BMC_PASSWORD']), at: 'nodes[0].bmc.passwordEnv', says: /^expected the NAME of an environment variable .*no "\$"/ },
  // Not a profile at all.
  { name: 'truncated file', yaml: BASE.slice(0, BASE.indexOf('  mac:') + 9), at: '(file)', says: /^not valid YAML: .*line \d+, column \d+/s },
  { name: 'YAML alias bomb', yaml: `a: &a [x, x, x, x, x, x, x, x, x]\n${Array.from({ length: 12 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}, *${String.fromCharCode(97 + i)}]`).join('\n')}\n`, at: '(file)', says: /^not valid YAML: Excessive alias count indicates a resource exhaustion attack/ },
  { name: 'a list instead of a profile', yaml: '- name: n0\n- name: n1\n', at: '(top level)', says: /^expected a cluster profile: a YAML mapping with name, nodes, paths and guest, got a list$/ },
];

describe('broken and hostile cluster profiles', () => {
  it('the corpus edits a profile that loads', () => {
    const file = path.join(dir, 'base.yaml');
    writeFileSync(file, BASE);
    expect(loadProfile(file, {}).profile.nodes.map((n) => n.name)).toEqual(['n0', 'n1']);
  });

  it.each(cases.map((c, i) => ({ ...c, i })))('$name -> $at', ({ yaml, at, says, secret, i }) => {
    const file = path.join(dir, `case-${i}.yaml`);
    writeFileSync(file, yaml);
    const before = readdirSync(dir).sort();
    let err: unknown;
    try {
      loadProfile(file, {});
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidConfigError);
    const { message, problems } = err as InvalidConfigError;
    expect(message.startsWith(`${file}: `)).toBe(true);
    // Schema problems: one line per field; YAML syntax errors: the message itself names the file.
    const lines = problems.length > 0 ? problems : [message.replace(`${file}: `, '(file): ')];
    const line = lines.find((l) => l.startsWith(`${at}: `));
    if (line === undefined) throw new Error(`no problem at ${at}; got:\n${lines.join('\n')}`);
    expect(line.slice(at.length + 2)).toMatch(says);
    if (secret) expect(`${message}\n${JSON.stringify(err)}`).not.toContain(secret);
    // The loader only reads: no new file, and no payload ever ran.
    expect(readdirSync(dir).sort()).toEqual(before);
    expect(existsSync(MARKER)).toBe(false);
  });

  it('a profile larger than 1 MiB is refused before it is parsed', () => {
    const file = path.join(dir, 'huge.yaml');
    writeFileSync(file, `${BASE}description: "${'x'.repeat(1024 * 1024)}"\n`);
    expect(() => loadProfile(file, {})).toThrow(new InvalidConfigError(`${file}: ${BASE.length + 1024 * 1024 + 16} bytes is too large for a cluster profile (at most 1048576)`));
  });
});
