import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { kernelActivityOptions } from './installHostKernel';
import type { StepState } from './progress';

/**
 * The run's kvmtool build (workflow code, called by reproduceClaims before anything else runs on the
 * cluster): on the origin only, as kvmtool is on a shared path. Check out kvmtoolCommit, skip when
 * lkvm is already that commit's build (the marker, HEAD and lkvm's hash: a resumed or repeated run
 * does not build again), else `make -jN` as a remote job keyed by this workflow execution (a retried
 * activity or a restarted worker reattaches to the same make) and write the marker.
 */

export interface PrepareKvmtoolInput {
  cluster: string;
  profileHash: string;
  runId: string;
  /** The origin. */
  node: string;
  commit: string;
  jobs: number;
  /** The profile's kernel timeouts (seconds): kernelBuild bounds the make, kernelInstall a fetch. */
  timeouts: { kernelBuild: number; kernelInstall: number };
}

export interface PreparedKvmtool {
  node: string;
  commit: string;
  /** lkvm was already built from this commit: nothing was built. */
  skipped: boolean;
  /** Why it was built or skipped (the inspect's verdict). */
  reason: string;
  lkvmSha256: string;
  /** Step logs, relative to the run folder (the build log included when it ran). */
  logs: string[];
}

/** `step` is sync, inspect, build or marker. */
export type KvmtoolReporter = (step: string, state: StepState, detail?: string) => void;

export async function prepareKvmtool(input: PrepareKvmtoolInput, report: KvmtoolReporter): Promise<PreparedKvmtool> {
  const opts = kernelActivityOptions(input.timeouts);
  const { inspectKvmtool, writeKvmtoolMarker } = proxyActivities<Activities>(opts.short);
  const { syncKvmtool } = proxyActivities<Activities>(opts.sync);
  const { buildKvmtool } = proxyActivities<Activities>(opts.build);
  const ref = { cluster: input.cluster, profileHash: input.profileHash, runId: input.runId, node: input.node, commit: input.commit };
  const step = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    report(name, 'running');
    try {
      return await work();
    } catch (err) {
      report(name, 'failed');
      throw err;
    }
  };

  const synced = await step('sync', () => syncKvmtool(ref));
  const inspect = await step('inspect', () => inspectKvmtool(ref));
  const base = { node: input.node, commit: input.commit, reason: inspect.reason };
  if (inspect.upToDate && inspect.lkvmSha256) {
    report('inspect', 'skipped', inspect.reason);
    return { ...base, skipped: true, lkvmSha256: inspect.lkvmSha256, logs: [synced.log] };
  }
  const built = await step('build', () => buildKvmtool({ ...ref, jobs: input.jobs, jobScope: workflowInfo().runId }));
  await step('marker', () => writeKvmtoolMarker({ ...ref, lkvmSha256: built.lkvmSha256 }));
  report('build', 'done', `lkvm built from ${input.commit.slice(0, 12)}`);
  return { ...base, skipped: false, lkvmSha256: built.lkvmSha256, logs: [synced.log, built.log] };
}
