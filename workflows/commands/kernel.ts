import type { PlanStep } from '../plan/types';
import { shellQuote, toCommandLine } from './quote';

/**
 * Host and guest kernels as command lines (pure): the source sync at a pinned commit, the origin
 * flag, the config hash, the build and install remote jobs, the node's install marker and the guest
 * kernel built in its own worktree and output dir. The activities send exactly these lines, and the
 * plan (`ae plan`) prints them, so what is shown is what runs.
 *
 * "commit" is the commit of the source checkout that gets synced: the FragVisor repository (which
 * pins fragvisor-linux as a submodule) for FragVisor, Linux-DSM's own repository for GiantVM. The
 * kernel tree's own HEAD ("tree commit") is read back after the sync.
 */

export type KernelFlavour = 'fragvisor' | 'giantvm';

/** The profile's `paths` as far as kernels go (config/schema.ts pathsSchema). */
export interface KernelPaths {
  fragvisor: string;
  kernelTree: string;
  giantvmTree?: string;
  guestKernel?: string;
}

export interface KernelSource {
  flavour: KernelFlavour;
  /** The git checkout that is synced to the pinned commit. */
  repo: string;
  /** The kernel tree that is built (a submodule of `repo` for FragVisor, `repo` itself for GiantVM). */
  tree: string;
  /** `git submodule update --init` after the checkout. */
  submodules: boolean;
}

const COMMIT = /^[0-9a-f]{7,40}$/;
const SAFE_PATH = /^\/[A-Za-z0-9_.+@/-]*$/;

function checkCommit(commit: string): string {
  if (!COMMIT.test(commit)) throw new Error(`expected a git commit hash (7 to 40 lower-case hex digits), got ${JSON.stringify(commit)}`);
  return commit;
}

/** An absolute path safe in a command line, without a trailing slash; else an Error naming `what`. */
export function checkPath(what: string, p: string): string {
  if (!SAFE_PATH.test(p) || /(^|\/)\.\.(\/|$)/.test(p)) throw new Error(`${what} must be an absolute path of letters, digits and _ . + @ / - without "..", got ${JSON.stringify(p)}`);
  return p.length > 1 ? p.replace(/\/+$/, '') : p;
}

export function checkJobs(jobs: number): number {
  if (!Number.isInteger(jobs) || jobs < 1 || jobs > 1024) throw new Error(`make jobs must be a whole number 1..1024, got ${String(jobs)}`);
  return jobs;
}

const join = (dir: string, rel: string) => `${dir === '/' ? '' : dir}/${rel}`;
const parentOf = (p: string) => p.slice(0, Math.max(p.lastIndexOf('/'), 1));

/** `name` next to the FragVisor checkout, where the defaults for the other trees live. */
export function besideFragvisor(paths: Pick<KernelPaths, 'fragvisor'>, name: string): string {
  return join(parentOf(checkPath('paths.fragvisor', paths.fragvisor)), name);
}

/** GiantVM's tree: the profile's `paths.giantvmTree`, else `linux-dsm` next to the FragVisor checkout. */
export function giantvmTreePath(paths: KernelPaths): string {
  return checkPath('paths.giantvmTree', paths.giantvmTree ?? besideFragvisor(paths, 'linux-dsm'));
}

/** The guest kernel's dir: the profile's `paths.guestKernel`, else `fragvisor-guest-kernel` next to the FragVisor checkout. */
export function guestKernelDir(paths: KernelPaths): string {
  return checkPath('paths.guestKernel', paths.guestKernel ?? besideFragvisor(paths, 'fragvisor-guest-kernel'));
}

export function kernelSource(flavour: KernelFlavour, paths: KernelPaths): KernelSource {
  if (flavour === 'giantvm') {
    const tree = giantvmTreePath(paths);
    return { flavour, repo: tree, tree, submodules: false };
  }
  const repo = checkPath('paths.fragvisor', paths.fragvisor);
  const tree = checkPath('paths.kernelTree', paths.kernelTree);
  return { flavour, repo, tree, submodules: tree !== repo };
}

/** Exit code our own scripts use for "nothing a retry can change" (missing checkout, unknown commit, missing config). */
export const EXIT_PERMANENT = 3;

/** `{ echo <message> >&2; exit 3; }`: a permanent failure with a message. */
export const giveUp = (message: string) => `{ echo ${shellQuote(`fragvisor-ae: ${message}`)} >&2; exit ${EXIT_PERMANENT}; }`;

