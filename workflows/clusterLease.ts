import {
  CancellationScope,
  condition,
  continueAsNew,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  setHandler,
  startChild,
  workflowInfo,
  ParentClosePolicy,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError, type Duration } from '@temporalio/common';

/**
 * One run per cluster: a long-lived `clusterLease` workflow per (task queue, cluster) hands the
 * cluster to one run at a time, in arrival order. A run asks with the `acquire` signal (or starts the
 * lease as an abandoned child when none is running), waits for `leaseGranted`, and signals `release`
 * when it ends, whatever way it ends. A holder that vanished without releasing (terminated) is found
 * by a periodic ping, whose signal fails once the holder is closed.
 */

export interface LeaseRequest {
  /** Workflow id of the run that wants the cluster. */
  holder: string;
}

export interface LeaseState {
  cluster: string;
  holder?: string;
  /** Runs waiting, in the order they will get the cluster. */
  waiting: string[];
}

export interface ClusterLeaseInput {
  cluster: string;
  queue: LeaseRequest[];
  /** How often the current holder is checked for being alive. */
  pingInterval?: Duration;
}

export const acquireLeaseSignal = defineSignal<[LeaseRequest]>('acquire');
export const releaseLeaseSignal = defineSignal<[LeaseRequest]>('release');
/** Sent to the holder. */
export const leaseGrantedSignal = defineSignal<[{ cluster: string }]>('leaseGranted');
export const leasePingSignal = defineSignal('leasePing');
export const leaseQuery = defineQuery<LeaseState>('lease');

/** The lease's workflow id: per task queue, so separate deployments on one namespace do not share it. */
export function leaseWorkflowId(taskQueue: string, cluster: string): string {
  return `lease/${taskQueue}/${cluster}`;
}

/** Signals a run; false when it is closed (or gone). */
async function tell(holder: string, send: (h: ReturnType<typeof getExternalWorkflowHandle>) => Promise<void>): Promise<boolean> {
  try {
    await send(getExternalWorkflowHandle(holder));
    return true;
  } catch {
    return false;
  }
}

export async function clusterLease(input: ClusterLeaseInput): Promise<void> {
  const queue = [...input.queue];
  const ping = input.pingInterval ?? '5 minutes';
  let granted: string | undefined;
  setHandler(acquireLeaseSignal, ({ holder }) => {
    if (!queue.some((r) => r.holder === holder)) queue.push({ holder });
  });
  setHandler(releaseLeaseSignal, ({ holder }) => {
    const i = queue.findIndex((r) => r.holder === holder);
    if (i >= 0) queue.splice(i, 1);
    if (granted === holder) granted = undefined;
  });
  setHandler(leaseQuery, () => ({ cluster: input.cluster, holder: granted, waiting: queue.map((r) => r.holder).filter((h) => h !== granted) }));

  for (;;) {
    while (queue.length > 0) {
      const holder = queue[0].holder;
      if (granted !== holder) {
        if (!(await tell(holder, (h) => h.signal(leaseGrantedSignal, { cluster: input.cluster })))) {
          queue.shift();
          continue;
        }
        granted = holder;
      }
      const moved = await condition(() => queue[0]?.holder !== holder, ping);
      if (!moved && !(await tell(holder, (h) => h.signal(leasePingSignal)))) {
        queue.shift();
        granted = undefined;
      }
      if (workflowInfo().continueAsNewSuggested) await continueAsNew<typeof clusterLease>({ ...input, queue });
    }
    // Idle: linger briefly for the next run, then end (the next run starts a new lease).
    if (!(await condition(() => queue.length > 0, '1 minute'))) return;
  }
}

/**
 * In a run: waits for the cluster, then returns the function that gives it back. `onWait` is told
 * when the cluster is busy (for progress).
 */
export async function acquireClusterLease(cluster: string, onWait: (holder: string) => void): Promise<() => Promise<void>> {
  const me = workflowInfo().workflowId;
  const leaseId = leaseWorkflowId(workflowInfo().taskQueue, cluster);
  let granted = false;
  setHandler(leaseGrantedSignal, () => void (granted = true));
  setHandler(leasePingSignal, () => undefined);
  const lease = getExternalWorkflowHandle(leaseId);
  for (let attempt = 0; !granted; attempt++) {
    try {
      await startChild(clusterLease, {
        workflowId: leaseId,
        args: [{ cluster, queue: [{ holder: me }] }],
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
    } catch (err) {
      if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
      // A lease runs already: queue up. If it ended in between, the signal fails and we start one.
      try {
        await lease.signal(acquireLeaseSignal, { holder: me });
      } catch {
        if (attempt < 5) continue;
        throw err;
      }
      onWait(leaseId);
    }
    await condition(() => granted);
  }
  // A lease that was terminated meanwhile has nothing to release: never let that mask the run's outcome.
  return () => CancellationScope.nonCancellable(() => tell(leaseId, (h) => h.signal(releaseLeaseSignal, { holder: me }))).then(() => undefined);
}
