import type { Link } from './connect';

/**
 * Killing a remote command on timeout or abort. The SSH `signal` request is the clean way, but OpenSSH
 * honours it only under privilege separation, which sshd skips for root logins ("session signalling
 * requires privilege separation"), and the cluster is driven as root. So every command first reports
 * its process group on stderr in one marker line (stripped before anyone sees stderr); to kill, we run
 * `kill -KILL -- -<pgid>` on a second channel. sshd starts each command in a new session, so the
 * group holds the command and its children (unless they start sessions of their own).
 */

const MARKER = 'AE-PGID:';
const MARKER_LINE = /^AE-PGID:(\d{1,10})$/;
/** Longer than any marker line: past this, stderr did not start with one (non-POSIX login shell). */
const MAX_HEAD = 32;

/** The command line actually sent: a POSIX `printf` of `$$` (the session leader's pid = its pgid) first. */
export function withGroupMarker(command: string): string {
  return `printf '${MARKER}%s\\n' "$$" >&2; ${command}`;
}

/** Takes the marker line off the front of stderr and remembers the process group it names. */
export class ProcessGroupMarker {
  pgid: number | undefined;
  private head: Buffer | undefined = Buffer.alloc(0);

  /** Feed each stderr chunk; returns what belongs to the command's own stderr. */
  take(chunk: Buffer): Buffer {
    if (this.head === undefined) return chunk;
    const head = Buffer.concat([this.head, chunk]);
    const nl = head.indexOf(10);
    if (nl < 0 && head.length < MAX_HEAD) {
      this.head = head;
      return Buffer.alloc(0);
    }
    this.head = undefined;
    const m = nl < 0 ? null : MARKER_LINE.exec(head.subarray(0, nl).toString('latin1'));
    if (!m) return head;
    this.pgid = Number(m[1]);
    return head.subarray(nl + 1);
  }

  /** At stderr's end: anything still held back was the command's. */
  flush(): Buffer {
    const rest = this.head ?? Buffer.alloc(0);
    this.head = undefined;
    return MARKER_LINE.test(rest.toString('latin1')) ? Buffer.alloc(0) : rest;
  }
}

/** The last kill queued on each connection: they take turns on the one session the pool keeps free for them (sessions.ts). */
const lastKill = new WeakMap<Link, Promise<void>>();

/** Best effort: KILL the process group from a second channel, after any kill before it on this connection; resolves when done or after 2 s. */
export function remoteKillGroup(link: Link, pgid: number): Promise<void> {
  // pgid 1 or our own would be a disaster; a real command's group is always a larger number.
  if (!Number.isSafeInteger(pgid) || pgid <= 1) return Promise.resolve();
  const kill = (lastKill.get(link) ?? Promise.resolve()).then(() => killOnce(link, pgid));
  lastKill.set(link, kill);
  return kill;
}

function killOnce(link: Link, pgid: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, 2000);
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    try {
      link.client.exec(`kill -KILL -- -${pgid}`, (err, ch) => {
        if (err) return done();
        ch.on('close', done);
        ch.resume();
        ch.stderr.resume();
        ch.end();
      });
    } catch {
      done();
    }
  });
}
