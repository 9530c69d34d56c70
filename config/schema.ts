import { z } from 'zod';
import { claimSettingsSchema } from '../workflows/claims/settings';
import { describeInput } from './errors';

/**
 * Zod schemas for a cluster profile (config/clusters/*.yaml). Every value that later ends up in a
 * remote command is constrained here to a safe alphabet, so command builders never see shell syntax.
 *
 * Every message says what was expected and, except for secrets, what was found instead:
 * `nodes[0].port: expected a number (a TCP port, 1..65535), got string "22"`. The same schema, converted
 * with `z.toJSONSchema`, is config/profile.schema.json (regenerate: `npx tsx config/writeJsonSchema.ts`),
 * so prefer regex checks (which become JSON Schema `pattern`s) over refinements where they can say it.
 */

const SAFE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
const IPV4_BODY = '(?:(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1\\d\\d|[1-9]?\\d)';
const LABEL = '[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?';
const IPV4 = new RegExp(`^${IPV4_BODY}$`);
/** A DNS name or a dotted-quad IPv4 address; all-numeric names (`10.4.6`, `300.1.1.1`) must be valid IPs. */
const HOST = new RegExp(`^(?:${IPV4_BODY}|(?=.{1,253}$)(?![0-9.]+$)${LABEL}(?:\\.${LABEL})*)$`);
const USER = /^[a-z_][a-z0-9_.-]{0,31}$/;
/** BMC accounts are often upper case (ADMIN); still no shell characters, and no leading `-`. */
const BMC_USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/;
const ENV_VAR = /^[A-Z_][A-Z0-9_]{0,127}$/;
const MAC = /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/;
/** Remote paths: absolute, only a safe alphabet (no whitespace or shell metacharacters), no `..` segment. */
const ABSOLUTE = /^\//;
const PATH_CHARS = /^[A-Za-z0-9_.+@/-]+$/;
const NO_DOT_DOT = /^(?!(?:.*\/)?\.\.(?:\/|$))/;
/** Local (control-host) files: absolute, `~/`-relative or relative to the profile file. */
const LOCAL_PATH = /^(?:~\/|\/)?[A-Za-z0-9_.+@-]+(?:\/[A-Za-z0-9_.+@-]+)*\/?$/;
const JUMP_HOST = /^(?:[a-z_][a-z0-9_.-]{0,31}@)?[A-Za-z0-9][A-Za-z0-9.-]{0,252}(?::\d{1,5})?$/;

type Issue = z.core.$ZodRawIssue;

/** Type errors of a leaf schema: `expected <what>, got <what it found>` / `missing: expected <what>`. */
function typeError(what: string) {
  return (iss: Issue) => {
    if (iss.code !== 'invalid_type') return undefined;
    return iss.input === undefined ? `missing: expected ${what}` : `expected ${what}, got ${describeInput(iss.input)}`;
  };
}

/** A failed check: `expected <what>, got <value>`; `show: false` for values that may be secrets. */
function mismatch(what: string, opts: { show?: boolean; abort?: boolean } = {}) {
  const show = opts.show ?? true;
  return {
    abort: opts.abort,
    error: (iss: Issue) => `expected ${what}, got ${show ? describeInput(iss.input) : 'something else (value not shown)'}`,
  };
}

const SECRET_KEY = /pass(?:word|wd)?$|^pw$|secret|token/i;

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const next = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = row[j];
      row[j] = next;
    }
  }
  return row[b.length];
}

/** The message for one unknown field: a did-you-mean when a known field is close, the known fields otherwise. */
function unknownField(key: string, known: readonly string[]): string {
  if (SECRET_KEY.test(key)) {
    return 'a secret never goes in a profile: remove it, put the secret in an environment variable and name that variable in `passwordEnv` (e.g. passwordEnv: ECHO5_BMC_PASSWORD)';
  }
  const norm = (s: string) => s.toLowerCase().replace(/[-_]/g, '');
  const close = known.find((k) => norm(k) === norm(key)) ?? known.find((k) => editDistance(norm(k), norm(key)) <= 2);
  const list = `expected only ${known.join(', ')}`;
  return close ? `unknown field (did you mean "${close}"?); ${list}` : `unknown field; ${list}`;
}

/**
 * A YAML mapping with a fixed set of fields. Unknown fields are errors (typos must not be silently
 * ignored); the message for each goes on its own line, which describeZodError pairs with the key.
 */
