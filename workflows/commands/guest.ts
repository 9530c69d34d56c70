import type { Experiment, Hypervisor } from '../inputs';
import type { PlanStep } from '../plan/types';
import { OPENLAMBDA_BASE_PORT, PINNINGS, type Pinning } from './bench';
import { besideFragvisor, type KernelPaths } from './kernel';
import { shellQuote, toCommandLine } from './quote';

/**
 * ARTIFACT.md step 5 as command lines and pure decisions: the guest's services restarted per
 * experiment, `ps aux` read into processes, the pinning plan (which pid gets which vCPU mask) and
 * util-linux taskset's read-back. The activities (activities/guest.ts) send exactly these lines over
 * the guest's SSH endpoint; `ae plan` prints them.
 *
 * vCPU i runs on node i (lkvm's -a/-b/-x/-y), so "pinned to node i" is the mask 1 << i.
 */

/** E3's two pinnings of the nginx worker: on the origin's vCPU, or on a remote one (I/O delegated). */
export type E3Case = Pinning;
export const E3_CASES: readonly E3Case[] = PINNINGS;

export const NGINX_CONF = '/usr/local/nginx/conf/nginx.conf';
export const PHP_FPM_CONF = '/etc/php/7.2/fpm/php-fpm.conf';
/** Where OpenLambda lives in the guest: the workers' directories lN are relative to it. */
export const GUEST_OPENLAMBDA_DIR = '/root/open-lambda';

/** The process names (comm) of the guest's servers. */
const NGINX = 'nginx';
const PHP_FPM = 'php-fpm7.2';
const OL = 'ol';

/** A mask has one bit per vCPU; the plan stays within what a JS number and taskset's parsers hold exactly. */
export const MAX_GUEST_NODES = 31;

export function checkNodeCount(nodeCount: number): number {
  if (!Number.isInteger(nodeCount) || nodeCount < 1 || nodeCount > MAX_GUEST_NODES) {
    throw new RangeError(`the node count must be a whole number 1..${MAX_GUEST_NODES}, got ${String(nodeCount)}`);
  }
  return nodeCount;
}

/** `0x1`, `0x4`: how the artifact writes masks. */
export const maskHex = (mask: number): string => `0x${mask.toString(16)}`;

/** The mask of vCPU i (node i). */
export const vcpuMask = (i: number): number => 2 ** i;

// ---- setup ----

/**
 * Stops every process named `comms` and waits (at most 10 s) until none is left, so the start that
 * follows never meets a half-dead server still bound to its port. Idempotent: nothing running is fine.
 */
export function stopCommand(comms: readonly string[]): string {
  const kills = comms.map((c) => toCommandLine(['pkill', '-x', c])).join('; ');
  const anyLeft = comms.map((c) => `${toCommandLine(['pgrep', '-x', c])} >/dev/null`).join(' || ');
  const stuck = shellQuote(`fragvisor-ae: ${comms.join(', ')} still running 10 s after pkill`);
  return `${kills}; n=0; while ${anyLeft}; do n=$((n+1)); if [ "$n" -gt 100 ]; then echo ${stuck} >&2; ps aux >&2; exit 1; fi; sleep 0.1; done`;
}

/** E3 wants exactly one nginx worker: `worker_processes 1;` (no such line: nginx's default is 1 already). */
export function oneNginxWorkerCommand(conf = NGINX_CONF): string {
  return toCommandLine(['sed', '-i', '-E', 's/^([[:space:]]*worker_processes)[[:space:]]+[^;]*;/\\1 1;/', conf]);
}

export const startNginxCommand = (conf = NGINX_CONF): string => toCommandLine(['nginx', '-c', conf]);

/**
 * The artifact runs `php-fpm7.2 --fpm-config ... &` from an interactive shell. Over an exec channel a
 * background job would hide a failed start; `--daemonize` makes php-fpm fork itself whatever the
 * config says, and exit only once its workers are up, with the start's status and error lines.
 */
export const startPhpFpmCommand = (conf = PHP_FPM_CONF): string => toCommandLine([PHP_FPM, '--fpm-config', conf, '--daemonize']);

/** Worker i's directory (relative to GUEST_OPENLAMBDA_DIR): its port is 5000 + i. */
export const olWorkerDir = (i: number): string => `l${i}`;

/** `ol worker --path=lN -d` started on vCPU N, from the OpenLambda directory. */
export function startOlWorkerCommand(i: number): string {
  return `cd ${shellQuote(GUEST_OPENLAMBDA_DIR)} && ${toCommandLine(['taskset', maskHex(vcpuMask(i)), './ol', 'worker', `--path=${olWorkerDir(i)}`, '-d'])}`;
}

