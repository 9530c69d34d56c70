import { open, type FileHandle } from 'node:fs/promises';
import type { SshSettings } from '../../config/schema';
import { activityContext } from '../heartbeat';
import { stepLog } from '../runStore';
import { SshCommandAbortedError, SshCommandTimeoutError, SshConnectionLostError } from '../ssh/errors';
import type { ExecOptions, SshPool, SshTarget } from '../ssh/pool';
import { InvalidRemoteJobSpecError, RemoteJobLostError, RemoteJobTimeoutError, SudoPasswordRequiredError } from './errors';
import {
  isSudoPasswordFailure,
  isValidKey,
  JobOutputReader,
  killCommand,
  LastLine,
  pollCommand,
  resumeOffsetFrom,
  startCommand,
  tailLines,
  validateSpec,
  type JobHeader,
  type JobState,
  type KillReason,
} from './scripts';
import type { RemoteJobResult, RemoteJobSpec } from './types';

export { remoteJobKey } from './scripts';
export { InvalidRemoteJobSpecError, RemoteJobLostError, RemoteJobTimeoutError, SudoPasswordRequiredError } from './errors';
export type { RemoteJobResult, RemoteJobSpec } from './types';
export type { JobState } from './scripts';

/**
 * Remote jobs (see types.ts): start once under a key, follow the log into the run store over the
 * pooled connection, one SSH round trip per poll, and reattach after a drop or a retry.
 */

export interface RemoteJobProgress {
  /** Log bytes copied to the run store so far (what a retry passes back as resumeOffset). */
  offset: number;
  lastLine?: string;
}

export interface RemoteJobOptions {
  /** Run-store folder; the log lands in runs/<runId>/logs/<node>/<key>.log. */
  runId: string;
  node: string;
  /** For the whole job, counted from its start on the node (a reattaching call does not restart the clock). */
  timeoutMs: number;
  /** Cancellation: the job's process group on the node is killed, then the signal's reason is thrown. */
  signal?: AbortSignal;
  /**
   * Whether an abort means "kill the job" (default: always). An activity aborted because its worker
   * shuts down or its attempt timed out must leave the job running, for the next attempt to reattach.
   */
  killOnAbort?: () => boolean;
  pollMs?: number;
  /** After each poll (callers heartbeat with it). */
  onProgress?: (p: RemoteJobProgress) => void;
  /** Log bytes an earlier attempt already copied (its last progress offset). */
  resumeOffset?: number;
}

const DEFAULT_POLL_MS = 1000;
/**
 * Log bytes per poll at most: memory stays bounded whatever the log's size; more pending = poll
 * again at once. Each poll holds its bytes twice (chunks, then one buffer), per node in parallel:
 * 1 MiB keeps 4 nodes streaming 100 MiB build logs within a few MiB of the idle worker, at about 1 s
 * of extra round trips per 100 MiB.
 */
const POLL_CAP = 1024 * 1024;
/** A poll is one quick round trip; this long without an answer means a dead link. */
const POLL_TIMEOUT_MS = 60_000;
const START_TIMEOUT_MS = 90_000;
/** Between TERM and KILL: long enough for make to stop its children. */
const KILL_GRACE_MS = 3000;
const TAIL_BYTES = 4096;

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason as Error);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason as Error);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The last lines of the local log copy (a partial first line of the window is dropped). */
async function readTail(fh: FileHandle, size: number): Promise<string[]> {
  const from = Math.max(0, size - TAIL_BYTES);
  const buf = Buffer.alloc(size - from);
  const { bytesRead } = await fh.read(buf, 0, buf.length, from);
  let text = buf.subarray(0, bytesRead).toString('utf8');
  if (from > 0) text = text.slice(text.indexOf('\n') + 1);
  return tailLines(text);
}

/** Runs one job script over the pool: its header, and the log bytes after it (at most POLL_CAP, so bounded). */
async function runScript(
  ssh: SshPool,
  target: SshTarget,
  settings: SshSettings,
  key: string,
  what: string,
  command: string,
  o: Pick<ExecOptions, 'timeoutMs' | 'signal' | 'stdin'>,
): Promise<{ header: JobHeader; data: Buffer }> {
  const reader = new JobOutputReader();
  const chunks: Buffer[] = [];
  const r = await ssh.exec(target, settings, command, {
    ...o,
    maxOutputBytes: 64 * 1024,
    onOutput: (chunk, stream) => {
      if (stream !== 'stdout') return;
      const data = reader.push(chunk);
      if (data.length > 0) chunks.push(data);
    },
  });
  if (r.exitCode !== 0 || !reader.header) {
    throw new Error(`node ${target.node}: remote job ${key}: the ${what} script exited with ${r.exitCode ?? r.signal}: ${r.stderr.trim().slice(0, 500) || 'no output'}`);
  }
  return { header: reader.header, data: Buffer.concat(chunks) };
}

