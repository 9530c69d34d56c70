import { ApplicationFailure } from '@temporalio/common';
import type { ClusterProfile } from '../config/schema';
import {
  builtImageCommand,
  guestBuildJob,
  guestInspectCommand,
  guestKernelLayout,
  guestPrepareCommands,
  hostKernelJobs,
  inspectCommand,
  kernelSource,
  originFlagCommands,
  sourceHeadCommand,
  sourceSyncCommands,
  writeMarkerCommand,
  type KernelFlavour,
  type KernelJob,
} from '../workflows/commands/kernel';
import { loadPinnedProfile, sshTarget } from './cluster';
import { classified } from './failures';
import {
  kernelUpToDate,
  guestKernelUpToDate,
  parseGuestReadback,
  parseInspectOutput,
  parseCommitLine,
  parseOriginFlagReadback,
  parseSyncOutput,
  renderMarker,
  type KernelMarker,
  type OriginFlagState,
} from './kernelOutput';
import { followJob, pinned, runSteps, whyLines, type NodeWhere } from './nodeSteps';
import { remoteJobKey, type RemoteJobResult } from './remoteJob';
import { stepLog } from './runStore';
import type { SshPool } from './ssh/pool';

/**
 * ARTIFACT.md steps 1 and 2 on one node: the source at a pinned commit, the origin flag, the install
 * marker, the build and the installs as remote jobs, the guest kernel in its own worktree. Short
 * commands go through ssh.exec (their output appended to a step log in the run store); builds and
 * installs are remote jobs keyed by (flavour, node, step, run, workflow execution, commit, config
 * hash), so a retried activity or a restarted worker reattaches to the same job, never a second make.
 */

export interface KernelNodeRef {
  cluster: string;
  profileHash: string;
  /** The run (its run-store folder). */
  runId: string;
  node: string;
}

/** For jobs: the calling workflow execution's run id, so a new execution (a retried child) starts afresh. */
interface JobScope {
  jobScope: string;
}

export interface ResolveSourceCommitInput {
  cluster: string;
  profileHash: string;
  runId: string;
  flavour: KernelFlavour;
  /** Named by the run's input: returned as it is. */
  commit?: string;
}

export interface SyncSourceInput extends KernelNodeRef {
  flavour: KernelFlavour;
  commit: string;
}

export interface SyncSourceResult {
  /** Full hash of the checkout's HEAD (= the pinned commit). */
  commit: string;
  /** The kernel tree's HEAD. */
  treeCommit: string;
  log: string;
}

export interface SetOriginFlagInput extends KernelNodeRef {
  origin: boolean;
}

export interface InspectKernelInput extends KernelNodeRef {
  flavour: KernelFlavour;
  commit: string;
  origin: boolean;
}

export interface InspectKernelResult {
  upToDate: boolean;
  /** Built from this commit and configuration, only not the default kernel now: install, do not build. */
  installOnly?: true;
  reason: string;
  /** `uname -r` now. */
  running: string;
  configHash: string;
  marker?: KernelMarker;
}

export interface BuildKernelInput extends KernelNodeRef, JobScope {
  flavour: KernelFlavour;
  commit: string;
  configHash: string;
  jobs: number;
}

export interface BuildKernelResult {
  /** What the built kernel's `uname -r` will say (include/config/kernel.release). */
  release: string;
  log: string;
  reattached: boolean;
  durationMs: number;
}

export type InstallStep = 'modules-install' | 'install';

export interface InstallKernelInput extends KernelNodeRef, JobScope {
  flavour: KernelFlavour;
  commit: string;
  configHash: string;
  step: InstallStep;
}

export interface InstallKernelResult {
  log: string;
  reattached: boolean;
  durationMs: number;
}

/** `guest`: the origin's guest-kernel marker rather than the host kernel's. */
export type WriteKernelMarkerInput = KernelNodeRef & Omit<KernelMarker, 'installedAt'> & { guest?: boolean };

export interface InspectGuestKernelInput extends KernelNodeRef {
  commit: string;
}

export interface PrepareGuestKernelResult {
  /** The guest worktree's HEAD (the host tree's HEAD). */
  treeCommit: string;
  log: string;
}

