import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  executeChild,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ClusterSummary } from '../activities/probeTypes';
import { acquireClusterLease } from './clusterLease';
import { NON_RETRYABLE_SETUP, parseInput } from './failures';
import { buildGuestKernel, type BuildGuestKernelResult } from './guestKernel';
import { installHostKernel, type InstallHostKernelResult } from './installHostKernel';
import { reproduceClaimsInput, runId as runIdSchema, type Hypervisor, type ReproduceClaimsConfig, type ReproduceClaimsInput } from './inputs';
import { messagingLayer, type MessagingLayerFailure, type MessagingLayerResult } from './messagingLayer';
import { PlanError, planRun, type RunPlan } from './plan/plan';
import { runProgressQuery, type RunPhase, type RunProgress, type StepState } from './progress';
import { rebootNodes, type RebootNodesResult } from './rebootNodes';
import { CLUSTER, PHASE } from './searchAttributes';

/**
 * reproduceClaims: the whole artifact evaluation as one durable run. This version prepares the
 * cluster: validate, load the profile, take the cluster lease, plan, and then per hypervisor the
 * host kernels (a child per node, in parallel; the guest kernel on the origin), a proven reboot into
 * them, and for FragVisor the RDMA messaging layer (a hung or failed layer: a reboot cycle and a
 * bounded retry). Everything it writes lands in the run store, `runs/<workflowId>/`.
 */


const { loadClusterProfile, resolveSourceCommit, initRun, recordRun } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  retry: { initialInterval: '1 second', maximumInterval: '30 seconds', maximumAttempts: 10, nonRetryableErrorTypes: NON_RETRYABLE_SETUP },
});

/** Reboot cycles (and new attempts) the messaging layer gets after its first failure. */
const MSG_LAYER_RETRIES = 2;

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
  /** Experiments asked for but not run by this version (the epochs come next). */
  notRun: string[];
}

/** The message of the root cause of a child or activity failure. */
function rootMessage(err: unknown): string {
  let e: unknown = err;
  while ((e instanceof ChildWorkflowFailure || e instanceof ActivityFailure) && e.cause) e = e.cause;
  return e instanceof Error ? e.message : String(err);
}

function rootFailure(err: unknown): ApplicationFailure | undefined {
  let e: unknown = err;
  while ((e instanceof ChildWorkflowFailure || e instanceof ActivityFailure) && e.cause) e = e.cause;
  return e instanceof ApplicationFailure ? e : undefined;
}