function mapping<S extends z.core.$ZodLooseShape>(what: string, shape: S) {
  const known = Object.keys(shape);
  return z.strictObject(shape, {
    error: (iss: Issue) => {
      if (iss.code === 'invalid_type') {
        return iss.input === undefined ? `missing: expected ${what}` : `expected ${what}, got ${describeInput(iss.input)}`;
      }
      if (iss.code === 'unrecognized_keys') return iss.keys.map((k) => unknownField(k, known)).join('\n');
      return undefined;
    },
  });
}

const boolean = () => z.boolean({ error: typeError('true or false') });

const wholeNumber = (what: string, min: number, max: number) =>
  z
    .number({ error: typeError(`a number (${what}, ${min}..${max})`) })
    .int(mismatch(`a whole number (${what})`))
    .min(min, mismatch(`${what} of at least ${min}`))
    .max(max, mismatch(`${what} of at most ${max}`));

const safeName = (what: string) =>
  z
    .string({ error: typeError(`${what} (a string)`) })
    .regex(SAFE_NAME, mismatch(`${what}: a letter, then letters, digits, "-" or "_" (at most 63 characters, no spaces or shell characters)`));

export const nodeName = safeName('a node name like echo5');
export const hostName = z
  .string({ error: typeError('a host name or IPv4 address (a string)') })
  .regex(HOST, mismatch('a host name (e.g. echo5 or an ~/.ssh/config alias) or an IPv4 address (e.g. 10.4.6.15), without user@, :port, spaces or shell characters'));
export const ipv4 = z.string({ error: typeError('an IPv4 address like 10.4.6.15 (a string)') }).regex(IPV4, mismatch('an IPv4 address like 10.4.6.15 (four numbers 0..255)'));
export const port = wholeNumber('a TCP port', 1, 65535);
export const userName = z.string({ error: typeError('a Unix user name like root or ae (a string)') }).regex(USER, mismatch('a Unix user name like root or ae (lower case letters, digits, _ . -)'));
export const envVarName = z
  .string({ error: typeError('the NAME of an environment variable (a string)') })
  .regex(
    ENV_VAR,
    mismatch('the NAME of an environment variable that holds the secret (A-Z, 0-9 and _, e.g. ECHO5_BMC_PASSWORD, no "$"), never the secret itself', { show: false }),
  );
export const remotePath = z
  .string({ error: typeError('an absolute path (a string)') })
  .regex(ABSOLUTE, mismatch('an absolute path starting with "/" (a relative or ~ path depends on the remote shell; write e.g. /root/FragVisor)', { abort: true }))
  .regex(PATH_CHARS, mismatch('a path of letters, digits, "/" and _ . + @ - only (no spaces, quotes or shell characters)', { abort: true }))
  .regex(NO_DOT_DOT, mismatch('a path without ".." segments (write the real directory)'));
export const localPath = z
  .string({ error: typeError('a file path (a string)') })
  .regex(LOCAL_PATH, mismatch('a file path of letters, digits and _ . + @ - (absolute, ~/..., or relative to the profile file; no spaces or shell characters)'));

const HOUR = 3600;
const human = (s: number) => (s >= HOUR ? `${s / HOUR} h` : s >= 60 ? `${s / 60} min` : `${s} s`);
const seconds = (what: string, max: number) =>
  z
    .number({ error: typeError(`${what} in seconds (a number)`) })
    .positive(mismatch(`${what} greater than 0 seconds`))
    .max(max, mismatch(`${what} of at most ${max} seconds (${human(max)})`));

export const bmcSchema = mapping('the node\'s BMC: a mapping with host, user and passwordEnv', {
  host: hostName.describe('IPMI address of the BMC (host name or IP), e.g. echo5-ipmi.'),
  port: port.default(623).describe('IPMI-over-LAN port (623).'),
  user: z.string({ error: typeError('a BMC user name (a string)') }).regex(BMC_USER, mismatch('a BMC user name like ADMIN (letters, digits, _ . -)')).describe('BMC account, e.g. ADMIN.'),
  passwordEnv: envVarName.describe('NAME of the environment variable that holds the BMC password (never the password itself).'),
});