export const git = (dir: string, ...args: string[]) => toCommandLine(['git', '-C', dir, ...args]);

/**
 * The source sync, as separate command lines run in order (the first non-zero exit stops it; exit 3
 * = permanent): clone when the checkout is absent (only when the profile names a repository), fetch
 * when the commit is missing (only when the checkout has a remote `origin`: nothing is fetched when the
 * commit is there), check the commit is there, detached checkout, submodules, then print
 * `<repo HEAD>\n<tree HEAD>`.
 */
export function sourceSyncCommands(src: KernelSource, commit: string, repository?: string): string[] {
  return [
    ...checkoutCommands(src.repo, commit, {
      ...(repository ? { repository } : {}),
      noCheckout: `no git checkout at ${src.repo} and the profile names no source repository to clone it from`,
      missing: `commit ${commit} is not in ${src.repo}${repository ? ' (nor in its remote origin)' : ''}`,
    }),
    ...(src.submodules ? [git(src.repo, 'submodule', '--quiet', 'update', '--init')] : []),
    `${git(src.repo, 'rev-parse', 'HEAD')} && ${git(src.tree, 'rev-parse', 'HEAD')}`,
  ];
}

/**
 * A detached checkout of `commit` in `repo` (shared by the kernel trees and kvmtool): clone when the
 * checkout is absent and `repository` names one (else exit 3 with `noCheckout`), fetch when the
 * commit is missing and there is a remote `origin`, exit 3 with `missing` when it is still not there.
 */
export function checkoutCommands(repo: string, commit: string, say: { repository?: string; noCheckout: string; missing: string }): string[] {
  checkCommit(commit);
  const present = git(repo, 'cat-file', '-e', `${commit}^{commit}`);
  const staging = `${repo}.ae-clone`;
  const clone = say.repository
    ? `{ rm -rf ${shellQuote(staging)} && ${toCommandLine(['git', 'clone', '--quiet', '--', say.repository, staging])} && ${toCommandLine(['mv', '-T', staging, repo])}; }`
    : giveUp(say.noCheckout);
  return [
    `${toCommandLine(['test', '-e', join(repo, '.git')])} || ${clone}`,
    `${present} 2>/dev/null || ! ${git(repo, 'remote', 'get-url', 'origin')} >/dev/null 2>&1 || ${git(repo, 'fetch', '--quiet', '--tags', 'origin')}`,
    `${present} 2>/dev/null || ${giveUp(say.missing)}`,
    git(repo, 'checkout', '--quiet', '--detach', commit),
  ];
}

/** HEAD of the source checkout (the commit a run pins when its input names none). */
export function sourceHeadCommand(src: KernelSource): string {
  return git(src.repo, 'rev-parse', 'HEAD');
}

export const DEBUG_H = 'include/popcorn/debug.h';
export const ORIGIN_FLAG = 'CONFIG_POPCORN_ORIGIN_NODE';
const DEFINE = `#[[:space:]]*define[[:space:]]+${ORIGIN_FLAG}([[:space:]]|$)`;

/**
 * The origin flag, idempotently, then its read-back (every line naming the flag, numbered). On the
 * origin: a `// #define` or `/* #define *\/` line is uncommented, and when no define is left at all
 * (the artifact's sed deletes it) one is appended. Elsewhere: every define becomes `// #define`.
 */
export function originFlagCommands(tree: string, origin: boolean): string[] {
  const file = join(checkPath('kernel tree', tree), DEBUG_H);
  // sed -i writes a new file next to it: the directory must be writable too. Neither heals by retrying.
  const dir = join(tree, DEBUG_H.slice(0, DEBUG_H.lastIndexOf('/')));
  const writable = [
    `{ ${toCommandLine(['test', '-f', file])} || ${giveUp(`cannot set the origin flag (${ORIGIN_FLAG}): ${file} is missing: check paths.kernelTree in the cluster profile (the FragVisor kernel tree)`)}; }`,
    `{ { ${toCommandLine(['test', '-w', file])} && ${toCommandLine(['test', '-w', dir])}; } || ${giveUp(`cannot set the origin flag (${ORIGIN_FLAG}): ${file} or its directory is not writable by the SSH user: give that user the kernel tree (chown -R)`)}; }`,
  ].join(' && ');
  const edit = origin
    ? [
        toCommandLine(['sed', '-i', '-E', '-e', `s@^[[:space:]]*//[[:space:]]*(${DEFINE})@\\1@`, '-e', `s@^[[:space:]]*/\\*[[:space:]]*(#[[:space:]]*define[[:space:]]+${ORIGIN_FLAG})[[:space:]]*\\*/[[:space:]]*$@\\1@`, file]),
        `${toCommandLine(['grep', '-Eq', `^[[:space:]]*${DEFINE}`, file])} || ${toCommandLine(['printf', '%s\\n', '', '/* The origin node (set by fragvisor-ae). */', `#define ${ORIGIN_FLAG}`])} >> ${shellQuote(file)}`,
      ]
    : [toCommandLine(['sed', '-i', '-E', `s@^([[:space:]]*${DEFINE})@// \\1@`, file])];
  return [writable, ...edit, `${toCommandLine(['grep', '-n', ORIGIN_FLAG, file])} || true`];
}