/**
 * The guest's setup per experiment (the same for both E3 cases: the case only changes the pinning).
 * E2's OpenLambda copy comes before the worker starts and is not in this list (see openLambdaCopy).
 */
export function guestSetupCommands(experiment: Experiment, nodeCount: number): string[] {
  const n = checkNodeCount(nodeCount);
  switch (experiment) {
    case 'E1':
      return [stopCommand([NGINX, PHP_FPM]), startNginxCommand(), startPhpFpmCommand()];
    case 'E3':
      return [stopCommand([NGINX]), oneNginxWorkerCommand(), startNginxCommand()];
    case 'E2':
      return [stopCommand([OL]), ...Array.from({ length: n }, (_, i) => startOlWorkerCommand(i))];
  }
}

/**
 * Copying OpenLambda into the guest (E2). The artifact copies it in with scp; the guest has no scp
 * subsystem we can count on, so the origin's tree is streamed as a tar through the control host into
 * `tar x` in the guest. When the origin has no tree, the ramdisk's own OpenLambda is used (the
 * simulated ramdisk ships one); when neither has it, the setup fails (GuestSetupFailed).
 */
export interface OpenLambdaCopy {
  /** The tree on the origin: `open-lambda` next to the FragVisor checkout. */
  source: string;
  /** On the origin: prints `present` or `absent`. */
  sourceCheck: string;
  /** On the origin: the tree as a tar on stdout. */
  tar: string;
  /** In the guest: unpacks stdin into GUEST_OPENLAMBDA_DIR and checks `ol` is there. */
  untar: string;
  /** In the guest: prints `present` or `absent`. */
  guestCheck: string;
}

const presence = (file: string) => `${toCommandLine(['test', '-x', file])} && echo present || echo absent`;

/** As root, tar would give the files the origin user's uid (which the guest may not even map): root owns them, as after scp. */
const openLambdaUntarCommand = () =>
  `${toCommandLine(['mkdir', '-p', GUEST_OPENLAMBDA_DIR])} && ${toCommandLine(['tar', '-xf', '-', '--no-same-owner', '-C', GUEST_OPENLAMBDA_DIR])} && ${toCommandLine(['test', '-x', `${GUEST_OPENLAMBDA_DIR}/ol`])}`;
const openLambdaGuestCheck = () => presence(`${GUEST_OPENLAMBDA_DIR}/ol`);

export function openLambdaCopy(paths: Pick<KernelPaths, 'fragvisor'>): OpenLambdaCopy {
  const source = besideFragvisor(paths, 'open-lambda');
  return { source, sourceCheck: presence(`${source}/ol`), tar: toCommandLine(['tar', '-C', source, '-cf', '-', '.']), untar: openLambdaUntarCommand(), guestCheck: openLambdaGuestCheck() };
}

/** The answer of a presence check. */
export function parsePresence(stdout: string): boolean {
  const word = stdout.trim();
  if (word !== 'present' && word !== 'absent') throw new Error(`expected "present" or "absent", got ${JSON.stringify(stdout.slice(0, 200))}`);
  return word === 'present';
}

// ---- ps aux ----

export const PS_AUX_ARGV: readonly string[] = ['ps', 'aux'];

/** One row of procps's `ps aux`. */
export interface PsProcess {
  user: string;
  pid: number;
  cpu: number;
  mem: number;
  vszKb: number;
  rssKb: number;
  tty: string;
  stat: string;
  start: string;
  time: string;
  command: string;
  /** The row as ps printed it (evidence in failure messages). */
  line: string;
}

const PS_AUX_HEADER = ['USER', 'PID', '%CPU', '%MEM', 'VSZ', 'RSS', 'TTY', 'STAT', 'START', 'TIME', 'COMMAND'];

/**
 * procps's `ps aux`: ten whitespace-free columns (a long user name is cut to 7 characters and a `+`),
 * then the command line, which may hold spaces. Anything else is refused rather than guessed at: a
 * wrong pid would pin the wrong process.
 */
