import type { KernelFlavour } from '../workflows/commands/kernel';

/**
 * Pure readers of what the kernel commands (workflows/commands/kernel.ts) print, the install marker,
 * the skip decision and the lines that explain a failed build.
 */

const SHA1 = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;
const RELEASE = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/;

/** One full commit hash (`git rev-parse HEAD`). */
export function parseCommitLine(stdout: string, what: string): string {
  const line = stdout.trim();
  if (!SHA1.test(line)) throw new Error(`${what}: expected a full commit hash, got ${JSON.stringify(stdout.slice(0, 200))}`);
  return line;
}

/** `<repo HEAD>\n<tree HEAD>` from the sync's last command. */
export function parseSyncOutput(stdout: string): { commit: string; treeCommit: string } {
  const lines = stdout.trim().split('\n');
  if (lines.length !== 2) throw new Error(`source sync: expected two commit hashes (checkout HEAD, kernel tree HEAD), got ${JSON.stringify(stdout.slice(0, 200))}`);
  return { commit: parseCommitLine(lines[0], 'source sync, checkout HEAD'), treeCommit: parseCommitLine(lines[1], 'source sync, kernel tree HEAD') };
}

export interface OriginFlagState {
  /** Whether the compiler sees the flag defined (a define not commented out, not #undef'd after). */
  origin: boolean;
  /** Every line of debug.h naming the flag, as `<line number>:<text>`. */
  lines: string[];
}

const ACTIVE_DEFINE = /^\s*#\s*define\s+CONFIG_POPCORN_ORIGIN_NODE(\s|$)/;
const UNDEF = /^\s*#\s*undef\s+CONFIG_POPCORN_ORIGIN_NODE(\s|$)/;

/**
 * The read-back of the origin flag (`grep -n` output). Judged line by line, as the edit is: a line
 * inside a multi-line comment block is not recognised as commented (debug.h has none there).
 */
export function parseOriginFlagReadback(stdout: string): OriginFlagState {
  const lines = stdout.split('\n').filter((l) => l.trim() !== '');
  let origin = false;
  for (const line of lines) {
    const m = /^(\d+):(.*)$/.exec(line);
    if (!m) throw new Error(`origin flag read-back: expected "<line>:<text>" lines from grep -n, got ${JSON.stringify(line.slice(0, 200))}`);
    if (ACTIVE_DEFINE.test(m[2])) origin = true;
    else if (UNDEF.test(m[2])) origin = false;
  }
  return { origin, lines };
}

/** What a node records after a successful install: ~/.fragvisor-ae/kernel/<flavour>.json. */
export interface KernelMarker {
  flavour: KernelFlavour;
  /** The synced source checkout's commit. */
  commit: string;
  /** The kernel tree's HEAD (differs from `commit` for FragVisor: the submodule's). */
  treeCommit: string;
  configHash: string;
  /** `uname -r` of the installed kernel. */
  release: string;
  origin: boolean;
  installedAt: string;
}

export function renderMarker(marker: KernelMarker): string {
  return `${JSON.stringify(marker, null, 2)}\n`;
}

/** The marker in a file's text; a problem (not JSON, a field missing or malformed) is returned, not thrown. */
export function parseMarker(text: string): { marker?: KernelMarker; problem?: string } {
  if (text.trim() === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { problem: 'the install marker is not JSON' };
  }
  const m = raw as Partial<Record<keyof KernelMarker, unknown>>;
  if (typeof m !== 'object' || m === null) return { problem: 'the install marker is not a JSON object' };
  const bad = (
    [
      ['flavour', m.flavour === 'fragvisor' || m.flavour === 'giantvm'],
      ['commit', typeof m.commit === 'string' && SHA1.test(m.commit)],
      ['treeCommit', typeof m.treeCommit === 'string' && SHA1.test(m.treeCommit)],
      ['configHash', typeof m.configHash === 'string' && SHA256.test(m.configHash)],
      ['release', typeof m.release === 'string' && RELEASE.test(m.release)],
      ['origin', typeof m.origin === 'boolean'],
      ['installedAt', typeof m.installedAt === 'string'],
    ] as const
  )
    .filter(([, ok]) => !ok)
    .map(([field]) => field);
  if (bad.length > 0) return { problem: `the install marker has no valid ${bad.join(', ')}` };
  return { marker: m as KernelMarker };
}

export interface InspectOutput {
  /** `uname -r`: what the node runs now. */
  running: string;
  configHash: string;
  marker?: KernelMarker;
  markerProblem?: string;
}

