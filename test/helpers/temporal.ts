import { Client, Connection } from '@temporalio/client';
import { NativeConnection } from '@temporalio/worker';
import { createAeWorker, type AeWorker } from '../../workers/worker';

export function testAddress(): string {
  const address = process.env.AE_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('AE_TEST_TEMPORAL_ADDRESS is unset: run the tests through jest (test/globalSetup.ts starts the dev server)');
  return address;
}

export async function testClient(): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address: testAddress() });
  return { client: new Client({ connection }), close: () => connection.close() };
}

/** A real worker in this process on its own task queue, using the run's pre-built workflow bundle. */
export async function startTestWorker(taskQueue: string): Promise<{ worker: AeWorker; stop: () => Promise<void> }> {
  const connection = await NativeConnection.connect({ address: testAddress() });
  const worker = await createAeWorker({ connection, namespace: 'default', taskQueue });
  const running = worker.run();
  return {
    worker,
    async stop() {
      if (worker.worker.getState() === 'RUNNING') worker.worker.shutdown();
      await running;
      await connection.close();
    },
  };
}

export function uniqueTaskQueue(name: string): string {
  return `test-${name}-${process.pid}-${Date.now()}`;
}
