/** Shapes the probe activities return; type-only, shared with workflow code. */
import type { ClaimSettingsInput } from '../workflows/claims/settings';

/** Where a node's BMC answers, for the plan's ipmitool lines: the password stays in the worker's environment. */
export interface BmcEndpoint {
  host: string;
  port: number;
  user: string;
  /** NAME of the worker's environment variable holding the password (never the password). */
  passwordEnv: string;
}

export interface ClusterSummary {
  name: string;
  simulated: boolean;
  /** Profile hash: activities refuse to act on a profile that changed under a running workflow. */
  hash: string;
  /** In Popcorn node-id order (id = index), the origin first. `bmc`: whether it has one (no secrets here). */
  nodes: { name: string; origin: boolean; rdmaIp: string; bmc: boolean; bmcEndpoint?: BmcEndpoint }[];
  paths: { fragvisor: string; kernelTree: string; kvmtool: string; ramdisks: string; giantvmTree?: string; guestKernel?: string };
  guest: { ip: string; hostIp: string; mac: string };
  /** The load-generator host when the profile names one (else the origin runs ab and the POSTs). */
  client?: string;
  ssh: { connectTimeoutSeconds: number };
  /** Per-step timeouts in seconds (config/schema.ts timeoutsSchema). */
  timeouts: { probe: number; kernelBuild: number; kernelInstall: number; reboot: number; messagingLayer: number; vmBoot: number; benchmark: number; operator: number };
  /** The profile's claim settings (a run's input `claims` overrides them field by field). */
  claims?: ClaimSettingsInput;
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
