import { InvalidConfigError } from '../config/errors';
import { loadProfile, type LoadedProfile } from '../config/load';
import type { ClusterNode } from '../config/schema';
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
    ssh: { connectTimeoutSeconds: profile.ssh.connectTimeoutSeconds },
    timeouts: { ...profile.timeouts },
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
