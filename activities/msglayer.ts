import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { SshSettings } from '../config/schema';
import { lsmodHasMsgLayer, msgLayerArgv, msgLayerPaths, parseMsgLayerDmesg, renderConfigH, rmmodOutcome, type MsgLayerDmesg } from '../workflows/commands/msglayer';
import { toCommandLine } from '../workflows/commands/quote';
import { sudoPasswordRequired, sudoPasswordRequiredMessage } from '../workflows/commands/sudo';
import { findNode, loadPinnedProfile, sshTarget } from './cluster';
import { classified } from './failures';
import { withHeartbeat } from './heartbeat';
import { followRemoteJob, remoteJobKey, RemoteJobTimeoutError } from './remoteJob';
import type { RemoteJobSpec } from './remoteJob/types';
import type { SshPool, SshTarget } from './ssh/pool';

/**
 * ARTIFACT.md step 3 on one node at a time (the messagingLayer workflow orders them): build msg_layer
 * with the node list, insmod msg_rdma.ko as a remote job, read lsmod and dmesg. Payloads carry run-store
 * paths, exit codes and the messaging layer's own log lines (node IPs, nothing secret).
 */

export interface MsgLayerNodeRef {
  cluster: string;
  profileHash: string;
  /** The run (its run-store folder; part of every remote job key). */
  runId: string;
  node: string;
}

export interface BuildMsgLayerInput extends MsgLayerNodeRef {
  /** rdmaIp of the first n nodes, in node order: config.h's list (node id = position). */
  ips: string[];
  /** For each job (config.h, make clean, make); default: the profile's timeouts.messagingLayer. */
  timeoutSeconds?: number;
}

export interface BuildMsgLayerResult {
  node: string;
  /** make's log, relative to the run folder. */
  log: string;
  /** What rmmod found first: an earlier load of this boot is unloaded before the rebuild. */
  rmmod: 'removed' | 'not-loaded';
}

export interface InsmodMsgLayerInput extends MsgLayerNodeRef {
  /** The node's current boot_id: the job key, so a new boot loads afresh and a retry in this boot reattaches. */
  bootId: string;
  /** insmod not returned by then: it hangs (InsmodHang), only a reboot cures the node. */
  timeoutSeconds: number;
}

export interface InsmodMsgLayerResult {
  node: string;
  exitCode: number;
  /** insmod's last output lines (its error, if any). */
  tail: string[];
  /** The job's log, relative to the run folder. */
  log: string;
  reattached: boolean;
  durationMs: number;
}

export interface CheckMsgLayerInput extends MsgLayerNodeRef {
  /** n - 1: the peers that must have joined. */
  expectedPeers: number;
}

export interface MsgLayerCheck extends MsgLayerDmesg {
  node: string;
  /** lsmod lists msg_rdma (loading, hung or up). */
  loaded: boolean;
  /** Loaded, Ready, `expectedPeers` joined, no failure line and no origin problem. */
  ok: boolean;
}

/** Details of the InsmodHang and MsgLayerBusy failures. */
export interface MsgLayerStuckDetails {
  node: string;
  /** The node's last messaging-layer lines (what the kernel said before it stopped answering). */
  lines: string[];
}

const SHORT_MS = 60_000;
/** dmesg prints the whole ring buffer (at most 32 MiB: CONFIG_LOG_BUF_SHIFT <= 25); its end is what counts. */
const DMESG_MAX_BYTES = 64 * 1024 * 1024;

function pinned({ cluster, profileHash, node }: MsgLayerNodeRef) {
  const loaded = loadPinnedProfile(cluster, profileHash);
  const target = findNode(loaded, node);
  return { profile: loaded.profile, target: sshTarget(target), settings: loaded.profile.ssh };
}

/** A command that must succeed; `sudo -n` asking for a password is a non-retryable SudoPasswordRequired. */
async function run(ssh: SshPool, target: SshTarget, settings: SshSettings, argv: string[], opts: { signal?: AbortSignal; maxOutputBytes?: number } = {}): Promise<string> {
  const r = await ssh.exec(target, settings, argv, { timeoutMs: SHORT_MS, ...opts });
  if (r.exitCode === 0 && !r.stdoutTruncated) return r.stdout;
  const line = toCommandLine(argv);
  if (sudoPasswordRequired(r.stderr)) throw ApplicationFailure.nonRetryable(sudoPasswordRequiredMessage(target.node, target.user, line), 'SudoPasswordRequired', { node: target.node });
  if (r.stdoutTruncated) throw new Error(`node ${target.node}: \`${line}\` printed more than ${opts.maxOutputBytes ?? settings.maxOutputBytes} bytes`);
  throw new Error(`node ${target.node}: \`${line}\` exited with ${r.exitCode ?? r.signal}: ${r.stderr.trim().slice(0, 500)}`);
}

async function readDmesg(ssh: SshPool, target: SshTarget, settings: SshSettings, signal?: AbortSignal): Promise<MsgLayerDmesg> {
  return parseMsgLayerDmesg(await run(ssh, target, settings, msgLayerArgv.dmesg(), { maxOutputBytes: DMESG_MAX_BYTES, ...(signal ? { signal } : {}) }));
}

/** The last lines for a failure message; the reading itself must not hide the failure. */
async function lastLines(ssh: SshPool, target: SshTarget, settings: SshSettings): Promise<string[]> {
  try {
    return (await readDmesg(ssh, target, settings)).lines.slice(-20);
  } catch (err) {
    return [`(dmesg unreadable: ${(err as Error).message.slice(0, 200)})`];
  }
}

/**
 * This activity's workflow execution: build jobs are keyed by it, so a retried activity reattaches to
 * its jobs (never runs `make clean` under a running or finished make), while a new messagingLayer
 * run (the parent's retry) rebuilds.
 */