/** One poll: the header and the log bytes from `offset` (at most POLL_CAP). */
function pollScript(ssh: SshPool, target: SshTarget, settings: SshSettings, key: string, offset: number, signal?: AbortSignal): Promise<{ header: JobHeader; data: Buffer }> {
  return runScript(ssh, target, settings, key, 'poll', pollCommand(key, offset, POLL_CAP), { timeoutMs: POLL_TIMEOUT_MS, ...(signal ? { signal } : {}) }).catch((err: unknown) => {
    // The pool calls a timeout non-retryable (the same command may time out again); for a poll it means a dead link.
    if (err instanceof SshCommandTimeoutError) throw new SshConnectionLostError(`node ${target.node}: remote job ${key}: a poll got no answer within ${POLL_TIMEOUT_MS} ms`, target.node, true);
    throw err;
  });
}

function startScript(ssh: SshPool, target: SshTarget, settings: SshSettings, spec: RemoteJobSpec, signal?: AbortSignal): Promise<{ header: JobHeader; data: Buffer }> {
  return runScript(ssh, target, settings, spec.key, 'start', startCommand(spec), { timeoutMs: START_TIMEOUT_MS, ...(signal ? { signal } : {}), ...(spec.stdin !== undefined ? { stdin: spec.stdin } : {}) });
}

function killScript(ssh: SshPool, target: SshTarget, settings: SshSettings, key: string, why: KillReason, sudo: boolean): Promise<{ header: JobHeader; data: Buffer }> {
  return runScript(ssh, target, settings, key, 'kill', killCommand(key, why, KILL_GRACE_MS, sudo), { timeoutMs: KILL_GRACE_MS + 30_000 });
}

export async function runRemoteJob(ssh: SshPool, target: SshTarget, settings: SshSettings, spec: RemoteJobSpec, opts: RemoteJobOptions): Promise<RemoteJobResult> {
  validateSpec(spec);
  const { signal } = opts;
  const { node } = target;
  const { key } = spec;
  if (signal?.aborted) throw signal.reason instanceof Error ? signal.reason : new SshCommandAbortedError(node);
  const log = stepLog(opts.runId, opts.node, key);
  const kill = (why: KillReason) => killScript(ssh, target, settings, key, why, spec.sudo === true);
  const poll = (offset: number) => pollScript(ssh, target, settings, key, offset, signal);

  let fh: FileHandle | undefined;
  try {
    const started = await startScript(ssh, target, settings, spec, signal);
    const reattached = started.header.action === 'attached';
    fh = await open(log.file, 'a+', 0o600);
    // Keep exactly the bytes known to be copied (a fresh start has none): nothing duplicated, nothing lost.
    let offset = reattached ? Math.min(opts.resumeOffset ?? 0, (await fh.stat()).size) : 0;
    await fh.truncate(offset);
    const lastLine = new LastLine();
    let header = started.header;
    let timedOut = false;
    for (;;) {
      const polled = await poll(offset);
      header = polled.header;
      if (polled.data.length > 0) {
        await fh.write(polled.data); // appends: the file ends at `offset`
        offset += polled.data.length;
        lastLine.push(polled.data);
      }
      opts.onProgress?.({ offset, ...(lastLine.line !== undefined ? { lastLine: lastLine.line } : {}) });
      if (header.state !== 'running') {
        if (offset >= header.size || polled.data.length === 0) break;
        continue; // ended: copy the rest at once
      }
      if (header.startMs !== undefined && header.nowMs - header.startMs > opts.timeoutMs) {
        timedOut = (await kill('timeout')).header.action === 'killed';
        continue;
      }
      if (polled.data.length < POLL_CAP) await sleep(opts.pollMs ?? DEFAULT_POLL_MS, signal);
    }

    const tail = await readTail(fh, offset);
    const facts = { node, key, tail, logBytes: offset };
    if (timedOut) throw new RemoteJobTimeoutError(facts, opts.timeoutMs);
    if (header.state !== 'finished' || header.exitCode === undefined) {
      throw new RemoteJobLostError(facts, header.killed ?? header.reason ?? 'missing');
    }
    if (isSudoPasswordFailure(spec, header.exitCode, tail)) throw new SudoPasswordRequiredError(facts, spec.argv[0], target.user);
    return {
      key,
      exitCode: header.exitCode,
      log: log.relative,
      logBytes: offset,
      tail,
      reattached,
      durationMs: header.startMs !== undefined && header.endMs !== undefined ? header.endMs - header.startMs : 0,
    };
  } catch (err) {
    if (signal?.aborted) {
      // Best effort: the cancellation is reported whatever happens to the kill.
      if (opts.killOnAbort?.() ?? true) await kill('cancelled').catch(() => undefined);
      throw signal.reason instanceof Error ? signal.reason : new SshCommandAbortedError(node);
    }
    throw err;
  } finally {
    await fh?.close();
  }
}

/**
 * runRemoteJob for activity bodies: resumes from the offset the previous attempt heartbeated (when
 * it was following this same key), heartbeats `{ key, offset, lastLine }` after every poll, and is
 * cancelled with the activity. Outside an activity it simply runs the job (no heartbeats).
 */
