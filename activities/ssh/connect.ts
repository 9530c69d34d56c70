import type { Duplex } from 'node:stream';
import { Client, type AnyAuthMethod, type ServerHostKeyAlgorithm } from 'ssh2';
import type { SshSettings } from '../../config/schema';
import { HostKeyChangedError, HostKeyRevokedError, HostKeyUnknownError, SshAuthError, SshConnectError, type SshError } from './errors';
import { checkHostKey, knownKeyTypes, type KnownHostEntry } from './knownHosts';
import type { Hop } from './route';

/**
 * Opens one SSH connection (one hop) and classifies why it failed. The host key is checked inside the
 * key exchange, before any credential is sent; anything but an exact known_hosts match aborts it.
 */

/** An open ssh2 connection and whether it is still usable. */
export class Link {
  private dead = false;
  readonly closed: Promise<void>;
  constructor(
    readonly client: Client,
    readonly hop: Hop,
  ) {
    // A permanent error listener: an EventEmitter 'error' without one would crash the worker.
    client.on('error', () => {
      this.dead = true;
    });
    client.on('end', () => {
      this.dead = true;
    });
    this.closed = new Promise((resolve) =>
      client.once('close', () => {
        this.dead = true;
        resolve();
      }),
    );
  }
  get alive(): boolean {
    return !this.dead;
  }
  end(): void {
    this.dead = true;
    this.client.end();
  }
}

/** Host key algorithms we accept, strongest first. SHA-1 `ssh-rsa` and DSA are left out on purpose. */
const HOST_KEY_ALGORITHMS: readonly ServerHostKeyAlgorithm[] = ['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ecdsa-sha2-nistp384', 'ecdsa-sha2-nistp521', 'rsa-sha2-512', 'rsa-sha2-256'];

/** Ask for a key type known_hosts already has first, as ssh does, so a host with only an RSA entry works. */
function hostKeyAlgorithms(known: readonly string[]): ServerHostKeyAlgorithm[] {
  const preferred = HOST_KEY_ALGORITHMS.filter((a) => known.includes(a) || (a.startsWith('rsa-sha2-') && known.includes('ssh-rsa')));
  return [...preferred, ...HOST_KEY_ALGORITHMS.filter((a) => !preferred.includes(a))];
}

const CONNECT_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENOTFOUND', 'EAI_AGAIN', 'EPIPE']);

function describeAuth(auth: readonly AnyAuthMethod[]): string {
  const keys = auth.filter((a) => a.type === 'publickey').length;
  const agent = auth.some((a) => a.type === 'agent');
  return [keys ? `${keys} identity file(s)` : '', agent ? 'ssh-agent' : ''].filter(Boolean).join(' and ');
}

function classify(err: Error & { level?: string; code?: string }, node: string, hop: Hop, auth: readonly AnyAuthMethod[]): SshError {
  const where = `${hop.user}@${hop.hostname}:${hop.port}`;
  if (err.level === 'client-authentication') {
    return new SshAuthError(`node ${node}: ${where} rejected every credential offered (${describeAuth(auth)}); is the public key in the node's authorized_keys?`, node);
  }
  if (err.level === 'client-timeout') return new SshConnectError(`node ${node}: no SSH session with ${where} within the connect timeout`, node, 'ETIMEDOUT', { cause: err });
  const code = typeof err.code === 'string' ? err.code : undefined;
  if (code && CONNECT_CODES.has(code)) return new SshConnectError(`node ${node}: cannot connect to ${where}: ${code}`, node, code, { cause: err });
  return new SshConnectError(`node ${node}: SSH connection to ${where} failed: ${err.message}`, node, code, { cause: err });
}

export interface OpenHopOptions {
  node: string;
  hop: Hop;
  settings: SshSettings;
  auth: AnyAuthMethod[];
  knownHosts: readonly KnownHostEntry[];
  /** A stream to the server (a jump host's forwarded channel) instead of a TCP connection. */
  sock?: Duplex;
}

/** Connects, verifies the host key and authenticates; resolves once the session is ready. */
export function openHop(o: OpenHopOptions): Promise<Link> {
  const { node, hop, settings } = o;
  return new Promise((resolve, reject) => {
    const client = new Client();
    const link = new Link(client, hop);
    let hostKeyError: SshError | undefined;
    let settled = false;
    const fail = (err: Error & { level?: string; code?: string }) => {
      if (settled) return;
      settled = true;
      client.destroy();
      reject(hostKeyError ?? classify(err, node, hop, o.auth));
    };
    const onClose = () => fail(Object.assign(new Error('connection closed before the session was ready'), { code: 'ECONNRESET' }));
    client.on('error', fail);
    client.once('close', onClose);
    client.once('ready', () => {
      settled = true;
      client.removeListener('error', fail);
      client.removeListener('close', onClose);
      resolve(link);
    });
    const hostVerifier = (key: Buffer): boolean => {
      const check = checkHostKey(o.knownHosts, hop.hostname, hop.port, key);
      const args = [node, hop.hostname, hop.port, check.fingerprint, settings.knownHosts] as const;
      if (check.status === 'match') return true;
      if (check.status === 'unknown') hostKeyError = new HostKeyUnknownError(...args);
      else if (check.status === 'revoked') hostKeyError = new HostKeyRevokedError(...args);
      else hostKeyError = new HostKeyChangedError(...args, check.line);
      return false;
    };
    try {
      client.connect({
        ...(o.sock ? { sock: o.sock } : { host: hop.hostname, port: hop.port }),
        username: hop.user,
        authHandler: o.auth,
        hostVerifier,
        algorithms: { serverHostKey: hostKeyAlgorithms(knownKeyTypes(o.knownHosts, hop.hostname, hop.port)) },
        readyTimeout: settings.connectTimeoutSeconds * 1000,
        keepaliveInterval: settings.keepaliveIntervalSeconds * 1000,
        keepaliveCountMax: settings.keepaliveCountMax,
      });
    } catch (err) {
      fail(err as Error);
    }
  });
}
