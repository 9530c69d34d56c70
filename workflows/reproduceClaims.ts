import {
  ApplicationFailure,
  CancellationScope,
  condition,
  executeChild,
  isCancellation,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ClusterSummary } from '../activities/probeTypes';
import type { BaselineUsed } from '../activities/run';
import { acquireClusterLease } from './clusterLease';
import { NON_RETRYABLE_SETUP, parseInput } from './failures';
import { buildGuestKernel, type BuildGuestKernelResult } from './guestKernel';
import { installHostKernel, type InstallHostKernelResult } from './installHostKernel';
import { prepareKvmtool, type PreparedKvmtool } from './kvmtool';
import { BASELINE_NEEDS_FRAGVISOR, reproduceClaimsInput, runId as runIdSchema, withBaseline, type Hypervisor, type ReproduceClaimsConfig, type ReproduceClaimsInput } from './inputs';
import { bootCycle } from './bootCycle';
import { runEpoch, type EpochInput, type EpochResult } from './epoch';
import { abortArgProblem, abortedMessage, abortUpdate, pauseUpdate, PAUSED_WAITING_FOR, resumeUpdate, type ControlState } from './control';
import { effectiveClaimSettings, extraEpochs, tallyAdded, withinBudget, type ExtraRepetitionsRecord } from './claims/extra';
import type { ClaimSettings } from './claims/settings';
import { firstLine, rootFailure, rootMessage } from './failureCause';
import { PlanError, planRun, type RunPlan } from './plan/plan';
import { epochStep, runProgressQuery, type RunPhase, type RunProgress, type StepState } from './progress';
import { CLUSTER, PHASE, VERDICT } from './searchAttributes';
import { timeline } from './timeline';

/**
 * reproduceClaims: the whole artifact evaluation as one durable run. This version prepares the
 * cluster: validate, load the profile, take the cluster lease, plan, build kvmtool on the origin
 * when the input names a kvmtoolCommit (workflows/kvmtool.ts), and then per hypervisor the
 * host kernels (a child per node, in parallel; the guest kernel on the origin), a proven reboot into
 * them, and for FragVisor the RDMA messaging layer (a hung or failed layer: a reboot cycle and a
 * bounded retry). Everything it writes lands in the run store, `runs/<workflowId>/`.
 */


const { loadClusterProfile, checkInputFiles, resolveSourceCommit, initRun, recordRun, adoptMeasurements, useBaseline, judgeRun, writeReport } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE_SETUP },
});


export interface PreparedHypervisor {
  hypervisor: Hypervisor;
  kernels: { node: string; release: string; skipped: boolean; commit: string; configHash: string }[];
  guestKernel?: string;
  bootIds: Record<string, string>;
  /** How each node came back (soft / bmc / operator). */
  reboots: Record<string, string>;
  messagingLayer?: { nodes: number; attempts: number };
}

export interface ReproduceClaimsResult {
  runId: string;
  cluster: string;
  simulated: boolean;
  runDir: string;
  planHash: string;
  dryRun: boolean;
  prepared: PreparedHypervisor[];
  /** The kvmtool build on the origin, when the input names a kvmtoolCommit. */
  kvmtool?: PreparedKvmtool;
  /** One entry per epoch (hypervisor x experiment x node count), in run order. */
  epochs: EpochResult[];
  /** Measurements in the run store's results.json (taken now, or adopted from `resumeFrom`). */
  measurements: number;
  /** Where GiantVM's figures come from: measured by this run, a baseline file, or none (FragVisor only). */
  baseline: BaselineUsed | { kind: 'measured' } | { kind: 'none' };
  /** The claim settings the run judged with: the profile's, overridden field by field by the input's. */
  claimSettings?: ClaimSettings;
  /** Repetitions added to narrow intervals that overlapped a threshold (ids and counts). */
  extraRepetitions?: ExtraRepetitionsRecord;
  /** The claims' verdicts and the report (paths relative to runDir), when experiments ran. */
  verdicts?: { id: string; verdict: string; why: string }[];
  report?: { html: string; md: string; junit: string; claims: string };
}

