import { ApplicationFailure } from '@temporalio/common';
import {
  kvmtoolBuildJob,
  kvmtoolBuiltCommand,
  kvmtoolDir,
  kvmtoolInspectCommand,
  kvmtoolSyncCommands,
  kvmtoolUpToDate,
  parseKvmtoolBuilt,
  parseKvmtoolInspect,
  renderKvmtoolMarker,
  writeKvmtoolMarkerCommand,
  type KvmtoolMarker,
} from '../workflows/commands/kvmtool';
import { classified } from './failures';
import { parseCommitLine } from './kernelOutput';
import { followJob, pinned, runSteps, whyLines } from './nodeSteps';
import { remoteJobKey } from './remoteJob';
import { stepLog } from './runStore';
import type { SshPool } from './ssh/pool';

/**
 * fragvisor-kvmtool on the origin (it is on a shared path: one build serves every node): the
 * checkout at the run's kvmtoolCommit, the inspect that skips a build already done, `make -jN` as a
 * remote job keyed by (node, run, workflow execution, commit) so a retried activity or a restarted
 * worker reattaches to the same make, and the build marker.
 */

export interface KvmtoolRef {
  cluster: string;
  profileHash: string;
  runId: string;
  /** The origin. */
  node: string;
  /** The run's kvmtoolCommit (40 hex digits). */
  commit: string;
}

export interface KvmtoolInspectResult {
  upToDate: boolean;
  reason: string;
  /** lkvm's sha256 when there is one. */
  lkvmSha256?: string;
}

export interface BuildKvmtoolInput extends KvmtoolRef {
  jobs: number;
  /** The calling workflow execution's run id: a new execution starts a fresh make. */
  jobScope: string;
}

export interface BuildKvmtoolResult {
  lkvmSha256: string;
  log: string;
  reattached: boolean;
  durationMs: number;
}

/** Details of a KvmtoolBuildFailed failure. */
export interface KvmtoolBuildFailedDetails {
  node: string;
  commit: string;
  exitCode: number;
  /** The compiler's `error:` and make's `***` lines (else the log's last lines). */
  lines: string[];
  /** The build log, relative to the run folder. */
  log: string;
}

const SHORT_MS = 60_000;

export function kvmtoolActivities({ ssh }: { ssh: SshPool }) {
  return {
    /** Detached checkout of kvmtoolCommit (fetched when missing); a commit that is not there is KvmtoolSourceMissing. */
    async syncKvmtool(input: KvmtoolRef): Promise<{ head: string; log: string }> {
      return classified(async () => {
        const where = pinned(input);
        const log = stepLog(input.runId, input.node, 'kvmtool/source-sync');
        const out = await runSteps(ssh, where, kvmtoolSyncCommands(where.profile.paths.kvmtool, input.commit), {
          logFile: log.file,
          // A fetch over the network: bounded like a kernel install.
          timeoutMs: where.profile.timeouts.kernelInstall * 1000,
          permanentType: 'KvmtoolSourceMissing',
        });
        const head = parseCommitLine(out, `HEAD of ${where.profile.paths.kvmtool} on ${input.node}`);
        if (head !== input.commit) {
          throw ApplicationFailure.nonRetryable(`node ${input.node}: ${where.profile.paths.kvmtool} is at ${head} after checking out kvmtoolCommit ${input.commit}`, 'KvmtoolSourceMissing', { node: input.node });
        }
        return { head, log: log.relative };
      });
    },

    /** HEAD, lkvm and the marker: whether lkvm is already the build of this commit. */
    async inspectKvmtool(input: KvmtoolRef): Promise<KvmtoolInspectResult> {
      return classified(async () => {
        const where = pinned(input);
        const dir = where.profile.paths.kvmtool;
        const out = await runSteps(ssh, where, [kvmtoolInspectCommand(dir)], { logFile: stepLog(input.runId, input.node, 'kvmtool/inspect').file, timeoutMs: SHORT_MS, permanentType: 'KvmtoolSourceMissing' });
        const inspect = parseKvmtoolInspect(out);
        return { ...kvmtoolUpToDate(inspect, { dir, commit: input.commit }), ...(inspect.lkvmSha256 ? { lkvmSha256: inspect.lkvmSha256 } : {}) };
      });
    },

    /** `make -jN` in the kvmtool checkout as a remote job; success is make's exit code 0, lkvm there and HEAD still the commit. */
    async buildKvmtool(input: BuildKvmtoolInput): Promise<BuildKvmtoolResult> {
      return classified(async () => {
        const where = pinned(input);
        const dir = where.profile.paths.kvmtool;
        const job = kvmtoolBuildJob(dir, input.jobs);
        const key = remoteJobKey('kvmtool', input.node, job.step, input.runId, input.jobScope, input.commit);
        const r = await followJob(ssh, where, input, { key, job, timeoutMs: where.profile.timeouts.kernelBuild * 1000, timeoutType: 'KvmtoolBuildTimeout' });
        if (r.exitCode !== 0) {
          const details: KvmtoolBuildFailedDetails = { node: input.node, commit: input.commit, exitCode: r.exitCode, lines: whyLines(r), log: r.log };
          throw ApplicationFailure.nonRetryable(
            `node ${input.node}: the kvmtool build in ${dir} at kvmtoolCommit ${input.commit} failed (make exit code ${r.exitCode}); full log in the run store: ${input.runId}/${r.log}\n  ${details.lines.join('\n  ')}`,
            'KvmtoolBuildFailed',
            details,
          );
        }
        const built = parseKvmtoolBuilt(
          await runSteps(ssh, where, [kvmtoolBuiltCommand(dir)], { logFile: stepLog(input.runId, input.node, 'kvmtool/built').file, timeoutMs: SHORT_MS, permanentType: 'KvmtoolBuildFailed' }),
        );
        if (built.head !== input.commit) {
          throw ApplicationFailure.nonRetryable(
            `node ${input.node}: ${dir} moved to ${built.head} during the build of kvmtoolCommit ${input.commit} (something else checked out another commit): run again`,
            'KvmtoolBuildFailed',
            { node: input.node, commit: input.commit, head: built.head },
          );
        }
        return { lkvmSha256: built.lkvmSha256, log: r.log, reattached: r.reattached, durationMs: r.durationMs };
      });
    },

    /** After a successful build: the origin's ~/.fragvisor-ae/kvmtool/build.json, written atomically. */
    async writeKvmtoolMarker(input: KvmtoolRef & { lkvmSha256: string }): Promise<KvmtoolMarker> {
      return classified(async () => {
        const where = pinned(input);
        const marker: KvmtoolMarker = { path: kvmtoolDir(where.profile.paths.kvmtool), commit: input.commit, lkvmSha256: input.lkvmSha256, builtAt: new Date().toISOString() };
        await runSteps(ssh, where, [writeKvmtoolMarkerCommand()], {
          logFile: stepLog(input.runId, input.node, 'kvmtool/marker').file,
          timeoutMs: SHORT_MS,
          permanentType: 'KvmtoolMarkerFailed',
          stdin: renderKvmtoolMarker(marker),
        });
        return marker;
      });
    },
  };
}

export type KvmtoolActivities = ReturnType<typeof kvmtoolActivities>;
