/**
 * The RDMA messaging layer (ARTIFACT.md step 3) as pure data: config.h, the command lines per node,
 * the dmesg parser and the verdict over all nodes. No I/O: the activities (activities/msglayer.ts),
 * the workflow (workflows/messagingLayer.ts), `ae plan` and the simulator (which builds its config.h
 * with the same renderer) share it.
 */
import type { PlanStep } from '../plan/types';
import { toCommandLine } from './quote';
import { asRoot } from './sudo';

export const MSG_LAYER_MODULE = 'msg_rdma';

/** config.h in the artifact's exact layout (fragvisor-linux msg_layer/config.h), `ips` in node-id order. */
export function renderConfigH(ips: readonly string[]): string {
  const entries = ips.map((ip, i) => `\t/* Node ${i} */ "${ip}",\n`).join('');
  return [
    '#ifndef __POPCORN_MSG_LAYER_CONFIG_H__',
    '#define __POPCORN_MSG_LAYER_CONFIG_H__',
    '',
    '/**',
    ' * XXX DO NOT commit your local config file!!! XXX',
    ' */',
    '',
    'const char *ip_addresses[] = {',
    `${entries}\t/*   ...  */`,
    '};',
    '',
    '#endif',
    '',
  ].join('\n');
}

/** Where the layer lives in a node's kernel tree (a profile `paths.kernelTree`, already validated). */
export function msgLayerPaths(kernelTree: string): { dir: string; configH: string; ko: string } {
  const dir = `${kernelTree.replace(/\/+$/, '')}/msg_layer`;
  return { dir, configH: `${dir}/config.h`, ko: `${dir}/${MSG_LAYER_MODULE}.ko` };
}

/** argv of each command, in the order they run. */
export const msgLayerArgv = {
  /** Unloads a module left from an earlier load in this boot (`not currently loaded` is fine). */
  rmmod: (): string[] => asRoot(['rmmod', MSG_LAYER_MODULE]),
  /** Writes config.h from stdin (tee, not a shell redirect: argv only; it echoes the file to the log). */
  writeConfigH: (kernelTree: string): string[] => ['tee', msgLayerPaths(kernelTree).configH],
  makeClean: (kernelTree: string): string[] => ['make', 'clean', '-C', msgLayerPaths(kernelTree).dir],
  make: (kernelTree: string): string[] => ['make', '-C', msgLayerPaths(kernelTree).dir],
  /** Without sudo: the remote job adds `sudo -n` (RemoteJobSpec.sudo). */
  insmod: (kernelTree: string): string[] => ['insmod', msgLayerPaths(kernelTree).ko],
  /** Root: Ubuntu >= 20.04 restricts dmesg (kernel.dmesg_restrict=1); insmod needs sudo anyway. */
  dmesg: (): string[] => asRoot(['dmesg', '-t']),
  lsmod: (): string[] => ['lsmod'],
};

export type RmmodOutcome = 'removed' | 'not-loaded' | 'busy' | 'failed';

/** What `rmmod msg_rdma` did, from its exit code and kmod's stderr. */
export function rmmodOutcome(exitCode: number | null, stderr: string): RmmodOutcome {
  if (exitCode === 0) return 'removed';
  if (/is not currently loaded/.test(stderr)) return 'not-loaded';
  // A module whose init has not returned (loading or hung) cannot be removed: only a reboot helps.
  if (/Device or resource busy/.test(stderr)) return 'busy';
  return 'failed';
}

/** True when lsmod lists msg_rdma (loading, hung or up: /proc/modules lists all three). */
export function lsmodHasMsgLayer(lsmodOutput: string): boolean {
  return new RegExp(`^${MSG_LAYER_MODULE}\\s`, 'm').test(lsmodOutput);
}

// ---- dmesg ----

const LOADING = /^popcorn: Loading node configuration\.\.\.$/;
/** `%s %d: %pI4`: `* 0: 10.4.6.15` for the node's own entry, `  1: 10.4.6.14` for the others. */
const ENTRY = /^popcorn: ([* ]) (\d+): (\d+\.\d+\.\d+\.\d+)$/;
const READY = /^popcorn: Ready on InfiniBand RDMA$/;
const JOINED = /^popcorn: +(\d+) joined, /;
const NO_ORIGIN = /^popcorn: No origin node$/;
const DUPLICATE_ORIGIN = /^popcorn: Duplicate origin: /;

/**
 * Failure lines of a load. `rdma`: the fabric or a peer failed (a reboot cycle may cure it);
 * `config`: the node list or the module does not fit this node (a reboot does not help).
 * Some are bare printks in rdma.c, so the `popcorn: ` prefix is optional.
 */