function executionId(): string {
  const id = Context.current().info.workflowExecution?.runId;
  if (!id) throw new Error('buildMsgLayer runs as an activity of a workflow (its jobs are keyed by the workflow execution)');
  return id;
}

export function msgLayerActivities({ ssh }: { ssh: SshPool }) {
  return {
    /**
     * rmmod a module left loaded in this boot (a busy one hangs: MsgLayerBusy), then as remote jobs
     * config.h from stdin, `make clean -C`, `make -C`. A failed make is a non-retryable
     * MsgLayerBuildFailed with its last lines.
     */
    async buildMsgLayer(input: BuildMsgLayerInput): Promise<BuildMsgLayerResult> {
      return classified(async () => {
        const { profile, target, settings } = pinned(input);
        const tree = profile.paths.kernelTree;
        const timeoutMs = (input.timeoutSeconds ?? profile.timeouts.messagingLayer) * 1000;
        const rm = await withHeartbeat((signal) => ssh.exec(target, settings, msgLayerArgv.rmmod(), { timeoutMs: SHORT_MS, ...(signal ? { signal } : {}) }));
        const rmmod = rmmodOutcome(rm.exitCode, rm.stderr);
        if (rmmod === 'busy') {
          const details: MsgLayerStuckDetails = { node: input.node, lines: [rm.stderr.trim(), ...(await lastLines(ssh, target, settings))] };
          throw ApplicationFailure.nonRetryable(`node ${input.node}: msg_rdma from an earlier insmod is still loading or hung (rmmod: busy); only a reboot frees it`, 'MsgLayerBusy', details);
        }
        if (rmmod === 'failed') {
          const line = toCommandLine(msgLayerArgv.rmmod());
          if (sudoPasswordRequired(rm.stderr)) throw ApplicationFailure.nonRetryable(sudoPasswordRequiredMessage(input.node, target.user, line), 'SudoPasswordRequired', { node: input.node });
          throw new Error(`node ${input.node}: \`${line}\` exited with ${rm.exitCode ?? rm.signal}: ${rm.stderr.trim().slice(0, 500)}`);
        }

        const key = (what: string) => remoteJobKey(input.runId, input.node, executionId(), `msg-layer-${what}`);
        const jobs: RemoteJobSpec[] = [
          { key: key('config'), argv: msgLayerArgv.writeConfigH(tree), stdin: renderConfigH(input.ips) },
          { key: key('clean'), argv: msgLayerArgv.makeClean(tree) },
          { key: key('make'), argv: msgLayerArgv.make(tree) },
        ];
        let log = '';
        for (const spec of jobs) {
          const r = await followRemoteJob(ssh, target, settings, spec, { runId: input.runId, node: input.node, timeoutMs });
          log = r.log;
          if (r.exitCode !== 0) {
            throw ApplicationFailure.nonRetryable(
              `node ${input.node}: \`${toCommandLine(spec.argv)}\` failed (exit ${r.exitCode}) in ${msgLayerPaths(tree).dir}:\n  ${r.tail.slice(-20).join('\n  ')}`,
              'MsgLayerBuildFailed',
              { node: input.node, exitCode: r.exitCode, log: r.log, lines: r.tail.slice(-20) },
            );
          }
        }
        return { node: input.node, log, rmmod };
      });
    },

    /**
     * `sudo -n insmod msg_rdma.ko` as a remote job keyed by (run, node, boot, insmod). A non-zero exit
     * is a result (the workflow judges it with dmesg); no return within the timeout kills the job and
     * is a non-retryable InsmodHang with the node's last messaging-layer lines.
     */
    async insmodMsgLayer(input: InsmodMsgLayerInput): Promise<InsmodMsgLayerResult> {
      return classified(async () => {
        const { profile, target, settings } = pinned(input);
        const spec: RemoteJobSpec = { key: remoteJobKey(input.runId, input.node, input.bootId, 'insmod'), argv: msgLayerArgv.insmod(profile.paths.kernelTree), sudo: true };
        try {
          const r = await followRemoteJob(ssh, target, settings, spec, { runId: input.runId, node: input.node, timeoutMs: input.timeoutSeconds * 1000 });
          return { node: input.node, exitCode: r.exitCode, tail: r.tail, log: r.log, reattached: r.reattached, durationMs: r.durationMs };
        } catch (err) {
          if (!(err instanceof RemoteJobTimeoutError)) throw err;
          const details: MsgLayerStuckDetails = { node: input.node, lines: await lastLines(ssh, target, settings) };
          throw ApplicationFailure.nonRetryable(
            `node ${input.node}: insmod msg_rdma.ko did not return within ${input.timeoutSeconds} s (the messaging layer hangs; only a reboot cures it). Last lines:\n  ${details.lines.join('\n  ') || '(none)'}`,
            'InsmodHang',
            details,
          );
        }
      });
    },

    /** lsmod and the latest load's dmesg lines, judged for a layer with `expectedPeers` others. */
    async checkMsgLayer(input: CheckMsgLayerInput): Promise<MsgLayerCheck> {
      return classified(async () => {
        const { target, settings } = pinned(input);
        return withHeartbeat(async (signal) => {
          const opts = signal ? { signal } : {};
          const loaded = lsmodHasMsgLayer(await run(ssh, target, settings, msgLayerArgv.lsmod(), opts));
          const status = await readDmesg(ssh, target, settings, signal);
          const ok = loaded && status.ready && status.joined.length === input.expectedPeers && status.errors.length === 0 && !status.originProblem;
          return { node: input.node, ...status, loaded, ok };
        });
      });
    },
  };
}