/** The orchestrator's own files on a node (a remote shell expands $HOME). */
export const AE_NODE_DIR = '"$HOME"/.fragvisor-ae';
const MARKER_DIR = `${AE_NODE_DIR}/kernel`;
/** A host kernel's marker is named by its flavour; the origin's guest kernel has its own. */
export type MarkerName = KernelFlavour | 'guest';
/** The node's install marker (a remote shell expands $HOME, so this is already a shell word). */
export const markerFile = (name: MarkerName): string => `${MARKER_DIR}/${name}.json`;

/**
 * sha256 over what decides the built kernel, as it is before building: .config, debug.h (FragVisor)
 * and the Makefile's LOCALVERSION lines. Computed on the node; a missing .config is permanent.
 */
export function configHashCommand(src: KernelSource): string {
  const files = src.flavour === 'fragvisor' ? ['.config', DEBUG_H] : ['.config'];
  const checks = files.map((f) => `{ ${toCommandLine(['test', '-f', f])} || ${giveUp(`${join(src.tree, f)} is missing: configure the kernel tree first`)}; }`);
  const hashed = `{ ${toCommandLine(['sha256sum', ...files])} && { ${toCommandLine(['grep', '-E', '^[[:space:]]*LOCALVERSION[[:space:]]*[:?]?=', 'Makefile'])} || true; }; }`;
  return `cd ${shellQuote(src.tree)} && ${checks.join(' && ')} && ${hashed} | sha256sum | cut -c1-64`;
}

/** One round trip: `uname -r`, the config hash, then the marker (nothing when there is none). */
export function inspectCommand(src: KernelSource): string {
  return `uname -r && ( ${configHashCommand(src)} ) && { cat ${markerFile(src.flavour)} 2>/dev/null || true; }`;
}

/** Writes the marker from stdin atomically (the JSON comes from renderMarker). */
export function writeMarkerCommand(name: MarkerName): string {
  return stdinToFileCommand(MARKER_DIR, `${name}.json`);
}

/** Writes stdin to `dir/file` atomically; `dir` is a shell word (it may start with AE_NODE_DIR). */
export function stdinToFileCommand(dir: string, file: string): string {
  const tmp = `${dir}/${file}.tmp`;
  return `mkdir -p ${dir} && cat > ${tmp} && mv -f ${tmp} ${dir}/${file}`;
}

/**
 * The guest kernel's inspect, one round trip: whether its image is there (`present`/`absent`), the
 * host tree's config hash (the guest is built from it), then the guest marker (nothing when none).
 */
export function guestInspectCommand(paths: KernelPaths): string {
  const { image } = guestKernelLayout(paths);
  return `{ ${toCommandLine(['test', '-s', image])} && echo present || echo absent; } && ( ${configHashCommand(kernelSource('fragvisor', paths))} ) && { cat ${markerFile('guest')} 2>/dev/null || true; }`;
}

/** A remote job without its key (activities key it): argv run in cwd, as root through `sudo -n` when `sudo`. */
export interface KernelJob {
  step: string;
  argv: string[];
  cwd: string;
  sudo?: boolean;
}

/**
 * The line a job runs on the node, for the plan: the remote job runner's own rendering
 * (activities/remoteJob/scripts.ts jobCommandLine, which workflow code cannot import; a unit test
 * keeps the two equal).
 */
