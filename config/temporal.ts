import { loadClientConnectConfig, type ClientConnectConfig } from '@temporalio/envconfig';
import { DEFAULT_TEMPORAL_PORT } from './constants';

/**
 * How clients and workers reach Temporal: Temporal's standard environment configuration
 * (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS, API key, temporal.toml profiles), defaulting to the
 * local stack's dev server on loopback.
 */
export function temporalConnectConfig(env: NodeJS.ProcessEnv = process.env): Required<ClientConnectConfig> {
  const overrideEnvVars = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined));
  const config = loadClientConnectConfig({ overrideEnvVars });
  return {
    connectionOptions: { ...config.connectionOptions, address: config.connectionOptions.address ?? `127.0.0.1:${DEFAULT_TEMPORAL_PORT}` },
    namespace: config.namespace ?? 'default',
  };
}

/** Web UI link for a workflow, when the UI is the local dev server's. */
export function workflowUiUrl(uiBase: string, namespace: string, workflowId: string, runId?: string): string {
  const base = `${uiBase.replace(/\/$/, '')}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${encodeURIComponent(runId)}/history` : base;
}
