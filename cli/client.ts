import { Client, Connection } from '@temporalio/client';
import { temporalConnectConfig } from '../config/temporal';

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
