import { appendFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApplicationFailure } from '@temporalio/common';
import type { SshSettings } from '../config/schema';
import {
  checkNodeCount,
  E3_CASES,
  guestSetupCommands,
  guestStepKey,
  maskHex,
  openLambdaCopy,
  parsePresence,
  parsePsAux,
  parseTasksetOutput,
  pinningPlan,
  pinStepName,
  PinningPlanError,
  PS_AUX_ARGV,
  serverRows,
  tasksetGetArgv,
  tasksetSetArgv,
  GUEST_OPENLAMBDA_DIR,
  type E3Case,
  type PinRequest,
  type PsProcess,
} from '../workflows/commands/guest';
import { toCommandLine } from '../workflows/commands/quote';
import { parseSequenceOutput, sequenceCommand, type SequenceStep } from '../workflows/commands/sequence';
import { EXPERIMENTS, type Experiment, type Hypervisor } from '../workflows/inputs';
import { GUEST_NODE, guestSshRoute, loadPinnedProfile, sshTarget } from './cluster';
import { classified } from './failures';
import { withHeartbeat } from './heartbeat';
import { stepLog } from './runStore';
import type { ExecOptions, ExecResult, SshPool, SshTarget } from './ssh/pool';

/**
 * ARTIFACT.md step 5 in the guest, over the profile's guest SSH endpoint (an SshTarget named `guest`
 * in the shared pool): the services restarted per experiment, then every pid from `ps aux` pinned
 * with `taskset -p MASK PID` and every mask read back with `taskset -p PID`. A mask that does not hold
 * is a non-retryable PinningFailed listing what was asked and what was read. All output goes to the
 * run store (logs/guest/); payloads carry pids, masks and the log's relative path.
 */

export interface GuestRef {
  cluster: string;
  profileHash: string;
  runId: string;
  experiment: Experiment;
  nodeCount: number;
  /** E3 only: which pinning (default local). */
  case?: E3Case;
  /** Names the run-store logs (default fragvisor): both hypervisors run the same epochs. */
  hypervisor?: Hypervisor;
}

export interface SetupGuestInput extends GuestRef {
  /** How long to wait for the expected processes after the starts (default 120 s). */
  timeoutSeconds?: number;
}

export interface GuestProcessSummary {
  pid: number;
  /** `nginx master`, `php-fpm worker 2`, `ol worker l1`. */
  what: string;
  user: string;
}

export interface SetupGuestResult {
  /** The processes the pinning will act on. */
  processes: GuestProcessSummary[];
  /** E2: where OpenLambda came from: copied from the origin's tree, or the ramdisk's own. */
  openLambda?: { source: 'copied'; from: string; bytes: number } | { source: 'ramdisk' };
  /** The step log, relative to the run folder. */
  log: string;
}

export interface GuestPin {
  pid: number;
  what: string;
  /** Asked, `0x..`. */
  mask: string;
  /** `taskset -p PID` afterwards, `0x..`. */
  readBack: string;
}

export interface PinGuestResult {
  pins: GuestPin[];
  log: string;
}

/** Details of a PinningFailed failure: every pin with what was asked, what taskset said, what was read back. */
export interface PinningFailedDetails {
  experiment: Experiment;
  nodeCount: number;
  case?: E3Case;
  pins: { pid: number; what: string; mask: string; set: string; readBack: string; ok: boolean }[];
  /** The guest's server rows of `ps aux` (when the expected processes were not there). */
  rows: string[];
  log: string;
}

/** Details of a GuestSetupFailed failure. */
export interface GuestSetupFailedDetails {
  experiment: Experiment;
  nodeCount: number;
  lines: string[];
  log: string;
}

const SHORT_MS = 60_000;
const COPY_MS = 10 * 60_000;
const POLL_MS = 500;
/** A tar of OpenLambda passes through the worker's memory: beyond this, copy it some other way. */
const MAX_COPY_BYTES = 512 * 1024 * 1024;

/** The read-back mask (`0x..`), or why there is none. */
function readMask(stdout: string, pid: number): string {
  try {
    const parsed = parseTasksetOutput(stdout);
    return parsed.pid === pid ? parsed.current : `unreadable: taskset answered for pid ${parsed.pid}`;
  } catch (err) {
    return `unreadable: ${(err as Error).message}`;
  }
}

