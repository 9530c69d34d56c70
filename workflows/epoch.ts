import { ActivityCancellationType, ApplicationFailure, CancellationScope, proxyActivities, setCurrentDetails, setHandler } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { bootCycle, type CycleNode } from './bootCycle';
import { benchVariants, measurementKeyId, type BenchSettingsInput, type MeasurementKey, type Pinning, type PlannedVariant } from './commands/bench';
import { firstLine, rootFailure, rootMessage } from './failureCause';
import { NON_RETRYABLE_SETUP } from './failures';
import type { Experiment, Hypervisor } from './inputs';
import { epochProgressQuery, epochSummary, type EpochProgress, type RunPhase, type StepState } from './progress';

/**
 * runEpoch (a child of the run): one (hypervisor, experiment, node count) from a fresh boot cycle to
 * stored measurements (ARTIFACT.md steps 3-6): reboot, messaging layer (FragVisor), VM launch,
 * guest ready, guest setup and pinning, every variant x repetition, VM stopped. The VM cannot be
 * restarted: a VM that dies or a guest that does not boot costs a fresh boot cycle and a retry of
 * this epoch only, at most EPOCH_ATTEMPTS times. Measurements already recorded under their key are
 * not taken again (a resumed run, a retried epoch). With `only`, it measures just those variants and
 * repetition numbers (the run's added repetitions, numbered after the highest recorded).
 * Cancellation leaves nothing running: a VM being launched is launched to the end and stopped, a
 * benchmark's commands are killed before the epoch reports itself cancelled.
 */

export const EPOCH_ATTEMPTS = 2;

export interface EpochInput {
  cluster: string;
  profileHash: string;
  runId: string;
  hypervisor: Hypervisor;
  experiment: Experiment;
  /** The first n nodes, in node-id order (vCPU i runs on node i). */
  nodes: CycleNode[];
  repetitions: number;
  /** `uname -r` every node must boot. */
  expectedRelease: Record<string, string>;
  /** The guest kernel image on the origin (both hypervisors boot the same guest). */
  guestKernel: string;
  timeouts: { reboot: number; operator: number; messagingLayer: number; vmBoot: number; benchmark: number };
  bench?: BenchSettingsInput;
  /** Only these variants, these repetition numbers (instead of every variant x 1..repetitions). */
  only?: { variant: string; repetitions: number[] }[];
  /** The round of added repetitions this epoch serves: names its children and VM logs apart from the first epoch's. */
  extra?: number;
}

export interface EpochResult {
  epoch: string;
  measured: number;
  /** Already recorded (resume): not measured again. */
  reused: number;
  /** Boot cycles this epoch took (1 unless a VM died or a guest did not boot). */
  attempts: number;
}


/** Failures a fresh boot cycle can cure. */
const VM_FAILURES = ['VmDied', 'GuestBootTimeout'];
/** Setups (services restarted, then pinned) per pinning before a pinning that does not hold fails the epoch. */
const PIN_ATTEMPTS = 2;

const NON_RETRYABLE = [...NON_RETRYABLE_SETUP, ...VM_FAILURES, 'VmNetworkFailed', 'InvalidVmInput', 'InvalidInput', 'GuestSetupFailed', 'PinningFailed', 'InvalidBenchmarkInput', 'InvalidMeasurement', 'ResultsCorrupt'];

export const epochName = (i: Pick<EpochInput, 'hypervisor' | 'experiment' | 'nodes'>): string => `${i.hypervisor}/${i.experiment}-n${i.nodes.length}`;

/**
 * The (variant, repetition) pairs an epoch measures, in run order: in rounds, repetition 1 of every
 * variant, then repetition 2 of every variant, ..., each round in the variants' order (pinning cases
 * grouped). Whatever drifts during an epoch (a VM settling after boot, the machine's load) then falls
 * on every variant alike instead of on whichever ran first: E3 compares its local and delegated cases
 * within one epoch. The price is one guest setup per pinning case per round.
 */
