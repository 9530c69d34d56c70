/**
 * Pure argv rules of FragVisor's `lkvm run` (fragvisor-kvmtool), as ARTIFACT.md step 4 states them:
 *
 * - `-a -b -x -y -z -q -r -s -t` = vCPUs on node 0..8; vCPU i runs on node i, one vCPU per node
 *   (the sim accepts only 0 or 1 per node, the artifact's only layout).
 * - `-w` is ignored: the node count is recounted from the non-zero per-node flags.
 * - `-c` is overwritten with the sum of the per-node flags.
 * - The quirk ("with more than 12 argv entries, -a/-b must not come last"), decided here as: when
 *   argc > 12, the -a/-b options at the very end of argv are silently dropped. The recount then
 *   misses those nodes: the VM comes up on the wrong nodes (and the messaging-layer check, which
 *   wants exactly the VM's nodes, usually refuses it), or with node 0 left out lkvm dies.
 * - `console=ttyS0` in -p crashes the guest; no root=/dev/ram (or no -i) cannot mount the root fs.
 * - No -k: kvmtool would boot the host's own kernel, which is no FragVisor guest build: refused.
 *
 * Option syntax follows kvmtool's parse-options: `-m 512`, `-m512`, `--mem 512`, `--mem=512`.
 * Errors are reported the way kvmtool does (`  Error: ...` + usage, exit 129; `  Fatal: ...`, exit 1).
 */

/** Per-node vCPU flags in node order: -a is node 0 (the origin), -t node 8. */
export const NODE_FLAGS = ['a', 'b', 'x', 'y', 'z', 'q', 'r', 's', 't'] as const;
export const QUIRK_ARGC = 12;
export const USAGE = ' usage: lkvm run [<options>] [<kernel image>]';

export interface LkvmNetwork {
  mode: 'tap' | 'user' | 'none';
  guestIp?: string;
  hostIp?: string;
  guestMac?: string;
  vhost: boolean;
}

export interface LkvmConfig {
  /** vCPUs per node as counted (index = node id). */
  vcpusPerNode: number[];
  /** Node ids running a vCPU, ascending: vCPU k runs on nodes[k]. */
  nodes: number[];
  /** What -c becomes: the sum of the per-node flags. */
  cpus: number;
  /** -c and -w as given (both overruled). */
  givenCpus?: number;
  givenNodes?: number;
  /** Options dropped by the argc > 12 quirk, e.g. ['-a', '-b']. */
  quirkDropped: string[];
  kernel: string;
  initrd?: string;
  memMiB: number;
  params: string;
  /** `init=` of the kernel command line, or the ramdisk's default /init. */
  init: string;
  networks: LkvmNetwork[];
  disks: string[];
  name?: string;
  /** Set when the guest kernel is bound to crash during boot, with the console's last words. */
  crash?: string;
}

export type LkvmParse = { ok: true; config: LkvmConfig } | { ok: false; message: string; code: number };

interface OptSpec {
  long?: string;
  short?: string;
  kind: 'int' | 'string' | 'flag';
  key: string;
}

const OPTIONS: OptSpec[] = [
  ...NODE_FLAGS.map((f, i): OptSpec => ({ short: f, kind: 'int', key: `node${i}` })),
  { short: 'w', long: 'nodes', kind: 'int', key: 'nodes' },
  { short: 'c', long: 'cpus', kind: 'int', key: 'cpus' },
  { short: 'm', long: 'mem', kind: 'int', key: 'mem' },
  { short: 'k', long: 'kernel', kind: 'string', key: 'kernel' },
  { short: 'i', long: 'initrd', kind: 'string', key: 'initrd' },
  { short: 'p', long: 'params', kind: 'string', key: 'params' },
  { short: 'd', long: 'disk', kind: 'string', key: 'disk' },
  { short: 'n', long: 'network', kind: 'string', key: 'network' },
  { long: 'name', kind: 'string', key: 'name' },
  { long: 'console', kind: 'string', key: 'console' },
  { long: 'balloon', kind: 'flag', key: 'balloon' },
  { long: 'rng', kind: 'flag', key: 'rng' },
  { long: 'no-dhcp', kind: 'flag', key: 'no-dhcp' },
  { long: 'debug', kind: 'flag', key: 'debug' },
];

