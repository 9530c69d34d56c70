/** Names shared by the worker, the clients and the workflows. Safe to import from workflow code. */
export const TASK_QUEUE = 'fragvisor-ae';

/** Typed search attributes registered on the dev server (workers/devServer.ts) and upserted by workflows. */
export const SEARCH_ATTRIBUTES = {
  phase: 'AePhase',
  cluster: 'AeCluster',
  verdict: 'AeVerdict',
} as const;

/** The cluster name that means "the simulated cluster the local stack runs". */
export const SIM_CLUSTER = 'sim';

export const DEFAULT_TEMPORAL_PORT = 7233;
export const DEFAULT_UI_PORT = 8233;