export function epochMeasurements(variants: readonly PlannedVariant[], repetitions: number, only?: EpochInput['only']): (PlannedVariant & { repetition: number })[] {
  const unknown = (only ?? []).filter((o) => !variants.some((v) => v.variant === o.variant));
  if (unknown.length > 0) throw new Error(`not variants of this epoch: ${unknown.map((o) => o.variant).join(', ')} (it has ${variants.map((v) => v.variant).join(', ')})`);
  const all = Array.from({ length: repetitions }, (_, r) => r + 1);
  const asked = (v: PlannedVariant) => (only ? only.filter((o) => o.variant === v.variant).flatMap((o) => o.repetitions) : all);
  return variants
    .flatMap((v, order) => asked(v).map((repetition) => ({ v, order, repetition })))
    .sort((a, b) => a.repetition - b.repetition || a.order - b.order)
    .map(({ v, repetition }) => ({ ...v, repetition }));
}

export async function runEpoch(input: EpochInput): Promise<EpochResult> {
  const epoch = input.extra ? `${epochName(input)}/extra-${input.extra}` : epochName(input);
  const ref = { cluster: input.cluster, profileHash: input.profileHash, runId: input.runId };
  const nodeCount = input.nodes.length;
  let planned: ReturnType<typeof epochMeasurements>;
  try {
    planned = epochMeasurements(benchVariants(input.experiment, nodeCount, input.bench), input.repetitions, input.only);
  } catch (err) {
    throw ApplicationFailure.nonRetryable(`${epoch}: invalid input: only: ${(err as Error).message}`, 'InvalidInput', { field: 'only' });
  }
  const progress: EpochProgress = { epoch, phase: 'reboot', nodes: {}, done: 0, total: planned.length };
  setHandler(epochProgressQuery, () => progress);
  const show = () => setCurrentDetails(`**${epoch}** ${epochSummary(progress)}`);
  const reporter = {
    phase: (p: RunPhase | EpochProgress['phase'], _details?: string) => {
      progress.phase = p;
      show();
    },
    node: (node: string, step: string, state: StepState, extra: { detail?: string; child?: string } = {}) => {
      progress.nodes[node] = { step, state, ...extra };
    },
  };

  // A step timeout from the profile (seconds) plus a minute of margin for the activity around it, in ms.
  const withMargin = (s: number) => (Math.ceil(s) + 60) * 1000;
  const { listMeasurements, recordMeasurement } = proxyActivities<Activities>({
    startToCloseTimeout: '1 minute',
    retry: { maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  });
  // The VM's launcher jobs and the guest's services: short steps, safe to repeat (keyed or idempotent).
  const { launchVm, stopVm, vmRunning, setupGuest, pinGuest } = proxyActivities<Activities>({
    startToCloseTimeout: '5 minutes',
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '2 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  });
  const { awaitGuest } = proxyActivities<Activities>({
    startToCloseTimeout: withMargin(input.timeouts.vmBoot),
    heartbeatTimeout: '30 seconds',
    retry: { initialInterval: '2 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
  });
  // A repetition that fails (e.g. BenchmarkFailed: too many failed requests) is retried alone, a few times.
  const { runBenchmark } = proxyActivities<Activities>({
    startToCloseTimeout: withMargin(input.timeouts.benchmark),
    // Cancelled: wait until its commands on the client and the guest are killed (it heartbeats every 2 s).
    cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
    // It heartbeats every 2 s: a worker that died is noticed in seconds, the repetition retried elsewhere.
    heartbeatTimeout: '20 seconds',
    retry: { initialInterval: '5 seconds', backoffCoefficient: 2, maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
  });

  const recorded = new Set(await listMeasurements({ runId: input.runId }).then((keys) => keys.map(measurementKeyId)));
  const key = (variant: string, repetition: number): MeasurementKey => ({ hypervisor: input.hypervisor, experiment: input.experiment, nodeCount, variant, repetition });
  const todo = planned.filter((m) => !recorded.has(measurementKeyId(key(m.variant, m.repetition))));
  const reused = progress.total - todo.length;
  progress.done = reused;
  if (todo.length === 0) return { epoch, measured: 0, reused, attempts: 0 };

  const counter = { reboots: 0 };
  let measured = 0;
  /**
   * Services restarted, then pinned. A pinning that does not hold (a server process gone between
   * `ps` and `taskset`: a php-fpm worker recycled) costs one more setup, which starts fresh
   * processes, not the epoch; a second one fails it.
   */
  const setUpAndPin = async (guest: Parameters<typeof setupGuest>[0]) => {
    for (let attempt = 1; ; attempt++) {
      await setupGuest(guest);
      try {
        return await pinGuest(guest);
      } catch (err) {
        if (attempt >= PIN_ATTEMPTS || rootFailure(err)?.type !== 'PinningFailed') throw err;
        reporter.node(input.nodes[0].name, 'guest setup', 'running', { detail: `pinning did not hold, setting up again: ${firstLine(rootMessage(err))}` });
      }
    }
  };

  for (let attempt = 1; ; attempt++) {
    await bootCycle(
      { ...ref, hypervisor: input.hypervisor, nodes: input.nodes, expectedRelease: input.expectedRelease, reason: `${epoch}: fresh boot for the VM${attempt > 1 ? ` (attempt ${attempt})` : ''}`, timeouts: input.timeouts, idPrefix: `${input.runId}/${epoch}` },
      reporter,
      counter,
    );
    reporter.phase('vm');
    let jobs: Awaited<ReturnType<typeof launchVm>>['jobs'] | undefined;
    try {
      // Not cancellable: a launch cut short would leave a VM whose jobs this epoch never learnt, so nothing could stop it.
      const launch = { ...ref, hypervisor: input.hypervisor, experiment: input.experiment, nodeCount, kernelImage: input.guestKernel, epoch: `${epoch}/${attempt}` };
      jobs = (await CancellationScope.nonCancellable(() => launchVm(launch))).jobs;
      await awaitGuest({ ...ref, jobs, timeoutSeconds: input.timeouts.vmBoot });
      let pinned: Pinning | undefined | null = null;
      reporter.phase('guest setup');
      for (const m of todo.filter((t) => !recorded.has(measurementKeyId(key(t.variant, t.repetition))))) {
        if (pinned === null || m.pinning !== pinned) {
          const guest = { ...ref, hypervisor: input.hypervisor, experiment: input.experiment, nodeCount, ...(m.pinning ? { case: m.pinning } : {}) };
          await setUpAndPin(guest);
          pinned = m.pinning;
        }
        reporter.phase('benchmarks');
        progress.current = `${m.variant} rep ${m.repetition}`;
        show();
        const measurement = await runBenchmark({ ...ref, hypervisor: input.hypervisor, experiment: input.experiment, nodeCount, variant: m.variant, repetition: m.repetition, ...(input.bench ? { settings: input.bench } : {}) });
        await recordMeasurement({ runId: input.runId, measurement });
        recorded.add(measurementKeyId(measurement.key));
        measured++;
        progress.done++;
      }
      delete progress.current;
      return { epoch, measured, reused, attempts: attempt };
    } catch (err) {
      // A step in the guest that failed because the VM died is a VM failure, whatever the step said.
      const vmDied =
        VM_FAILURES.includes(rootFailure(err)?.type ?? '') ||
        // When even that cannot be told, the step's own failure stands.
        (jobs !== undefined && !(await vmRunning({ ...ref, jobs }).catch(() => ({ running: true }))).running);
      if (!vmDied || attempt >= EPOCH_ATTEMPTS) throw err;
      // The VM cannot be restarted: reboot every node and launch a new one (ARTIFACT.md step 4).
      reporter.node(input.nodes[0].name, 'vm', 'failed', { detail: firstLine(rootMessage(err)) });
    } finally {
      const launched = jobs;
      if (launched) await CancellationScope.nonCancellable(() => stopVm({ ...ref, jobs: launched }));
    }
  }
}
