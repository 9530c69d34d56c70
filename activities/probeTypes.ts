/** Shapes the probe activities return; type-only, shared with workflow code. */

export interface ClusterSummary {
  name: string;
  simulated: boolean;
  /** Profile hash: activities refuse to act on a profile that changed under a running workflow. */
  hash: string;
  /** In Popcorn node-id order (id = index), the origin first. `bmc`: whether it has one (no secrets here). */
  nodes: { name: string; origin: boolean; rdmaIp: string; bmc: boolean }[];
  paths: { fragvisor: string; kernelTree: string; kvmtool: string; ramdisks: string };
  guest: { ip: string; hostIp: string; mac: string };
  ssh: { connectTimeoutSeconds: number };
  /** Per-step timeouts in seconds (config/schema.ts timeoutsSchema). */
  timeouts: { probe: number; kernelBuild: number; kernelInstall: number; reboot: number; messagingLayer: number; vmBoot: number; benchmark: number; operator: number };
}

export interface NodeProbe {
  node: string;
  origin: boolean;
  reachable: boolean;
  bootId?: string;
  kernelRelease?: string;
  uptimeSeconds?: number;
  fragvisorTree?: boolean;
  error?: string;
}

export interface ProbeSummary {
  cluster: string;
  simulated: boolean;
  reachable: number;
  total: number;
  nodes: NodeProbe[];
}