export function planJobLine(job: KernelJob): string {
  return `cd ${shellQuote(job.cwd)} && exec ${toCommandLine(job.sudo ? ['sudo', '-n', '--', ...job.argv] : job.argv)}`;
}

/**
 * The host kernel's remote jobs: `make -jN` (a 4.4/4.8 `make` builds vmlinux, the modules and the
 * bzImage, so the artifact's extra `make modules` has nothing left to do), then the two installs.
 */
export function hostKernelJobs(src: KernelSource, jobs: number): { build: KernelJob; modulesInstall: KernelJob; install: KernelJob } {
  return {
    build: { step: 'build', argv: ['make', `-j${checkJobs(jobs)}`], cwd: src.tree },
    modulesInstall: { step: 'modules-install', argv: ['make', 'modules_install'], cwd: src.tree, sudo: true },
    install: { step: 'install', argv: ['make', 'install'], cwd: src.tree, sudo: true },
  };
}

export const BZIMAGE = 'arch/x86/boot/bzImage';

/** After a build that exited 0: the image must be there; prints the release kbuild recorded. */
export function builtImageCommand(outDir: string): string {
  const image = join(outDir, BZIMAGE);
  return `${toCommandLine(['test', '-s', image])} || ${giveUp(`make exited 0 but ${image} is missing`)}; ${toCommandLine(['cat', join(outDir, 'include/config/kernel.release')])}`;
}

/** The guest kernel's places on the origin: a worktree of the host tree and its own output dir. */
export function guestKernelLayout(paths: KernelPaths): { dir: string; src: string; out: string; image: string } {
  const dir = guestKernelDir(paths);
  const out = join(dir, 'build');
  return { dir, src: join(dir, 'src'), out, image: join(out, BZIMAGE) };
}

/**
 * Prepares the guest kernel without touching the host tree: a fresh detached worktree of the host
 * tree at its HEAD, the host's debug.h with POPHYPE_HOST_KERNEL 0, the host's .config in the output
 * dir made current and CONFIG_RCU_STALL_COMMON=n; then prints, to verify, the POPHYPE_HOST_KERNEL
 * line, the option's state and the worktree's HEAD.
 */
export function guestPrepareCommands(paths: KernelPaths): string[] {
  const tree = checkPath('paths.kernelTree', paths.kernelTree);
  const { dir, src, out } = guestKernelLayout(paths);
  const guestDebugH = join(src, DEBUG_H);
  return [
    `{ ${git(tree, 'worktree', 'remove', '--force', src)} 2>/dev/null || true; } && ${toCommandLine(['rm', '-rf', src])} && ${git(tree, 'worktree', 'prune')} && ${toCommandLine(['mkdir', '-p', dir, out])} && ${git(tree, 'worktree', 'add', '--quiet', '--detach', src, 'HEAD')}`,
    `${toCommandLine(['cp', join(tree, DEBUG_H), guestDebugH])} && ${toCommandLine(['sed', '-i', '-E', 's@^([[:space:]]*#[[:space:]]*define[[:space:]]+POPHYPE_HOST_KERNEL)[[:space:]]+[0-9]+@\\1 0@', guestDebugH])}`,
    `${toCommandLine(['cp', join(tree, '.config'), join(out, '.config')])} && ${toCommandLine(['make', '-s', '-C', src, `O=${out}`, 'olddefconfig'])} && ${toCommandLine([join(src, 'scripts/config'), '--file', join(out, '.config'), '-d', 'RCU_STALL_COMMON'])}`,
    `${toCommandLine(['grep', '-E', '^[[:space:]]*#[[:space:]]*define[[:space:]]+POPHYPE_HOST_KERNEL', guestDebugH])} && ${toCommandLine([join(src, 'scripts/config'), '--file', join(out, '.config'), '-s', 'RCU_STALL_COMMON'])} && ${git(src, 'rev-parse', 'HEAD')}`,
  ];
}

export function guestBuildJob(paths: KernelPaths, jobs: number): KernelJob {
  const { src, out } = guestKernelLayout(paths);
  return { step: 'build', argv: ['make', `O=${out}`, `-j${checkJobs(jobs)}`], cwd: src };
}

// ---- plan steps ----

export interface HostKernelPlanInput {
  hypervisor: KernelFlavour;
  node: string;
  origin: boolean;
  paths: KernelPaths;
  commit: string;
  jobs: number;
  /** The profile's source repository for this flavour (clone when the checkout is absent). */
  repository?: string;
}