/** The inspect command's output: `uname -r`, the config hash, then the marker file (possibly nothing). */
export function parseInspectOutput(stdout: string): InspectOutput {
  const [running = '', hash = '', ...rest] = stdout.split('\n');
  if (!RELEASE.test(running.trim())) throw new Error(`inspect: expected the kernel release (uname -r) first, got ${JSON.stringify(running.slice(0, 100))}`);
  if (!SHA256.test(hash.trim())) throw new Error(`inspect: expected the config hash (64 hex digits) second, got ${JSON.stringify(hash.slice(0, 100))}`);
  const { marker, problem } = parseMarker(rest.join('\n'));
  return { running: running.trim(), configHash: hash.trim(), ...(marker ? { marker } : {}), ...(problem ? { markerProblem: problem } : {}) };
}

export interface WantedKernel {
  flavour: KernelFlavour;
  commit: string;
  configHash: string;
  origin: boolean;
}

/**
 * Whether the node already runs the kernel wanted: its marker names the same flavour, commit, config
 * hash and origin, and `uname -r` is the marker's release. The reason says why not, for the history.
 */
/**
 * Whether the node runs the wanted build. `installOnly`: the tree still holds that build (marker,
 * commit, configuration and origin flag all match) but another kernel is the default now, e.g. the
 * other hypervisor's: installing it again is enough, no rebuild.
 */
export function kernelUpToDate(inspect: InspectOutput, want: WantedKernel): { upToDate: boolean; reason: string; installOnly?: true } {
  const m = inspect.marker;
  if (!m) return { upToDate: false, reason: inspect.markerProblem ?? 'no install marker on the node' };
  if (m.flavour !== want.flavour) return { upToDate: false, reason: `the marker is for ${m.flavour}, not ${want.flavour}` };
  if (m.commit !== want.commit) return { upToDate: false, reason: `the installed kernel is from commit ${m.commit}, not ${want.commit}` };
  if (m.configHash !== want.configHash) return { upToDate: false, reason: 'the kernel configuration (.config, debug.h or LOCALVERSION) changed since the install' };
  if (m.origin !== want.origin) return { upToDate: false, reason: `the installed kernel was built ${m.origin ? 'with' : 'without'} the origin flag` };
  if (m.release !== inspect.running) return { upToDate: false, installOnly: true, reason: `${m.release} is built but the node runs ${inspect.running} (not rebooted into it, or another kernel installed since): installing it again` };
  return { upToDate: true, reason: `runs ${m.release} built from ${m.commit} with this configuration` };
}

/**
 * Whether the origin's guest kernel is already built from this commit and host configuration: the
 * guest inspect's output is the image state, the host config hash, then the guest marker.
 */
export function guestKernelUpToDate(stdout: string, commit: string): { upToDate: boolean; reason: string; configHash: string } {
  const [image = '', hash = '', ...rest] = stdout.split('\n');
  if (!SHA256.test(hash.trim())) throw new Error(`guest inspect: expected the config hash (64 hex digits) second, got ${JSON.stringify(hash.slice(0, 100))}`);
  const configHash = hash.trim();
  const { marker, problem } = parseMarker(rest.join('\n'));
  if (image.trim() !== 'present') return { upToDate: false, reason: 'no guest kernel image yet', configHash };
  if (!marker) return { upToDate: false, reason: problem ?? 'no guest kernel marker', configHash };
  if (marker.commit !== commit) return { upToDate: false, reason: `the guest kernel is from commit ${marker.commit}, not ${commit}`, configHash };
  if (marker.configHash !== configHash) return { upToDate: false, reason: 'the host configuration (.config, debug.h or LOCALVERSION) changed since the guest build', configHash };
  return { upToDate: true, reason: `built from ${commit} with this configuration`, configHash };
}

/** The lines that say why a build failed: the compiler's `error:` lines and make's `***` lines. */
export function failingLines(log: readonly string[], max = 12): string[] {
  return log.filter((l) => /\berror:/.test(l) || /\*\*\*/.test(l)).slice(0, max);
}

/** The guest's read-back: the POPHYPE_HOST_KERNEL line, CONFIG_RCU_STALL_COMMON's state, the worktree's HEAD. */
export function parseGuestReadback(stdout: string): { hostKernel: number | undefined; rcuStallCommon: string; treeCommit: string } {
  const lines = stdout.trim().split('\n').map((l) => l.trim());
  if (lines.length !== 3) throw new Error(`guest kernel read-back: expected the POPHYPE_HOST_KERNEL line, the option state and a commit, got ${JSON.stringify(stdout.slice(0, 300))}`);
  const value = /POPHYPE_HOST_KERNEL\s+(-?\d+)/.exec(lines[0])?.[1];
  return { hostKernel: value === undefined ? undefined : Number(value), rcuStallCommon: lines[1], treeCommit: parseCommitLine(lines[2], 'guest kernel read-back, worktree HEAD') };
}
