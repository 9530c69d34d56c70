import { createHash } from 'node:crypto';
import { shellQuote, toCommandLine } from '../../workflows/commands/quote';
import { InvalidRemoteJobSpecError } from './errors';
import type { RemoteJobSpec } from './types';

/**
 * The pure half of remote jobs: the remote scripts (constant bash texts; every value reaches them as
 * a quoted positional argument, never spliced into the text) and the parsers of what they print.
 *
 * On the node a job is `~/.fragvisor-ae/jobs/<key>/`: `cmd` (the command line), `stdin` (if any),
 * `pid` (the job's session leader = its process group), `boot_id` and `start` (ms) written at the
 * start, `log` (stdout+stderr), then `end` (ms) and `rc` (exit status, or `killed:<why>`), each
 * written by rename so a reader never sees half of one. `lock` serialises starters and killers (flock).
 */

export const KEY_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;

/** A key names a folder on the node and a file in the run store, which refuses `..`. */
export function isValidKey(key: string): boolean {
  return KEY_PATTERN.test(key) && !key.includes('..');
}

const PLAIN_PART = /^[A-Za-z0-9_-]+$/;

/**
 * A stable key from parts, e.g. `remoteJobKey(runId, 'kernel-build')` -> `run-17.kernel-build`. Parts
 * that are already plain words are joined with `.` as they are (so keys stay readable and distinct
 * parts give distinct keys); anything else is sanitised and the result gets a hash of the exact parts,
 * so two different inputs never share a key. Always at most 128 characters.
 */
export function remoteJobKey(...parts: string[]): string {
  if (parts.length === 0) throw new TypeError('remoteJobKey: give at least one part');
  const joined = parts.map((p) => p.replace(/[^A-Za-z0-9_-]+/g, '-')).join('.');
  if (parts.every((p) => PLAIN_PART.test(p)) && isValidKey(joined)) return joined;
  const hash = createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 12);
  const readable = joined
    .replace(/\.{2,}/g, '.')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 128 - hash.length - 1)
    .replace(/[^A-Za-z0-9]+$/, '');
  return readable ? `${readable}-${hash}` : hash;
}

const SAFE_PATH = /^\/[A-Za-z0-9_.\/@+:,=-]*$/;

/** A spec is code, not data from outside: a bad one is a bug that no retry heals. */
export function validateSpec(spec: RemoteJobSpec): void {
  const bad = (what: string) => new InvalidRemoteJobSpecError(`remote job ${JSON.stringify(spec.key)}: ${what}`, spec.key);
  if (!isValidKey(spec.key)) throw bad('key must match [A-Za-z0-9][A-Za-z0-9_.-]* (at most 128, no "..")');
  if (spec.argv.length === 0 || spec.argv[0] === '') throw bad('argv must name a command');
  if (spec.argv.some((a) => a.includes('\0'))) throw bad('argv cannot contain NUL bytes');
  if (spec.cwd !== undefined && (!SAFE_PATH.test(spec.cwd) || spec.cwd.split('/').includes('..'))) throw bad(`cwd ${JSON.stringify(spec.cwd)} must be an absolute path of safe characters`);
}

/** What the job runs (the `cmd` file): `cd <cwd> && exec [sudo -n --] argv...`. */
export function jobCommandLine(spec: RemoteJobSpec): string {
  // `sudo -n` fails at once instead of prompting: nobody is there to type a password.
  const run = `exec ${toCommandLine(spec.sudo ? ['sudo', '-n', '--', ...spec.argv] : spec.argv)}`;
  return spec.cwd === undefined ? run : `cd ${shellQuote(spec.cwd)} && ${run}`;
}