const stepKey = (flavour: string, stage: string, node: string, what: string) => `${flavour}/${stage}/${node}/${what}`;

/** The host kernel of one node, step by step, with the exact command lines the activities send. */
export function hostKernelSteps(input: HostKernelPlanInput): PlanStep[] {
  const { hypervisor: flavour, node, origin, commit } = input;
  const src = kernelSource(flavour, input.paths);
  const key = (what: string) => stepKey(flavour, 'host-kernel', node, what);
  const host = { node };
  const jobs = hostKernelJobs(src, input.jobs);
  const steps: PlanStep[] = [
    { key: key('sync'), title: `Check out ${src.repo} at ${commit}${src.submodules ? ' with its submodules' : ''}`, host, commands: sourceSyncCommands(src, commit, input.repository) },
  ];
  if (flavour === 'fragvisor') {
    steps.push({
      key: key('origin-flag'),
      title: origin ? `Define ${ORIGIN_FLAG} in ${DEBUG_H} (the origin)` : `Comment out ${ORIGIN_FLAG} in ${DEBUG_H} (not the origin)`,
      host,
      commands: originFlagCommands(src.tree, origin),
      note: 'The read-back must show the flag defined on the origin only, else the run stops (OriginFlagMismatch).',
    });
  }
  steps.push(
    {
      key: key('inspect'),
      title: 'Read the install marker, uname -r and the config hash',
      host,
      commands: [inspectCommand(src)],
      note: 'When the marker names this commit and config hash and uname -r is its release, the node already runs this kernel: the remaining steps are skipped.',
    },
    { key: key('build'), title: `Build the kernel (make -j${input.jobs})`, host, commands: [planJobLine(jobs.build), builtImageCommand(src.tree)], note: 'A remote job: a retry reattaches to the running build. Success is make\'s exit code 0 and the bzImage present.' },
    { key: key('modules-install'), title: 'Install the modules', host, commands: [planJobLine(jobs.modulesInstall)], privileged: true },
    { key: key('install'), title: 'Install the kernel (the next boot runs it)', host, commands: [planJobLine(jobs.install)], privileged: true },
    { key: key('marker'), title: `Write the install marker ${markerFile(flavour)}`, host, commands: [writeMarkerCommand(flavour)], note: 'The marker JSON (commit, tree commit, config hash, release, origin, time) goes on stdin.' },
  );
  return steps;
}

export interface GuestKernelPlanInput {
  /** The origin. */
  node: string;
  paths: KernelPaths;
  commit: string;
  jobs: number;
  repository?: string;
}

/** The guest kernel on the origin: its own worktree and output dir; the host tree is only read. */
export function guestKernelSteps(input: GuestKernelPlanInput): PlanStep[] {
  const { node } = input;
  const src = kernelSource('fragvisor', input.paths);
  const key = (what: string) => stepKey('fragvisor', 'guest-kernel', node, what);
  const host = { node };
  const job = guestBuildJob(input.paths, input.jobs);
  const { out } = guestKernelLayout(input.paths);
  return [
    { key: key('sync'), title: `Check out ${src.repo} at ${input.commit} with its submodules`, host, commands: sourceSyncCommands(src, input.commit, input.repository), note: 'Nothing changes when the host kernel step already synced this commit.' },
    {
      key: key('inspect'),
      title: 'Guest image, host config hash and guest marker',
      host,
      commands: [guestInspectCommand(input.paths)],
      note: 'When the image exists and the marker names this commit and host config hash, the remaining guest steps are skipped.',
    },
    {
      key: key('prepare'),
      title: 'Worktree of the host tree with POPHYPE_HOST_KERNEL 0 and CONFIG_RCU_STALL_COMMON=n in its own output dir',
      host,
      commands: guestPrepareCommands(input.paths),
      note: 'The read-back must show POPHYPE_HOST_KERNEL 0 and RCU_STALL_COMMON off, else the run stops (GuestConfigMismatch).',
    },
    { key: key('build'), title: `Build the guest kernel (make O=... -j${input.jobs})`, host, commands: [planJobLine(job), builtImageCommand(out)], note: 'A remote job. Success is make\'s exit code 0 and the bzImage present.' },
    { key: key('marker'), title: 'Record the guest build (commit, host config hash, release)', host, commands: [writeMarkerCommand('guest')], note: 'The marker JSON goes to stdin.' },
  ];
}
