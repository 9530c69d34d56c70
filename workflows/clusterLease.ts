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
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError, type Duration } from '@temporalio/common';

/**
 * One run per cluster: a long-lived `clusterLease` workflow per (task queue, cluster) hands the
 * cluster to one run at a time, in arrival order. A run asks with the `acquire` signal (or starts the
 * lease as an abandoned child when none is running), waits for `leaseGranted`, and signals `release`
 * when it ends, whatever way it ends; a run cancelled while it waits leaves the queue. A holder that
 * vanished without releasing (terminated) is found by a periodic ping, whose signal fails once the
 * holder is closed; an operator can release a holder that is stuck but open (`ae lease release`).
 * A run that would rather fail than wait asks with `refuseIfBusy`.
 */

export interface LeaseRequest {
  /** Workflow id of the run that wants the cluster. */
  holder: string;
  /** Do not queue: when another run holds the cluster, the lease answers `leaseRefused` at once. */
  refuseIfBusy?: boolean;
}

export interface ForcedRelease {
  holder: string;
  reason: string;
}

export interface LeaseState {
  cluster: string;
  holder?: string;
  /** Runs waiting, in the order they will get the cluster. */
  waiting: string[];
  /** The last holder an operator released by force, and why. */
  forced?: ForcedRelease;
}

export interface ClusterLeaseInput {
  cluster: string;
  queue: LeaseRequest[];
  /** How often the current holder is checked for being alive. */
  pingInterval?: Duration;
  /** Carried over continue-as-new: the last forced release. */
  forced?: ForcedRelease;
}

export const acquireLeaseSignal = defineSignal<[LeaseRequest]>('acquire');
export const releaseLeaseSignal = defineSignal<[LeaseRequest]>('release');
/** Sent to the holder. */
export const leaseGrantedSignal = defineSignal<[{ cluster: string }]>('leaseGranted');
export const leasePingSignal = defineSignal('leasePing');
/** Sent to a run that asked with refuseIfBusy while another run held the cluster. */
export const leaseRefusedSignal = defineSignal<[{ cluster: string; holder: string }]>('leaseRefused');
/** From an operator: the holder loses the cluster (it is stuck, or was fixed by hand); the next run gets it. */
export const forceReleaseSignal = defineSignal<[ForcedRelease]>('forceRelease');
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
  // Short enough that a terminated holder blocks the next run for a minute at most; a few events each.
  const ping = input.pingInterval ?? '1 minute';
  let granted: string | undefined;
  let forced = input.forced;
  const refusals: { holder: string; busyWith: string }[] = [];
  const drop = (holder: string) => {
    const i = queue.findIndex((r) => r.holder === holder);
    if (i >= 0) queue.splice(i, 1);
    if (granted === holder) granted = undefined;
  };
  setHandler(acquireLeaseSignal, ({ holder, refuseIfBusy }) => {
    if (queue.some((r) => r.holder === holder)) return;
    const busyWith = queue[0]?.holder;
    if (refuseIfBusy && busyWith !== undefined) refusals.push({ holder, busyWith });
    else queue.push({ holder });
  });
  setHandler(releaseLeaseSignal, ({ holder }) => drop(holder));
  setHandler(forceReleaseSignal, ({ holder, reason }) => {
    if (queue[0]?.holder !== holder) return;
    forced = { holder, reason };
    drop(holder);
  });
  setHandler(leaseQuery, () => ({ cluster: input.cluster, holder: granted, waiting: queue.map((r) => r.holder).filter((h) => h !== granted), ...(forced ? { forced } : {}) }));
  const answerRefusals = async () => {
    for (const { holder, busyWith } of refusals.splice(0)) await tell(holder, (h) => h.signal(leaseRefusedSignal, { cluster: input.cluster, holder: busyWith }));
  };

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
      const moved = await condition(() => queue[0]?.holder !== holder || refusals.length > 0, ping);
      await answerRefusals();
      if (!moved && !(await tell(holder, (h) => h.signal(leasePingSignal)))) drop(holder);
      if (workflowInfo().continueAsNewSuggested) await continueAsNew<typeof clusterLease>({ ...input, queue, ...(forced ? { forced } : {}) });
    }
    // Idle: linger briefly for the next run, then end (the next run starts a new lease).
    if (!(await condition(() => queue.length > 0 || refusals.length > 0, '1 minute'))) return;
    await answerRefusals();
  }
}

/**
 * In a run: waits for the cluster, then returns the function that gives it back. `onWait` is told
 * when the cluster is busy (for progress).
 */
export async function acquireClusterLease(cluster: string, onWait: (holder: string) => void, opts: { refuseIfBusy?: boolean } = {}): Promise<() => Promise<void>> {
  const me = workflowInfo().workflowId;
  const leaseId = leaseWorkflowId(workflowInfo().taskQueue, cluster);
  let granted = false;
  let refusedBy: string | undefined;
  setHandler(leaseGrantedSignal, () => void (granted = true));
  setHandler(leaseRefusedSignal, ({ holder }) => void (refusedBy = holder));
  setHandler(leasePingSignal, () => undefined);
  const lease = getExternalWorkflowHandle(leaseId);
  // A lease that was terminated meanwhile has nothing to release: never let that mask the run's outcome.
  const release = () => CancellationScope.nonCancellable(() => tell(leaseId, (h) => h.signal(releaseLeaseSignal, { holder: me }))).then(() => undefined);
  try {
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
          await lease.signal(acquireLeaseSignal, { holder: me, ...(opts.refuseIfBusy ? { refuseIfBusy: true } : {}) });
        } catch {
          if (attempt < 5) continue;
          throw err;
        }
        onWait(leaseId);
      }
      await condition(() => granted || refusedBy !== undefined);
      if (refusedBy !== undefined && !granted) {
        throw ApplicationFailure.nonRetryable(`cluster ${cluster} is busy: run ${refusedBy} holds it (lease ${leaseId}); ifBusy is "refuse", so this run did not queue. Start it again later, or with ifBusy "wait".`, 'ClusterBusy', { holder: refusedBy });
      }
    }
  } catch (err) {
    // Cancelled (or refused) while waiting: leave the queue, so the next run is not held up by this one.
    await release();
    throw err;
  }
  return release;
}