const tail = (text: string, n = 15) => text.trim().split('\n').filter(Boolean).slice(-n);
const epochName = (i: GuestRef) => `${i.experiment}${i.experiment === 'E3' ? ` ${i.case ?? 'local'}` : ''}, ${i.nodeCount} node${i.nodeCount === 1 ? '' : 's'}`;

/** A bad input never heals: InvalidInput naming the field. */
function checkRef(input: GuestRef): void {
  const bad = (field: string, problem: string) => ApplicationFailure.nonRetryable(`${field}: ${problem}`, 'InvalidInput', { field });
  if (!(EXPERIMENTS as readonly string[]).includes(input.experiment)) throw bad('experiment', `expected ${EXPERIMENTS.join(', ')}, got ${JSON.stringify(input.experiment)}`);
  if (input.case !== undefined && !(E3_CASES as readonly string[]).includes(input.case)) throw bad('case', `expected ${E3_CASES.join(' or ')}, got ${JSON.stringify(input.case)}`);
  try {
    checkNodeCount(input.nodeCount);
  } catch (err) {
    throw bad('nodeCount', (err as Error).message);
  }
}

export function guestActivities({ ssh }: { ssh: SshPool }) {
  /** One command, its line and then its output appended to the step log (when there is one). */
  const exec = (target: SshTarget, settings: SshSettings, command: string, logFile: string | undefined, opts: ExecOptions = {}): Promise<ExecResult> => {
    if (logFile) appendFileSync(logFile, `$ ${target.node === GUEST_NODE ? '' : `[${target.node}] `}${command}\n`, { mode: 0o600 });
    return ssh.exec(target, settings, command, { timeoutMs: SHORT_MS, ...opts, ...(logFile ? { logFile } : {}) });
  };

  /** `ps aux` in the guest, parsed; a layout that is not procps's is not guessed at. */
  const psAux = async (guest: SshTarget, settings: SshSettings, log: { file: string; relative: string }, signal: AbortSignal | undefined, failureType: string): Promise<PsProcess[]> => {
    const r = await exec(guest, settings, toCommandLine(PS_AUX_ARGV), log.file, signal ? { signal } : {});
    if (r.exitCode !== 0) throw new Error(`guest: \`ps aux\` exited with ${r.exitCode ?? r.signal}: ${r.stderr.trim().slice(0, 500)}`);
    try {
      return parsePsAux(r.stdout);
    } catch (err) {
      throw ApplicationFailure.nonRetryable(`guest: ${(err as Error).message}`, failureType, { log: log.relative });
    }
  };

  return {
    /**
     * The guest's services for one epoch (ARTIFACT.md step 5): E1 nginx and php-fpm restarted, E3 nginx
     * restarted with one worker, E2 OpenLambda copied in and one `ol worker` per node started on its
     * vCPU. Then waits (bounded) until `ps aux` shows exactly the processes the pinning needs.
     */
    async setupGuest(input: SetupGuestInput): Promise<SetupGuestResult> {
      return classified(async () => {
        checkRef(input);
        const { profile } = loadPinnedProfile(input.cluster, input.profileHash);
        const { target: guest, settings: guestSettings } = guestSshRoute(profile);
        const h = input.hypervisor ?? 'fragvisor';
        const log = stepLog(input.runId, GUEST_NODE, guestStepKey(h, input.experiment, input.nodeCount, 'setup'));
        const failed = (message: string, lines: string[]) =>
          ApplicationFailure.nonRetryable(`guest (${epochName(input)}): ${message}\n  ${lines.join('\n  ')}\nfull log in the run store: ${input.runId}/${log.relative}`, 'GuestSetupFailed', {
            experiment: input.experiment,
            nodeCount: input.nodeCount,
            lines,
            log: log.relative,
          } satisfies GuestSetupFailedDetails);

        return withHeartbeat(async (signal) => {
          const sig = signal ? { signal } : {};
          let openLambda: SetupGuestResult['openLambda'];
          if (input.experiment === 'E2') {
            const copy = openLambdaCopy(profile.paths);
            const originNode = profile.nodes.find((n) => n.origin) ?? profile.nodes[0];
            const origin = sshTarget(originNode);
            const check = await exec(origin, profile.ssh, copy.sourceCheck, log.file, sig);
            if (check.exitCode !== 0) throw new Error(`node ${origin.node}: \`${copy.sourceCheck}\` exited with ${check.exitCode ?? check.signal}: ${check.stderr.trim().slice(0, 500)}`);
            if (parsePresence(check.stdout)) {
              // The tar is binary: it is collected here and never written to the log.
              const chunks: Buffer[] = [];
              let bytes = 0;
              appendFileSync(log.file, `$ [${origin.node}] ${copy.tar}  (tar stream, not logged)\n`);
              const tar = await exec(origin, profile.ssh, copy.tar, undefined, {
                ...sig,
                timeoutMs: COPY_MS,
                maxOutputBytes: 64 * 1024,
                onOutput: (chunk, stream) => {
                  if (stream !== 'stdout') return;
                  bytes += chunk.length;
                  if (bytes > MAX_COPY_BYTES) throw failed(`the OpenLambda tree ${originNode.name}:${copy.source} is larger than ${MAX_COPY_BYTES} bytes, too large to pass through the worker`, []);
                  chunks.push(chunk);
                },
              });
              if (tar.exitCode !== 0) throw failed(`\`${copy.tar}\` on ${originNode.name} exited with ${tar.exitCode ?? tar.signal}`, tail(tar.stderr));
              const untar = await exec(guest, guestSettings, copy.untar, log.file, { ...sig, timeoutMs: COPY_MS, stdin: Buffer.concat(chunks, bytes) });
              if (untar.exitCode !== 0) throw failed(`copying OpenLambda into ${GUEST_OPENLAMBDA_DIR}: \`${copy.untar}\` exited with ${untar.exitCode ?? untar.signal}`, tail(untar.stderr));
              openLambda = { source: 'copied', from: `${originNode.name}:${copy.source}`, bytes };
            } else {
              const inGuest = await exec(guest, guestSettings, copy.guestCheck, log.file, sig);
              if (inGuest.exitCode !== 0 || !parsePresence(inGuest.stdout)) {
                throw failed(`OpenLambda is neither on the origin (${originNode.name}:${copy.source}/ol) nor in the guest (${GUEST_OPENLAMBDA_DIR}/ol): put the OpenLambda tree on the origin`, tail(inGuest.stderr));
              }
              openLambda = { source: 'ramdisk' };
            }
          }

          for (const command of guestSetupCommands(input.experiment, input.nodeCount)) {
            const r = await exec(guest, guestSettings, command, log.file, sig);
            if (r.exitCode !== 0) throw failed(`\`${command}\` exited with ${r.exitCode ?? r.signal}`, tail(`${r.stdout}\n${r.stderr}`));
          }

          // The servers fork their workers: wait until ps shows every process the pinning will need.
          const deadline = Date.now() + (input.timeoutSeconds ?? 120) * 1000;
          for (;;) {
            const processes = await psAux(guest, guestSettings, log, signal, 'GuestSetupFailed');
            try {
              const plan = pinningPlan(input.experiment, input.nodeCount, input.case, processes);
              const userOf = new Map(processes.map((p) => [p.pid, p.user]));
              return { processes: plan.map((p) => ({ pid: p.pid, what: p.what, user: userOf.get(p.pid) ?? '?' })), ...(openLambda ? { openLambda } : {}), log: log.relative };
            } catch (err) {
              if (!(err instanceof PinningPlanError)) throw err;
              if (Date.now() > deadline) throw failed(`the expected processes are not there ${input.timeoutSeconds ?? 120} s after the start: ${err.message}`, err.rows.length ? err.rows : ['(no nginx, php-fpm or ol process in ps aux)']);
            }
            await sleep(POLL_MS, undefined, signal ? { signal } : {});
          }
        });
      });
    },

    /**
     * `taskset -p MASK PID` for every pid of the plan (from `ps aux` now), then `taskset -p PID` for
     * each: a mask that reads back different (clipped, changed by someone else, a process gone in
     * between) is a non-retryable PinningFailed with every pin's asked and read-back mask.
     */
    async pinGuest(input: GuestRef): Promise<PinGuestResult> {
      return classified(async () => {
        checkRef(input);
        const { profile } = loadPinnedProfile(input.cluster, input.profileHash);
        const { target: guest, settings } = guestSshRoute(profile);
        const log = stepLog(input.runId, GUEST_NODE, guestStepKey(input.hypervisor ?? 'fragvisor', input.experiment, input.nodeCount, pinStepName(input.experiment, input.case)));
        const failed = (message: string, lines: string[], details: Pick<PinningFailedDetails, 'pins' | 'rows'>) =>
          ApplicationFailure.nonRetryable(`guest (${epochName(input)}): ${message}\n  ${lines.join('\n  ')}\nfull log in the run store: ${input.runId}/${log.relative}`, 'PinningFailed', {
            experiment: input.experiment,
            nodeCount: input.nodeCount,
            ...(input.case ? { case: input.case } : {}),
            ...details,
            log: log.relative,
          } satisfies PinningFailedDetails);

        return withHeartbeat(async (signal) => {
          const sig = signal ? { signal } : {};
          const processes = await psAux(guest, settings, log, signal, 'PinningFailed');
          let plan: PinRequest[];
          try {
            plan = pinningPlan(input.experiment, input.nodeCount, input.case, processes);
          } catch (err) {
            if (!(err instanceof PinningPlanError)) throw err;
            throw failed(`nothing to pin as planned: ${err.message}`, err.rows, { pins: [], rows: err.rows });
          }

          // Every mask set first, then every one read back: a later set cannot hide an earlier one that
          // did not hold. Each pass is one round trip to the guest, however many processes it pins.
          const pass = async (argvs: string[][]) => {
            const r = await exec(guest, settings, sequenceCommand(argvs), undefined, sig);
            const steps = parseSequenceOutput(r.stdout, argvs.length);
            // The log reads as if each command ran on its own, as the artifact's operator types them.
            appendFileSync(log.file, `${steps.map((step, i) => `$ ${toCommandLine(argvs[i])}\n${step.output ? `${step.output}\n` : ''}`).join('')}${r.stderr}`, { mode: 0o600 });
            return steps;
          };
          const why = (step: SequenceStep) => tail(step.output, 2).join(' ') || `exit ${step.exitCode ?? 'unknown (cut off)'}`;
          const sets = plan.map((pin) => tasksetSetArgv(pin.mask, pin.pid));
          const said = (await pass(sets)).map((r, i) => (r.exitCode === 0 ? { ok: true, text: `set (${tail(r.output, 1)[0] ?? 'no output'})` } : { ok: false, text: `\`${toCommandLine(sets[i])}\` failed: ${why(r)}` }));
          const reads = await pass(plan.map((pin) => tasksetGetArgv(pin.pid)));
          const results: PinningFailedDetails['pins'] = plan.map((pin, i) => {
            // maskHex's form is normalizeMask's, so the two compare as strings.
            const mask = maskHex(pin.mask);
            const r = reads[i];
            const readBack = r.exitCode === 0 ? readMask(r.output, pin.pid) : `unreadable: ${why(r)}`;
            return { pid: pin.pid, what: pin.what, mask, set: said[i].text, readBack, ok: said[i].ok && readBack === mask };
          });

          const bad = results.filter((p) => !p.ok);
          if (bad.length) {
            const lines = results.map((p) => `${p.ok ? 'ok      ' : 'MISMATCH'} ${p.what} (pid ${p.pid}): asked ${p.mask}, read back ${p.readBack}${p.ok ? '' : `; ${p.set}`}`);
            throw failed(`the pinning did not hold for ${bad.length} of ${results.length} process(es) (asked vs read back):`, lines, { pins: results, rows: serverRows(processes) });
          }
          return { pins: results.map(({ pid, what, mask, readBack }) => ({ pid, what, mask, readBack })), log: log.relative };
        });
      });
    },
  };
}
