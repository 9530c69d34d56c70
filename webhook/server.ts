import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { DEFAULT_UI_PORT, TASK_QUEUE } from '../config/constants';
import { temporalConnectConfig } from '../config/temporal';
import { DEFAULT_CONFIG_FILE, loadWebhookConfig, type WebhookConfig } from './config';
import { DeliveryWindow } from './deliveries';
import { createHandler } from './handler';
import { RateLimiter } from './rateLimit';
import { startOrJoin, type StartedRun } from './start';

export const DEFAULT_WEBHOOK_HOST = '127.0.0.1';
export const DEFAULT_WEBHOOK_PORT = 8787;

export interface WebhookListenerOptions {
  /** Default AE_WEBHOOK_HOST, else 127.0.0.1. */
  host?: string;
  /** Default AE_WEBHOOK_PORT, else 8787; 0 picks a free port. */
  port?: number;
  /** The mapping file; default AE_WEBHOOK_CONFIG, else config/webhooks.yaml. */
  configFile?: string;
  /** Temporal: a client to use (left open), else a connection to `temporalAddress` or the configured Temporal (closed by close()). */
  client?: Client;
  temporalAddress?: string;
  namespace?: string;
  taskQueue?: string;
  /** Base of the Web UI links; default AE_UI_URL, else the dev server's UI. */
  uiUrl?: string;
  /** Where the secrets are read (their names come from the mapping file); default process.env. */
  env?: NodeJS.ProcessEnv;
  log?: (line: string) => void;
}

export interface WebhookListener {
  url: string;
  close(): Promise<void>;
}

/** The port from a flag or AE_WEBHOOK_PORT, checked; `what` names the source in the error. */
export function webhookPort(value: string | number | undefined, what: string): number {
  if (value === undefined || value === '') return DEFAULT_WEBHOOK_PORT;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new Error(`${what}: expected a port number in 0..65535, got ${JSON.stringify(String(value))}`);
  return n;
}

async function temporal(opts: WebhookListenerOptions): Promise<{ client: Client; namespace: string; close: () => Promise<void> }> {
  if (opts.client) return { client: opts.client, namespace: opts.namespace ?? opts.client.options.namespace, close: async () => {} };
  const { connectionOptions, namespace } = temporalConnectConfig(opts.env ?? process.env);
  const connection = await Connection.connect({ ...connectionOptions, ...(opts.temporalAddress ? { address: opts.temporalAddress } : {}) });
  const ns = opts.namespace ?? namespace;
  return { client: new Client({ connection, namespace: ns }), namespace: ns, close: () => connection.close() };
}

/**
 * The CI webhook listener: POST /webhooks/github and /webhooks/generic start (or join) reproduceClaims
 * runs as the mapping file says. Resolves once it listens; close() stops it and the Temporal
 * connection it opened.
 */
export async function startWebhookListener(opts: WebhookListenerOptions = {}): Promise<WebhookListener> {
  const env = opts.env ?? process.env;
  const config: WebhookConfig = loadWebhookConfig(opts.configFile ?? env.AE_WEBHOOK_CONFIG ?? DEFAULT_CONFIG_FILE);
  const host = opts.host ?? env.AE_WEBHOOK_HOST ?? DEFAULT_WEBHOOK_HOST;
  const port = opts.port ?? webhookPort(env.AE_WEBHOOK_PORT, 'AE_WEBHOOK_PORT');
  const log = opts.log ?? ((line: string) => console.log(line));
  const t = await temporal(opts);
  const target = { client: t.client, namespace: t.namespace, taskQueue: opts.taskQueue ?? TASK_QUEUE, uiUrl: opts.uiUrl ?? env.AE_UI_URL ?? `http://127.0.0.1:${DEFAULT_UI_PORT}` };
  const handler = createHandler({
    config,
    secrets: { github: env[config.secrets.github] || undefined, generic: env[config.secrets.generic] || undefined },
    startRun: (run) => startOrJoin(target, run),
    limiter: new RateLimiter(config.limits.perSource, config.limits.global),
    deliveries: new DeliveryWindow<StartedRun>(config.limits.deliveryWindowSeconds * 1000),
    log: (line) => log(`webhook: ${line}`),
  });
  const server = createServer((req, res) => {
    // The handler answers every error itself; this is for a socket that broke while answering.
    handler(req, res).catch((err: Error) => {
      log(`webhook: ${req.method ?? '?'} request failed while answering: ${err.message.split('\n')[0]}`);
      res.destroy();
    });
  });
  // Slow or idle callers may not hold sockets for long.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    await t.close();
    throw err;
  }
  const { address, port: bound } = server.address() as AddressInfo;
  const url = `http://${address.includes(':') ? `[${address}]` : address}:${bound}`;
  const secretState = (route: 'github' | 'generic') => `POST /webhooks/${route} (${config.secrets[route]} ${env[config.secrets[route]] ? 'set' : 'NOT set: 503 until it is'})`;
  log(`webhook: listening on ${url}: ${secretState('github')}, ${secretState('generic')}; ${config.rules.length} mapping rule(s)`);
  return {
    url,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await t.close();
    },
  };
}
