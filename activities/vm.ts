import { stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { ClusterNode, SshSettings } from '../config/schema';
import type { Experiment, Hypervisor } from '../workflows/inputs';
import { toCommandLine } from '../workflows/commands/quote';
import { BOOT_STATE_COMMAND, parseBootState } from '../workflows/commands/reboot';
import { sudoPasswordRequired, sudoPasswordRequiredMessage } from '../workflows/commands/sudo';
import { bridgeOutcome, bridgeTapArgv, LKVM_NODE_FLAGS, lkvmJob, lkvmSocketCleanupArgv, qemuJob, TAP, BRIDGE, type VmJob } from '../workflows/commands/vm';
import { findNode, guestSshRoute, loadPinnedProfile, sshTarget } from './cluster';
import { classified } from './failures';
import { withHeartbeat } from './heartbeat';
import { killRemoteJob, readRemoteJob, remoteJobKey, startRemoteJob, type JobState, type RemoteJobRead, type RemoteJobSpec } from './remoteJob';
import { stepLog } from './runStore';
import { isRetryableSshError, SshCommandTimeoutError } from './ssh/errors';
import type { SshPool, SshTarget } from './ssh/pool';

/**
 * ARTIFACT.md step 4: the distributed VM of one epoch. The launcher (lkvm on the origin, or GiantVM's
 * qemu on every node) is a remote job that outlives these activities: started by launchVm, followed
 * by awaitGuest (its output, the guest console, copied into the run store), killed by stopVm.
 * Jobs are keyed by (run, epoch, node, boot_id): a retry in the same boot reattaches and never
 * launches a second VM, and the VM of the next boot gets a new key.
 */

export interface VmRef {
  cluster: string;
  profileHash: string;
  /** The run (its run-store folder). */
  runId: string;
}

/** One launcher job; a VM's jobs are listed origin first (its log is the guest console). */
export interface VmJobRef {
  node: string;
  key: string;
}

export interface LaunchVmInput extends VmRef {
  hypervisor: Hypervisor;
  experiment: Experiment;
  /** The first n profile nodes run one vCPU each. */
  nodeCount: number;
  /** The guest bzImage on the origin (the guest kernel build's image). */
  kernelImage: string;
  /** Names the epoch (e.g. `fragvisor-E1-n4`): part of the job keys and of the run-store log names. */
  epoch: string;
}

export interface LaunchVmResult {
  jobs: VmJobRef[];
  /** Every job was already there (a retry in the same boot): nothing was started. */
  reattached: boolean;
}

export interface AwaitGuestInput extends VmRef {
  jobs: VmJobRef[];
  /** Counted from the last launcher's start (a retry does not restart the clock; see bootElapsedMs); default: the profile's timeouts.vmBoot. */
  timeoutSeconds?: number;
}

export interface AwaitGuestResult {
  /** From the last launcher's start to the guest answering SSH (bootElapsedMs). */
  bootMs: number;
  /** The guest console (the origin launcher's output), relative to the run folder. */
  console: string;
}

export interface StopVmInput extends VmRef {
  jobs: VmJobRef[];
}

export interface StopVmResult {
  /** Per job: its state after the kill, and whether this call killed it (false: it had ended already). */
  jobs: { node: string; key: string; state: JobState; killed: boolean }[];
  console: string;
}

/** Details of the VmDied failure: which launcher ended, how, and the console's last lines. */
export interface VmDiedDetails {
  node: string;
  key: string;
  state: JobState;
  exitCode?: number;
  reason?: string;
  lines: string[];
  /** The job's log, relative to the run folder. */
  log: string;
}

/** Details of GuestBootTimeout. */
export interface GuestBootTimeoutDetails {
  timeoutSeconds: number;
  /** Why the last SSH attempt failed. */
  lastError: string;
  lines: string[];
  console: string;
}

const SHORT_MS = 60_000;
const POLL_MS = 1000;
/** One SSH attempt at the guest: a guest that is not up yet may not even refuse (no ARP answer). */
const GUEST_TRY_MS = 30_000;
/** The launcher creates its tap within seconds; this long without one while it runs is a broken network setup. */
const BRIDGE_WAIT_MS = 60_000;
const CONSOLE_LINES = 30;

/**
 * How long the VM has had to boot: since its last launcher started, each launcher's span on its own
 * node's clock. A GiantVM guest boots only once every node's instance has joined, and an instance
 * started late (a worker killed half-way through launchVm, the retry starting the rest) must not
 * count against the boot timeout: that turned a guest still booting into GuestBootTimeout and a
 * needless boot cycle.
 */
export function bootElapsedMs(reads: readonly Pick<RemoteJobRead, 'startMs' | 'nowMs'>[]): number {
  return Math.min(...reads.map((r) => r.nowMs - (r.startMs ?? r.nowMs)));
}

/** How a launcher that is not running ended, in words. */
function howEnded(r: RemoteJobRead): string {
  if (r.state === 'finished') return `exited with ${r.exitCode ?? '?'}`;
  if (r.state === 'killed') return `was killed (${r.reason ?? 'killed'})`;
  if (r.state === 'lost') return r.reason === 'rebooted' ? 'was lost: the node rebooted' : 'was lost: its process is gone without an exit code';
  return 'is not on the node (no job under its key)';
}

/** A launcher that is not running: VmDied with the console's last lines (SudoPasswordRequired when sudo was the reason). */
function vmDied(job: VmJobRef, target: SshTarget, r: RemoteJobRead, runId: string): ApplicationFailure {
  const lines = r.tail.slice(-CONSOLE_LINES);
  if (r.state === 'finished' && sudoPasswordRequired(lines.join('\n'))) {
    return ApplicationFailure.nonRetryable(sudoPasswordRequiredMessage(job.node, target.user, 'the VM launcher (lkvm or qemu-system-x86_64)'), 'SudoPasswordRequired', { node: job.node });
  }
  const details: VmDiedDetails = {
    node: job.node,
    key: job.key,
    state: r.state,
    ...(r.exitCode !== undefined ? { exitCode: r.exitCode } : {}),
    ...(r.reason !== undefined ? { reason: r.reason } : {}),
    lines,
    log: r.log,
  };
  return ApplicationFailure.nonRetryable(
    `the VM died: its launcher on ${job.node} (remote job ${job.key}) ${howEnded(r)}; its output in the run store: ${runId}/${r.log}. Last lines:\n  ${lines.join('\n  ') || '(empty)'}`,
    'VmDied',
    details,
  );
}

/** What one guest SSH attempt says: true when `true` ran there, else why not (a reason to try again). */
async function tryGuest(ssh: SshPool, guest: { target: SshTarget; settings: SshSettings }, signal?: AbortSignal): Promise<true | string> {
  try {
    const r = await ssh.exec(guest.target, guest.settings, 'true', { timeoutMs: GUEST_TRY_MS, ...(signal ? { signal } : {}) });
    return r.exitCode === 0 ? true : `\`true\` exited with ${r.exitCode ?? r.signal}: ${r.stderr.trim().slice(0, 200)}`;
  } catch (err) {
    if (signal?.aborted) throw err;
    // A guest that is not up refuses, resets or does not answer; a wrong host key or credential is no such thing.
    if (isRetryableSshError(err) || err instanceof SshCommandTimeoutError) return (err as Error).message;
    throw err;
  }
}

export function vmActivities({ ssh }: { ssh: SshPool }) {
  /** Reads jobs, keeping each run-store copy in step (every read from where the last one ended; the first from 0). */
  const follower = (runId: string, targets: ReadonlyMap<string, SshTarget>, settings: SshSettings) => {
    const offsets = new Map<string, number>();
    return (job: VmJobRef, signal?: AbortSignal) =>
      readRemoteJob(ssh, targets.get(job.node)!, settings, { runId, node: job.node, key: job.key, offset: offsets.get(job.key) ?? 0, ...(signal ? { signal } : {}) }).then((r) => {
        offsets.set(job.key, r.offset);
        return r;
      });
  };

  const targetsOf = (cluster: string, profileHash: string, jobs: readonly VmJobRef[]) => {
    const loaded = loadPinnedProfile(cluster, profileHash);
    return { loaded, targets: new Map(jobs.map((j) => [j.node, sshTarget(findNode(loaded, j.node))])) };
  };

  /** Runs a command that must succeed, its output appended to `logFile`. */
  const mustRun = async (target: SshTarget, settings: SshSettings, argv: readonly string[] | string, logFile: string, signal?: AbortSignal): Promise<string> => {
    const r = await ssh.exec(target, settings, argv, { timeoutMs: SHORT_MS, logFile, ...(signal ? { signal } : {}) });
    if (r.exitCode === 0) return r.stdout;
    const line = typeof argv === 'string' ? argv : toCommandLine(argv);
    if (sudoPasswordRequired(r.stderr)) throw ApplicationFailure.nonRetryable(sudoPasswordRequiredMessage(target.node, target.user, line), 'SudoPasswordRequired', { node: target.node });
    throw new Error(`node ${target.node}: \`${line}\` exited with ${r.exitCode ?? r.signal}: ${r.stderr.trim().slice(0, 500)}`);
  };

  return {
    /**
     * Starts the VM's launcher job(s) unless this boot already has them: first the stale kvmtool
     * sockets on every VM node (FragVisor), then lkvm on the origin, or qemu on every node (GiantVM);
     * then the origin's tap on the bridge, retried until the launcher has created it (at most a
     * minute; a launcher that ends meanwhile is VmDied). A job found in any state (running, ended,
     * killed) is reattached to, never started again: the VM cannot be restarted in the same boot.
     */
    async launchVm(input: LaunchVmInput): Promise<LaunchVmResult> {
      return classified(async () => {
        const loaded = loadPinnedProfile(input.cluster, input.profileHash);
        const { profile } = loaded;
        const max = input.hypervisor === 'fragvisor' ? Math.min(profile.nodes.length, LKVM_NODE_FLAGS.length) : profile.nodes.length;
        if (!Number.isInteger(input.nodeCount) || input.nodeCount < 1 || input.nodeCount > max) {
          throw ApplicationFailure.nonRetryable(`a ${input.hypervisor} VM on ${input.nodeCount} nodes: expected 1..${max} (the profile ${profile.name} has ${profile.nodes.length} nodes)`, 'InvalidVmInput', { nodeCount: input.nodeCount });
        }
        const settings = profile.ssh;
        const vmNodes: ClusterNode[] = profile.nodes.slice(0, input.nodeCount);
        const targets = new Map(vmNodes.map((n) => [n.name, sshTarget(n)]));
        const origin = vmNodes[0].name;
        // The epoch name may hold characters no file name should: remoteJobKey makes it one.
        const log = (node: string, what: string) => stepLog(input.runId, node, remoteJobKey(input.epoch, `vm-${what}`)).file;
        const common = { experiment: input.experiment, paths: profile.paths, guest: profile.guest, kernelImage: input.kernelImage };
        const jobOf = (i: number): VmJob =>
          input.hypervisor === 'fragvisor' ? lkvmJob({ ...common, nodeCount: input.nodeCount }) : qemuJob({ ...common, nodeIps: vmNodes.map((n) => n.rdmaIp), position: i });
        const launchers = input.hypervisor === 'fragvisor' ? vmNodes.slice(0, 1) : vmNodes;

        return withHeartbeat(async (signal) => {
          const specs = await Promise.all(
            launchers.map(async (node, i): Promise<{ node: string; spec: RemoteJobSpec }> => {
              const { bootId } = parseBootState(await mustRun(targets.get(node.name)!, settings, BOOT_STATE_COMMAND, log(node.name, 'boot-state'), signal));
              const job = jobOf(i);
              return { node: node.name, spec: { key: remoteJobKey(input.runId, input.epoch, node.name, bootId, job.step), argv: job.argv, cwd: job.cwd, sudo: job.sudo } };
            }),
          );
          const jobs: VmJobRef[] = specs.map((s) => ({ node: s.node, key: s.spec.key }));
          const follow = follower(input.runId, targets, settings);
          const found = await Promise.all(jobs.map((j) => follow(j, signal)));
          const fresh = specs.filter((_, i) => found[i].state === 'none' || found[i].state === 'missing');
          if (fresh.length > 0 && input.hypervisor === 'fragvisor') {
            await Promise.all(vmNodes.map((n) => mustRun(targets.get(n.name)!, settings, lkvmSocketCleanupArgv(), log(n.name, 'lkvm-sockets'), signal)));
          }
          for (const { node, spec } of fresh) await startRemoteJob(ssh, targets.get(node)!, settings, spec, signal ? { signal } : {});

          // The tap on the bridge; meanwhile the launchers must keep running.
          const originTarget = targets.get(origin)!;
          const deadline = Date.now() + BRIDGE_WAIT_MS;
          for (;;) {
            const r = await ssh.exec(originTarget, settings, bridgeTapArgv(), { timeoutMs: SHORT_MS, logFile: log(origin, 'bridge'), ...(signal ? { signal } : {}) });
            const outcome = bridgeOutcome(r.exitCode, r.stderr);
            if (outcome === 'added' || outcome === 'member') break;
            if (sudoPasswordRequired(r.stderr)) throw ApplicationFailure.nonRetryable(sudoPasswordRequiredMessage(origin, originTarget.user, toCommandLine(bridgeTapArgv())), 'SudoPasswordRequired', { node: origin });
            if (outcome === 'failed') {
              throw ApplicationFailure.nonRetryable(`node ${origin}: \`${toCommandLine(bridgeTapArgv())}\` failed (exit ${r.exitCode ?? r.signal}): ${r.stderr.trim().slice(0, 500)}`, 'VmNetworkFailed', {
                node: origin,
                lines: r.stderr.trim().split('\n').slice(-10),
              });
            }
            for (const job of jobs) {
              const now = await follow(job, signal);
              if (now.state !== 'running') throw vmDied(job, targets.get(job.node)!, now, input.runId);
            }
            if (Date.now() > deadline) {
              throw ApplicationFailure.nonRetryable(`node ${origin}: ${TAP} did not appear within ${BRIDGE_WAIT_MS / 1000} s while the VM launcher runs, so it cannot join ${BRIDGE}`, 'VmNetworkFailed', {
                node: origin,
                lines: r.stderr.trim().split('\n').slice(-10),
              });
            }
            await sleep(POLL_MS, undefined, signal ? { signal } : {});
          }
          return { jobs, reattached: fresh.length === 0 };
        });
      });
    },

    /**
     * Polls until the guest answers SSH (`true` over the profile's guest.ssh), copying every launcher's
     * log into the run store as it goes (heartbeating). A launcher that is not running is VmDied; no
     * answer within the timeout is GuestBootTimeout; both carry the console's last lines.
     */
    async awaitGuest(input: AwaitGuestInput): Promise<AwaitGuestResult> {
      return classified(async () => {
        if (input.jobs.length === 0) throw ApplicationFailure.nonRetryable('awaitGuest: no launcher jobs given (launchVm returns them)', 'InvalidVmInput');
        const { loaded, targets } = targetsOf(input.cluster, input.profileHash, input.jobs);
        const { profile } = loaded;
        const guest = guestSshRoute(profile);
        const timeoutSeconds = input.timeoutSeconds ?? profile.timeouts.vmBoot;
        const follow = follower(input.runId, targets, profile.ssh);
        const [consoleJob] = input.jobs;
        const readAll = (signal?: AbortSignal) => Promise.all(input.jobs.map((j) => follow(j, signal)));

        return withHeartbeat(async (signal) => {
          for (;;) {
            const reads = await readAll(signal);
            const dead = reads.findIndex((r) => r.state !== 'running');
            if (dead >= 0) throw vmDied(input.jobs[dead], targets.get(input.jobs[dead].node)!, reads[dead], input.runId);
            const answer = await tryGuest(ssh, guest, signal);
            // After the answer: the console up to the login prompt lands in the run store too.
            const now = answer === true ? await readAll(signal) : reads;
            const [consoleRead] = now;
            const elapsedMs = bootElapsedMs(now);
            if (answer === true) return { bootMs: elapsedMs, console: consoleRead.log };
            if (elapsedMs > timeoutSeconds * 1000) {
              const details: GuestBootTimeoutDetails = { timeoutSeconds, lastError: answer, lines: consoleRead.tail.slice(-CONSOLE_LINES), console: consoleRead.log };
              throw ApplicationFailure.nonRetryable(
                `the guest (${guest.target.host}:${guest.target.port ?? 22}) did not answer SSH within ${timeoutSeconds} s of ${input.jobs.length > 1 ? "the last VM launcher's start" : `the VM launcher's start on ${consoleJob.node}`} (last attempt: ${answer}); console in the run store: ${input.runId}/${consoleRead.log}. Last lines:\n  ${details.lines.join('\n  ') || '(empty)'}`,
                'GuestBootTimeout',
                details,
              );
            }
            await sleep(POLL_MS, undefined, signal ? { signal } : {});
          }
        });
      });
    },

    /**
     * Kills every launcher job's process group (as root) and returns once it is gone, then copies the
     * rest of the console. Idempotent: a launcher that ended already is left as it is.
     */
    /**
     * Whether every launcher of the VM still runs (copying the consoles on): after a step in the
     * guest failed, this tells a dead VM (a fresh boot cycle cures it) from a failing benchmark.
     */
    async vmRunning(input: StopVmInput): Promise<{ running: boolean; tail: string[] }> {
      return classified(async () => {
        const { loaded, targets } = targetsOf(input.cluster, input.profileHash, input.jobs);
        const reads = await Promise.all(
          input.jobs.map(async (job) => {
            const copied = await stat(stepLog(input.runId, job.node, job.key).file).then((st) => st.size, () => 0);
            return readRemoteJob(ssh, targets.get(job.node)!, loaded.profile.ssh, { runId: input.runId, node: job.node, key: job.key, offset: copied });
          }),
        );
        const dead = reads.find((r) => r.state !== 'running');
        return { running: dead === undefined, tail: (dead ?? reads[0]).tail };
      });
    },

    async stopVm(input: StopVmInput): Promise<StopVmResult> {
      return classified(async () => {
        if (input.jobs.length === 0) throw ApplicationFailure.nonRetryable('stopVm: no launcher jobs given (launchVm returns them)', 'InvalidVmInput');
        const { loaded, targets } = targetsOf(input.cluster, input.profileHash, input.jobs);
        const settings = loaded.profile.ssh;
        return withHeartbeat(async (signal) => {
          const jobs = await Promise.all(
            input.jobs.map(async (job) => {
              const target = targets.get(job.node)!;
              const { state, killed } = await killRemoteJob(ssh, target, settings, { key: job.key, sudo: true });
              // The copy so far is exact (reads cut it to their offset): continue from its end.
              const copied = await stat(stepLog(input.runId, job.node, job.key).file).then((s) => s.size, () => 0);
              const r = await readRemoteJob(ssh, target, settings, { runId: input.runId, node: job.node, key: job.key, offset: copied, ...(signal ? { signal } : {}) });
              return { job: { node: job.node, key: job.key, state, killed }, log: r.log };
            }),
          );
          return { jobs: jobs.map((j) => j.job), console: jobs[0].log };
        });
      });
    },
  };
}

export type VmActivities = ReturnType<typeof vmActivities>;
