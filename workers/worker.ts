import { NativeConnection, Worker, type WorkerOptions } from '@temporalio/worker';
import { TASK_QUEUE } from '../config/constants';
import { temporalConnectConfig } from '../config/temporal';
import { createActivities } from '../activities';
import { SshPool } from '../activities/ssh/pool';
import { cachedWorkflowBundle } from './workflowBundle';

export interface AeWorker {
  worker: Worker;
  pool: SshPool;
  /** Runs until shutdown; closes the SSH pool and the connection afterwards. */
  run(): Promise<void>;
}

export interface AeWorkerOptions {
  connection?: NativeConnection;
  namespace?: string;
  /** Pre-built workflow bundle; default AE_WORKFLOW_BUNDLE (a bundle file path), else the cached bundle of workflows/ (built on first use). */
  workflowBundle?: WorkerOptions['workflowBundle'];
  taskQueue?: string;
}

/** The worker: every workflow in workflows/, every activity over one shared SSH pool. */
export async function createAeWorker(opts: AeWorkerOptions = {}): Promise<AeWorker> {
  const env = temporalConnectConfig();
  const ownConnection = !opts.connection;
  const connection = opts.connection ?? (await NativeConnection.connect(env.connectionOptions));
  const pool = new SshPool();
  const bundleFile = process.env.AE_WORKFLOW_BUNDLE;
  const workflowBundle = opts.workflowBundle ?? { codePath: bundleFile || (await cachedWorkflowBundle()) };
  // AE_STICKY_QUEUE_TIMEOUT (e.g. `2s`; default the SDK's 10 s): how long a task of a workflow this worker
  // has cached waits on its sticky queue before any worker may take it, i.e. what a dead worker costs
  // its workflows. Tests that SIGKILL workers shorten it.
  const sticky = process.env.AE_STICKY_QUEUE_TIMEOUT as WorkerOptions['stickyQueueScheduleToStartTimeout'] | undefined;
  const worker = await Worker.create({
    connection,
    namespace: opts.namespace ?? env.namespace,
    taskQueue: opts.taskQueue ?? TASK_QUEUE,
    workflowBundle,
    activities: createActivities({ ssh: pool }),
    // Workflows open at once: a 64-node prepare-hosts has ~70 (a host-kernel child per node, its parents).
    // The SDK's default is derived from the V8 heap limit (~2300 here) at ~1 MB per cached workflow.
    maxCachedWorkflows: 200,
    ...(sticky ? { stickyQueueScheduleToStartTimeout: sticky } : {}),
  });
  return {
    worker,
    pool,
    async run() {
      try {
        await worker.run();
      } finally {
        await pool.close();
        if (ownConnection) await connection.close();
      }
    },
  };
}