/** Shared by every script: the job dir, its state, the header line. $1 is always the key. */
const PRELUDE = `
set -u
key=$1
d=$HOME/.fragvisor-ae/jobs/$key
# A job file (its first 64 bytes, only characters a stamp, pid, boot id or exit status holds); "-" if absent.
field() { local v; v=$(head -c 64 "$1" 2>/dev/null | tr -cd 'A-Za-z0-9:._-'); [ -n "$v" ] || v=-; printf '%s' "$v"; }
# s = state (none|running|finished|killed|lost), r = why it is lost; in the job dir.
job_state() {
  r=-
  if [ -e rc ]; then case $(field rc) in killed*) s=killed ;; *) s=finished ;; esac; return; fi
  if [ ! -e start ]; then s=none; return; fi
  if [ "$(field boot_id)" != "$(field /proc/sys/kernel/random/boot_id)" ]; then s=lost r=rebooted; return; fi
  case $(ps -o stat= -p "$(field pid)" 2>/dev/null) in '' | Z*) ;; *) s=running; return ;; esac
  # It may have written rc and exited between the two looks.
  if [ -e rc ]; then job_state; return; fi
  s=lost r=vanished
}
header() {
  printf 'AE-JOB action=%s state=%s reason=%s size=%s rc=%s start=%s end=%s now=%s\n' "$1" "$s" "$r" \
    "$(stat -c %s log 2>/dev/null || echo 0)" "$(field rc)" "$(field start)" "$(field end)" "$(date +%s%3N)"
}
missing() {
  printf 'AE-JOB action=%s state=missing reason=- size=0 rc=- start=- end=- now=%s\n' "$1" "$(date +%s%3N)"
  exit 0
}
`;

/**
 * Start (idempotent): under an exclusive lock, attach to a job that is running or finished (or lost,
 * unless told to restart it); otherwise start it detached: `setsid` puts it in its own session, so
 * the SSH session that starts it can end (or drop) without taking it along. A job killed by a cancel
 * or timeout is never a result: the next start runs it afresh. The lock's fd is closed for the job.
 * When it starts a job it also clears out old job folders (see JOB_FOLDER_RETENTION_DAYS).
 * Args: key, command line, has-stdin (0|1, the bytes come on our stdin), restart-lost (0|1), retention (minutes).
 */
const START = `${PRELUDE}
cmdline=$2 has_stdin=$3 restart_lost=$4 keep_minutes=$5
mkdir -p "$d" && cd "$d" || exit 3
exec 9>>lock
flock -w 60 9 || { echo "cannot lock $d/lock within 60 s" >&2; exit 4; }
job_state
action=attached
if [ "$s" = none ] || [ "$s" = killed ] || { [ "$s" = lost ] && [ "$restart_lost" = 1 ]; }; then
  rm -f rc end pid boot_id start log stdin cmd
  printf '%s\\n' "$cmdline" > cmd
  in=/dev/null
  if [ "$has_stdin" = 1 ]; then cat > stdin || exit 3; in=stdin; fi
  cat /proc/sys/kernel/random/boot_id > boot_id
  date +%s%3N > start
  : > log
  # A background job of a non-interactive shell is no process group leader, so setsid does not fork:
  # $! is the job's session leader, whose pid is its process group.
  setsid bash -c 'bash ./cmd < "$1" >> log 2>&1; rc=$?; date +%s%3N > end.tmp && mv -f end.tmp end; echo "$rc" > rc.tmp && mv -f rc.tmp rc' \\
    ae-remote-job "$in" < /dev/null > /dev/null 2>&1 9>&- &
  echo "$!" > pid
  action=started
  job_state
fi
header "$action"
if [ "$action" = started ]; then
  find "$HOME/.fragvisor-ae/jobs" -mindepth 1 -maxdepth 1 -type d -mmin +"$keep_minutes" -print0 2>/dev/null |
    while IFS= read -r -d '' old; do
      ( cd "$old" && exec 8>>lock && flock -n 8 && job_state && [ "$s" != running ] && rm -rf -- "$old" ) > /dev/null 2>&1
    done
fi
# The header is out: a folder left alone above is no failure of this start.
exit 0
`;

/** Poll: the header, then the log's bytes from an offset (at most a cap), under a shared lock. Args: key, offset, cap. */
const POLL = `${PRELUDE}
offset=$2 cap=$3
[ -d "$d" ] || missing poll
cd "$d" && exec 9>>lock && flock -s -w 60 9 || exit 4
job_state
header poll
tail -c +"$((offset + 1))" log 2>/dev/null | head -c "$cap"
`;