const FAILURES: ReadonlyArray<{ re: RegExp; kind: 'rdma' | 'config' }> = [
  { re: /^(?:popcorn: )?Unable to [^,]+, \S+ - -?\d+, -?\d+/, kind: 'rdma' },
  { re: /^(?:popcorn: )?Cannot bind server address/, kind: 'rdma' },
  { re: /^(?:popcorn: )?Unhandled client event \d+/, kind: 'rdma' },
  { re: /^(?:popcorn: )?My IP is not listed in the node configuration/, kind: 'config' },
  // The kernel's module loader (version magic, unknown symbol): the init never ran.
  { re: new RegExp(`^${MSG_LAYER_MODULE}: `), kind: 'config' },
];

/** Lines of the kernel log that belong to the messaging layer. */
function relevant(line: string): boolean {
  return line.startsWith('popcorn: ') || FAILURES.some((f) => f.re.test(line));
}

export function failureKind(line: string): 'rdma' | 'config' | undefined {
  return FAILURES.find((f) => f.re.test(line))?.kind;
}

export interface MsgLayerDmesg {
  /** `Ready on InfiniBand RDMA` in the latest load. */
  ready: boolean;
  /** The node's own (starred) entry; the last one wins, as in identify_myself. null: none. */
  nodeId: number | null;
  /** Peer ids from `N joined, x86_64`, ascending, each once. */
  joined: number[];
  /** Failure lines of the latest load (see FAILURES), as logged. */
  errors: string[];
  /** `No origin node` (the layer is up but no node may launch the VM) or `Duplicate origin: ...` (not ready). */
  originProblem?: { kind: 'none' | 'duplicate'; line: string };
  /** The latest load's messaging-layer lines (at most the last 40), for reports and failures. */
  lines: string[];
}

/**
 * One node's latest load, from its kernel log (`dmesg`, with or without timestamps): only the lines
 * from the last `Loading node configuration...` on, so an earlier load in the same boot (rmmod'ed, or
 * failed) does not count. Without such a line, the module loader's lines (if any) are the story.
 */
export function parseMsgLayerDmesg(dmesg: string): MsgLayerDmesg {
  const all = dmesg
    .split('\n')
    .map((l) => l.replace(/^\[[^\]]*\]\s?/, '').trimEnd())
    .filter(relevant);
  let start = -1;
  all.forEach((l, i) => {
    if (LOADING.test(l)) start = i;
  });
  const lines = start >= 0 ? all.slice(start) : all;
  const out: MsgLayerDmesg = { ready: false, nodeId: null, joined: [], errors: [], lines: lines.slice(-40) };
  const joined = new Set<number>();
  for (const line of lines) {
    const entry = ENTRY.exec(line);
    if (entry) {
      if (entry[1] === '*') out.nodeId = Number(entry[2]);
      continue;
    }
    const join = JOINED.exec(line);
    if (join) joined.add(Number(join[1]));
    else if (READY.test(line)) out.ready = true;
    else if (NO_ORIGIN.test(line)) out.originProblem = { kind: 'none', line };
    else if (DUPLICATE_ORIGIN.test(line)) out.originProblem = { kind: 'duplicate', line };
    else if (failureKind(line)) out.errors.push(line);
  }
  out.joined = [...joined].sort((a, b) => a - b);
  return out;
}

// ---- the verdict over all nodes ----

export type MessagingLayerFailureKind = 'hang' | 'rdma-error' | 'not-ready' | 'origin';

/** Details of the workflow's `MessagingLayerFailed` failure: what the parent decides on. */
export interface MessagingLayerFailure {
  /** hang / rdma-error: a reboot cycle and a retry may cure it; origin: rebuild the kernels; not-ready: see lines. */
  kind: MessagingLayerFailureKind;
  nodes: string[];
  /** Evidence, each line prefixed with its node (`node2: popcorn: Unable to connect, ...`). */
  lines: string[];
}

/** What the workflow learned about one node. */
export interface MsgLayerNodeReport {
  node: string;
  /** Position in the node list = the node id it must claim. */
  index: number;
  /** insmod did not return in time, or an earlier load is stuck (rmmod: busy): the node's last lines. */
  hung?: string[];
  /** insmod's exit code and last output lines, when it returned. */
  insmod?: { exitCode: number; tail: string[] };
  /** lsmod + dmesg after every insmod settled. */
  check?: MsgLayerDmesg & { loaded: boolean };
}

export type MessagingLayerVerdict = { ok: true; nodes: { node: string; nodeId: number; joined: number[] }[] } | { ok: false; failure: MessagingLayerFailure };

/** Why a node is not a complete member of an n-node layer; [] when it is. */
function shortfalls(r: MsgLayerNodeReport, n: number): string[] {
  const c = r.check;
  if (!c) return ['not checked'];
  const expected = Array.from({ length: n }, (_, i) => i).filter((i) => i !== r.index);
  const missing = expected.filter((i) => !c.joined.includes(i));
  return [
    ...(r.insmod && r.insmod.exitCode !== 0 ? [`insmod exited with ${r.insmod.exitCode}${r.insmod.tail.length ? `: ${r.insmod.tail[r.insmod.tail.length - 1]}` : ''}`] : []),
    ...(c.loaded ? [] : ['msg_rdma is not loaded']),
    ...(c.ready ? [] : ['no "Ready on InfiniBand RDMA" in its latest load']),
    ...(c.nodeId === r.index ? [] : [`claims node id ${c.nodeId ?? 'none'}, expected ${r.index}`]),
    ...(missing.length ? [`peers ${missing.join(', ')} did not join (joined: ${c.joined.join(', ') || 'none'})`] : []),
  ];
}