export async function reproduceClaims(rawInput: ReproduceClaimsInput): Promise<ReproduceClaimsResult> {
  const runId = workflowInfo().workflowId;
  const progress: RunProgress = { runId, phase: 'validating', stages: [], nodes: {} };
  setHandler(runProgressQuery, () => progress);
  const parsed: ReproduceClaimsConfig = parseInput(reproduceClaimsInput, rawInput, 'reproduceClaims');
  const measured = withBaseline(parsed);
  if (!measured) throw ApplicationFailure.nonRetryable(`reproduceClaims: invalid input: baseline: ${BASELINE_NEEDS_FRAGVISOR}`, 'InvalidInput', { field: 'baseline' });
  const input: ReproduceClaimsConfig = measured;
  if (!runIdSchema.safeParse(runId).success) {
    throw ApplicationFailure.nonRetryable(
      `reproduceClaims: the workflow id ${JSON.stringify(runId)} names the run's folder in the run store: use letters, digits and _ . : @ + - only`,
      'InvalidInput',
    );
  }

  // Operator control (SESSION3 contract): pause at the next stage, epoch or round; abort cancels `work`.
  const control: ControlState = { paused: false };
  let finished = false;
  const work = new CancellationScope();
  const open = (what: string) => () => {
    if (finished) throw new Error(`${runId} has finished (${progress.phase}): nothing to ${what}`);
  };
  setHandler(
    pauseUpdate,
    () => {
      control.paused = progress.paused = true;
      progress.waitingFor = PAUSED_WAITING_FOR;
      return { ...control };
    },
    { validator: open('pause') },
  );
  setHandler(
    resumeUpdate,
    () => {
      control.paused = false;
      delete progress.paused;
      if (progress.waitingFor === PAUSED_WAITING_FOR) delete progress.waitingFor;
      return { ...control };
    },
    { validator: open('resume') },
  );
  setHandler(
    abortUpdate,
    ({ reason }) => {
      control.aborted = reason.trim();
      work.cancel();
      return { ...control };
    },
    {
      validator: (arg) => {
        const problem = abortArgProblem(arg);
        if (problem) throw new Error(problem);
        open('abort')();
      },
    },
  );
  /** A cancellation caused by an abort becomes the run's Aborted failure; anything else stays as it is. */
  const asAborted = (err: unknown): unknown =>
    control.aborted !== undefined && isCancellation(err) ? ApplicationFailure.nonRetryable(abortedMessage(control.aborted), 'Aborted', { reason: control.aborted }) : err;
  try {
    return await work.run(() => run());
  } catch (err) {
    throw asAborted(err);
  }

  async function run(): Promise<ReproduceClaimsResult> {
    /** Where a paused run waits: before the next stage, epoch or round of added repetitions. */
    const checkpoint = async (next: string) => {
      if (!control.paused) return;
      setCurrentDetails(`**${progress.phase}** (paused): ${next} starts on \`ae resume ${runId}\``);
      await condition(() => !control.paused);
      setCurrentDetails(`**${progress.phase}**: ${next}`);
    };
    const phase = (p: RunPhase, details: string) => {
      progress.phase = p;
      upsertSearchAttributes([{ key: PHASE, value: p }]);
      setCurrentDetails(`**${p}**: ${details}`);
    };
    const nodeStep = (node: string, step: string, state: StepState, extra: { detail?: string; child?: string } = {}) => {
      progress.nodes[node] = { step, state, ...extra };
    };
    const stage = (key: string, state: StepState) => {
      const s = progress.stages.find((x) => x.key === key);
      if (s) s.state = state;
    };

    const cluster = await loadClusterProfile({ cluster: input.cluster }).catch((err: unknown) => {
      // No such profile, or a broken one: the input's `cluster` is what to fix, as for any other bad field.
      const root = rootFailure(err);
      if (!root?.nonRetryable) throw err;
      throw ApplicationFailure.nonRetryable(`reproduceClaims: invalid input: ${root.message}`, 'InvalidInput', { field: 'cluster', cause: root.type });
    });
    // The fields the input sets (its parsed form has every default filled in, which would hide the profile's).
    const judged = effectiveClaimSettings(cluster.claims, rawInput.claims);
    if ('problems' in judged) {
      throw ApplicationFailure.nonRetryable(`reproduceClaims: invalid claim settings (the profile's \`claims\` with the input's on top): ${judged.problems.join('; ')}`, 'InvalidInput', { problems: judged.problems });
    }
    const claimSettings = judged.settings;
    if (input.resumeFrom !== undefined || input.baseline !== undefined) await checkInputFiles({ resumeFrom: input.resumeFrom, baseline: input.baseline });
    progress.cluster = cluster.name;
    progress.simulated = cluster.simulated;
    upsertSearchAttributes([{ key: CLUSTER, value: cluster.name }]);
    const plan = makePlan(input, cluster, {});
    const nodes = cluster.nodes.filter((n) => plan.nodes.includes(n.name));
    for (const n of nodes) nodeStep(n.name, `${input.hypervisors[0]} host kernel`, 'pending');

    if (input.dryRun) {
      progress.stages = plan.stages.map((s) => ({ key: s.key, title: s.title, state: 'pending' }));
      const { runDir } = await initRun({ runId, input, plan });
      progress.runDir = runDir;
      phase('dry run', `plan ${plan.hash} written to ${runDir}/plan.json; nothing ran on ${cluster.name}`);
      return { runId, cluster: cluster.name, simulated: cluster.simulated, runDir, planHash: plan.hash, dryRun: true, prepared: [], epochs: [], measurements: 0, baseline: { kind: 'none' } };
    }

    const release = await acquireClusterLease(
      cluster.name,
      (lease) => {
        progress.waitingFor = `another run holds ${cluster.name} (lease ${lease})`;
        phase('waiting for the cluster', progress.waitingFor);
      },
      { refuseIfBusy: input.ifBusy === 'refuse' },
    );
    if (control.paused) progress.waitingFor = PAUSED_WAITING_FOR;
    else delete progress.waitingFor;
    const prepared: PreparedHypervisor[] = [];
    let runDir = '';
    const counter = { reboots: 0 };
    // Where the hours went, for the report: workflow time, so it replays identically.
    const tl = timeline();
    try {
      phase('planning', 'pinning the source commits');
      const ref = { cluster: input.cluster, profileHash: cluster.hash, runId };
      const commits: Partial<Record<Hypervisor, string>> = {};
      // The guest kernel comes from the FragVisor tree whichever hypervisor runs it.
      const needed: Hypervisor[] = input.experiments.length > 0 && !input.hypervisors.includes('fragvisor') ? ['fragvisor', ...input.hypervisors] : input.hypervisors;
      for (const h of needed) {
        commits[h] = (await resolveSourceCommit({ ...ref, flavour: h, ...(h === 'fragvisor' && input.kernelCommit ? { commit: input.kernelCommit } : {}) })).commit;
      }
      const pinned = makePlan(input, cluster, { commit: commits.fragvisor, giantvmCommit: commits.giantvm });
      progress.stages = pinned.stages.map((s) => ({ key: s.key, title: s.title, state: 'pending' }));
      ({ runDir } = await initRun({ runId, input, plan: pinned }));
      progress.runDir = runDir;
      let measurements = input.resumeFrom ? (await adoptMeasurements({ from: input.resumeFrom, runId })).adopted : 0;
      const baseline: ReproduceClaimsResult['baseline'] = input.baseline
        ? await useBaseline({ runId, file: input.baseline })
        : { kind: input.hypervisors.includes('giantvm') ? 'measured' : 'none' };
      let guestImage: string | undefined;
      const epochs: EpochResult[] = [];
      const cycleTimeouts = { reboot: cluster.timeouts.reboot, operator: cluster.timeouts.operator, messagingLayer: cluster.timeouts.messagingLayer };
      const releases: Partial<Record<Hypervisor, Record<string, string>>> = {};
      /** One epoch's input: the first n nodes booting the hypervisor's kernels (also for a round of added repetitions). */
      const epochInput = (h: Hypervisor, experiment: EpochInput['experiment'], n: number): EpochInput => {
        const epochNodes = nodes.slice(0, n);
        return {
          ...ref,
          hypervisor: h,
          experiment,
          nodes: epochNodes.map((x) => ({ name: x.name, rdmaIp: x.rdmaIp, bmc: x.bmc })),
          repetitions: input.repetitions,
          expectedRelease: Object.fromEntries(epochNodes.map((x) => [x.name, releases[h]![x.name]])),
          guestKernel: guestImage!,
          timeouts: { ...cycleTimeouts, vmBoot: cluster.timeouts.vmBoot, benchmark: cluster.timeouts.benchmark },
          ...(input.bench ? { bench: input.bench } : {}),
        };
      };

      const kernelTimeouts = { kernelBuild: cluster.timeouts.kernelBuild, kernelInstall: cluster.timeouts.kernelInstall };
      /** Hypervisor h's host kernels, a child per node; `again` names a later install of the same build (no rebuild: its marker). */
      const installHostKernels = (h: Hypervisor, again = '') =>
        nodes.map(async (n): Promise<InstallHostKernelResult> => {
          const child = `${runId}/${h}/host-kernel/${n.name}${again}`;
          nodeStep(n.name, `${h} host kernel`, 'running', { child });
          try {
            const result = await executeChild(installHostKernel, {
              workflowId: child,
              args: [{ ...ref, flavour: h, commit: commits[h]!, jobs: input.buildJobs, timeouts: kernelTimeouts, node: n.name, origin: n.origin }],
            });
            nodeStep(n.name, `${h} host kernel`, result.skipped ? 'skipped' : 'done', { detail: result.skipped ? `already runs ${result.release}` : `installed ${result.release}` });
            return result;
          } catch (err) {
            nodeStep(n.name, `${h} host kernel`, 'failed', { detail: firstLine(rootMessage(err)), child });
            throw err;
          }
        });

      let kvmtool: PreparedKvmtool | undefined;
      if (input.kvmtoolCommit !== undefined) {
        // The plan refused kvmtoolCommit without fragvisor. First: a commit that does not build ends the run in minutes.
        const origin = nodes[0].name;
        await checkpoint('the kvmtool build');
        phase('prepare hosts', `kvmtool at ${input.kvmtoolCommit.slice(0, 12)} on the origin ${origin}`);
        stage('fragvisor/kvmtool', 'running');
        const report = (step: string, state: StepState, detail?: string) => nodeStep(origin, `kvmtool ${step}`, state, detail === undefined ? {} : { detail });
        kvmtool = await tl.span('fragvisor/kvmtool', 'build', () =>
          prepareKvmtool({ ...ref, node: origin, commit: input.kvmtoolCommit!, jobs: input.buildJobs, timeouts: kernelTimeouts }, report),
        );
        stage('fragvisor/kvmtool', kvmtool.skipped ? 'skipped' : 'done');
      }

      for (const h of input.hypervisors) {
        await checkpoint(`${h} host kernels`);
        progress.hypervisor = h;
        const commit = commits[h]!;
        const done: PreparedHypervisor = { hypervisor: h, kernels: [], bootIds: {}, reboots: {} };
        prepared.push(done);

        // Host kernels, a child per node; the guest kernel on the origin once the origin's host kernel is in (same checkout).
        phase('prepare hosts', `${h} host kernels on ${nodes.length} node(s) at ${commit.slice(0, 12)}`);
        stage(`${h}/prepare-hosts`, 'running');
        const installs = installHostKernels(h);
        // Built once, from the FragVisor tree: with the first hypervisor whose epochs need a VM, or with
        // FragVisor's hosts in a prepare-only run (planRun puts its steps in the same stage).
        const wantGuest = guestImage === undefined && (h === 'fragvisor' || input.experiments.length > 0);
        const guest: Promise<BuildGuestKernelResult | undefined> = wantGuest
          ? installs[0].then(() =>
              executeChild(buildGuestKernel, {
                workflowId: `${runId}/${h}/guest-kernel`,
                args: [{ ...ref, node: nodes[0].name, commit: commits.fragvisor, jobs: input.buildJobs, timeouts: kernelTimeouts }],
              }),
            )
          : Promise.resolve(undefined);
        const [kernels, guestKernel] = await tl.span(`${h}/prepare-hosts`, 'build', () => settleAll(installs, guest, 'prepare hosts'));
        stage(`${h}/prepare-hosts`, 'done');
        done.kernels = kernels.map((k) => ({ node: k.node, release: k.release, skipped: k.skipped, commit: k.commit, configHash: k.configHash }));
        if (guestKernel) done.guestKernel = guestImage = guestKernel.image;
        if (h === 'fragvisor') checkOriginFlags(kernels, nodes);

        releases[h] = Object.fromEntries(kernels.map((k) => [k.node, k.release]));
        if (input.experiments.length === 0) {
          await checkpoint(`${h} reboot`);
          // Prepare only: boot the new kernels (and for FragVisor load the messaging layer) to prove them.
          stage(`${h}/reboot`, 'running');
          const reporter = {
            phase: (p: RunPhase, details: string) => {
              phase(p, details);
              if (p === 'messaging layer') {
                stage(`${h}/reboot`, 'done');
                stage('fragvisor/messaging-layer', 'running');
              }
            },
            node: nodeStep,
          };
          const cycle = await tl.span(`${h}/boot`, 'reboot', () => bootCycle(
            {
              ...ref,
              hypervisor: h,
              nodes,
              expectedRelease: Object.fromEntries(kernels.map((k) => [k.node, k.release])),
              reason: `boot the ${h} host kernel`,
              timeouts: cycleTimeouts,
              idPrefix: `${runId}/${h}`,
            },
            reporter,
            counter,
          ));
          stage(`${h}/reboot`, 'done');
          if (h === 'fragvisor') stage('fragvisor/messaging-layer', 'done');
          done.bootIds = cycle.bootIds;
          done.reboots = cycle.reboots;
          if (cycle.messagingLayer) done.messagingLayer = cycle.messagingLayer;
        } else {
          // Every epoch starts from its own boot cycle, which also boots the new kernels.
          for (const experiment of input.experiments) {
            for (const n of input.nodeCounts) {
              const epochNodes = nodes.slice(0, n);
              const child = `${runId}/${h}/${experiment}-n${n}`;
              await checkpoint(`${h} ${experiment} on ${n} node(s)`);
              phase('experiments', `${h} ${experiment} on ${n} node(s)`);
              stage(`${h}/${experiment}-n${n}`, 'running');
              for (const node of epochNodes) nodeStep(node.name, epochStep(experiment, n), 'running', { child });
              const result = await tl.span(child.slice(runId.length + 1), 'epoch', () => executeChild(runEpoch, { workflowId: child, args: [epochInput(h, experiment, n)] }));
              for (const node of epochNodes) nodeStep(node.name, epochStep(experiment, n), 'done', { detail: `${result.measured} measured, ${result.reused} reused` });
              stage(`${h}/${experiment}-n${n}`, 'done');
              epochs.push(result);
              measurements += result.measured;
            }
          }
        }
      }

      let extraRepetitions: ExtraRepetitionsRecord | undefined;
      /** Whose host kernels the nodes boot now: the last hypervisor prepared. */
      let installed = input.hypervisors[input.hypervisors.length - 1];
      if (input.experiments.length > 0) {
        // Judge; where a point is undecided only for too wide an interval, measure just those variants again, judge again.
        extraRepetitions = { rounds: 0, added: [], stopped: '' };
        const since = Date.now();
        const budget = `the time budget of ${claimSettings.timeBudgetMinutes} min (claims.timeBudgetMinutes) is spent`;
        while (!extraRepetitions.stopped) {
          const { more } = await judgeRun({ runId, settings: claimSettings, extra: extraRepetitions });
          const round = extraEpochs(more);
          if (round.length === 0) {
            extraRepetitions.stopped = `no interval left to narrow: every point is decided, lacks data or repetitions, or its variants reached ${claimSettings.maxRepetitions} repetitions (claims.maxRepetitions)`;
            break;
          }
          if (!withinBudget(since, Date.now(), claimSettings.timeBudgetMinutes)) {
            extraRepetitions.stopped = budget;
            break;
          }
          const r = ++extraRepetitions.rounds;
          let measuredThisRound = 0;
          // The hypervisor whose kernels are installed now goes first: one kernel switch per round at most.
          round.sort((a, b) => Number(b.hypervisor === installed) - Number(a.hypervisor === installed));
          for (const [i, e] of round.entries()) {
            if (i > 0 && !withinBudget(since, Date.now(), claimSettings.timeBudgetMinutes)) {
              extraRepetitions.stopped = budget;
              break;
            }
            const key = `${e.hypervisor}/${e.experiment}-n${e.nodeCount}/extra-${r}`;
            const what = e.only.map((o) => `${o.variant} +${o.repetitions.length}`).join(', ');
            await checkpoint(`added repetitions ${key}`);
            progress.hypervisor = e.hypervisor;
            phase('experiments', `added repetitions, round ${r}: ${key} (${what})`);
            progress.stages.push({ key, title: `${e.hypervisor} ${e.experiment} on ${e.nodeCount} node(s): added repetitions (${what})`, state: 'running' });
            const epochNodes = nodes.slice(0, e.nodeCount);
            const step = epochStep(e.experiment, e.nodeCount);
            try {
              if (e.hypervisor !== installed) {
                // The other hypervisor's kernels are the default now: install this one's again (built already).
                phase('prepare hosts', `${e.hypervisor} host kernels again, for ${key}`);
                await tl.span(`${e.hypervisor}/host-kernels-again-${r}`, 'build', () => settleAll(installHostKernels(e.hypervisor, `/again-${r}`), Promise.resolve(undefined), 'install the host kernels again'));
                installed = e.hypervisor;
                phase('experiments', `added repetitions, round ${r}: ${key} (${what})`);
              }
              for (const node of epochNodes) nodeStep(node.name, step, 'running', { child: `${runId}/${key}`, detail: `added repetitions, round ${r}` });
              const result = await tl.span(key, 'epoch', () =>
                executeChild(runEpoch, { workflowId: `${runId}/${key}`, args: [{ ...epochInput(e.hypervisor, e.experiment, e.nodeCount), only: e.only, extra: r }] }),
              );
              for (const node of epochNodes) nodeStep(node.name, step, 'done', { detail: `round ${r}: ${result.measured} measured` });
              stage(key, 'done');
              epochs.push(result);
              measurements += result.measured;
              measuredThisRound += result.measured;
              extraRepetitions.added = tallyAdded(extraRepetitions.added, e, more);
            } catch (err) {
              // The measurements so far stand: judge with them, and say why no more were added.
              if (isCancellation(err)) throw err;
              stage(key, 'failed');
              for (const node of epochNodes) nodeStep(node.name, step, 'failed', { detail: firstLine(rootMessage(err)) });
              extraRepetitions.stopped = `${key} failed: ${firstLine(rootMessage(err))}`;
            }
            if (extraRepetitions.stopped) break;
          }
          if (!extraRepetitions.stopped && measuredThisRound === 0) extraRepetitions.stopped = `round ${r} measured nothing new`;
        }
        // claims.json with the final record (the last judgement's verdicts, why adding stopped).
        await judgeRun({ runId, settings: claimSettings, extra: extraRepetitions });
      }

      await checkpoint('the report');
      phase(
        'done',
        input.experiments.length === 0
          ? `${cluster.name} prepared for ${input.hypervisors.join(' and ')}`
          : `${epochs.length} epoch(s), ${measurements} measurement(s) in ${runDir}/results.json`,
      );
      const result: ReproduceClaimsResult = {
        runId,
        cluster: cluster.name,
        simulated: cluster.simulated,
        runDir,
        planHash: pinned.hash,
        dryRun: false,
        prepared,
        ...(kvmtool ? { kvmtool } : {}),
        epochs,
        measurements,
        baseline,
        claimSettings,
        ...(extraRepetitions ? { extraRepetitions } : {}),
      };
      if (input.experiments.length > 0) {
        // The evidence for a reviewer: provenance, the run's record with its timeline, then claims and report.
        phase('report', 'provenance, claims and the report');
        await tl.span('provenance', 'report', () => collectProvenance({ ...ref, planHash: pinned.hash, baseline }));
        // run.json first: the report draws its timeline, every span closed.
        await recordRun({ runId, record: { outcome: 'measured', ...result, timeline: tl.spans() } });
        const report = await writeReport({ runId });
        result.verdicts = report.verdicts;
        result.report = report.files;
        const verdict = summaryVerdict(result.verdicts ?? []);
        upsertSearchAttributes([{ key: VERDICT, value: verdict }]);
        phase('done', `${result.verdicts?.map((v) => `${v.id} ${v.verdict}`).join(', ')}; report ${runDir}/${result.report?.html}${cluster.simulated ? ' (SIMULATED)' : ''}`);
      }
      await recordRun({ runId, record: { outcome: input.experiments.length === 0 ? 'prepared' : 'measured', ...result, timeline: tl.spans() } });
      finished = true;
      return result;
    } catch (caught) {
      const err = asAborted(caught);
      finished = true;
      progress.phase = 'failed';
      progress.error = rootMessage(err);
      delete progress.paused;
      for (const st of progress.stages) if (st.state === 'running') st.state = 'failed';
      upsertSearchAttributes([{ key: PHASE, value: 'failed' }]);
      setCurrentDetails(`**failed**: ${progress.error}`);
      tl.closeOpen('failed');
      // Also when aborted or cancelled: the record says how the run ended.
      const record = { outcome: control.aborted !== undefined ? 'aborted' : isCancellation(err) ? 'cancelled' : 'failed', error: progress.error, prepared, claimSettings, timeline: tl.spans() };
      if (runDir) await CancellationScope.nonCancellable(() => recordRun({ runId, record })).catch(() => undefined);
      throw err;
    } finally {
      await release();
    }
  }
}