/**
 * Kill: TERM to the job's process group, a grace period, KILL, wait until the group is gone, then
 * record `rc` = killed:<why> (unless the job ended by itself meanwhile). A sudo job's group holds
 * root processes the node user cannot signal, so it is signalled through `sudo -n kill` first
 * (sudo also relays the TERM to its command when that runs on a pty of its own).
 * Args: key, why (cancelled|timeout), grace (tenths of a second), sudo (0|1).
 */
const KILL = `${PRELUDE}
why=$2 grace=$3 use_sudo=$4
[ -d "$d" ] || missing none
cd "$d" && exec 9>>lock && flock -w 60 9 || exit 4
job_state
action=none
if [ "$s" = running ]; then
  pg=$(field pid)
  sig() {
    if [ "$use_sudo" = 1 ] && sudo -n kill -s "$1" -- "-$pg" 2>/dev/null; then return; fi
    kill -s "$1" -- "-$pg" 2>/dev/null
  }
  # Zombies waiting for a reaper still carry the group id; they are dead already.
  alive() { ps -e -o pgid=,stat= | awk -v g="$pg" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'; }
  sig TERM
  i=0; while alive && [ "$i" -lt "$grace" ]; do sleep 0.1; i=$((i + 1)); done
  sig KILL
  i=0; while alive && [ "$i" -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
  if [ ! -e rc ]; then
    date +%s%3N > end.tmp && mv -f end.tmp end
    echo "killed:$why" > rc.tmp && mv -f rc.tmp rc
  fi
  action=killed
  job_state
fi
header "$action"
`;

const SCRIPT_NAME = 'ae-remote-job';

/**
 * A job folder on a node (its log can be a 100 MiB kernel build's) is kept this long after it last
 * changed, then the next job started on that node removes it, unless the job still runs or its lock
 * is held: by then its log is in the run store, and no resume reattaches to it (a resumed run has
 * new job keys). Without this, a cluster that CI re-checks on every commit fills its disks.
 */
export const JOB_FOLDER_RETENTION_DAYS = 7;

export function startCommand(spec: RemoteJobSpec): string {
  const keepMinutes = String(JOB_FOLDER_RETENTION_DAYS * 24 * 60);
  return toCommandLine(['bash', '-c', START, SCRIPT_NAME, spec.key, jobCommandLine(spec), spec.stdin === undefined ? '0' : '1', spec.restartLost ? '1' : '0', keepMinutes]);
}

export function pollCommand(key: string, offset: number, cap: number): string {
  return toCommandLine(['bash', '-c', POLL, SCRIPT_NAME, key, String(offset), String(cap)]);
}

export type KillReason = 'cancelled' | 'timeout';

export function killCommand(key: string, why: KillReason, graceMs: number, sudo: boolean): string {
  return toCommandLine(['bash', '-c', KILL, SCRIPT_NAME, key, why, String(Math.max(0, Math.round(graceMs / 100))), sudo ? '1' : '0']);
}

export type JobState = 'none' | 'running' | 'finished' | 'killed' | 'lost' | 'missing';
export type JobAction = 'started' | 'attached' | 'poll' | 'killed' | 'none';

/** The first line every script prints. */
export interface JobHeader {
  action: JobAction;
  state: JobState;
  /** Why a job is lost: `rebooted` (started in an earlier boot), `vanished` (gone without an exit status). */
  reason?: string;
  /** Size of the log on the node. */
  size: number;
  /** The exit status, when the job ended by itself. */
  exitCode?: number;
  /** `rc` when the job was killed: `killed:cancelled`, `killed:timeout`. */
  killed?: string;
  startMs?: number;
  endMs?: number;
  /** The node's clock when it answered. */
  nowMs: number;
}

const ACTIONS: readonly JobAction[] = ['started', 'attached', 'poll', 'killed', 'none'];
const STATES: readonly JobState[] = ['none', 'running', 'finished', 'killed', 'lost', 'missing'];
const HEADER = /^AE-JOB action=(\S+) state=(\S+) reason=(\S+) size=(\d+) rc=(\S+) start=(\S+) end=(\S+) now=(\d+)$/;

export class JobOutputError extends Error {
  override readonly name = 'JobOutputError';
}

const stamp = (v: string): number | undefined => (/^\d{1,16}$/.test(v) ? Number(v) : undefined);

