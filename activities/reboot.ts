import { appendFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type { SshSettings } from '../config/schema';
import { BOOT_STATE_COMMAND, SOFT_REBOOT_COMMAND, consoleTail, judgeBoot, parseBootState, type BootState } from '../workflows/commands/reboot';
import { sudoPasswordRequired, sudoPasswordRequiredMessage } from '../workflows/commands/sudo';
import { findNode, loadPinnedProfile, sshTarget } from './cluster';
import { classified } from './failures';
import { withHeartbeat } from './heartbeat';
import { bmcArgs, bmcPassword, runIpmitool } from './ipmitool';
import { stepLog } from './runStore';
import { SshCommandTimeoutError, SshConnectionLostError, isRetryableSshError } from './ssh/errors';
import type { SshPool, SshTarget } from './ssh/pool';

/**
 * Reboots with proof and escalation, as activities (the rebootNodes workflow sequences them): read
 * the boot state, ask for a soft reboot (idempotent under retries), wait for a new boot_id, power-cycle
 * through the BMC, capture the serial console for the failure report.
 */

export type { BootState } from '../workflows/commands/reboot';

export interface NodeRef {
  cluster: string;
  profileHash: string;
  node: string;
}

export interface SoftRebootResult {
  /** False when this call found the reboot already under way or done (a retried activity). */
  issued: boolean;
  /** Why, in one line. */
  detail: string;
}

export interface BootProof extends BootState {
  /** Whether a poll found the node not answering SSH (refused, dropped, timed out) before it came back. */
  sawDown: boolean;
  /** From the start of the wait to the first poll that found it down; null when never seen down. */
  downAfterMs: number | null;
  /** From the start of the wait to the answer with the new boot_id. */
  upAfterMs: number;
}

export interface AwaitBootInput extends NodeRef {
  bootIdBefore: string;
  /** `uname -r` the node must come back with; a different one is a WrongKernel failure. */
  expectedRelease?: string;
  timeoutSeconds: number;
  /**
   * Accept a new boot_id only after a poll found the node down in this wait: after a power cycle,
   * a node that came back late from the soft reboot answers with a new boot_id before the cycle
   * takes it down again.
   */
  requireDown?: boolean;
}

export interface BmcPowerCycleResult {
  /** False when the node already answered with a new boot_id: no cycle was needed (or a retry found it done). */
  cycled: boolean;
  detail: string;
}

export interface ConsoleCapture {
  /** The capture, relative to the run folder (`logs/<node>/console.log`, appended). */
  log: string;
  /** Its last lines. */
  tail: string[];
}

/** Between polls of a rebooting node: the node answering again is seen within this (issue 9: < 1 s). */
const POLL_INTERVAL_MS = 250;
/** One poll may take this long (connect included): a powered-off host drops SYNs rather than refusing. */
const POLL_TIMEOUT_MS = 10_000;
/** Poll answers kept for the timeout message. */
const RECENT = 5;

type Answer = { kind: 'up'; state: BootState } | { kind: 'down'; why: string } | { kind: 'odd'; why: string };

function pinned({ cluster, profileHash, node }: NodeRef) {
  const loaded = loadPinnedProfile(cluster, profileHash);
  const found = findNode(loaded, node);
  return { loaded, node: found, target: sshTarget(found), settings: loaded.profile.ssh };
}

/**
 * One look at the node. Transport failures mean "not answering" and never escape as errors: the pool
 * evicts a dead connection, so the next look reconnects. Errors no retry heals (host key, auth) do.
 */
async function lookAt(ssh: SshPool, target: SshTarget, settings: SshSettings, timeoutMs: number, signal?: AbortSignal): Promise<Answer> {
  let result;
  try {
    result = await ssh.exec(target, settings, BOOT_STATE_COMMAND, { timeoutMs, ...(signal ? { signal } : {}) });
  } catch (err) {
    if (signal?.aborted) throw err;
    if (isRetryableSshError(err) || err instanceof SshCommandTimeoutError) return { kind: 'down', why: (err as Error).message };
    throw err;
  }
  if (result.exitCode !== 0) return { kind: 'odd', why: `boot state command exited with ${result.exitCode ?? result.signal ?? 'no status'}: ${result.stderr.trim().slice(0, 200)}` };
  try {
    return { kind: 'up', state: parseBootState(result.stdout) };
  } catch (err) {
    return { kind: 'odd', why: (err as Error).message };
  }
}

interface WaitState {
  startedAtMs: number;
  sawDown: boolean;
  downAfterMs: number | null;
  recent: string[];
}

/** A retried awaitBoot (worker died) resumes its predecessor's deadline and observations. */
function resumed(): WaitState | undefined {
  let details: unknown;
  try {
    details = Context.current().info.heartbeatDetails;
  } catch {
    return undefined; // not in an activity (direct call)
  }
  const d = details as Partial<WaitState> | undefined;
  if (typeof d?.startedAtMs !== 'number' || typeof d.sawDown !== 'boolean' || !Array.isArray(d.recent)) return undefined;
  return { startedAtMs: d.startedAtMs, sawDown: d.sawDown, downAfterMs: typeof d.downAfterMs === 'number' ? d.downAfterMs : null, recent: d.recent.map(String) };
}

export function rebootActivities({ ssh }: { ssh: SshPool }) {
  return {
    async readBootState(ref: NodeRef): Promise<BootState> {
      return classified(async () => {
        const { target, settings } = pinned(ref);
        const r = await withHeartbeat((signal) => ssh.exec(target, settings, BOOT_STATE_COMMAND, { timeoutMs: 20_000, ...(signal ? { signal } : {}) }));
        if (r.exitCode !== 0) throw new Error(`node ${ref.node}: boot state command exited with ${r.exitCode ?? r.signal ?? 'no status'}: ${r.stderr.trim().slice(0, 500)}`);
        return parseBootState(r.stdout);
      });
    },

    /**
     * Asks for the soft reboot, once per boot: a node that already has another boot_id, or that does
     * not answer (it is going down), is not rebooted again, so a retry never reboots twice.
     */
    async requestSoftReboot(input: NodeRef & { bootIdBefore: string }): Promise<SoftRebootResult> {
      return classified(async () => {
        const { target, settings } = pinned(input);
        return withHeartbeat(async (signal) => {
          const now = await lookAt(ssh, target, settings, POLL_TIMEOUT_MS, signal);
          if (now.kind === 'down') return { issued: false, detail: `not rebooting again: ${input.node} does not answer (going down): ${now.why}` };
          if (now.kind === 'up' && now.state.bootId !== input.bootIdBefore) return { issued: false, detail: `not rebooting again: ${input.node} already rebooted (boot_id ${now.state.bootId})` };
          let r;
          try {
            r = await ssh.exec(target, settings, SOFT_REBOOT_COMMAND, { timeoutMs: 60_000, ...(signal ? { signal } : {}) });
          } catch (err) {
            // The node went down under the command: that is the reboot happening.
            if (err instanceof SshConnectionLostError && err.commandStarted) return { issued: true, detail: `${SOFT_REBOOT_COMMAND}: connection dropped as ${input.node} went down` };
            throw err;
          }
          if (r.exitCode === 0) return { issued: true, detail: `${SOFT_REBOOT_COMMAND}: accepted` };
          // The shutdown kills every session's processes, this one included.
          if (r.exitCode === null && r.signal) return { issued: true, detail: `${SOFT_REBOOT_COMMAND}: killed by ${r.signal} as ${input.node} went down` };
          if (sudoPasswordRequired(r.stderr)) {
            throw ApplicationFailure.nonRetryable(sudoPasswordRequiredMessage(input.node, target.user, SOFT_REBOOT_COMMAND), 'SudoPasswordRequired', { node: input.node });
          }
          throw new Error(`node ${input.node}: ${SOFT_REBOOT_COMMAND} exited with ${r.exitCode ?? r.signal ?? 'no status'}: ${r.stderr.trim().slice(0, 500)}`);
        });
      });
    },

    /**
     * Polls until the node answers with a boot_id other than `bootIdBefore`. Not back within the
     * timeout: a non-retryable RebootTimeout (the workflow escalates); back on another kernel than
     * expected: a non-retryable WrongKernel.
     */
    async awaitBoot(input: AwaitBootInput): Promise<BootProof> {
      return classified(async () => {
        const { target, settings } = pinned(input);
        const st: WaitState = resumed() ?? { startedAtMs: Date.now(), sawDown: false, downAfterMs: null, recent: [] };
        const deadline = st.startedAtMs + input.timeoutSeconds * 1000;
        const note = (line: string) => {
          const entry = `+${((Date.now() - st.startedAtMs) / 1000).toFixed(1)} s: ${line.slice(0, 300)}`;
          st.recent = [...st.recent, entry].slice(-RECENT);
        };
        return withHeartbeat(
          async (signal) => {
            for (;;) {
              const left = deadline - Date.now();
              if (left <= 0) {
                throw ApplicationFailure.nonRetryable(
                  `node ${input.node} did not come back with a new boot_id within ${input.timeoutSeconds} s ` +
                    `(boot_id before: ${input.bootIdBefore}; seen down: ${st.sawDown ? 'yes' : 'no'}); last answers:\n  ${st.recent.join('\n  ') || '(none)'}`,
                  'RebootTimeout',
                  { node: input.node, sawDown: st.sawDown, recent: st.recent },
                );
              }
              const answer = await lookAt(ssh, target, settings, Math.max(1000, Math.min(POLL_TIMEOUT_MS, left)), signal);
              if (answer.kind === 'down') {
                if (!st.sawDown) st.downAfterMs = Date.now() - st.startedAtMs;
                st.sawDown = true;
                note(answer.why);
              } else if (answer.kind === 'odd') {
                note(answer.why);
              } else {
                const verdict = judgeBoot(input.node, input.bootIdBefore, answer.state, input.expectedRelease);
                if (verdict.kind === 'wrong-kernel') {
                  throw ApplicationFailure.nonRetryable(verdict.message, 'WrongKernel', { node: input.node, expected: input.expectedRelease, found: answer.state.kernelRelease });
                }
                if (verdict.kind === 'rebooted' && (st.sawDown || !input.requireDown)) {
                  return { ...answer.state, sawDown: st.sawDown, downAfterMs: st.downAfterMs, upAfterMs: Date.now() - st.startedAtMs };
                }
                note(verdict.kind === 'same-boot' ? `still up with boot_id ${answer.state.bootId}` : `up with boot_id ${answer.state.bootId}, not yet seen down`);
              }
              await sleep(POLL_INTERVAL_MS, undefined, signal ? { signal } : {});
            }
          },
          1000,
          () => st,
        );
      });
    },

    /**
     * `ipmitool ... chassis power cycle` on the worker host. A node that already answers with a new
     * boot_id is left alone (it came back late, or a retry finds the cycle done).
     */
    async bmcPowerCycle(input: NodeRef & { bootIdBefore: string }): Promise<BmcPowerCycleResult> {
      return classified(async () => {
        const { loaded, node, target, settings } = pinned(input);
        if (!node.bmc) throw ApplicationFailure.nonRetryable(`node ${input.node} has no bmc in ${loaded.file}: it cannot be power-cycled remotely`, 'NoBmc', { node: input.node });
        const password = bmcPassword(loaded, input.node, node.bmc);
        const args = bmcArgs(node.bmc, 'cycle');
        return withHeartbeat(async (signal) => {
          const now = await lookAt(ssh, target, settings, 5000, signal);
          if (now.kind === 'up' && now.state.bootId !== input.bootIdBefore) return { cycled: false, detail: `not power-cycled: ${input.node} is back (boot_id ${now.state.bootId})` };
          const r = await runIpmitool(args, password, { timeoutMs: 60_000, ...(signal ? { signal } : {}) });
          if (r.code !== 0) throw new Error(`node ${input.node}: ipmitool ${args.join(' ')} exited with ${r.code ?? 'a signal'}: ${(r.stderr || r.stdout).trim().slice(0, 500)}`);
          return { cycled: true, detail: `ipmitool ${args.join(' ')}: ${r.stdout.trim()}` };
        });
      });
    },

    /** The node's serial console over SOL for `seconds`, appended to the run store; undefined without a BMC. */
    async captureConsole(input: NodeRef & { runId: string; seconds: number }): Promise<ConsoleCapture | undefined> {
      return classified(async () => {
        const { loaded, node } = pinned(input);
        if (!node.bmc) return undefined;
        const password = bmcPassword(loaded, input.node, node.bmc);
        const log = stepLog(input.runId, input.node, 'console');
        await appendFile(log.file, `--- ${new Date().toISOString()}: ipmitool sol activate for ${input.seconds} s ---\n`);
        const r = await withHeartbeat((signal) =>
          runIpmitool(bmcArgs(node.bmc!, 'sol'), password, { timeoutMs: input.seconds * 1000 + 10_000, session: { endAfterMs: input.seconds * 1000, logFile: log.file }, ...(signal ? { signal } : {}) }),
        );
        // A session that never came up (e.g. SOL already active elsewhere) says why on stderr.
        if (r.code !== 0 && r.stdout.trim() === '') throw new Error(`node ${input.node}: ipmitool sol activate exited with ${r.code ?? 'a signal'}: ${r.stderr.trim().slice(0, 500)}`);
        return { log: log.relative, tail: consoleTail(r.stdout) };
      });
    },
  };
}