export interface MakeGuestKernelInput extends KernelNodeRef, JobScope {
  treeCommit: string;
  jobs: number;
}

export interface MakeGuestKernelResult {
  /** The guest bzImage on the origin (lkvm -k). */
  image: string;
  /** The release kbuild recorded for the guest build. */
  release: string;
  log: string;
  reattached: boolean;
  durationMs: number;
}

/** Details of a KernelBuildFailed failure. */
export interface KernelBuildFailedDetails {
  node: string;
  flavour: KernelFlavour;
  guest: boolean;
  exitCode: number;
  /** The compiler's `error:` and make's `***` lines (else the log's last lines). */
  lines: string[];
  /** The build log, relative to the run folder. */
  log: string;
}

const SHORT_MS = 60_000;

const repositoryOf = (profile: ClusterProfile, flavour: KernelFlavour) => (flavour === 'fragvisor' ? profile.source?.repository : profile.source?.giantvmRepository);

/** A failed make: which node, make's exit code, the lines that say why, where the whole log is. */
function buildFailed(what: string, details: KernelBuildFailedDetails, runId: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(
    `node ${details.node}: ${what} failed (make exit code ${details.exitCode}); full log in the run store: ${runId}/${details.log}\n  ${details.lines.join('\n  ')}`,
    'KernelBuildFailed',
    details,
  );
}