export const nodeSchema = mapping('a node: a mapping with name, host and rdmaIp', {
  name: nodeName.describe('Node name as the paper uses it (echo5). Node id = position in `nodes`.'),
  host: hostName.describe('SSH destination: host name, IP or ~/.ssh/config alias.'),
  port: port.optional().describe('SSH port; when absent, ssh_config (or 22) decides.'),
  user: userName.optional().describe('SSH user; when absent, ssh_config (or the local user) decides.'),
  rdmaIp: ipv4.describe('InfiniBand (IPoIB) address the messaging layer uses; its position in `nodes` is the Popcorn node id.'),
  origin: boolean().default(false).describe('True on exactly one node, the first: it launches the VM (CONFIG_POPCORN_ORIGIN_NODE).'),
  bmc: bmcSchema.optional().describe('IPMI BMC, for power cycles and the serial console (sol activate).'),
});

export const pathsSchema = mapping('the remote paths: a mapping with fragvisor, kernelTree, kvmtool and ramdisks', {
  fragvisor: remotePath.describe('FragVisor checkout on every node.'),
  kernelTree: remotePath.describe('fragvisor-linux source tree on every node (each node builds its own kernel).'),
  kvmtool: remotePath.describe('fragvisor-kvmtool on a shared (NFS) path: the same path on every node.'),
  ramdisks: remotePath.describe('Directory of guest ramdisks (ramdisk_lemp_4php.gz, ...) on the origin.'),
  giantvmTree: remotePath.optional().describe("GiantVM's host kernel tree (Linux-DSM 4.8.10, a git checkout) on every node; default: linux-dsm next to the FragVisor checkout (<dirname(fragvisor)>/linux-dsm)."),
  guestKernel: remotePath
    .optional()
    .describe('Where the origin builds the guest kernel: src/ (a git worktree of kernelTree) and build/ (its O= output dir), so the host tree is never edited; default: <dirname(fragvisor)>/fragvisor-guest-kernel.'),
});

/** A git remote the nodes clone from: https://host/path, ssh://[user@]host[:port]/path or user@host:path; no shell characters. */
const GIT_URL =
  /^(?:https:\/\/[A-Za-z0-9][A-Za-z0-9.-]{0,252}(?::\d{1,5})?\/|ssh:\/\/(?:[a-z_][a-z0-9_.-]{0,31}@)?[A-Za-z0-9][A-Za-z0-9.-]{0,252}(?::\d{1,5})?\/|[a-z_][a-z0-9_.-]{0,31}@[A-Za-z0-9][A-Za-z0-9.-]{0,252}:)[A-Za-z0-9_.~+/][A-Za-z0-9_.~+/-]{0,500}$/;
const gitUrl = (what: string) =>
  z
    .string({ error: typeError(`${what}: a git URL (a string)`) })
    .regex(GIT_URL, mismatch(`${what}: https://host/path, ssh://[user@]host[:port]/path or user@host:path (letters, digits and _ . ~ + / - only; no credentials in https URLs)`, { show: false }));

export const sourceSchema = mapping('source repositories: a mapping with repository and giantvmRepository', {
  repository: gitUrl('the FragVisor repository').optional().describe('Where a node without a FragVisor checkout clones it from (with fragvisor-linux as a submodule); without it, a missing checkout is an error.'),
  giantvmRepository: gitUrl("GiantVM's Linux-DSM repository").optional().describe('Where a node without the GiantVM tree (paths.giantvmTree) clones it from.'),
});

export const sshEndpointSchema = mapping('an SSH endpoint: a mapping with host, port, user and optionally via', {
  host: hostName,
  port: port.default(22),
  user: userName.default('root'),
  via: z
    .enum(['origin'], { error: (iss: Issue) => `expected "origin" (reach it through the origin node as a jump host) or no \`via\`, got ${describeInput(iss.input)}` })
    .optional()
    .describe('"origin": connect through the origin node as an SSH jump host (after ssh.jumpHost, if any), for a guest network the control host cannot reach directly.'),
});

export const clientSchema = mapping('the load-generator host: a mapping with host and optional port and user', {
  host: hostName.describe('SSH destination of the machine that runs ab and the OpenLambda POSTs: host name, IP or ~/.ssh/config alias.'),
  port: port.optional().describe('SSH port; when absent, ssh_config (or 22) decides.'),
  user: userName.optional().describe('SSH user; when absent, ssh_config (or the local user) decides.'),
});