export function followRemoteJob(
  ssh: SshPool,
  target: SshTarget,
  settings: SshSettings,
  spec: RemoteJobSpec,
  opts: Pick<RemoteJobOptions, 'runId' | 'node' | 'timeoutMs' | 'pollMs'>,
): Promise<RemoteJobResult> {
  const ctx = activityContext();
  if (!ctx) return runRemoteJob(ssh, target, settings, spec, opts);
  const resumeOffset = resumeOffsetFrom(ctx.info.heartbeatDetails, spec.key);
  // Keep the previous offset in the details until this attempt has made progress of its own.
  ctx.heartbeat({ key: spec.key, offset: resumeOffset ?? 0 });
  return runRemoteJob(ssh, target, settings, spec, {
    ...opts,
    signal: ctx.cancellationSignal,
    // Only a cancellation the workflow asked for kills the job; a worker shutdown or a timed-out attempt leaves it to the retry.
    killOnAbort: () => ctx.cancellationDetails?.cancelRequested === true,
    onProgress: (p) => ctx.heartbeat({ key: spec.key, ...p }),
    ...(resumeOffset !== undefined ? { resumeOffset } : {}),
  });
}

// ---- Jobs that outlive the activity that starts them (a VM runs through many activities) ----

/**
 * The idempotent start alone: same key = same job. A running, finished or lost job is attached to (a
 * lost one is started afresh only with spec.restartLost); a killed one starts afresh, as in runRemoteJob.
 */
export async function startRemoteJob(ssh: SshPool, target: SshTarget, settings: SshSettings, spec: RemoteJobSpec, opts: { signal?: AbortSignal } = {}): Promise<{ key: string; reattached: boolean }> {
  validateSpec(spec);
  const { header } = await startScript(ssh, target, settings, spec, opts.signal);
  return { key: spec.key, reattached: header.action === 'attached' };
}

export interface ReadRemoteJobOptions {
  /** Run-store folder; the log copy is runs/<runId>/logs/<node>/<key>.log, as for runRemoteJob. */
  runId: string;
  node: string;
  key: string;
  /** Log bytes already copied (what the previous read returned); 0 copies the log afresh. */
  offset: number;
  signal?: AbortSignal;
}

export interface RemoteJobRead {
  /** `missing`: no job under this key on the node. */
  state: JobState;
  /** When it ended by itself. */
  exitCode?: number;
  /** Why it has no exit code: `killed:<why>`, or why it is lost (`rebooted`, `vanished`). */
  reason?: string;
  /** Log bytes in the run-store copy now: the next read's offset. */
  offset: number;
  /** Last lines of the copy (at most ~40 lines / 4 KiB). */
  tail: string[];
  /** The copy, relative to the run folder. */
  log: string;
  /** The job's start and this answer, on the node's clock (ms). */
  startMs?: number;
  nowMs: number;
}

/**
 * One look at a job: its state, and the log bytes after `offset` appended to the run-store copy (all
 * of them, a poll's cap at a time). The copy is cut to `offset` first, so a repeated read never doubles bytes.
 */
export async function readRemoteJob(ssh: SshPool, target: SshTarget, settings: SshSettings, opts: ReadRemoteJobOptions): Promise<RemoteJobRead> {
  if (!isValidKey(opts.key)) throw new InvalidRemoteJobSpecError(`remote job ${JSON.stringify(opts.key)}: not a valid key`, opts.key);
  const log = stepLog(opts.runId, opts.node, opts.key);
  const fh = await open(log.file, 'a+', 0o600);
  try {
    let offset = Math.min(Math.max(0, opts.offset), (await fh.stat()).size);
    await fh.truncate(offset);
    for (;;) {
      const { header, data } = await pollScript(ssh, target, settings, opts.key, offset, opts.signal);
      if (data.length > 0) {
        await fh.write(data);
        offset += data.length;
      }
      if (data.length === POLL_CAP) continue; // more is pending
      const reason = header.killed ?? header.reason;
      return {
        state: header.state,
        ...(header.exitCode !== undefined ? { exitCode: header.exitCode } : {}),
        ...(reason !== undefined ? { reason } : {}),
        offset,
        tail: await readTail(fh, offset),
        log: log.relative,
        ...(header.startMs !== undefined ? { startMs: header.startMs } : {}),
        nowMs: header.nowMs,
      };
    }
  } finally {
    await fh.close();
  }
}

/**
 * Kills a job's process group (TERM, a grace period, KILL; through `sudo -n kill` for a sudo job) and
 * returns once the group is gone. Idempotent: a job that is not running (or not there) is left as it is.
 * `killed`: this call killed it.
 */
export async function killRemoteJob(ssh: SshPool, target: SshTarget, settings: SshSettings, opts: { key: string; sudo: boolean }): Promise<{ state: JobState; killed: boolean }> {
  if (!isValidKey(opts.key)) throw new InvalidRemoteJobSpecError(`remote job ${JSON.stringify(opts.key)}: not a valid key`, opts.key);
  const { header } = await killScript(ssh, target, settings, opts.key, 'cancelled', opts.sudo);
  return { state: header.state, killed: header.action === 'killed' };
}
