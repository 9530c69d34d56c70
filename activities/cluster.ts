import { InvalidConfigError } from '../config/errors';
import { loadProfile, type LoadedProfile } from '../config/load';
import type { ClusterNode, ClusterProfile, SshSettings } from '../config/schema';
import type { SshTarget } from './ssh/pool';
import type { ClusterSummary } from './probeTypes';

export function summarize({ profile, hash }: LoadedProfile): ClusterSummary {
  return {
    name: profile.name,
    simulated: profile.simulated,
    hash,
    nodes: profile.nodes.map((n) => ({
      name: n.name,
      origin: n.origin,
      rdmaIp: n.rdmaIp,
      bmc: n.bmc !== undefined,
      ...(n.bmc ? { bmcEndpoint: { host: n.bmc.host, port: n.bmc.port, user: n.bmc.user, passwordEnv: n.bmc.passwordEnv } } : {}),
    })),
    paths: { ...profile.paths },
    guest: { ip: profile.guest.ip, hostIp: profile.guest.hostIp, mac: profile.guest.mac },
    ...(profile.client ? { client: profile.client.host } : {}),
    ssh: { connectTimeoutSeconds: profile.ssh.connectTimeoutSeconds },
    timeouts: { ...profile.timeouts },
    ...(profile.claims ? { claims: profile.claims } : {}),
  };
}

/**
 * The profile as the running workflow knows it. An edit to the YAML under a running workflow would
 * make its steps disagree with each other, so a changed hash is a non-retryable error.
 */
export function loadPinnedProfile(cluster: string, expectedHash: string): LoadedProfile {
  const loaded = loadProfile(cluster);
  if (loaded.hash !== expectedHash) {
    throw new InvalidConfigError(`cluster "${cluster}": the profile ${loaded.file} changed while the workflow ran; start a new run to use the new profile`);
  }
  return loaded;
}

export function findNode(loaded: LoadedProfile, name: string): ClusterNode {
  const node = loaded.profile.nodes.find((n) => n.name === name);
  if (!node) throw new InvalidConfigError(`node "${name}" is not in the cluster profile ${loaded.file}`);
  return node;
}

export function sshTarget(node: ClusterNode): SshTarget {
  return { node: node.name, host: node.host, port: node.port, user: node.user };
}

/** The guest as the pool's SSH target: node name `guest`, never a profile node. */
export const GUEST_NODE = 'guest';

/**
 * The guest's SSH endpoint (profile guest.ssh) for the node pool. With `via: origin` the origin is a
 * jump host, appended to ssh.jumpHost (if any) so the origin is reached the way the nodes are; the
 * settings differ from the nodes', so the guest gets a pooled connection of its own.
 */
export function guestSshRoute(profile: ClusterProfile): { target: SshTarget; settings: SshSettings } {
  const { host, port, user, via } = profile.guest.ssh;
  const target: SshTarget = { node: GUEST_NODE, host, port, user };
  if (via !== 'origin') return { target, settings: profile.ssh };
  const origin = profile.nodes[0];
  const hop = `${origin.user !== undefined ? `${origin.user}@` : ''}${origin.host}${origin.port !== undefined ? `:${origin.port}` : ''}`;
  return { target, settings: { ...profile.ssh, jumpHost: profile.ssh.jumpHost !== undefined ? `${profile.ssh.jumpHost},${hop}` : hop } };
}
