import { loadProfile } from '../config/load';
import { benchActivities } from './bench';
import { findNode, loadPinnedProfile, sshTarget, summarize } from './cluster';
import { classified } from './failures';
import { guestActivities } from './guest';
import { withHeartbeat } from './heartbeat';
import { kernelActivities } from './kernel';
import { kvmtoolActivities } from './kvmtool';
import { msgLayerActivities } from './msglayer';
import { notifyActivities } from './notify';
import { parseProbeOutput, probeCommand } from './probe';
import { runActivities } from './run';
import type { ClusterSummary, NodeProbe } from './probeTypes';
import { provenanceActivities } from './provenance';
import { rebootActivities } from './reboot';
import { reportActivities } from './report';
import { vmActivities } from './vm';
import type { SshPool } from './ssh/pool';

export interface ActivityDeps {
  /** One pool per worker: one SSH connection per node, reused by every activity. */
  ssh: SshPool;
}

/** Activities as plain async functions over the worker's shared dependencies. */
export function createActivities({ ssh }: ActivityDeps) {
  return {
    ...kernelActivities({ ssh }),
    ...kvmtoolActivities({ ssh }),
    ...msgLayerActivities({ ssh }),
    ...rebootActivities({ ssh }),
    ...guestActivities({ ssh }),
    ...runActivities(),
    ...vmActivities({ ssh }),
    ...benchActivities({ ssh }),
    ...reportActivities(),
    ...provenanceActivities({ ssh }),
    ...notifyActivities(),
    async loadClusterProfile({ cluster }: { cluster: string }): Promise<ClusterSummary> {
      return classified(async () => summarize(loadProfile(cluster)));
    },

    async probeNode({ cluster, node, profileHash }: { cluster: string; node: string; profileHash: string }): Promise<NodeProbe> {
      return classified(async () => {
        const loaded = loadPinnedProfile(cluster, profileHash);
        const target = findNode(loaded, node);
        const result = await withHeartbeat((signal) =>
          ssh.exec(sshTarget(target), loaded.profile.ssh, probeCommand(loaded.profile.paths.fragvisor), { timeoutMs: 20_000, signal }),
        );
        if (result.exitCode !== 0) throw new Error(`probe on ${node} exited with ${result.exitCode}: ${result.stderr.trim().slice(0, 500)}`);
        return { node, origin: target.origin, reachable: true, ...parseProbeOutput(result.stdout) };
      });
    },
  };
}

export type Activities = ReturnType<typeof createActivities>;
