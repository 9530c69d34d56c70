import type { PlanStep } from '../plan/types';
import { AE_NODE_DIR, checkJobs, checkoutCommands, checkPath, git, giveUp, planJobLine, stdinToFileCommand, type KernelJob } from './kernel';
import { toCommandLine } from './quote';

/**
 * fragvisor-kvmtool at a pinned commit, as command lines (pure): the checkout, the inspect that
 * decides whether lkvm is already built from it, `make -jN` as a remote job, the read-back of what
 * was built, and the build marker. kvmtool is on a shared (NFS) path, so all of it runs on the origin
 * once and serves every node (ARTIFACT.md). The activities send exactly these lines and `ae plan`
 * prints them.
 */

const SHA1 = /^[0-9a-f]{40}$/;
const SHA256 = /^[0-9a-f]{64}$/;

const MARKER_DIR = `${AE_NODE_DIR}/kvmtool`;
const MARKER_NAME = 'build.json';
/** The origin's record of the last kvmtool build (a shell word: the remote shell expands $HOME). */
export const KVMTOOL_MARKER = `${MARKER_DIR}/${MARKER_NAME}`;

/** The kvmtool checkout from the profile's paths.kvmtool, checked for use in a command line. */
export const kvmtoolDir = (dir: string): string => checkPath('paths.kvmtool', dir);

const lkvmOf = (dir: string) => `${kvmtoolDir(dir)}/lkvm`;

/** Detached checkout of `commit` (fetched from the remote `origin` when missing), then prints HEAD. */
export function kvmtoolSyncCommands(dir: string, commit: string): string[] {
  const repo = kvmtoolDir(dir);
  return [
    ...checkoutCommands(repo, commit, {
      noCheckout: `no git checkout at ${repo}: check paths.kvmtool in the cluster profile (fragvisor-kvmtool on the shared path)`,
      missing: `kvmtoolCommit ${commit} is not in ${repo} (nor in its remote origin): fetch it on the origin (git -C ${repo} fetch <remote> ${commit}) or push it there, or correct kvmtoolCommit`,
    }),
    git(repo, 'rev-parse', 'HEAD'),
  ];
}

/** sha256 of lkvm, or `absent`. */
const lkvmHash = (dir: string) => `{ ${toCommandLine(['test', '-f', lkvmOf(dir)])} && sha256sum < ${toCommandLine([lkvmOf(dir)])} | cut -c1-64 || echo absent; }`;

/** One round trip: HEAD, lkvm's sha256 (or `absent`), then the build marker (nothing when none). */
export function kvmtoolInspectCommand(dir: string): string {
  return `${git(kvmtoolDir(dir), 'rev-parse', 'HEAD')} && ${lkvmHash(dir)} && { cat ${KVMTOOL_MARKER} 2>/dev/null || true; }`;
}

/** kvmtool's own Makefile builds lkvm (and guest/init) with the default goal. */
export function kvmtoolBuildJob(dir: string, jobs: number): KernelJob {
  return { step: 'build', argv: ['make', `-j${checkJobs(jobs)}`], cwd: kvmtoolDir(dir) };
}

/** After a make that exited 0: lkvm must be there; prints HEAD and lkvm's sha256. */
export function kvmtoolBuiltCommand(dir: string): string {
  return `{ ${toCommandLine(['test', '-x', lkvmOf(dir)])} || ${giveUp(`make exited 0 but ${lkvmOf(dir)} is missing or not executable`)}; } && ${git(kvmtoolDir(dir), 'rev-parse', 'HEAD')} && sha256sum < ${toCommandLine([lkvmOf(dir)])} | cut -c1-64`;
}

/** Writes the marker (JSON from renderKvmtoolMarker on stdin) atomically. */
export const writeKvmtoolMarkerCommand = (): string => stdinToFileCommand(MARKER_DIR, MARKER_NAME);

/** What the origin records after a build: which commit lkvm came from, and lkvm's hash to notice a later rebuild. */
export interface KvmtoolMarker {
  /** The kvmtool checkout (paths.kvmtool). */
  path: string;
  commit: string;
  lkvmSha256: string;
  builtAt: string;
}

export const renderKvmtoolMarker = (m: KvmtoolMarker): string => `${JSON.stringify(m, null, 2)}\n`;

export interface KvmtoolInspect {
  head: string;
  /** Absent: no lkvm. */
  lkvmSha256?: string;
  marker?: KvmtoolMarker;
  /** Why a marker that is there was not understood. */
  markerProblem?: string;
}

function parseMarker(text: string): { marker: KvmtoolMarker } | { problem: string } {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return { problem: 'the build marker is not JSON' };
  }
  const m = raw as Partial<KvmtoolMarker> | null;
  if (!m || typeof m.path !== 'string' || typeof m.commit !== 'string' || !SHA1.test(m.commit) || typeof m.lkvmSha256 !== 'string' || !SHA256.test(m.lkvmSha256) || typeof m.builtAt !== 'string') {
    return { problem: 'the build marker lacks path, commit, lkvmSha256 or builtAt' };
  }
  return { marker: { path: m.path, commit: m.commit, lkvmSha256: m.lkvmSha256, builtAt: m.builtAt } };
}