export const guestSchema = mapping('the guest VM: a mapping with ip, hostIp, mac and ssh', {
  ip: ipv4.describe('Guest IP (guest_ip=), 10.4.4.222 in the artifact.'),
  hostIp: ipv4.describe('Host tap IP on the origin (host_ip=), 10.4.4.221 in the artifact.'),
  mac: z
    .string({ error: typeError('a MAC address like 00:11:22:33:44:55 (quote it in YAML)') })
    .regex(MAC, mismatch('a MAC address like 00:11:22:33:44:55 (six hex pairs separated by ":")'))
    .describe('Guest MAC (guest_mac=).'),
  ssh: sshEndpointSchema.describe('Where the orchestrator reaches the guest over SSH (root@10.4.4.222:22).'),
});

export const sshSchema = mapping('SSH client settings: a mapping', {
  identityFile: localPath.optional().describe('Private key; when absent, ssh_config / the agent decide. Relative paths resolve against the profile file.'),
  knownHosts: localPath.default('~/.ssh/known_hosts').describe('known_hosts file used to verify host keys (never skipped).'),
  /** OpenSSH client config to honour (Host aliases, HostName, User, Port, IdentityFile, ProxyJump). */
  configFile: localPath.default('~/.ssh/config').describe('OpenSSH client config to honour (Host aliases, HostName, User, Port, IdentityFile, ProxyJump).'),
  /** Jump host for every node, `[user@]host[:port]` or an ssh_config alias. */
  jumpHost: z
    .string({ error: typeError('[user@]host[:port] (a string)') })
    .regex(JUMP_HOST, mismatch('[user@]host[:port] or an ssh_config alias'))
    .optional()
    .describe('Jump host for every node: [user@]host[:port] or an ssh_config alias.'),
  connectTimeoutSeconds: seconds('the SSH connect timeout', 600).default(20),
  keepaliveIntervalSeconds: seconds('the SSH keepalive interval', 600).default(10),
  keepaliveCountMax: wholeNumber('a keepalive count', 1, 100).default(3),
  maxSessions: wholeNumber('a session count', 1, 1000)
    .default(10)
    .describe("The nodes' sshd MaxSessions (OpenSSH's default: 10): one is left for killing a timed-out command, and commands to a node beyond the rest wait for a free one. A lower server limit is found out and kept to."),
  /** Output kept in memory per stream; the rest goes to the log file when one is given. */
  maxOutputBytes: wholeNumber('a byte count', 1024, 64 * 1024 * 1024)
    .default(1024 * 1024)
    .describe('Output kept in memory per stream; the rest goes to the log file when one is given.'),
});

export const timeoutsSchema = mapping('per-step timeouts in seconds: a mapping', {
  probe: seconds('the probe timeout', 24 * HOUR).default(300).describe('Reach a node and inspect it (uname, boot_id, tools).'),
  kernelBuild: seconds('the kernel build timeout', 24 * HOUR).default(4 * HOUR).describe('make of the host or guest kernel.'),
  kernelInstall: seconds('the kernel install timeout', 24 * HOUR).default(30 * 60).describe('modules_install + install.'),
  reboot: seconds('the reboot timeout', 24 * HOUR).default(15 * 60).describe('From the reboot request to a new boot_id answering SSH.'),
  messagingLayer: seconds('the messaging layer timeout', 24 * HOUR).default(5 * 60).describe('Build and insmod msg_rdma.ko on every node until all joined.'),
  vmBoot: seconds('the VM boot timeout', 24 * HOUR).default(10 * 60).describe('lkvm run until the guest answers SSH.'),
  benchmark: seconds('the benchmark timeout', 24 * HOUR).default(2 * HOUR).describe('One benchmark run (ab sweep, OpenLambda iterations).'),
  operator: seconds('the operator wait deadline', 7 * 24 * HOUR).default(24 * HOUR).describe('How long to wait for a human (e.g. a manual power cycle).'),
});

const PROFILE_FIELDS = 'name, nodes, paths and guest';

