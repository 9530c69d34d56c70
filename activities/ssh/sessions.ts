/**
 * Session slots of one SSH connection. sshd caps the sessions (exec channels) open at once on one
 * connection (OpenSSH's MaxSessions, 10 by default) and refuses the next with "open failed", so the
 * pool's commands to one node take a slot first and the ones beyond the limit wait their turn, first
 * come first served. One of the server's sessions is left for killing a timed-out command's processes
 * (killGroup.ts, where kills take turns on it), which has to open a channel while that command still
 * holds its own.
 */
export class SessionSlots {
  private limit: number;
  private inUse = 0;
  private readonly waiting: Array<{ grant: () => void }> = [];

  /** `maxSessions`: what the server allows. */
  constructor(maxSessions: number) {
    this.limit = commandsFor(maxSessions);
  }

  /** Commands that may run at once. */
  get capacity(): number {
    return this.limit;
  }

  /** Commands running now. */
  get busy(): number {
    return this.inUse;
  }

  /** Waits for a slot; resolves with its release (call it once), or rejects with the signal's reason. */
  acquire(signal: AbortSignal): Promise<() => void> {
    if (signal.aborted) return Promise.reject(signal.reason as Error);
    if (this.inUse < this.limit && this.waiting.length === 0) return Promise.resolve(this.take());
    return new Promise((resolve, reject) => {
      const entry = {
        grant: () => {
          signal.removeEventListener('abort', onAbort);
          resolve(this.take());
        },
      };
      const onAbort = () => {
        const i = this.waiting.indexOf(entry);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(signal.reason as Error);
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  /**
   * The server refused a session while `open` sessions of ours were open: its limit is lower than the
   * profile says. From now on this connection runs that many commands at once, less the kill's.
   */
  serverRefusedAt(open: number): void {
    this.limit = Math.min(this.limit, commandsFor(open));
    this.grantNext();
  }

  private take(): () => void {
    this.inUse++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse--;
      this.grantNext();
    };
  }

  private grantNext(): void {
    while (this.inUse < this.limit && this.waiting.length > 0) this.waiting.shift()!.grant();
  }
}

/** Commands a server allowing `maxSessions` can take at once: one session is left for a kill (at least one command). */
function commandsFor(maxSessions: number): number {
  return Math.max(1, maxSessions - 1);
}
