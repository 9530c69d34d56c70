import { ApplicationFailure } from '@temporalio/common';
import type { ClusterProfile, SshSettings } from '../config/schema';
import { EXIT_PERMANENT, type KernelJob } from '../workflows/commands/kernel';
import { findNode, loadPinnedProfile, sshTarget } from './cluster';
import { withHeartbeat } from './heartbeat';
import { failingLines } from './kernelOutput';
import { followRemoteJob, RemoteJobTimeoutError, type RemoteJobResult } from './remoteJob';
import type { SshPool, SshTarget } from './ssh/pool';

/**
 * What the build steps on a node share (the kernels, kvmtool): the pinned profile and the node's SSH
 * target, short command lines run in order with exit 3 meaning "permanent", and a build or install
 * followed as a remote job whose timeout is final.
 */

export interface NodeWhere {
  profile: ClusterProfile;
  target: SshTarget;
  settings: SshSettings;
}

/** The profile the run pinned (refused when it changed), and the node's SSH target in it. */
export function pinned({ cluster, profileHash, node }: { cluster: string; profileHash: string; node: string }): NodeWhere {
  const loaded = loadPinnedProfile(cluster, profileHash);
  return { profile: loaded.profile, target: sshTarget(findNode(loaded, node)), settings: loaded.profile.ssh };
}

/**
 * Runs command lines in order over the pooled connection, their output appended to `logFile`; returns the
 * last one's stdout. Our scripts' exit 3 is a non-retryable failure of type `permanentType`; any other
 * failure may heal (a flaky fetch, a node still booting) and is retried.
 */
export async function runSteps(
  ssh: SshPool,
  where: { target: SshTarget; settings: SshSettings },
  commands: readonly string[],
  opts: { logFile: string; timeoutMs: number; permanentType: string; stdin?: string },
): Promise<string> {
  const { target, settings } = where;
  let stdout = '';
  for (const command of commands) {
    const r = await withHeartbeat((signal) =>
      ssh.exec(target, settings, command, { timeoutMs: opts.timeoutMs, logFile: opts.logFile, ...(signal ? { signal } : {}), ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) }),
    );
    if (r.exitCode === 0) {
      stdout = r.stdout;
      continue;
    }
    const message = `node ${target.node}: \`${command.length > 300 ? `${command.slice(0, 300)}...` : command}\` exited with ${r.exitCode ?? r.signal}: ${r.stderr.trim().slice(-1000) || '(no output)'}`;
    if (r.exitCode === EXIT_PERMANENT) throw ApplicationFailure.nonRetryable(message, opts.permanentType, { node: target.node, exitCode: r.exitCode });
    throw new Error(message);
  }
  return stdout;
}

/**
 * A build or install as a remote job, its log in the run store. A job that ran past `timeoutMs` was
 * killed, and a retry would only run it as long again: a non-retryable `timeoutType`.
 */
export async function followJob(
  ssh: SshPool,
  where: { target: SshTarget; settings: SshSettings },
  ref: { runId: string; node: string },
  spec: { key: string; job: KernelJob; timeoutMs: number; timeoutType: string },
): Promise<RemoteJobResult> {
  const { key, job } = spec;
  try {
    return await followRemoteJob(ssh, where.target, where.settings, { key, argv: job.argv, cwd: job.cwd, sudo: job.sudo === true, restartLost: true }, { runId: ref.runId, node: ref.node, timeoutMs: spec.timeoutMs });
  } catch (err) {
    if (!(err instanceof RemoteJobTimeoutError)) throw err;
    throw ApplicationFailure.nonRetryable(err.message, spec.timeoutType, { node: ref.node, step: job.step, lines: err.tail.slice(-10) });
  }
}

/** The lines that say why a make failed: the compiler's `error:` and make's `***` lines, else the log's last lines. */
export function whyLines(r: RemoteJobResult): string[] {
  const lines = failingLines(r.tail);
  return lines.length > 0 ? lines : r.tail.slice(-10);
}