export async function reproduceClaims(rawInput: ReproduceClaimsInput): Promise<ReproduceClaimsResult> {
  const runId = workflowInfo().workflowId;
  const progress: RunProgress = { runId, phase: 'validating', stages: [], nodes: {} };
  setHandler(runProgressQuery, () => progress);
  const input: ReproduceClaimsConfig = parseInput(reproduceClaimsInput, rawInput, 'reproduceClaims');
  if (!runIdSchema.safeParse(runId).success) {
    throw ApplicationFailure.nonRetryable(
      `reproduceClaims: the workflow id ${JSON.stringify(runId)} names the run's folder in the run store: use letters, digits and _ . : @ + - only`,
      'InvalidInput',
    );
  }

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

  const cluster = await loadClusterProfile({ cluster: input.cluster });
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
    return { runId, cluster: cluster.name, simulated: cluster.simulated, runDir, planHash: plan.hash, dryRun: true, prepared: [], notRun: input.experiments };
  }

  phase('waiting for the cluster', `asking for the lease on ${cluster.name}`);
  const release = await acquireClusterLease(cluster.name, (lease) => {
    progress.waitingFor = `another run holds ${cluster.name} (lease ${lease})`;
    setCurrentDetails(`**waiting for the cluster**: ${progress.waitingFor}`);
  });
  delete progress.waitingFor;
  const prepared: PreparedHypervisor[] = [];
  let runDir = '';
  let reboots = 0;
  try {
    phase('planning', 'pinning the source commits');
    const ref = { cluster: input.cluster, profileHash: cluster.hash, runId };
    const commits: Partial<Record<Hypervisor, string>> = {};
    for (const h of input.hypervisors) {
      commits[h] = (await resolveSourceCommit({ ...ref, flavour: h, ...(h === 'fragvisor' && input.kernelCommit ? { commit: input.kernelCommit } : {}) })).commit;
    }
    const pinned = makePlan(input, cluster, { commit: commits.fragvisor, giantvmCommit: commits.giantvm });
    progress.stages = pinned.stages.map((s) => ({ key: s.key, title: s.title, state: 'pending' }));
    ({ runDir } = await initRun({ runId, input, plan: pinned }));
    progress.runDir = runDir;

    for (const h of input.hypervisors) {
      progress.hypervisor = h;
      const commit = commits[h]!;
      const done: PreparedHypervisor = { hypervisor: h, kernels: [], bootIds: {}, reboots: {} };
      prepared.push(done);

      // Host kernels, a child per node; the guest kernel on the origin once the origin's host kernel is in (same checkout).
      phase('prepare hosts', `${h} host kernels on ${nodes.length} node(s) at ${commit.slice(0, 12)}`);
      stage(`${h}/prepare-hosts`, 'running');
      const kernelInput = { ...ref, flavour: h, commit, jobs: input.buildJobs, timeouts: { kernelBuild: cluster.timeouts.kernelBuild, kernelInstall: cluster.timeouts.kernelInstall } };
      const installs = nodes.map(async (n): Promise<InstallHostKernelResult> => {
        const child = `${runId}/${h}/host-kernel/${n.name}`;
        nodeStep(n.name, `${h} host kernel`, 'running', { child });
        try {
          const result = await executeChild(installHostKernel, { workflowId: child, args: [{ ...kernelInput, node: n.name, origin: n.origin }] });
          nodeStep(n.name, `${h} host kernel`, result.skipped ? 'skipped' : 'done', { detail: result.skipped ? `already runs ${result.release}` : `installed ${result.release}` });
          return result;
        } catch (err) {
          nodeStep(n.name, `${h} host kernel`, 'failed', { detail: firstLine(rootMessage(err)), child });
          throw err;
        }
      });
      const guest: Promise<BuildGuestKernelResult | undefined> =
        h === 'fragvisor'
          ? installs[0].then(() =>
              executeChild(buildGuestKernel, {
                workflowId: `${runId}/${h}/guest-kernel`,
                args: [{ ...ref, node: nodes[0].name, commit, jobs: input.buildJobs, timeouts: kernelInput.timeouts }],
              }),
            )
          : Promise.resolve(undefined);
      const [kernels, guestKernel] = await settleAll(installs, guest, 'prepare hosts');
      stage(`${h}/prepare-hosts`, 'done');
      done.kernels = kernels.map((k) => ({ node: k.node, release: k.release, skipped: k.skipped, commit: k.commit, configHash: k.configHash }));
      if (guestKernel) done.guestKernel = guestKernel.image;
      if (h === 'fragvisor') checkOriginFlags(kernels, nodes);

      done.bootIds = await rebootCycle(h, kernels, `boot the ${h} host kernel`);
      if (h === 'fragvisor') {
        phase('messaging layer', `msg_rdma on ${nodes.length} node(s), insmod in node order`);
        stage('fragvisor/messaging-layer', 'running');
        for (let attempt = 1; ; attempt++) {
          for (const n of nodes) nodeStep(n.name, 'messaging layer', 'running', { child: `${runId}/${h}/msg-layer/${attempt}` });
          try {
            const layer: MessagingLayerResult = await executeChild(messagingLayer, {
              workflowId: `${runId}/${h}/msg-layer/${attempt}`,
              args: [{ ...ref, nodes: nodes.map((n) => ({ name: n.name, rdmaIp: n.rdmaIp })), bootIds: done.bootIds, timeoutSeconds: cluster.timeouts.messagingLayer }],
            });
            for (const n of layer.nodes) nodeStep(n.node, 'messaging layer', 'done', { detail: `node ${n.nodeId}, ${n.joined.length} peer(s) joined` });
            done.messagingLayer = { nodes: layer.nodes.length, attempts: attempt };
            break;
          } catch (err) {
            const failure = rootFailure(err);
            const details = failure?.type === 'MessagingLayerFailed' ? (failure.details?.[0] as MessagingLayerFailure | undefined) : undefined;
            const curable = details && (details.kind === 'hang' || details.kind === 'rdma-error');
            for (const n of nodes) {
              const bad = details?.nodes.includes(n.name);
              nodeStep(n.name, 'messaging layer', bad ? 'failed' : 'pending', bad ? { detail: firstLine(details?.lines.at(-1) ?? rootMessage(err)) } : {});
            }
            if (!curable || attempt > MSG_LAYER_RETRIES) {
              stage('fragvisor/messaging-layer', 'failed');
              const tried = attempt > 1 ? ` after ${attempt} attempts with a reboot cycle before each retry` : '';
              throw ApplicationFailure.nonRetryable(`messaging layer failed${tried}: ${rootMessage(err)}`, 'MessagingLayerFailed', details);
            }
            // A hung or half-connected layer is only cured by rebooting every node (ARTIFACT.md step 3).
            done.bootIds = await rebootCycle(h, kernels, `messaging layer attempt ${attempt} failed (${details.kind} on ${details.nodes.join(', ')}): reboot before retrying`);
          }
        }
        stage('fragvisor/messaging-layer', 'done');
      }
    }

    phase('done', `${cluster.name} prepared for ${input.hypervisors.join(' and ')}${input.experiments.length ? `; experiments ${input.experiments.join(', ')} are not automated yet` : ''}`);
    const result: ReproduceClaimsResult = { runId, cluster: cluster.name, simulated: cluster.simulated, runDir, planHash: pinned.hash, dryRun: false, prepared, notRun: input.experiments };
    await recordRun({ runId, record: { outcome: 'prepared', ...result } });
    return result;
  } catch (err) {
    progress.phase = 'failed';
    progress.error = rootMessage(err);
    upsertSearchAttributes([{ key: PHASE, value: 'failed' }]);
    setCurrentDetails(`**failed**: ${progress.error}`);
    if (runDir) await recordRun({ runId, record: { outcome: 'failed', error: progress.error, prepared } }).catch(() => undefined);
    throw err;
  } finally {
    await release();
  }

  /** Reboots every node of the run into `h`'s kernel; returns the new boot ids. */
  async function rebootCycle(h: Hypervisor, kernels: InstallHostKernelResult[], reason: string): Promise<Record<string, string>> {
    phase('reboot', reason);
    stage(`${h}/reboot`, 'running');
    const child = `${runId}/${h}/reboot/${++reboots}`;
    for (const n of nodes) nodeStep(n.name, 'reboot', 'running', { child });
    let result: RebootNodesResult;
    try {
      result = await executeChild(rebootNodes, {
        workflowId: child,
        args: [
          {
            cluster: input.cluster,
            profileHash: cluster.hash,
            runId,
            nodes: nodes.map((n) => n.name),
            bmcNodes: nodes.filter((n) => n.bmc).map((n) => n.name),
            expectedRelease: Object.fromEntries(kernels.map((k) => [k.node, k.release])),
            reason,
            timeouts: { reboot: cluster.timeouts.reboot, operator: cluster.timeouts.operator },
          },
        ],
      });
    } catch (err) {
      stage(`${h}/reboot`, 'failed');
      for (const n of nodes) nodeStep(n.name, 'reboot', 'failed', { detail: firstLine(rootMessage(err)), child });
      throw err;
    }
    for (const n of nodes) nodeStep(n.name, 'reboot', 'done', { detail: `${result[n.name].kernelRelease} (${result[n.name].how})` });
    stage(`${h}/reboot`, 'done');
    prepared.at(-1)!.reboots = Object.fromEntries(Object.entries(result).map(([n, r]) => [n, r.how]));
    return Object.fromEntries(Object.entries(result).map(([n, r]) => [n, r.bootId]));
  }
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

function firstLine(s: string): string {
  return s.split('\n')[0].slice(0, 200);
}
