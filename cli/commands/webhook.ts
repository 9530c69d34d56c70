import { parseArgs } from 'node:util';
import { TASK_QUEUE } from '../../config/constants';
import { InvalidConfigError } from '../../config/errors';
import { GENERIC_SECRET_ENV, GITHUB_SECRET_ENV } from '../../webhook/config';
import { DEFAULT_WEBHOOK_HOST, DEFAULT_WEBHOOK_PORT, startWebhookListener, webhookPort } from '../../webhook/server';
import { withTemporal } from '../client';
import { EXIT, ExitError } from '../exitError';
import { UsageError } from '../usageError';

export const usage = `ae webhook [--host ${DEFAULT_WEBHOOK_HOST}] [--port ${DEFAULT_WEBHOOK_PORT}] [--config FILE] [--task-queue ${TASK_QUEUE}]
  The CI webhook listener (what \`npm run webhook\` runs): POST /webhooks/github (X-Hub-Signature-256;
  push and workflow_dispatch) and POST /webhooks/generic (Authorization: Bearer or X-Signature-256)
  start reproduceClaims runs as the mapping file says (default config/webhooks.yaml, or
  AE_WEBHOOK_CONFIG). Host and port also from AE_WEBHOOK_HOST / AE_WEBHOOK_PORT (flags win).
  Secrets only from the environment: ${GITHUB_SECRET_ENV}, ${GENERIC_SECRET_ENV} (names set in the
  mapping file); a route without its secret answers 503. Stops on Ctrl-C / SIGTERM.
  exit codes: 0 stopped, 1 the mapping file is invalid or the port is taken, 2 usage, 3 Temporal unreachable`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { host: { type: 'string' }, port: { type: 'string' }, config: { type: 'string' }, 'task-queue': { type: 'string', default: TASK_QUEUE } },
    strict: true,
  });
  let port: number | undefined;
  try {
    port = values.port === undefined ? undefined : webhookPort(values.port, '--port');
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  // withTemporal: an unreachable Temporal is exit 3, and the connection is closed however this ends.
  return withTemporal(async (connected) => {
    let listener: Awaited<ReturnType<typeof startWebhookListener>>;
    try {
      listener = await startWebhookListener({ host: values.host, port, configFile: values.config, client: connected.client, namespace: connected.namespace, taskQueue: values['task-queue'] });
    } catch (err) {
      if (err instanceof InvalidConfigError || (err as NodeJS.ErrnoException).code === 'EADDRINUSE') throw new ExitError((err as Error).message, EXIT.failed);
      throw err;
    }
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        console.log(`\n${signal}: stopping the webhook listener`);
        resolve();
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    await listener.close();
    return EXIT.ok;
  });
}
