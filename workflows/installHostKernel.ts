import { defineQuery, proxyActivities, setCurrentDetails, setHandler, workflowInfo, type ActivityOptions, type RetryPolicy } from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import type { OriginFlagState } from '../activities/kernelOutput';
import { nodeName } from '../config/schema';
import { parseInput } from './failures';
import { clusterRef, gitCommit, HYPERVISORS, profileHash, runId, type Hypervisor } from './inputs';
import type { StepState } from './progress';

/**
 * installHostKernel (a child of the run, one per node, all nodes in parallel): ARTIFACT.md step 1 on
 * one node. Sync the source to the pinned commit, set the origin flag (FragVisor), skip when the node
 * already runs this build (its marker and `uname -r`), else build, modules_install and install as
 * remote jobs and write the marker. Rebooting into the new kernel is the parent's step.
 */

const seconds = (what: string) =>
  z
    .number({ error: `expected ${what} in seconds (a number)` })
    .positive(`expected ${what} greater than 0 seconds`)
    .max(24 * 3600, `expected ${what} of at most 24 h`);

export const kernelTimeouts = z.strictObject({
  kernelBuild: seconds('the kernel build timeout'),
  kernelInstall: seconds('the kernel install timeout'),
  /** How long a step may go without a heartbeat (default 30): a dead worker's step is retried elsewhere after this. */
  heartbeat: seconds('the heartbeat timeout').optional(),
});
export const makeJobs = z.number({ error: 'expected a number of make jobs' }).int('expected a whole number of make jobs').min(1).max(1024).default(16);

export const installHostKernelInput = z.strictObject({
  cluster: clusterRef,
  profileHash,
  runId,
  node: nodeName,
  origin: z.boolean({ error: 'expected true on the origin node, false elsewhere' }),
  flavour: z.enum(HYPERVISORS, { error: `expected one of ${HYPERVISORS.join(', ')}` }),
  /** The source checkout's commit; default: HEAD of the origin's checkout (the parent should pin one for all nodes). */
  commit: gitCommit.optional(),
  jobs: makeJobs,
  /** The profile's timeouts.kernelBuild and kernelInstall (seconds). */
  timeouts: kernelTimeouts,
});
export type InstallHostKernelInput = z.input<typeof installHostKernelInput>;

export interface InstallHostKernelResult {
  node: string;
  flavour: Hypervisor;
  /** The node already ran this build (marker + `uname -r`): nothing was built or installed. */
  skipped: boolean;
  /** The kernel release of this build (`uname -r` after the reboot). */
  release: string;
  /** Full hash of the source checkout's commit. */
  commit: string;
  /** The kernel tree's HEAD. */
  treeCommit: string;
  configHash: string;
  /** FragVisor: the origin flag's read-back (which lines of debug.h name it, and whether it is defined). */
  originFlag?: OriginFlagState;
  /** Step logs, relative to the run folder (build logs included). */
  logs: string[];
}

/** The `progress` of a kernel child: the node's current step. */
export interface KernelProgress {
  node: string;
  flavour: Hypervisor;
  guest: boolean;
  step: string;
  state: StepState;
  detail?: string;
}

export const kernelProgressQuery = defineQuery<KernelProgress>('progress');

/** Failure types no retry heals: a wrong setup, a failed build, a sudo that asks for a password. */
export const KERNEL_NON_RETRYABLE = [
  'InvalidConfigError',
  'HostKeyUnknownError',
  'HostKeyChangedError',
  'HostKeyRevokedError',
  'SshAuthError',
  'SudoPasswordRequired',
  'InvalidRemoteJobSpec',
  'SourceSyncFailed',
  'OriginFlagMismatch',
  'OriginFlagUneditable',
  'KernelConfigMissing',
  'KernelBuildFailed',
  'KernelInstallFailed',
  'KernelStepTimeout',
  'KernelMarkerFailed',
  'GuestConfigMismatch',
];

/** Activity options of the kernel steps, from the profile's timeouts (seconds). */
export function kernelActivityOptions(timeouts: z.output<typeof kernelTimeouts>): Record<'short' | 'sync' | 'build' | 'install', ActivityOptions> {
  const heartbeatTimeout = (timeouts.heartbeat ?? 30) * 1000;
  const retry: RetryPolicy = { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '10 seconds', nonRetryableErrorTypes: KERNEL_NON_RETRYABLE };
  return {
    // Reads and idempotent edits: safe to repeat.
    short: { startToCloseTimeout: '2 minutes', heartbeatTimeout, retry: { ...retry, maximumAttempts: 5 } },
    // A first clone is bounded like an install; a failed fetch may heal.
    sync: { startToCloseTimeout: (timeouts.kernelInstall + 60) * 1000, heartbeatTimeout, retry: { ...retry, maximumAttempts: 3 } },
    // Remote jobs heartbeat their log offset: a dead worker or a dropped link is noticed and the retry
    // reattaches to the same job (keyed by this execution), so retries are cheap and never a second make.
    build: { startToCloseTimeout: (timeouts.kernelBuild + 120) * 1000, heartbeatTimeout, retry: { ...retry, maximumAttempts: 10 } },
    install: { startToCloseTimeout: (timeouts.kernelInstall + 60) * 1000, heartbeatTimeout, retry: { ...retry, maximumAttempts: 10 } },
  };
}

