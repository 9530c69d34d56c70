import type { ClientChannel } from 'ssh2';
import type { Link } from './connect';
import { SshConnectError, SshConnectionLostError } from './errors';
import { CappedBuffer, LogSink } from './output';
import { ProcessGroupMarker, remoteKillGroup, withGroupMarker } from './killGroup';

/** Runs one command on an open connection: output capture, log file, exit status, kill on abort. */

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit status; null when the command died of a signal (see `signal`) or the server sent none. */
  exitCode: number | null;
  /** Node-style name of the signal that ended the command, e.g. `SIGTERM`. */
  signal?: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  /** From asking for the channel to the command's end (connection setup not included). */
  durationMs: number;
}

export interface RunOptions {
  /** Fires to stop the command; its `reason` is what the returned promise rejects with. */
  signal: AbortSignal;
  maxOutputBytes: number;
  stdin?: string | Buffer;
  logFile?: string;
  onOutput?: (chunk: Buffer, stream: 'stdout' | 'stderr') => void;
}

function lost(node: string, started: boolean, cause?: unknown): SshConnectionLostError {
  return new SshConnectionLostError(
    started
      ? `node ${node}: SSH connection lost while the command ran; it may or may not have finished`
      : `node ${node}: SSH connection was already closed; the command was not sent`,
    node,
    started,
    cause === undefined ? undefined : { cause },
  );
}

export function runCommand(link: Link, node: string, command: string, o: RunOptions): Promise<ExecResult> {
  return new Promise<ExecResult>((resolve, reject) => {
    const t0 = performance.now();
    const stdout = new CappedBuffer(o.maxOutputBytes);
    const stderr = new CappedBuffer(o.maxOutputBytes);
    const marker = new ProcessGroupMarker();
    let log: LogSink | undefined;
    let channel: ClientChannel | undefined;
    let exit: { code: number | null; signal?: string } | undefined;
    let done = false;

    /** Settles once; `before` (e.g. killing the remote process group) completes first. */
    const finish = (err?: unknown, before?: Promise<void>) => {
      if (done) return;
      done = true;
      o.signal.removeEventListener('abort', onAbort);
      link.client.removeListener('close', onConnectionClose);
      const settle = () => {
        // A failed log write means the caller did not get the full output it asked for.
        const failure = err ?? log?.error;
        if (failure !== undefined) reject(failure);
        else
          resolve({
            stdout: stdout.toString(),
            stderr: stderr.toString(),
            exitCode: exit?.code ?? null,
            ...(exit?.signal ? { signal: exit.signal } : {}),
            stdoutTruncated: stdout.truncated,
            stderrTruncated: stderr.truncated,
            durationMs: Math.round(performance.now() - t0),
          });
      };
      void Promise.all([before, log?.close()]).then(settle);
    };

    /** Stops the remote command: KILL by SSH signal, close the channel, and kill its process group. */
    const kill = (): Promise<void> => {
      if (!channel) return Promise.resolve();
      try {
        channel.signal('KILL'); // honoured by OpenSSH >= 7.9, except for root sessions (see killGroup.ts)
      } catch {
        // not supported by this server: the process-group kill below still applies
      }
      channel.close();
      return exit === undefined && marker.pgid !== undefined ? remoteKillGroup(link, marker.pgid) : Promise.resolve();
    };
    const onAbort = () => finish(o.signal.reason, kill());
    // ssh2 emits the connection's 'close' before it closes its channels, so this fires first on a drop.
    const onConnectionClose = () => finish(lost(node, true));

    if (o.signal.aborted) return finish(o.signal.reason);
    if (!link.alive) return finish(lost(node, false));
    o.signal.addEventListener('abort', onAbort, { once: true });
    link.client.once('close', onConnectionClose);

    const onChannel = (err: Error | undefined, ch: ClientChannel) => {
      if (err) {
        finish(link.alive ? new SshConnectError(`node ${node}: could not open a session channel: ${err.message}`, node, 'ECHANNEL', { cause: err }) : lost(node, true, err));
        return;
      }
      if (done) {
        // Aborted while the exec request was in flight. Closing is all we can do: the command has not yet
        // named its process group (a root session could outlive this one-round-trip window).
        ch.close();
        return;
      }
      channel = ch;
      if (o.logFile) {
        log = new LogSink(o.logFile);
        log.onError(() => finish(undefined, kill()));
      }
      let paused = false;
      const deliver = (which: 'stdout' | 'stderr', chunk: Buffer) => {
        if (done || chunk.length === 0) return;
        (which === 'stdout' ? stdout : stderr).push(chunk);
        if (o.onOutput) {
          try {
            o.onOutput(chunk, which);
          } catch (e) {
            finish(e, kill());
            return;
          }
        }
        if (log && !log.write(chunk) && !paused) {
          paused = true;
          ch.pause();
          ch.stderr.pause();
          log.onDrain(() => {
            paused = false;
            ch.resume();
            ch.stderr.resume();
          });
        }
      };
      ch.on('data', (chunk: Buffer) => deliver('stdout', chunk));
      ch.stderr.on('data', (chunk: Buffer) => deliver('stderr', marker.take(chunk)));
      ch.on('exit', (code: number | null, sig?: string) => {
        exit = typeof code === 'number' ? { code } : { code: null, ...(sig ? { signal: sig } : {}) };
      });
      // 'close' waits for stdout's end; stderr may still hold buffered data, so wait for its end too.
      const stderrEnded = new Promise<void>((res) => (ch.stderr.readableEnded ? res() : ch.stderr.once('end', () => res())));
      ch.on('close', () => {
        void stderrEnded.then(() => {
          deliver('stderr', marker.flush());
          finish(exit === undefined && !link.alive ? lost(node, true) : undefined);
        });
      });
      ch.on('error', (e: Error) => finish(link.alive ? e : lost(node, true, e)));
      if (o.stdin !== undefined) ch.end(o.stdin);
      else ch.end(); // EOF at once, so commands that read stdin do not wait forever
    };

    try {
      link.client.exec(withGroupMarker(command), onChannel);
    } catch (err) {
      // ssh2 throws 'Not connected' synchronously: nothing reached the server.
      finish(lost(node, false, err));
    }
  });
}