export const clusterProfileSchema = mapping(`a cluster profile: a YAML mapping with ${PROFILE_FIELDS}`, {
  name: safeName('a profile name like echo').describe('Profile name (echo, fox, sim).'),
  description: z
    .string({ error: typeError('a description (a string)') })
    .max(500, mismatch('a description of at most 500 characters'))
    .optional()
    .describe('Free text for humans (hardware, location).'),
  /** True for the simulated testbed: everything measured on it is labelled SIMULATED. */
  simulated: boolean().default(false).describe('True for the simulated testbed: everything measured on it is labelled SIMULATED.'),
  nodes: z
    .array(nodeSchema, { error: typeError('a list of nodes (one "- name: ..." entry per node, the origin first)') })
    .min(1, { abort: true, error: 'expected at least one node (the origin first), got an empty list' })
    .max(256, { error: (iss: Issue) => `expected at most 256 nodes, got ${Array.isArray(iss.input) ? iss.input.length : 'more'}` })
    .describe('Nodes in Popcorn node-id order: node id = position; the origin (id 0) first. For n < all nodes, the first n are used.'),
  paths: pathsSchema.describe('Absolute paths on the nodes (safe characters only: they end up in remote commands).'),
  guest: guestSchema.describe('The distributed VM: lkvm --network guest_ip/host_ip/guest_mac, and how to reach it over SSH.'),
  client: clientSchema
    .optional()
    .describe('A separate load-generator host for ab and the OpenLambda POSTs (it must reach the guest IP); default: the origin node, as the artifact ran them.'),
  source: sourceSchema.optional().describe('Git remotes to clone the kernel sources from when a node has no checkout (a present checkout is only fetched when it lacks the pinned commit).'),
  ssh: sshSchema.default(() => sshSchema.parse({})).describe('SSH client settings of the control host.'),
  timeouts: timeoutsSchema.default(() => timeoutsSchema.parse({})).describe('Per-step timeouts in seconds.'),
  claims: claimSettingsSchema
    .optional()
    .describe("How this cluster's claims are judged (minRepetitions, maxRepetitions, timeBudgetMinutes, c1, c2, c3); a run's input `claims` overrides it field by field."),
}).superRefine((profile, ctx) => {
  if (profile.nodes.length === 0) return;
  const origins = profile.nodes.flatMap((n, i) => (n.origin ? [i] : []));
  if (origins.length === 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['nodes'],
      message: `expected exactly one node with \`origin: true\` (the node that launches the VM, listed first); none of ${profile.nodes.map((n) => n.name).join(', ')} has it`,
    });
  } else if (origins.length > 1) {
    ctx.addIssue({
      code: 'custom',
      path: ['nodes', origins[1], 'origin'],
      message: `expected exactly one origin node; ${origins.map((i) => `${profile.nodes[i].name} (nodes[${i}])`).join(' and ')} are marked origin`,
    });
  } else if (origins[0] !== 0) {
    ctx.addIssue({
      code: 'custom',
      path: ['nodes', origins[0], 'origin'],
      message: `expected the origin to be the first node: node id = position in \`nodes\` and the origin is node 0; move ${profile.nodes[origins[0]].name} to the top`,
    });
  }
  const unique = (what: string, key: (n: (typeof profile.nodes)[number]) => string | undefined, at: PropertyKey[]) => {
    const seen = new Map<string, number>();
    profile.nodes.forEach((n, i) => {
      const k = key(n);
      if (k === undefined) return;
      const prev = seen.get(k);
      if (prev !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['nodes', i, ...at], message: `duplicate ${what} "${k}" (also nodes[${prev}]); every node needs its own` });
      } else seen.set(k, i);
    });
  };
  unique('name', (n) => n.name, ['name']);
  unique('rdmaIp', (n) => n.rdmaIp, ['rdmaIp']);
  unique('SSH endpoint', (n) => (n.port === undefined ? n.host : `${n.host}:${n.port}`), ['host']);
  unique('BMC', (n) => n.bmc && `${n.bmc.host}:${n.bmc.port}`, ['bmc', 'host']);
  if (profile.guest.ip === profile.guest.hostIp) {
    ctx.addIssue({ code: 'custom', path: ['guest', 'hostIp'], message: `expected the host tap IP to differ from the guest IP (both are ${profile.guest.ip})` });
  }
  profile.nodes.forEach((n, i) => {
    if (n.rdmaIp === profile.guest.ip || n.rdmaIp === profile.guest.hostIp) {
      ctx.addIssue({ code: 'custom', path: ['nodes', i, 'rdmaIp'], message: `expected the RDMA IP to differ from the guest's addresses (${n.rdmaIp} is also in \`guest\`)` });
    }
  });
});

export type ClusterProfileInput = z.input<typeof clusterProfileSchema>;
export type ClusterProfile = z.output<typeof clusterProfileSchema>;
export type ClusterNode = ClusterProfile['nodes'][number];
export type SshSettings = ClusterProfile['ssh'];
export type StepTimeouts = ClusterProfile['timeouts'];
