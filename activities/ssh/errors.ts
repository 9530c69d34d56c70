import { ApplicationFailure } from '@temporalio/common';
import { shellQuote } from '../../workflows/commands/quote';

/**
 * SSH failures, split by whether a retry can heal them. Messages name the node and endpoint and say
 * what to do; they never contain key material, passphrases or command lines (commands may carry secrets).
 */

/** Base class: `retryable` says whether the same call may succeed later without anyone changing anything. */
export abstract class SshError extends Error {
  abstract readonly retryable: boolean;
  constructor(
    message: string,
    readonly node: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  /** Fields for Temporal failure details: plain data, nothing secret. */
  details(): Record<string, unknown> {
    return { node: this.node };
  }
}

function endpoint(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** How to record a host's key once its fingerprint has been checked out of band. */
function addKeyHint(host: string, port: number, knownHosts: string): string {
  return `ssh-keyscan -p ${port} ${shellQuote(host)} >> ${shellQuote(knownHosts)}`;
}

abstract class HostKeyError extends SshError {
  readonly retryable = false;
  constructor(
    message: string,
    node: string,
    readonly host: string,
    readonly port: number,
    readonly fingerprint: string,
    readonly knownHosts: string,
  ) {
    super(message, node);
  }
  override details(): Record<string, unknown> {
    return { node: this.node, host: this.host, port: this.port, fingerprint: this.fingerprint, knownHosts: this.knownHosts };
  }
}

/** The server's key is not in known_hosts: we never trust on first use. */
export class HostKeyUnknownError extends HostKeyError {
  override readonly name = 'HostKeyUnknownError';
  constructor(node: string, host: string, port: number, fingerprint: string, knownHosts: string) {
    super(
      `node ${node}: host key of ${host}:${port} is not in ${knownHosts} (server offered ${fingerprint}); refusing to connect. ` +
        `Check that fingerprint out of band (on the node's console: ssh-keygen -lf /etc/ssh/ssh_host_<type>_key.pub), then run: ` +
        addKeyHint(host, port, knownHosts),
      node,
      host,
      port,
      fingerprint,
      knownHosts,
    );
  }
}

/** known_hosts has a different key for this host: a reinstalled node, or someone in the middle. */
export class HostKeyChangedError extends HostKeyError {
  override readonly name = 'HostKeyChangedError';
  constructor(node: string, host: string, port: number, fingerprint: string, knownHosts: string, line?: number) {
    super(
      `node ${node}: HOST KEY CHANGED for ${host}:${port}: the server offered ${fingerprint}, which does not match ` +
        `${knownHosts}${line ? ` line ${line}` : ''}; refusing to connect (this can be a man-in-the-middle). ` +
        `If the node was reinstalled, verify the new fingerprint out of band, then run: ` +
        `ssh-keygen -R ${shellQuote(endpoint(host, port))} -f ${shellQuote(knownHosts)} && ${addKeyHint(host, port, knownHosts)}`,
      node,
      host,
      port,
      fingerprint,
      knownHosts,
    );
  }
}

/** The server's key is marked `@revoked` in known_hosts. */
export class HostKeyRevokedError extends HostKeyError {
  override readonly name = 'HostKeyRevokedError';
  constructor(node: string, host: string, port: number, fingerprint: string, knownHosts: string) {
    super(
      `node ${node}: host key ${fingerprint} of ${host}:${port} is marked @revoked in ${knownHosts}; refusing to connect. ` +
        `The node needs a new host key, recorded after an out-of-band check.`,
      node,
      host,
      port,
      fingerprint,
      knownHosts,
    );
  }
}

/** The server rejected every credential we offered, or we had none to offer. */
export class SshAuthError extends SshError {
  override readonly name = 'SshAuthError';
  readonly retryable = false;
}

/** An identity file named in the profile is missing, unreadable, unprotected or not a usable private key. */
export class SshIdentityFileError extends SshError {
  override readonly name = 'SshIdentityFileError';
  readonly retryable = false;
  constructor(
    message: string,
    node: string,
    readonly file: string,
  ) {
    super(message, node);
  }
  override details(): Record<string, unknown> {
    return { node: this.node, file: this.file };
  }
}

/** The ssh_config file (or a jump host spec) cannot be used as written. */
export class SshConfigError extends SshError {
  override readonly name = 'SshConfigError';
  readonly retryable = false;
}

/** Could not reach or open a session with the server: refused, timed out, unreachable. Retryable. */
export class SshConnectError extends SshError {
  override readonly name = 'SshConnectError';
  readonly retryable = true;
  constructor(
    message: string,
    node: string,
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, node, options);
  }
  override details(): Record<string, unknown> {
    return { node: this.node, code: this.code };
  }
}

/** The connection dropped while a command ran; it may or may not have finished. Retryable. */
export class SshConnectionLostError extends SshError {
  override readonly name = 'SshConnectionLostError';
  readonly retryable = true;
  constructor(
    message: string,
    node: string,
    /** False only when we know the server never received the command (safe to re-send at once). */
    readonly commandStarted: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, node, options);
  }
}

/** The call ran past its timeout; a started command had its channel closed and its process group killed. */
export class SshCommandTimeoutError extends SshError {
  override readonly name = 'SshCommandTimeoutError';
  // Not classed as transient: running the same command again may time out again. The caller decides.
  readonly retryable = false;
  constructor(
    node: string,
    readonly timeoutMs: number,
  ) {
    super(`node ${node}: command did not finish within ${timeoutMs} ms (connecting included); if it had started, it was killed`, node);
  }
}

/** The caller aborted the command (its AbortSignal fired without an Error reason of its own). */
export class SshCommandAbortedError extends SshError {
  override readonly name = 'SshCommandAbortedError';
  readonly retryable = false;
  constructor(node: string) {
    super(`node ${node}: command aborted; if it had started, it was killed`, node);
  }
}

/** An ssh_config file or jump spec ssh itself would reject, or that we cannot honour safely (no node yet). */
export class SshConfigSyntaxError extends Error {
  override readonly name = 'SshConfigSyntaxError';
}

/** Transient transport failures: the same call may well work a moment later. */
export function isRetryableSshError(err: unknown): boolean {
  return err instanceof SshConnectError || err instanceof SshConnectionLostError;
}

const NON_HEALING = [HostKeyUnknownError, HostKeyChangedError, HostKeyRevokedError, SshAuthError, SshIdentityFileError, SshConfigError];

/**
 * For activities: errors no retry can heal become non-retryable ApplicationFailures typed with their
 * class name (so the UI and retry policies can tell them apart); anything else is returned unchanged.
 */
export function toActivityFailure(err: unknown): unknown {
  if (NON_HEALING.some((cls) => err instanceof cls)) {
    const e = err as SshError;
    return ApplicationFailure.nonRetryable(e.message, e.name, e.details());
  }
  return err;
}
