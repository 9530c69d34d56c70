import fs from 'node:fs';

/** Output handling for one command: a bounded in-memory copy per stream and an optional full log file. */

/** Keeps the first `limit` bytes of a stream and remembers whether more arrived. */
export class CappedBuffer {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;
  constructor(private readonly limit: number) {}

  push(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.size += kept.length;
  }

  toString(): string {
    return Buffer.concat(this.chunks, this.size).toString('utf8');
  }
}

/**
 * Appends everything to a file. `write()` returns false when the file is behind; the caller then
 * pauses the SSH channel until 'drain' (back-pressure reaches the server through the SSH window).
 * Mode 0600: command output can hold anything.
 */
export class LogSink {
  private readonly out: fs.WriteStream;
  error: Error | undefined;
  private readonly onErrorListeners = new Set<(err: Error) => void>();

  constructor(file: string) {
    this.out = fs.createWriteStream(file, { flags: 'a', mode: 0o600 });
    this.out.on('error', (err) => {
      this.error ??= err;
      for (const l of this.onErrorListeners) l(err);
    });
  }

  write(chunk: Buffer): boolean {
    return this.error ? true : this.out.write(chunk);
  }

  onDrain(cb: () => void): void {
    this.out.once('drain', cb);
  }

  onError(cb: (err: Error) => void): void {
    this.onErrorListeners.add(cb);
  }

  /** Flushes and closes; resolves even after a write error (which is reported through `error`). */
  close(): Promise<void> {
    return new Promise((resolve) => {
      if (this.out.destroyed || this.error) {
        resolve();
        return;
      }
      this.out.end(() => resolve());
      this.out.once('error', () => resolve());
    });
  }
}
