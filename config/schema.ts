import { z } from 'zod';

/**
 * Zod schemas for a cluster profile (config/clusters/*.yaml). Every value that later ends up in a
 * remote command is constrained here to a safe alphabet, so command builders never see shell syntax.
 */

const SAFE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const USER = /^[a-z_][a-z0-9_.-]{0,31}$/;
const ENV_VAR = /^[A-Z_][A-Z0-9_]{0,127}$/;
const MAC = /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/;
/** Remote paths: absolute, no `..` segment, no shell metacharacters or whitespace. */
const REMOTE_PATH = /^\/(?:[A-Za-z0-9_.+@-]+\/?)*$/;
/** Local (control-host) files: absolute, `~/`-relative or relative to the profile file. */
const LOCAL_PATH = /^(?:~\/|\/)?(?:[A-Za-z0-9_.+@-]+\/?)+$/;

const noDotDot = (p: string) => !p.split('/').includes('..');

export const nodeName = z.string().regex(SAFE_NAME, 'expected a node name: a letter, then letters, digits, "-" or "_" (at most 63)');
export const hostName = z
  .string()
  .refine((h) => IPV4.test(h) || HOSTNAME.test(h), 'expected a host name (e.g. echo5) or an IPv4 address (e.g. 10.4.6.15)');
export const ipv4 = z.string().regex(IPV4, 'expected an IPv4 address like 10.4.6.15');
export const port = z.number({ error: 'expected a TCP port number' }).int('expected a whole port number').min(1, 'expected a port in 1..65535').max(65535, 'expected a port in 1..65535');
export const userName = z.string().regex(USER, 'expected a Unix user name like root or ae');
export const envVarName = z.string().regex(ENV_VAR, 'expected the NAME of an environment variable (e.g. ECHO5_BMC_PASSWORD), never the secret itself');
export const remotePath = z
  .string()
  .regex(REMOTE_PATH, 'expected an absolute path of letters, digits and _ . + @ - only (no spaces or shell characters)')
  .refine(noDotDot, 'expected a path without ".." segments');
export const localPath = z
  .string()
  .regex(LOCAL_PATH, 'expected a file path of letters, digits and _ . + @ - (absolute, ~/..., or relative to the profile)');

const seconds = (what: string, max: number) =>
  z
    .number({ error: `expected ${what} in seconds` })
    .positive(`expected ${what} greater than 0 seconds`)
    .max(max, `expected ${what} of at most ${max} seconds`);

export const bmcSchema = z.strictObject({
  host: hostName,
  port: port.default(623),
  user: userName.or(z.string().regex(/^[A-Za-z0-9_.-]{1,32}$/, 'expected a BMC user name')),
  passwordEnv: envVarName,
});

export const nodeSchema = z.strictObject({
  name: nodeName,
  host: hostName,
  port: port.optional(),
  user: userName.optional(),
  rdmaIp: ipv4,
  origin: z.boolean().default(false),
  bmc: bmcSchema.optional(),
});

export const pathsSchema = z.strictObject({
  fragvisor: remotePath,
  kernelTree: remotePath,
  kvmtool: remotePath,
  ramdisks: remotePath,
});

export const sshEndpointSchema = z.strictObject({
  host: hostName,
  port: port.default(22),
  user: userName.default('root'),
});

export const guestSchema = z.strictObject({
  ip: ipv4,
  hostIp: ipv4,
  mac: z.string().regex(MAC, 'expected a MAC address like 00:11:22:33:44:55'),
  ssh: sshEndpointSchema,
});

export const sshSchema = z.strictObject({
  identityFile: localPath.optional(),
  knownHosts: localPath.default('~/.ssh/known_hosts'),
  /** OpenSSH client config to honour (Host aliases, HostName, User, Port, IdentityFile, ProxyJump). */
  configFile: localPath.default('~/.ssh/config'),
  /** Jump host for every node, `[user@]host[:port]` or an ssh_config alias. */
  jumpHost: z
    .string()
    .regex(/^(?:[a-z_][a-z0-9_.-]{0,31}@)?[A-Za-z0-9.-]{1,253}(?::\d{1,5})?$/, 'expected [user@]host[:port]')
    .optional(),
  connectTimeoutSeconds: seconds('the SSH connect timeout', 600).default(20),
  keepaliveIntervalSeconds: seconds('the SSH keepalive interval', 600).default(10),
  keepaliveCountMax: z.number().int().min(1).max(100).default(3),
  /** Output kept in memory per stream; the rest goes to the log file when one is given. */
  maxOutputBytes: z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024),
});

const HOUR = 3600;
export const timeoutsSchema = z.strictObject({
  probe: seconds('the probe timeout', 24 * HOUR).default(300),
  kernelBuild: seconds('the kernel build timeout', 24 * HOUR).default(4 * HOUR),
  kernelInstall: seconds('the kernel install timeout', 24 * HOUR).default(30 * 60),
  reboot: seconds('the reboot timeout', 24 * HOUR).default(15 * 60),
  messagingLayer: seconds('the messaging layer timeout', 24 * HOUR).default(5 * 60),
  vmBoot: seconds('the VM boot timeout', 24 * HOUR).default(10 * 60),
  benchmark: seconds('the benchmark timeout', 24 * HOUR).default(2 * HOUR),
  operator: seconds('the operator wait deadline', 7 * 24 * HOUR).default(24 * HOUR),
});

export const clusterProfileSchema = z
  .strictObject({
    name: nodeName,
    description: z.string().max(500).optional(),
    /** True for the simulated testbed: everything measured on it is labelled SIMULATED. */
    simulated: z.boolean().default(false),
    nodes: z.array(nodeSchema).min(1, 'expected at least one node').max(256, 'expected at most 256 nodes'),
    paths: pathsSchema,
    guest: guestSchema,
    ssh: sshSchema.default(() => sshSchema.parse({})),
    timeouts: timeoutsSchema.default(() => timeoutsSchema.parse({})),
  })
  .superRefine((profile, ctx) => {
    const origins = profile.nodes.flatMap((n, i) => (n.origin ? [i] : []));
    if (origins.length === 0) {
      ctx.addIssue({ code: 'custom', path: ['nodes'], message: 'expected exactly one node with `origin: true` (the node that launches the VM); none has it' });
    } else if (origins.length > 1) {
      ctx.addIssue({
        code: 'custom',
        path: ['nodes', origins[1], 'origin'],
        message: `expected exactly one origin node; ${origins.map((i) => profile.nodes[i].name).join(' and ')} are both marked origin`,
      });
    } else if (origins[0] !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['nodes', origins[0], 'origin'],
        message: 'the origin must be the first node: node id = position in `nodes`, and the origin is node 0',
      });
    }
    for (const key of ['name', 'rdmaIp'] as const) {
      const seen = new Map<string, number>();
      profile.nodes.forEach((n, i) => {
        const prev = seen.get(n[key]);
        if (prev !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['nodes', i, key], message: `duplicate ${key} "${n[key]}" (also nodes[${prev}]); every node needs its own` });
        } else seen.set(n[key], i);
      });
    }
    if (profile.guest.ip === profile.guest.hostIp) {
      ctx.addIssue({ code: 'custom', path: ['guest', 'hostIp'], message: 'expected the host tap IP to differ from the guest IP' });
    }
  });

export type ClusterProfileInput = z.input<typeof clusterProfileSchema>;
export type ClusterProfile = z.output<typeof clusterProfileSchema>;
export type ClusterNode = ClusterProfile['nodes'][number];
export type SshSettings = ClusterProfile['ssh'];
export type StepTimeouts = ClusterProfile['timeouts'];