// Provenance asks every node once; a node that does not answer is recorded, not fatal.
const { collectProvenance } = proxyActivities<Activities>({
  startToCloseTimeout: '3 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { initialInterval: '2 seconds', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE_SETUP },
});

/** One word for the AeVerdict search attribute: fail if any claim failed, else inconclusive if any is, else pass. */
function summaryVerdict(verdicts: readonly { verdict: string }[]): string {
  if (verdicts.length === 0) return 'none';
  if (verdicts.some((v) => v.verdict === 'fail')) return 'fail';
  return verdicts.some((v) => v.verdict !== 'pass') ? 'inconclusive' : 'pass';
}

/** The plan, or a non-retryable InvalidInput naming the field that does not fit the profile. */
function makePlan(input: ReproduceClaimsConfig, cluster: ClusterSummary, opts: { commit?: string; giantvmCommit?: string }): RunPlan {
  try {
    return planRun(input, cluster, opts);
  } catch (err) {
    if (err instanceof PlanError) throw ApplicationFailure.nonRetryable(`reproduceClaims: invalid input: ${err.message}`, 'InvalidInput', { field: err.field });
    throw err;
  }
}

/**
 * Exactly one origin, node 0: the read-back of every node's debug.h must agree with the profile
 * before any kernel is booted, let alone the messaging layer loaded (two origins or none is only
 * visible there, much later and much less clearly).
 */