/** kvmtoolInspectCommand's output; an Error when HEAD or the hash line is not what it prints. */
export function parseKvmtoolInspect(stdout: string): KvmtoolInspect {
  const [head = '', hash = '', ...rest] = stdout.split('\n');
  if (!SHA1.test(head.trim())) throw new Error(`kvmtool inspect: expected HEAD (a full commit hash) first, got ${JSON.stringify(stdout.slice(0, 200))}`);
  const h = hash.trim();
  if (h !== 'absent' && !SHA256.test(h)) throw new Error(`kvmtool inspect: expected lkvm's sha256 or "absent" second, got ${JSON.stringify(hash.slice(0, 200))}`);
  const markerText = rest.join('\n').trim();
  const out: KvmtoolInspect = { head: head.trim(), ...(h === 'absent' ? {} : { lkvmSha256: h }) };
  if (markerText === '') return out;
  const parsed = parseMarker(markerText);
  return 'marker' in parsed ? { ...out, marker: parsed.marker } : { ...out, markerProblem: parsed.problem };
}

/** kvmtoolBuiltCommand's output: HEAD and lkvm's sha256. */
export function parseKvmtoolBuilt(stdout: string): { head: string; lkvmSha256: string } {
  const lines = stdout.trim().split('\n').map((l) => l.trim());
  if (lines.length !== 2 || !SHA1.test(lines[0]) || !SHA256.test(lines[1])) throw new Error(`kvmtool build read-back: expected HEAD and lkvm's sha256, got ${JSON.stringify(stdout.slice(0, 200))}`);
  return { head: lines[0], lkvmSha256: lines[1] };
}

/** Whether lkvm in `dir` is already the build of `commit`: the marker names it, HEAD is it, lkvm is the binary that build made. */
export function kvmtoolUpToDate(inspect: KvmtoolInspect, want: { dir: string; commit: string }): { upToDate: boolean; reason: string } {
  const { marker } = inspect;
  const no = (reason: string) => ({ upToDate: false, reason });
  if (!marker) return no(inspect.markerProblem ?? 'no kvmtool build marker: never built by fragvisor-ae');
  if (marker.path !== kvmtoolDir(want.dir)) return no(`the marker is for ${marker.path}, not ${kvmtoolDir(want.dir)}`);
  if (marker.commit !== want.commit) return no(`lkvm was built from ${marker.commit.slice(0, 12)}, not ${want.commit.slice(0, 12)}`);
  if (inspect.head !== want.commit) return no(`the checkout is at ${inspect.head.slice(0, 12)}, not ${want.commit.slice(0, 12)}`);
  if (!inspect.lkvmSha256) return no('lkvm is missing');
  if (inspect.lkvmSha256 !== marker.lkvmSha256) return no('lkvm changed since the recorded build');
  return { upToDate: true, reason: `lkvm already built from ${want.commit.slice(0, 12)} (${marker.builtAt})` };
}

export interface KvmtoolPlanInput {
  /** The origin. */
  node: string;
  dir: string;
  commit: string;
  jobs: number;
}

/** The kvmtool build on the origin, step by step, with the exact command lines the activities send. */
export function kvmtoolSteps(input: KvmtoolPlanInput): PlanStep[] {
  const { node, dir, commit } = input;
  const host = { node };
  const key = (what: string) => `fragvisor/kvmtool/${node}/${what}`;
  const job = kvmtoolBuildJob(dir, input.jobs);
  return [
    { key: key('sync'), title: `Check out ${kvmtoolDir(dir)} at ${commit}`, host, commands: kvmtoolSyncCommands(dir, commit), note: 'A commit the checkout lacks is fetched from its remote origin; still missing, the run stops (KvmtoolSourceMissing).' },
    {
      key: key('inspect'),
      title: 'Read HEAD, lkvm\'s sha256 and the build marker',
      host,
      commands: [kvmtoolInspectCommand(dir)],
      note: 'When the marker names this commit and lkvm is the binary that build made, the build and the marker are skipped.',
    },
    { key: key('build'), title: `Build kvmtool (make -j${input.jobs}), lkvm for every node`, host, commands: [planJobLine(job), kvmtoolBuiltCommand(dir)], note: "A remote job: a retry reattaches to the running make. Success is make's exit code 0, lkvm present and HEAD still the commit." },
    { key: key('marker'), title: `Write the build marker ${KVMTOOL_MARKER}`, host, commands: [writeKvmtoolMarkerCommand()], note: 'The marker JSON (path, commit, lkvm sha256, time) goes on stdin.' },
  ];
}