/** The progress record and a setter that also updates the UI's current details. */
export function kernelProgress(node: string, flavour: Hypervisor, guest: boolean) {
  const progress: KernelProgress = { node, flavour, guest, step: 'sync', state: 'pending' };
  setHandler(kernelProgressQuery, () => progress);
  const what = guest ? 'guest kernel' : `${flavour} host kernel`;
  const step = (name: string, state: StepState, detail?: string) => {
    progress.step = name;
    progress.state = state;
    if (detail === undefined) delete progress.detail;
    else progress.detail = detail;
    setCurrentDetails(`**${what}** on ${node}: ${name} (${state})${detail ? `: ${detail}` : ''}`);
  };
  /** Runs one step, marking it running, then done or failed (the failure goes on unchanged). */
  const run = async <T>(name: string, work: () => Promise<T>): Promise<T> => {
    step(name, 'running');
    try {
      const value = await work();
      step(name, 'done');
      return value;
    } catch (err) {
      step(name, 'failed', err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message).split('\n')[0] : String(err));
      throw err;
    }
  };
  return { progress, step, run };
}

export async function installHostKernel(rawInput: InstallHostKernelInput): Promise<InstallHostKernelResult> {
  const input = parseInput(installHostKernelInput, rawInput, 'installHostKernel');
  const { node, flavour, origin } = input;
  const ref = { cluster: input.cluster, profileHash: input.profileHash, runId: input.runId, node };
  const { step, run } = kernelProgress(node, flavour, false);
  const opts = kernelActivityOptions(input.timeouts);
  const { resolveSourceCommit, setOriginFlag, inspectInstalledKernel, writeKernelMarker } = proxyActivities<Activities>(opts.short);
  const { syncSource } = proxyActivities<Activities>(opts.sync);
  const { buildKernel } = proxyActivities<Activities>(opts.build);
  const { installKernel } = proxyActivities<Activities>(opts.install);
  const logs: string[] = [];

  const pinned = input.commit ?? (await run('resolve commit', () => resolveSourceCommit({ cluster: input.cluster, profileHash: input.profileHash, runId: input.runId, flavour }))).commit;
  const synced = await run('sync source', () => syncSource({ ...ref, flavour, commit: pinned }));
  logs.push(synced.log);
  const { commit, treeCommit } = synced;
  let originFlag: OriginFlagState | undefined;
  if (flavour === 'fragvisor') {
    const flag = await run('origin flag', () => setOriginFlag({ ...ref, origin }));
    logs.push(flag.log);
    originFlag = { origin: flag.origin, lines: flag.lines };
  }
  const inspect = await run('inspect', () => inspectInstalledKernel({ ...ref, flavour, commit, origin }));
  const { configHash } = inspect;
  const base = { node, flavour, commit, treeCommit, configHash, ...(originFlag ? { originFlag } : {}) };
  if (inspect.upToDate && inspect.marker) {
    step('inspect', 'skipped', inspect.reason);
    return { ...base, skipped: true, release: inspect.marker.release, logs };
  }

  // Jobs are keyed by this execution: a retried activity or a restarted worker reattaches, a new child starts afresh.
  const job = { ...ref, flavour, commit, configHash, jobScope: workflowInfo().runId };
  let release: string;
  if (inspect.installOnly && inspect.marker) {
    // The tree still holds this very build (another kernel became the default since): no rebuild.
    step('build', 'skipped', inspect.reason);
    release = inspect.marker.release;
  } else {
    const built = await run('build', () => buildKernel({ ...job, jobs: input.jobs }));
    logs.push(built.log);
    release = built.release;
  }
  for (const s of ['modules-install', 'install'] as const) {
    const installed = await run(s, () => installKernel({ ...job, step: s }));
    logs.push(installed.log);
  }
  await run('marker', () => writeKernelMarker({ ...ref, flavour, commit, treeCommit, configHash, release, origin }));
  step('done', 'done', `installed ${release}; reboot to run it`);
  return { ...base, skipped: false, release, logs };
}