export function parseHeader(line: string): JobHeader {
  const m = HEADER.exec(line);
  const action = m?.[1] as JobAction;
  const state = m?.[2] as JobState;
  if (!m || !ACTIONS.includes(action) || !STATES.includes(state)) throw new JobOutputError(`unexpected remote job header: ${JSON.stringify(line.slice(0, 200))}`);
  const [, , , reason, size, rc, start, end, now] = m;
  const h: JobHeader = { action, state, size: Number(size), nowMs: Number(now) };
  if (reason !== '-') h.reason = reason;
  if (/^\d{1,3}$/.test(rc)) h.exitCode = Number(rc);
  else if (rc.startsWith('killed')) h.killed = rc;
  const startMs = stamp(start);
  const endMs = stamp(end);
  if (startMs !== undefined) h.startMs = startMs;
  if (endMs !== undefined) h.endMs = endMs;
  return h;
}

/** A header line is short; this much without a newline means the output is not ours. */
const MAX_HEADER = 1024;

/**
 * Splits a script's stdout, as it streams in, into the header line and the raw log bytes after it.
 * Chunks may cut anywhere (in the header, right after its newline); data is passed through as is.
 */
export class JobOutputReader {
  header: JobHeader | undefined;
  private head: Buffer = Buffer.alloc(0);

  /** Feeds one chunk; returns the log bytes it carried (empty while the header is incomplete). */
  push(chunk: Buffer): Buffer {
    if (this.header) return chunk;
    const head = Buffer.concat([this.head, chunk]);
    const nl = head.indexOf(10);
    if (nl < 0) {
      if (head.length > MAX_HEADER) throw new JobOutputError(`no remote job header in the first ${MAX_HEADER} bytes of output`);
      this.head = head;
      return Buffer.alloc(0);
    }
    this.header = parseHeader(head.subarray(0, nl).toString('latin1'));
    this.head = Buffer.alloc(0);
    return head.subarray(nl + 1);
  }
}

/** Keeps the last complete line of a byte stream (bounded), for progress reports. */
export class LastLine {
  line: string | undefined;
  private partial: Buffer = Buffer.alloc(0);
  private static readonly MAX = 512;

  push(chunk: Buffer): void {
    const nl = chunk.lastIndexOf(10);
    if (nl < 0) {
      this.partial = Buffer.concat([this.partial, chunk]).subarray(-LastLine.MAX);
      return;
    }
    // The last non-blank complete line, scanning back from the chunk's last newline (blank lines say nothing).
    for (let end = nl; ; ) {
      const prev = end > 0 ? chunk.lastIndexOf(10, end - 1) : -1;
      const text = prev < 0 ? Buffer.concat([this.partial, chunk.subarray(0, end)]) : chunk.subarray(prev + 1, end);
      const line = text.subarray(-LastLine.MAX).toString('utf8').trimEnd();
      if (line !== '') {
        this.line = line;
        break;
      }
      if (prev < 0) break;
      end = prev;
    }
    this.partial = chunk.subarray(nl + 1).subarray(-LastLine.MAX);
  }
}

/** The last lines of a log's end (at most `maxLines`), without the empty string after a final newline. */
export function tailLines(text: string, maxLines = 40): string[] {
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  return lines.slice(-maxLines).map((l) => l.replace(/\r$/, ''));
}

const SUDO_PROMPT = /^sudo: (?:a password is required|a terminal is required|no tty present)/m;

/** True when a failed sudo job failed because sudo wanted a password (what `sudo -n` says then). */
export function isSudoPasswordFailure(spec: Pick<RemoteJobSpec, 'sudo'>, exitCode: number, tail: readonly string[]): boolean {
  return spec.sudo === true && exitCode !== 0 && SUDO_PROMPT.test(tail.join('\n'));
}

/** The resume offset an earlier attempt left in its heartbeat details, if they are about this job. */
export function resumeOffsetFrom(details: unknown, key: string): number | undefined {
  if (typeof details !== 'object' || details === null) return undefined;
  const { key: k, offset } = details as { key?: unknown; offset?: unknown };
  return k === key && typeof offset === 'number' && Number.isSafeInteger(offset) && offset >= 0 ? offset : undefined;
}