function checkOriginFlags(kernels: InstallHostKernelResult[], nodes: ClusterSummary['nodes']): void {
  const wrong = kernels.filter((k) => k.originFlag && k.originFlag.origin !== nodes.find((n) => n.name === k.node)?.origin);
  if (wrong.length === 0) return;
  const say = (k: InstallHostKernelResult) => `${k.node} ${k.originFlag!.origin ? 'has' : 'lacks'} CONFIG_POPCORN_ORIGIN_NODE (${k.originFlag!.lines.join('; ') || 'no line names it'})`;
  throw ApplicationFailure.nonRetryable(`wrong origin flag, caught before the messaging layer: ${wrong.map(say).join('; ')}`, 'OriginFlagMismatch', { nodes: wrong.map((k) => k.node) });
}

/**
 * Waits for every node's install and the guest kernel; when one fails, still lets the others end
 * (a build is never abandoned half-way by its sibling's failure), then throws one failure naming
 * every failed node.
 */
async function settleAll<T, G>(installs: Promise<T>[], guest: Promise<G>, what: string): Promise<[T[], G]> {
  const [results, guestResult] = await Promise.all([Promise.allSettled(installs), Promise.allSettled([guest])]);
  const failed = [...results, ...guestResult].filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length === 1) throw failed[0].reason;
  if (failed.length > 1) {
    throw ApplicationFailure.nonRetryable(`${what}: ${failed.length} failures: ${failed.map((f) => rootMessage(f.reason)).join(' | ')}`, rootFailure(failed[0].reason)?.type ?? 'PrepareHostsFailed');
  }
  return [results.map((r) => (r as PromiseFulfilledResult<T>).value), (guestResult[0] as PromiseFulfilledResult<G>).value];
}