/**
 * The messaging layer of `reports.length` nodes is up when every node loaded it, is Ready, claims its
 * position as node id and saw all n-1 others join, with one origin. Otherwise the most telling cause
 * wins: a wrong origin (a reboot cannot cure it), a hang, an RDMA error line, then anything else.
 */
export function judgeMessagingLayer(reports: readonly MsgLayerNodeReport[]): MessagingLayerVerdict {
  const n = reports.length;
  const tag = (node: string, lines: readonly string[]) => lines.map((l) => `${node}: ${l}`);
  const fail = (kind: MessagingLayerFailureKind, which: MsgLayerNodeReport[], lines: string[]): MessagingLayerVerdict => ({
    ok: false,
    failure: { kind, nodes: which.map((r) => r.node), lines },
  });

  const origin = reports.filter((r) => r.check?.originProblem);
  if (origin.length) return fail('origin', origin, origin.flatMap((r) => tag(r.node, [r.check!.originProblem!.line])));
  const hung = reports.filter((r) => r.hung);
  if (hung.length) return fail('hang', hung, hung.flatMap((r) => tag(r.node, r.hung!)));
  const rdmaLines = (r: MsgLayerNodeReport) => (r.check?.errors ?? []).filter((l) => failureKind(l) === 'rdma');
  const rdma = reports.filter((r) => rdmaLines(r).length);
  if (rdma.length) return fail('rdma-error', rdma, rdma.flatMap((r) => tag(r.node, rdmaLines(r))));
  const short = reports.filter((r) => shortfalls(r, n).length);
  if (short.length) return fail('not-ready', short, short.flatMap((r) => tag(r.node, [...shortfalls(r, n), ...(r.check?.errors ?? [])])));
  return { ok: true, nodes: reports.map((r) => ({ node: r.node, nodeId: r.index, joined: r.check!.joined })) };
}

// ---- the plan ----

/** The step keys, shared by the plan and the activities' run-store logs. */
export const msgLayerStepKey = (hypervisor: string, node: string, what: 'build' | 'insmod' | 'check'): string => `${hypervisor}/msg-layer/${node}/${what}`;

/**
 * ARTIFACT.md step 3 for the first n nodes, as `ae plan` prints it: per node the build (config.h with
 * every node's IP in order, then make clean && make), then the insmods in node order, then the checks.
 */
export function messagingLayerSteps({ hypervisor, nodes, paths }: { hypervisor: string; nodes: readonly { name: string; rdmaIp: string }[]; paths: { kernelTree: string } }): PlanStep[] {
  const tree = paths.kernelTree;
  const line = toCommandLine;
  const list = nodes.map((n, i) => `${i}: ${n.rdmaIp}`).join(', ');
  const n = nodes.length;
  const build = nodes.map(
    (node): PlanStep => ({
      key: msgLayerStepKey(hypervisor, node.name, 'build'),
      title: `${node.name}: msg_layer/config.h with the ${n} nodes' IPs, then make clean && make`,
      host: { node: node.name },
      commands: [line(msgLayerArgv.rmmod()), line(msgLayerArgv.writeConfigH(tree)), line(msgLayerArgv.makeClean(tree)), line(msgLayerArgv.make(tree))],
      privileged: true,
      note: `rmmod: "not currently loaded" is fine, "busy" (an earlier load hangs) needs a reboot. config.h (stdin), node id = position: ${list}. A failed make stops the run.`,
    }),
  );
  const insmod = nodes.map(
    (node, i): PlanStep => ({
      key: msgLayerStepKey(hypervisor, node.name, 'insmod'),
      title: `${node.name}: insmod msg_rdma.ko (node ${i}${i === 0 ? ', first' : `, 1 s after ${nodes[i - 1].name}`})`,
      host: { node: node.name },
      commands: [line(asRoot(msgLayerArgv.insmod(tree)))],
      privileged: true,
      note: `A remote job keyed by run, node and boot. Returns once its connections are up (node 0 last). No return in time: the node hangs, a reboot cycle and a bounded retry follow.`,
    }),
  );
  const check = nodes.map(
    (node): PlanStep => ({
      key: msgLayerStepKey(hypervisor, node.name, 'check'),
      title: `${node.name}: msg_rdma loaded, Ready on InfiniBand RDMA, ${n - 1} joined`,
      host: { node: node.name },
      commands: [line(msgLayerArgv.lsmod()), line(msgLayerArgv.dmesg())],
      privileged: true,
      note: 'Judges the popcorn: lines after the last "Loading node configuration...". An RDMA error line leads to a reboot cycle and a bounded retry; a missing or duplicate origin does not.',
    }),
  );
  return [...build, ...insmod, ...check];
}