interface Occurrence {
  spec: OptSpec;
  value: string;
  /** As written, for messages (`-a`). */
  flag: string;
}

const error = (message: string): LkvmParse => ({ ok: false, message: `  Error: ${message}\n\n${USAGE}\n`, code: 129 });
const fatal = (message: string): LkvmParse => ({ ok: false, message: `  Fatal: ${message}\n`, code: 1 });

/** Splits argv (after `lkvm run`) into option occurrences and positional arguments. */
function scan(args: readonly string[]): { occ: Occurrence[]; positional: string[] } | LkvmParse {
  const occ: Occurrence[] = [];
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      positional.push(...args.slice(i + 1));
      break;
    }
    let spec: OptSpec | undefined;
    let inline: string | undefined;
    let flag: string;
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      inline = eq < 0 ? undefined : arg.slice(eq + 1);
      spec = OPTIONS.find((o) => o.long === name);
      flag = `--${name}`;
      if (!spec) return error(`Unknown option: ${name}`);
      if (spec.kind === 'flag' && inline !== undefined) return error(`option \`${name}' takes no value`);
    } else if (arg.startsWith('-') && arg.length > 1) {
      spec = OPTIONS.find((o) => o.short === arg[1]);
      flag = arg.slice(0, 2);
      if (!spec) return error(`Unknown switch \`${arg[1]}'`);
      if (arg.length > 2) inline = arg.slice(2);
    } else {
      positional.push(arg);
      continue;
    }
    if (spec.kind === 'flag') {
      occ.push({ spec, value: '', flag });
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= args.length) return error(`${describe(spec)} requires a value`);
      value = args[++i];
    }
    occ.push({ spec, value, flag });
  }
  return { occ, positional };
}

function describe(spec: OptSpec): string {
  return spec.long ? `option \`${spec.long}'` : `switch \`${spec.short}'`;
}

/**
 * Parses `lkvm run ...`; `argv` is the whole argv as main() sees it (`lkvm`, `run`, options...),
 * since the quirk depends on argc.
 */
