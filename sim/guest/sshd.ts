import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { loadOrCreateKeyPair, publicKeyBlob } from '../keys';
import { SshFront } from '../ssh';
import { writeFileAtomic } from '../state';
import type { NodeCommand } from '../sandbox';
import { GUEST_PATH } from './sandbox';

/**
 * The guest's sshd: the nodes' SSH front (sim/ssh.ts) for user root with the sim's client key, on
 * the guest SSH port of the generated profile (`guest.ssh.port`, kept in DIR/sim.json). Its host
 * key lives in DIR/guest/ and is entered in DIR/known_hosts as `[127.0.0.1]:PORT`; DIR/ssh_config
 * gets a `Host guest` block, so `ssh -F DIR/ssh_config guest` works while the VM runs.
 */

export interface GuestSshOptions {
  stateDir: string;
  port: number;
  run(command: string, env: Record<string, string>): NodeCommand;
}

export interface GuestSsh {
  front: SshFront;
  port: number;
  hostPublicKey: string;
  stats: { connections: number; authFailures: number; commands: number };
}

export const GUEST_HOST_ALIAS = 'guest';

/** The guest SSH port the simulator chose (sim/cluster.ts writes it to DIR/sim.json at every start). */
export function guestSshPort(stateDir: string): number {
  const file = path.join(stateDir, 'sim.json');
  const port = Number((JSON.parse(readFileSync(file, 'utf8')) as { guestSshPort?: unknown }).guestSshPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`${file} has no valid guestSshPort`);
  return port;
}

export async function startGuestSsh(opts: GuestSshOptions): Promise<GuestSsh> {
  const hostKey = loadOrCreateKeyPair(path.join(opts.stateDir, 'guest', 'ssh_host_ed25519_key'), 'root@guest');
  const clientPub = path.join(opts.stateDir, 'id_ed25519.pub');
  if (!existsSync(clientPub)) throw new Error(`no client key ${clientPub}: start the simulated cluster first`);
  const stats = { connections: 0, authFailures: 0, commands: 0 };
  const front = new SshFront({
    nodeName: 'guest',
    hostKey: hostKey.private,
    authorizedKey: readFileSync(clientPub, 'utf8').trim(),
    user: 'root',
    stats,
    run: (command, clientEnv) => opts.run(command, { ...clientEnv, HOME: '/root', USER: 'root', LOGNAME: 'root', SHELL: '/bin/bash', PATH: GUEST_PATH }),
  });
  const port = await front.listen(opts.port);
  trustGuest(opts.stateDir, port, hostKey.public);
  return { front, port, hostPublicKey: hostKey.public, stats };
}

/** Puts the guest in DIR/known_hosts and DIR/ssh_config (replacing an older entry for it). */
function trustGuest(stateDir: string, port: number, hostPublicKey: string): void {
  const knownHosts = path.join(stateDir, 'known_hosts');
  const hostPattern = `[127.0.0.1]:${port}`;
  const lines = existsSync(knownHosts) ? readFileSync(knownHosts, 'utf8').split('\n').filter((l) => l && !l.startsWith(`${hostPattern} `)) : [];
  writeFileAtomic(knownHosts, [...lines, `${hostPattern} ${publicKeyBlob(hostPublicKey)}`].join('\n') + '\n');

  const sshConfig = path.join(stateDir, 'ssh_config');
  if (!existsSync(sshConfig)) return;
  const text = readFileSync(sshConfig, 'utf8').replace(new RegExp(`\\n*Host ${GUEST_HOST_ALIAS}\\n(?:  .*\\n?)*`, 'g'), '\n');
  const q = (p: string) => (/\s/.test(p) ? `"${p}"` : p);
  const block = [
    `Host ${GUEST_HOST_ALIAS}`,
    '  HostName 127.0.0.1',
    `  Port ${port}`,
    '  User root',
    `  IdentityFile ${q(path.join(stateDir, 'id_ed25519'))}`,
    '  IdentitiesOnly yes',
    `  UserKnownHostsFile ${q(knownHosts)}`,
    '  GlobalKnownHostsFile /dev/null',
    '  StrictHostKeyChecking yes',
    '  PasswordAuthentication no',
    '  KbdInteractiveAuthentication no',
  ].join('\n');
  writeFileAtomic(sshConfig, `${text.replace(/\n+$/, '')}\n\n${block}\n`);
}
