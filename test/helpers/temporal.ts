import { ActivityFailure, Client, Connection, WorkflowFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createAeWorker, type AeWorker } from '../../workers/worker';
import { spawnAe, type Spawned } from './processes';

export function testAddress(): string {
  const address = process.env.AE_TEST_TEMPORAL_ADDRESS;
  if (!address) throw new Error('AE_TEST_TEMPORAL_ADDRESS is unset: run the tests through jest (test/globalSetup.ts starts the dev server)');
  return address;
}

export async function testClient(): Promise<{ client: Client; close: () => Promise<void> }> {
  const connection = await Connection.connect({ address: testAddress() });
  return { client: new Client({ connection }), close: () => connection.close() };
}

/** stop() for a running worker: shut it down, let it drain, close its connection. */
function stopper(worker: Worker, running: Promise<void>, connection: NativeConnection): () => Promise<void> {
  return async () => {
    if (worker.getState() === 'RUNNING') worker.shutdown();
    await running;
    await connection.close();
  };
}

/** A real worker in this process on its own task queue, using the run's pre-built workflow bundle. */
export async function startTestWorker(taskQueue: string): Promise<{ worker: AeWorker; stop: () => Promise<void> }> {
  const connection = await NativeConnection.connect({ address: testAddress() });
  const worker = await createAeWorker({ connection, namespace: 'default', taskQueue });
  const running = worker.run();
  return { worker, stop: stopper(worker.worker, running, connection) };
}

/**
 * `ae worker` on `taskQueue` as a process of its own (one a test may SIGKILL), once it polls. Its
 * sticky queue gives up after 2 s instead of 10: after a kill, its workflows' next tasks move on sooner.
 */
export async function startWorkerProcess(taskQueue: string, env: NodeJS.ProcessEnv = {}): Promise<Spawned> {
  const w = spawnAe(['worker', '--task-queue', taskQueue], { TEMPORAL_ADDRESS: testAddress(), AE_STICKY_QUEUE_TIMEOUT: '2s', ...env });
  await w.waitFor(/worker polling task queue/);
  return w;
}

/** A worker of test workflows (test/fixtures/workflows/*), with their activities: bundles them at start, which takes seconds. */
export async function startFixtureWorker(options: { taskQueue: string; workflowsPath: string; activities?: object; maxCachedWorkflows?: number }): Promise<{ stop: () => Promise<void> }> {
  const connection = await NativeConnection.connect({ address: testAddress() });
  const worker = await Worker.create({ connection, namespace: 'default', ...options });
  return { stop: stopper(worker, worker.run(), connection) };
}

export function uniqueTaskQueue(name: string): string {
  return `test-${name}-${process.pid}-${Date.now()}`;
}

/** The ApplicationFailure a workflow threw itself (its WorkflowFailedError's cause); throws if the run did not fail that way. */
export async function workflowFailure(run: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof WorkflowFailedError)) throw new Error(`expected the workflow to fail, got ${err === undefined ? 'a result' : String(err)}`);
  if (!(err.cause instanceof ApplicationFailure)) throw new Error(`expected an ApplicationFailure from the workflow, got ${String(err.cause)}`);
  return err.cause;
}

/** The ApplicationFailure an activity failed the workflow with (WorkflowFailedError -> ActivityFailure -> it). */
export async function activityFailure(run: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof WorkflowFailedError)) throw new Error(`expected the workflow to fail, got ${err === undefined ? 'a result' : String(err)}`);
  if (!(err.cause instanceof ActivityFailure) || !(err.cause.cause instanceof ApplicationFailure)) throw new Error(`expected an activity's ApplicationFailure, got ${String(err.cause)}`);
  return err.cause.cause;
}

/** The ApplicationFailure an activity function threw when called directly (no worker); throws if it did not fail that way. */
export async function thrownFailure(run: Promise<unknown>): Promise<ApplicationFailure> {
  const err = await run.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof ApplicationFailure)) throw new Error(`expected an ApplicationFailure, got ${err === undefined ? 'a result' : String(err)}`);
  return err;
}

/** Whether any execution with this workflow id exists, open or closed. */
export async function workflowExists(client: Client, workflowId: string): Promise<boolean> {
  try {
    await client.workflow.getHandle(workflowId).describe();
    return true;
  } catch (err) {
    if (err instanceof WorkflowNotFoundError) return false;
    throw err;
  }
}

/** Every execution a visibility query finds (e.g. `WorkflowId STARTS_WITH 'x-'`, `TaskQueue = 'q'`). */
export async function listExecutions(client: Client, query: string): Promise<{ workflowId: string; runId: string }[]> {
  const out: { workflowId: string; runId: string }[] = [];
  for await (const w of client.workflow.list({ query })) out.push({ workflowId: w.workflowId, runId: w.runId });
  return out;
}