export function kernelActivities({ ssh }: { ssh: SshPool }) {
  const follow = (input: KernelNodeRef, where: NodeWhere, key: string, job: KernelJob, timeoutMs: number): Promise<RemoteJobResult> =>
    followJob(ssh, where, input, { key, job, timeoutMs, timeoutType: 'KernelStepTimeout' });

  return {
    /** The commit a run pins: the one it names, else HEAD of the origin's checkout. */
    async resolveSourceCommit(input: ResolveSourceCommitInput): Promise<{ commit: string; node: string }> {
      return classified(async () => {
        const loaded = loadPinnedProfile(input.cluster, input.profileHash);
        const origin = loaded.profile.nodes.find((n) => n.origin) ?? loaded.profile.nodes[0];
        if (input.commit !== undefined) return { commit: input.commit, node: origin.name };
        const head = await runSteps(ssh, { target: sshTarget(origin), settings: loaded.profile.ssh }, [sourceHeadCommand(kernelSource(input.flavour, loaded.profile.paths))], {
          logFile: stepLog(input.runId, origin.name, `${input.flavour}/source-head`).file,
          timeoutMs: SHORT_MS,
          permanentType: 'SourceSyncFailed',
        });
        return { commit: parseCommitLine(head, `HEAD of the ${input.flavour} checkout on ${origin.name}`), node: origin.name };
      });
    },

    /** Clone or fetch as needed, detached checkout of the commit, submodules; the heads read back. */
    async syncSource(input: SyncSourceInput): Promise<SyncSourceResult> {
      return classified(async () => {
        const where = pinned(input);
        const log = stepLog(input.runId, input.node, `${input.flavour}/source-sync`);
        const src = kernelSource(input.flavour, where.profile.paths);
        const out = await runSteps(ssh, where, sourceSyncCommands(src, input.commit, repositoryOf(where.profile, input.flavour)), {
          logFile: log.file,
          // A first clone of a kernel tree is the long part; it is bounded like an install.
          timeoutMs: where.profile.timeouts.kernelInstall * 1000,
          permanentType: 'SourceSyncFailed',
        });
        const heads = parseSyncOutput(out);
        if (!heads.commit.startsWith(input.commit)) {
          throw ApplicationFailure.nonRetryable(`node ${input.node}: ${src.repo} is at ${heads.commit} after checking out ${input.commit}`, 'SourceSyncFailed', { node: input.node });
        }
        return { ...heads, log: log.relative };
      });
    },

    /** FragVisor's origin flag in debug.h, set or cleared idempotently and read back; a mismatch is OriginFlagMismatch, a missing or read-only debug.h OriginFlagUneditable. */
    async setOriginFlag(input: SetOriginFlagInput): Promise<OriginFlagState & { log: string }> {
      return classified(async () => {
        const where = pinned(input);
        const log = stepLog(input.runId, input.node, 'fragvisor/origin-flag');
        const out = await runSteps(ssh, where, originFlagCommands(where.profile.paths.kernelTree, input.origin), { logFile: log.file, timeoutMs: SHORT_MS, permanentType: 'OriginFlagUneditable' });
        const state = parseOriginFlagReadback(out);
        if (state.origin !== input.origin) {
          throw ApplicationFailure.nonRetryable(
            `node ${input.node}: CONFIG_POPCORN_ORIGIN_NODE is ${state.origin ? 'defined' : 'not defined'} in debug.h after the edit, but this node ${input.origin ? 'is' : 'is not'} the origin:\n  ${state.lines.join('\n  ') || '(no line names it)'}`,
            'OriginFlagMismatch',
            { node: input.node, expected: input.origin, ...state },
          );
        }
        return { ...state, log: log.relative };
      });
    },

    /** Marker, `uname -r` and the config hash: whether the node already runs this build. */
    async inspectInstalledKernel(input: InspectKernelInput): Promise<InspectKernelResult> {
      return classified(async () => {
        const where = pinned(input);
        const src = kernelSource(input.flavour, where.profile.paths);
        const out = await runSteps(ssh, where, [inspectCommand(src)], {
          logFile: stepLog(input.runId, input.node, `${input.flavour}/inspect`).file,
          timeoutMs: SHORT_MS,
          permanentType: 'KernelConfigMissing',
        });
        const inspect = parseInspectOutput(out);
        const verdict = kernelUpToDate(inspect, { flavour: input.flavour, commit: input.commit, configHash: inspect.configHash, origin: input.origin });
        return { ...verdict, running: inspect.running, configHash: inspect.configHash, ...(inspect.marker ? { marker: inspect.marker } : {}) };
      });
    },

    /** `make -jN` as a remote job; success is make's exit code 0 and the bzImage present. */
    async buildKernel(input: BuildKernelInput): Promise<BuildKernelResult> {
      return classified(async () => {
        const where = pinned(input);
        const src = kernelSource(input.flavour, where.profile.paths);
        const job = hostKernelJobs(src, input.jobs).build;
        const key = remoteJobKey(input.flavour, input.node, job.step, input.runId, input.jobScope, input.commit, input.configHash);
        const r = await follow(input, where, key, job, where.profile.timeouts.kernelBuild * 1000);
        if (r.exitCode !== 0) {
          throw buildFailed(`the ${input.flavour} host kernel build in ${src.tree}`, { node: input.node, flavour: input.flavour, guest: false, exitCode: r.exitCode, lines: whyLines(r), log: r.log }, input.runId);
        }
        const release = (await runSteps(ssh, where, [builtImageCommand(src.tree)], { logFile: stepLog(input.runId, input.node, `${input.flavour}/built-image`).file, timeoutMs: SHORT_MS, permanentType: 'KernelBuildFailed' })).trim();
        return { release, log: r.log, reattached: r.reattached, durationMs: r.durationMs };
      });
    },

    /** `sudo -n make modules_install` or `sudo -n make install` as a remote job. */
    async installKernel(input: InstallKernelInput): Promise<InstallKernelResult> {
      return classified(async () => {
        const where = pinned(input);
        const jobs = hostKernelJobs(kernelSource(input.flavour, where.profile.paths), 1);
        const job = input.step === 'install' ? jobs.install : jobs.modulesInstall;
        const key = remoteJobKey(input.flavour, input.node, job.step, input.runId, input.jobScope, input.commit, input.configHash);
        const r = await follow(input, where, key, job, where.profile.timeouts.kernelInstall * 1000);
        if (r.exitCode !== 0) {
          const lines = whyLines(r);
          throw ApplicationFailure.nonRetryable(
            `node ${input.node}: \`sudo -n ${job.argv.join(' ')}\` failed (exit code ${r.exitCode}); full log in the run store: ${input.runId}/${r.log}\n  ${lines.join('\n  ')}`,
            'KernelInstallFailed',
            { node: input.node, flavour: input.flavour, step: input.step, exitCode: r.exitCode, lines, log: r.log },
          );
        }
        return { log: r.log, reattached: r.reattached, durationMs: r.durationMs };
      });
    },

    /** After a successful install: ~/.fragvisor-ae/kernel/<flavour>.json, written atomically. */
    async writeKernelMarker(input: WriteKernelMarkerInput): Promise<KernelMarker> {
      return classified(async () => {
        const where = pinned(input);
        const marker: KernelMarker = {
          flavour: input.flavour,
          commit: input.commit,
          treeCommit: input.treeCommit,
          configHash: input.configHash,
          release: input.release,
          origin: input.origin,
          installedAt: new Date().toISOString(),
        };
        const name = input.guest ? 'guest' : input.flavour;
        await runSteps(ssh, where, [writeMarkerCommand(name)], { logFile: stepLog(input.runId, input.node, `${name}/marker`).file, timeoutMs: SHORT_MS, permanentType: 'KernelMarkerFailed', stdin: renderMarker(marker) });
        return marker;
      });
    },

    /** Whether the origin's guest kernel is already built from this commit and host configuration (its marker and image). */
    async inspectGuestKernel(input: InspectGuestKernelInput): Promise<{ upToDate: boolean; reason: string; configHash: string; image: string }> {
      return classified(async () => {
        const where = pinned(input);
        const out = await runSteps(ssh, where, [guestInspectCommand(where.profile.paths)], {
          logFile: stepLog(input.runId, input.node, 'fragvisor/guest-inspect').file,
          timeoutMs: SHORT_MS,
          permanentType: 'KernelConfigMissing',
        });
        return { ...guestKernelUpToDate(out, input.commit), image: guestKernelLayout(where.profile.paths).image };
      });
    },

    /** The guest kernel's worktree and output dir on the origin, verified: POPHYPE_HOST_KERNEL 0, RCU_STALL_COMMON off. */
    async prepareGuestKernel(input: KernelNodeRef): Promise<PrepareGuestKernelResult> {
      return classified(async () => {
        const where = pinned(input);
        const log = stepLog(input.runId, input.node, 'fragvisor/guest-prepare');
        const out = await runSteps(ssh, where, guestPrepareCommands(where.profile.paths), { logFile: log.file, timeoutMs: where.profile.timeouts.kernelInstall * 1000, permanentType: 'GuestConfigMismatch' });
        const got = parseGuestReadback(out);
        if (got.hostKernel !== 0 || (got.rcuStallCommon !== 'n' && got.rcuStallCommon !== 'undef')) {
          throw ApplicationFailure.nonRetryable(
            `node ${input.node}: the guest kernel's configuration did not take: POPHYPE_HOST_KERNEL is ${got.hostKernel ?? 'not defined'} (want 0), CONFIG_RCU_STALL_COMMON is ${got.rcuStallCommon} (want n)`,
            'GuestConfigMismatch',
            { node: input.node, ...got },
          );
        }
        return { treeCommit: got.treeCommit, log: log.relative };
      });
    },

    /** `make O=<guest>/build -jN` in the guest worktree as a remote job; success is exit code 0 and the bzImage present. */
    async makeGuestKernel(input: MakeGuestKernelInput): Promise<MakeGuestKernelResult> {
      return classified(async () => {
        const where = pinned(input);
        const job = guestBuildJob(where.profile.paths, input.jobs);
        const layout = guestKernelLayout(where.profile.paths);
        const key = remoteJobKey('fragvisor-guest', input.node, job.step, input.runId, input.jobScope, input.treeCommit);
        const r = await follow(input, where, key, job, where.profile.timeouts.kernelBuild * 1000);
        if (r.exitCode !== 0) {
          throw buildFailed(`the guest kernel build in ${layout.src} (O=${layout.out})`, { node: input.node, flavour: 'fragvisor', guest: true, exitCode: r.exitCode, lines: whyLines(r), log: r.log }, input.runId);
        }
        const release = (await runSteps(ssh, where, [builtImageCommand(layout.out)], { logFile: stepLog(input.runId, input.node, 'fragvisor/guest-image').file, timeoutMs: SHORT_MS, permanentType: 'KernelBuildFailed' })).trim();
        return { image: layout.image, release, log: r.log, reattached: r.reattached, durationMs: r.durationMs };
      });
    },
  };
}

export type KernelActivities = ReturnType<typeof kernelActivities>;
