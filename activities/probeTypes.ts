/** Shapes the probe activities return; type-only, shared with workflow code. */

export interface ClusterSummary {
  name: string;
  simulated: boolean;
  /** Profile hash: activities refuse to act on a profile that changed under a running workflow. */
  hash: string;
  nodes: { name: string; origin: boolean; rdmaIp: string }[];
  ssh: { connectTimeoutSeconds: number };
  timeouts: { probe: number };
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
