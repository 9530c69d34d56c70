import { Client, Connection } from '@temporalio/client';
import { DEFAULT_UI_PORT } from '../config/constants';
import { temporalConnectConfig, workflowUiUrl } from '../config/temporal';
import { EXIT, ExitError } from './exitError';

/** A client for the configured Temporal, or one clear error saying how to get one. */
export async function connectClient(): Promise<{ client: Client; close: () => Promise<void>; namespace: string; address: string }> {
  const { connectionOptions, namespace } = temporalConnectConfig();
  const address = connectionOptions.address ?? '';
  let connection: Connection;
  try {
    connection = await Connection.connect({ ...connectionOptions, connectTimeout: 5000 });
    await connection.workflowService.getSystemInfo({});
  } catch (err) {
    throw new Error(
      `cannot reach Temporal at ${address} (${(err as Error).message.split('\n')[0]}): start the local stack with \`npm start\`, or point TEMPORAL_ADDRESS at your server`,
    );
  }
  return { client: new Client({ connection, namespace }), close: () => connection.close(), namespace, address };
}

/** Fails fast when nobody polls the task queue, instead of waiting forever for a result. */
export async function requireWorker(client: Client, namespace: string, taskQueue: string): Promise<void> {
  const res = await client.workflowService.describeTaskQueue({ namespace, taskQueue: { name: taskQueue }, taskQueueType: 1 });
  if (!res.pollers?.length) {
    throw new Error(`no worker is polling task queue "${taskQueue}": start the local stack (\`npm start\`) or a worker (\`npx ae worker\`)`);
  }
}

export type Connected = Awaited<ReturnType<typeof connectClient>>;

/** Runs `fn` with a client and closes it after; an unreachable Temporal is exit code 3. */
export async function withTemporal(fn: (t: Connected) => Promise<number>): Promise<number> {
  let connected: Connected;
  try {
    connected = await connectClient();
  } catch (err) {
    throw new ExitError((err as Error).message, EXIT.unreachable);
  }
  try {
    return await fn(connected);
  } finally {
    await connected.close();
  }
}

/** The Web UI link of a workflow (AE_UI_URL, default the local dev server's UI). */
export function uiLink(namespace: string, workflowId: string): string {
  return workflowUiUrl(process.env.AE_UI_URL ?? `http://127.0.0.1:${DEFAULT_UI_PORT}`, namespace, workflowId);
}