export function parseLkvmArgs(argv: readonly string[]): LkvmParse {
  if (argv[1] !== 'run') return fatal(`only \`lkvm run\` is simulated (got ${argv[1] === undefined ? 'no command' : `\`lkvm ${argv[1]}\``})`);
  const scanned = scan(argv.slice(2));
  if ('ok' in scanned) return scanned;
  let { occ } = scanned;

  // The quirk: trailing -a/-b options of a long command line are lost.
  const quirkDropped: string[] = [];
  if (argv.length > QUIRK_ARGC) {
    while (occ.length > 0 && ['node0', 'node1'].includes(occ[occ.length - 1].spec.key)) {
      quirkDropped.unshift(occ[occ.length - 1].flag);
      occ = occ.slice(0, -1);
    }
  }

  const ints = new Map<string, number>();
  const strings = new Map<string, string[]>();
  for (const o of occ) {
    if (o.spec.kind === 'int') {
      if (!/^-?\d+$/.test(o.value)) return error(`${describe(o.spec)} expects a numerical value`);
      ints.set(o.spec.key, Number(o.value));
    } else if (o.spec.kind === 'string') {
      strings.set(o.spec.key, [...(strings.get(o.spec.key) ?? []), o.value]);
    }
  }
  const last = (key: string) => strings.get(key)?.at(-1);

  const vcpusPerNode = NODE_FLAGS.map((_, i) => ints.get(`node${i}`) ?? 0);
  for (const [i, n] of vcpusPerNode.entries()) {
    if (n < 0 || n > 1) return fatal(`-${NODE_FLAGS[i]} ${n}: FragVisor runs one vCPU per node (0 or 1), vCPU i on node i`);
  }
  const nodes = vcpusPerNode.flatMap((n, i) => (n > 0 ? [i] : []));
  if (nodes.length === 0) return fatal('no vCPU on any node: give the per-node counts with -a -b -x -y (-z -q -r -s -t)');
  if (nodes[0] !== 0) return fatal(`node 0 (the origin, -a) runs no vCPU: the VM's first vCPU must run where lkvm runs${quirkDropped.length ? ` (${quirkDropped.join(' ')} at the end of a long command line were ignored)` : ''}`);

  const kernel = last('kernel') ?? scanned.positional[0];
  if (!kernel) return fatal("no guest kernel (-k <bzImage>): the default would be this host's own kernel, which is not a FragVisor guest build (POPHYPE_HOST_KERNEL 0)");
  if (scanned.positional.length > (last('kernel') ? 0 : 1)) return error(`unexpected argument \`${scanned.positional.at(-1)}'`);

  const mem = ints.get('mem') ?? 64 * (nodes.length + 1);
  if (mem <= 0) return fatal(`-m ${mem}: the guest needs memory`);

  const networks: LkvmNetwork[] = [];
  for (const spec of strings.get('network') ?? []) {
    const net = parseNetwork(spec);
    if (typeof net === 'string') return fatal(net);
    networks.push(net);
  }

  const params = last('params') ?? '';
  const words = params.split(/\s+/).filter(Boolean);
  const init = words.find((w) => w.startsWith('init='))?.slice(5) || '/init';
  const initrd = last('initrd');
  return {
    ok: true,
    config: {
      vcpusPerNode,
      nodes,
      cpus: nodes.length,
      givenCpus: ints.get('cpus'),
      givenNodes: ints.get('nodes'),
      quirkDropped,
      kernel,
      initrd,
      memMiB: mem,
      params,
      init,
      networks,
      disks: strings.get('disk') ?? [],
      name: last('name'),
      crash: crashReason(words, initrd),
    },
  };
}

/** Why the guest kernel will not come up with these parameters, if it will not. */
function crashReason(words: readonly string[], initrd: string | undefined): string | undefined {
  if (words.some((w) => /^console=ttyS\d/.test(w))) {
    return 'BUG: unable to handle kernel NULL pointer dereference at 0000000000000008 (serial console on a distributed VM: console=ttyS0)';
  }
  const root = words.find((w) => w.startsWith('root='))?.slice(5);
  if (!initrd || !root || !/^\/dev\/ram\d*$/.test(root)) return `VFS: Unable to mount root fs on unknown-block(0,0) (root=${root ?? '(none)'}${initrd ? '' : ', no initrd (-i)'})`;
  return undefined;
}

const IP = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;
const MAC = /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/;

/** kvmtool's --network parser: comma-separated key=value, dying on what it does not know. */
export function parseNetwork(spec: string): LkvmNetwork | string {
  const net: LkvmNetwork = { mode: 'user', vhost: false };
  for (const part of spec.split(',').filter(Boolean)) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    switch (key) {
      case 'mode':
        if (value !== 'tap' && value !== 'user' && value !== 'none') return `Unknown network mode ${value}, please use user, tap or none`;
        net.mode = value;
        break;
      case 'vhost':
        net.vhost = value === '1';
        break;
      case 'guest_ip':
      case 'host_ip':
        if (!IP.test(value)) return `Unable to parse ${key} address ${value}`;
        net[key === 'guest_ip' ? 'guestIp' : 'hostIp'] = value;
        break;
      case 'guest_mac':
      case 'host_mac':
        if (!MAC.test(value)) return `Unable to parse ${key} address ${value}`;
        if (key === 'guest_mac') net.guestMac = value.toLowerCase();
        break;
      case 'trans':
      case 'script':
      case 'tapif':
        break;
      default:
        return `Unknown network parameter ${key}`;
    }
  }
  return net;
}