export function parsePsAux(stdout: string): PsProcess[] {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  const header = lines[0]?.trim().split(/\s+/);
  if (!header || header.join(' ') !== PS_AUX_HEADER.join(' ')) {
    throw new Error(`expected procps's \`ps aux\` header (${PS_AUX_HEADER.join(' ')}), got ${JSON.stringify((lines[0] ?? '').slice(0, 200))}`);
  }
  return lines.slice(1).map((line) => {
    const m = /^\s*(\S+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s?(.*)$/.exec(line);
    if (!m) throw new Error(`unexpected \`ps aux\` row: ${JSON.stringify(line.slice(0, 200))}`);
    return {
      user: m[1],
      pid: Number(m[2]),
      cpu: Number(m[3]),
      mem: Number(m[4]),
      vszKb: Number(m[5]),
      rssKb: Number(m[6]),
      tty: m[7],
      stat: m[8],
      start: m[9],
      time: m[10],
      command: m[11],
      line,
    };
  });
}

export type GuestRole = 'nginx-master' | 'nginx-worker' | 'php-fpm-master' | 'php-fpm-worker' | 'ol-worker';

/** What a process is, by the command line the server gives itself; zombies are nothing (they cannot be pinned). */
export function roleOf(p: PsProcess): { role: GuestRole; olDir?: string } | undefined {
  if (p.stat.startsWith('Z')) return undefined;
  if (/^nginx: master process\b/.test(p.command)) return { role: 'nginx-master' };
  if (/^nginx: worker process\b/.test(p.command)) return { role: 'nginx-worker' };
  if (/^php-fpm: master process\b/.test(p.command)) return { role: 'php-fpm-master' };
  if (/^php-fpm: pool \S/.test(p.command)) return { role: 'php-fpm-worker' };
  // OpenLambda's detached worker re-runs its own argv without -d: `./ol worker --path=l0`.
  const ol = /^(?:\S*\/)?ol\s+worker\b(?:.*\s)?--?path(?:=|\s+)(\S+)/.exec(p.command);
  if (ol) return { role: 'ol-worker', olDir: ol[1].replace(/\/+$/, '').split('/').pop() ?? ol[1] };
  return undefined;
}

/** The rows of the guest's servers (for failure messages). */
export const serverRows = (processes: readonly PsProcess[]): string[] => processes.filter((p) => roleOf(p) !== undefined).map((p) => p.line);

// ---- the pinning plan ----

export interface PinRequest {
  pid: number;
  /** `nginx master`, `php-fpm worker 2`, `ol worker l3`. */
  what: string;
  mask: number;
}

/** The expected processes are not there: what is missing, with the server rows ps showed. */
export class PinningPlanError extends Error {
  override readonly name = 'PinningPlanError';
  constructor(
    readonly problems: string[],
    readonly rows: string[],
  ) {
    super(problems.join('; '));
  }
}

const byPid = (a: PsProcess, b: PsProcess) => a.pid - b.pid;

/**
 * Which pid gets which mask (ARTIFACT.md step 5), from the processes `ps aux` shows:
 *   E1: nginx master and every nginx worker on vCPU 0; exactly one php-fpm worker per node, the i-th
 *       (by pid) on vCPU i.
 *   E2: exactly one `ol worker --path=lN` per node N < n (and no other), each on vCPU N.
 *   E3: exactly one nginx master and one nginx worker; local: both on vCPU 0; delegated: the worker
 *       on vCPU 1 (a remote node: its I/O is delegated to the origin), which needs two nodes.
 * Throws PinningPlanError naming everything that is missing or extra.
 */
export function pinningPlan(experiment: Experiment, nodeCount: number, e3Case: E3Case | undefined, processes: readonly PsProcess[]): PinRequest[] {
  const n = checkNodeCount(nodeCount);
  const roles = processes.map((p) => ({ p, r: roleOf(p) }));
  const of = (role: GuestRole) => roles.filter((x) => x.r?.role === role).map((x) => x.p).sort(byPid);
  const problems: string[] = [];
  const pins: PinRequest[] = [];
  const exactly = (what: string, found: PsProcess[], want: number) => {
    if (found.length !== want) problems.push(`expected ${want} ${what}, found ${found.length}${found.length ? ` (pid ${found.map((p) => p.pid).join(', ')})` : ''}`);
    return found.length === want;
  };

  if (experiment === 'E1') {
    const masters = of('nginx-master');
    const workers = of('nginx-worker');
    const php = of('php-fpm-worker');
    exactly('nginx master', masters, 1);
    if (workers.length === 0) problems.push('expected at least 1 nginx worker, found none');
    exactly(`php-fpm workers (one per node, ${n} node${n === 1 ? '' : 's'})`, php, n);
    pins.push(...masters.map((p) => ({ pid: p.pid, what: 'nginx master', mask: vcpuMask(0) })));
    pins.push(...workers.map((p) => ({ pid: p.pid, what: 'nginx worker', mask: vcpuMask(0) })));
    pins.push(...php.map((p, i) => ({ pid: p.pid, what: `php-fpm worker ${i}`, mask: vcpuMask(i) })));
  } else if (experiment === 'E3') {
    const c = e3Case ?? 'local';
    if (c === 'delegated' && n < 2) problems.push(`the delegated case puts the nginx worker on vCPU 1 (node 1): it needs at least 2 nodes, got ${n}`);
    const masters = of('nginx-master');
    const workers = of('nginx-worker');
    exactly('nginx master', masters, 1);
    exactly('nginx worker (worker_processes 1)', workers, 1);
    pins.push(...masters.map((p) => ({ pid: p.pid, what: 'nginx master', mask: vcpuMask(0) })));
    pins.push(...workers.map((p) => ({ pid: p.pid, what: 'nginx worker', mask: vcpuMask(c === 'local' ? 0 : 1) })));
  } else {
    const workers = roles.filter((x) => x.r?.role === 'ol-worker').map((x) => ({ p: x.p, dir: x.r!.olDir! }));
    for (let i = 0; i < n; i++) {
      const dir = olWorkerDir(i);
      const found = workers.filter((w) => w.dir === dir).map((w) => w.p).sort(byPid);
      if (exactly(`ol worker --path=${dir}`, found, 1)) pins.push({ pid: found[0].pid, what: `ol worker ${dir}`, mask: vcpuMask(i) });
    }
    const wanted = new Set(Array.from({ length: n }, (_, i) => olWorkerDir(i)));
    const extra = workers.filter((w) => !wanted.has(w.dir));
    if (extra.length) problems.push(`expected no other ol worker, found ${extra.map((w) => `${w.dir} (pid ${w.p.pid})`).join(', ')}`);
  }
  if (problems.length) throw new PinningPlanError(problems, serverRows(processes));
  return pins;
}

// ---- taskset ----

/** Sets pid's mask: `taskset -p 0x4 123`. */
export const tasksetSetArgv = (mask: number, pid: number): string[] => ['taskset', '-p', maskHex(mask), String(pid)];

/** Reads pid's mask back: `taskset -p 123`. */
export const tasksetGetArgv = (pid: number): string[] => ['taskset', '-p', String(pid)];

/** A hex mask as taskset prints it (`f`, `ff,ffffffff` on wide machines) in the `0x..` form, without leading zeros. */
export function normalizeMask(text: string): string {
  const hex = text.trim().toLowerCase().replace(/^0x/, '').replace(/,/g, '');
  if (!/^[0-9a-f]+$/.test(hex)) throw new Error(`not a hex CPU mask: ${JSON.stringify(text)}`);
  return `0x${hex.replace(/^0+(?=.)/, '')}`;
}

/**
 * util-linux taskset's report: `pid 123's current affinity mask: f`, and after a change also
 * `pid 123's new affinity mask: 4`. Masks come back in the `0x..` form of normalizeMask.
 */
export function parseTasksetOutput(stdout: string): { pid: number; current: string; new?: string } {
  let pid: number | undefined;
  let current: string | undefined;
  let changed: string | undefined;
  for (const line of stdout.split('\n')) {
    const m = /^pid (\d+)'s (current|new) affinity mask: ([0-9a-fA-F,]+)\s*$/.exec(line);
    if (!m) continue;
    if (pid !== undefined && Number(m[1]) !== pid) throw new Error(`taskset reported two pids (${pid} and ${m[1]}): ${JSON.stringify(stdout.slice(0, 300))}`);
    pid = Number(m[1]);
    if (m[2] === 'current') current = normalizeMask(m[3]);
    else changed = normalizeMask(m[3]);
  }
  if (pid === undefined || current === undefined) throw new Error(`expected util-linux taskset's "pid N's current affinity mask: M", got ${JSON.stringify(stdout.slice(0, 300))}`);
  return { pid, current, ...(changed !== undefined ? { new: changed } : {}) };
}

// ---- the plan ----

export interface GuestStepsInput {
  experiment: Experiment;
  nodeCount: number;
  /** E3 only; absent: both cases' pinning steps, local first. */
  case?: E3Case;
  /** For the step keys (default fragvisor): the same epoch runs under each hypervisor. */
  hypervisor?: Hypervisor;
  /** The profile's paths, for E2's copy source (absent: the plan names it without a path). */
  paths?: Pick<KernelPaths, 'fragvisor'>;
}

/** The step keys, shared by the plan and the activities' run-store logs: `<hypervisor>/epoch-E1-n4/guest/<what>`. */
export const guestStepKey = (hypervisor: Hypervisor, experiment: Experiment, nodeCount: number, what: string): string => `${hypervisor}/epoch-${experiment}-n${nodeCount}/guest/${what}`;

/** The pin step's name: `pin`, or `pin-local` / `pin-delegated` for E3. */
export const pinStepName = (experiment: Experiment, e3Case?: E3Case): string => (experiment === 'E3' ? `pin-${e3Case ?? 'local'}` : 'pin');

function pinDescription(experiment: Experiment, n: number, c?: E3Case): { title: string; lines: string[] } {
  const set = (mask: number, who: string) => `${toCommandLine(['taskset', '-p', maskHex(mask)])} <pid of ${who}>`;
  if (experiment === 'E1') {
    return {
      title: `Pin nginx master and worker to vCPU 0 and php-fpm worker i to vCPU i (${Array.from({ length: n }, (_, i) => maskHex(vcpuMask(i))).join(', ')})`,
      lines: [set(vcpuMask(0), 'nginx master'), set(vcpuMask(0), 'each nginx worker'), ...Array.from({ length: n }, (_, i) => set(vcpuMask(i), `php-fpm worker ${i}`))],
    };
  }
  if (experiment === 'E3') {
    const worker = c === 'delegated' ? 1 : 0;
    return {
      title: c === 'delegated' ? 'Pin the nginx master to vCPU 0 and its one worker to vCPU 1 (a remote node: I/O delegated to the origin)' : 'Pin the nginx master and its one worker to vCPU 0 (I/O local to the origin)',
      lines: [set(vcpuMask(0), 'nginx master'), set(vcpuMask(worker), 'the nginx worker')],
    };
  }
  return {
    title: `Pin ol worker lN to vCPU N (${n} worker(s), started there with taskset; set again by pid and read back)`,
    lines: Array.from({ length: n }, (_, i) => set(vcpuMask(i), `ol worker ${olWorkerDir(i)}`)),
  };
}

/** ARTIFACT.md step 5 for one epoch, in the guest (and E2's copy from the origin), as `ae plan` prints it. */
export function guestSteps(input: GuestStepsInput): PlanStep[] {
  const { experiment } = input;
  const n = checkNodeCount(input.nodeCount);
  const key = (what: string) => guestStepKey(input.hypervisor ?? 'fragvisor', experiment, n, what);
  const host = { guest: true as const };
  const setup = guestSetupCommands(experiment, n);
  const waitNote = 'Then `ps aux` is read until the expected processes are there (bounded; else GuestSetupFailed with the ps rows).';
  const steps: PlanStep[] = [];
  if (experiment === 'E1') {
    steps.push({ key: key('setup'), title: 'Restart nginx and php-fpm (one worker per node)', host, commands: setup, note: `php-fpm forks itself (--daemonize) rather than the artifact's \`&\`, so a failed start is seen. ${waitNote}` });
  } else if (experiment === 'E3') {
    steps.push({ key: key('setup'), title: 'Restart nginx with exactly one worker (worker_processes 1)', host, commands: setup, note: waitNote });
  } else {
    const copy = input.paths ? openLambdaCopy(input.paths) : undefined;
    const origin = copy ? `On the origin first: \`${copy.sourceCheck}\`, then \`${copy.tar}\`` : 'On the origin first: the tree `open-lambda` next to the FragVisor checkout, as a tar';
    steps.push({
      key: key('copy-openlambda'),
      title: `Copy OpenLambda from the origin into the guest's ${GUEST_OPENLAMBDA_DIR}`,
      host,
      commands: [openLambdaUntarCommand()],
      note: `${origin}, streamed through the control host into this tar. No tree on the origin: the ramdisk's own OpenLambda is used (\`${openLambdaGuestCheck()}\`); neither: GuestSetupFailed.`,
    });
    steps.push({
      key: key('setup'),
      title: `Start ${n} OpenLambda worker(s): ol worker --path=lN -d on vCPU N, ports ${OPENLAMBDA_BASE_PORT}..${OPENLAMBDA_BASE_PORT + n - 1}`,
      host,
      commands: setup,
      note: waitNote,
    });
  }
  const cases: (E3Case | undefined)[] = experiment === 'E3' ? (input.case ? [input.case] : [...E3_CASES]) : [undefined];
  for (const c of cases) {
    const pin = pinDescription(experiment, n, c);
    steps.push({
      key: key(pinStepName(experiment, c)),
      title: pin.title,
      host,
      commands: [toCommandLine(PS_AUX_ARGV), ...pin.lines, `${toCommandLine(['taskset', '-p'])} <pid>  # for every pid above`],
      note: 'PIDs come from `ps aux`. Every mask is read back; a mask that does not hold (or a process gone in between) stops the epoch (PinningFailed, asked vs read back).',
    });
  }
  return steps;
}
