import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import { nodeName } from '../config/schema';
import { parseInput } from './failures';
import { clusterRef, gitCommit, profileHash, runId } from './inputs';
import { kernelActivityOptions, kernelProgress, kernelTimeouts, makeJobs } from './installHostKernel';

/**
 * buildGuestKernel (a child of the run, on the origin): ARTIFACT.md step 2 without its trap. The
 * artifact flips POPHYPE_HOST_KERNEL in the host tree and builds there, so a failure in the middle
 * leaves the host tree half-flipped, and it checks the wrong `$?`. Here the guest is a worktree of the
 * host tree at the same commit with its own output dir: the host tree is only read, and success is
 * make's own exit code and the bzImage present. Run it after installHostKernel on the origin (both
 * sync the same checkout).
 */

export const buildGuestKernelInput = z.strictObject({
  cluster: clusterRef,
  profileHash,
  runId,
  /** The origin; default: the profile's origin. */
  node: nodeName.optional(),
  /** The FragVisor checkout's commit; default: HEAD of the origin's checkout. */
  commit: gitCommit.optional(),
  jobs: makeJobs,
  timeouts: kernelTimeouts,
});
export type BuildGuestKernelInput = z.input<typeof buildGuestKernelInput>;

export interface BuildGuestKernelResult {
  node: string;
  /** The guest bzImage on the origin (lkvm -k). */
  image: string;
  /** The FragVisor checkout's commit and the kernel tree's HEAD the guest was built from. */
  commit: string;
  treeCommit: string;
  /** The build log, relative to the run folder (absent when skipped). */
  log?: string;
  /** The image was already built from this commit and host configuration: nothing was built. */
  skipped: boolean;
}

export async function buildGuestKernel(rawInput: BuildGuestKernelInput): Promise<BuildGuestKernelResult> {
  const input = parseInput(buildGuestKernelInput, rawInput, 'buildGuestKernel');
  const opts = kernelActivityOptions(input.timeouts);
  const { resolveSourceCommit, prepareGuestKernel, inspectGuestKernel, writeKernelMarker } = proxyActivities<Activities>(opts.short);
  const { syncSource } = proxyActivities<Activities>(opts.sync);
  const { makeGuestKernel } = proxyActivities<Activities>(opts.build);
  const common = { cluster: input.cluster, profileHash: input.profileHash, runId: input.runId };

  const resolved = input.node !== undefined && input.commit !== undefined ? { node: input.node, commit: input.commit } : await resolveSourceCommit({ ...common, flavour: 'fragvisor', ...(input.commit ? { commit: input.commit } : {}) });
  const node = input.node ?? resolved.node;
  const ref = { ...common, node };
  const { step, run } = kernelProgress(node, 'fragvisor', true);
  const synced = await run('sync source', () => syncSource({ ...ref, flavour: 'fragvisor', commit: resolved.commit }));
  const inspect = await run('inspect', () => inspectGuestKernel({ ...ref, commit: synced.commit }));
  if (inspect.upToDate) {
    step('inspect', 'skipped', inspect.reason);
    return { node, image: inspect.image, commit: synced.commit, treeCommit: synced.treeCommit, skipped: true };
  }
  const prepared = await run('prepare', () => prepareGuestKernel(ref));
  // Keyed by this execution: a retried activity or a restarted worker reattaches to the same make.
  const built = await run('build', () => makeGuestKernel({ ...ref, treeCommit: prepared.treeCommit, jobs: input.jobs, jobScope: workflowInfo().runId }));
  await run('marker', () =>
    writeKernelMarker({ ...ref, guest: true, flavour: 'fragvisor', commit: synced.commit, treeCommit: prepared.treeCommit, configHash: inspect.configHash, release: built.release, origin: true }),
  );
  step('done', 'done', built.image);
  return { node, image: built.image, commit: synced.commit, treeCommit: prepared.treeCommit, log: built.log, skipped: false };
}
