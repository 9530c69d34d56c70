import type { ClusterSummary } from '../../activities/probeTypes';
import { benchSteps, benchVariants } from '../commands/bench';
import { guestSteps } from '../commands/guest';
import { guestKernelLayout, guestKernelSteps, hostKernelSteps } from '../commands/kernel';
import { kvmtoolSteps } from '../commands/kvmtool';
import { vmSteps } from '../commands/vm';
import { ipmitoolArgs } from '../commands/ipmitool';
import { messagingLayerSteps } from '../commands/msglayer';
import { toCommandLine } from '../commands/quote';
import { BOOT_STATE_COMMAND, SOFT_REBOOT_COMMAND } from '../commands/reboot';
import { BASELINE_NEEDS_FRAGVISOR, HYPERVISORS, reproduceClaimsInput, withBaseline, type Experiment, type Hypervisor, type ReproduceClaimsConfig } from '../inputs';
import { canonicalJson, fnv1a64 } from './hash';
import type { PlanStage, PlanStep } from './types';

/**
 * The plan: a pure, deterministic function of (input, profile summary, resolved commits) to ordered
 * stages of steps with stable keys. The workflow executes it, `ae plan` prints it; the same arguments
 * give a byte-identical plan and hash. No Node built-ins: it runs in workflow code.
 *
 * With a kvmtoolCommit, first the kvmtool build on the origin (needs fragvisor among the hypervisors).
 * Per hypervisor: prepare the hosts, then either (no experiments) a proving boot cycle, or one stage
 * per epoch (experiment x node count): its boot cycle, the VM, guest setup and pinning, and one
 * repetition of every benchmark variant (the run repeats them `repetitions` times).
 */

export interface RunPlan {
  /** The profile's name. */
  cluster: string;
  simulated: boolean;
  profileHash: string;
  /** The first max(nodeCounts) nodes of the profile, in node-id order (the origin first). */
  nodes: string[];
  hypervisors: Hypervisor[];
  experiments: Experiment[];
  nodeCounts: number[];
  /** FragVisor checkout commit; absent: the commands show FRAGVISOR_COMMIT_PLACEHOLDER (a plan for display only). */
  commit?: string;
  /** Linux-DSM checkout commit (GiantVM's own repository); absent: GIANTVM_COMMIT_PLACEHOLDER. */
  giantvmCommit?: string;
  /** fragvisor-kvmtool commit built on the origin (the input's kvmtoolCommit); absent: no kvmtool build. */
  kvmtoolCommit?: string;
  stages: PlanStage[];
  /** FNV-1a 64 over the canonical JSON of everything above. */
  hash: string;
}

export interface PlanOptions {
  /** The FragVisor checkout's commit: the input's kernelCommit, else what the origin has checked out. */
  commit?: string;
  /** Linux-DSM's commit for GiantVM: its repository is not FragVisor's, so it is resolved on its own. */
  giantvmCommit?: string;
}

/** An input that does not fit the profile; `field` names the input field (`nodeCounts`). */
export class PlanError extends Error {
  override readonly name = 'PlanError';
  constructor(
    readonly field: string,
    problem: string,
  ) {
    super(`${field}: ${problem}`);
  }
}

/** What commands show for a commit the run resolves when it starts. */
export const FRAGVISOR_COMMIT_PLACEHOLDER = '<fragvisor-commit>';
export const GIANTVM_COMMIT_PLACEHOLDER = '<giantvm-commit>';

/**
 * The builders accept only real hashes, so an unresolved commit is planned with a sentinel that is
 * then replaced by its placeholder in every string of the steps.
 */
const SENTINEL: Record<Hypervisor, { sha: string; placeholder: string }> = {
  fragvisor: { sha: 'f7a9f7a9f7a9f7a9f7a9f7a9f7a9f7a9f7a9f7a9', placeholder: FRAGVISOR_COMMIT_PLACEHOLDER },
  giantvm: { sha: '61a9761a9761a9761a9761a9761a9761a9761a97', placeholder: GIANTVM_COMMIT_PLACEHOLDER },
};

/** The release FragVisor's host kernel reports (LOCALVERSION "-pop-hype", ARTIFACT.md). */
export const FRAGVISOR_RELEASE = '4.4.137-pop-hype';

const NAMES: Record<Hypervisor, string> = { fragvisor: 'FragVisor', giantvm: 'GiantVM' };

const commitSchema = reproduceClaimsInput.shape.kernelCommit;

function checkCommit(field: string, commit: string | undefined): string | undefined {
  if (commit === undefined) return undefined;
  const result = commitSchema.safeParse(commit);
  if (!result.success) throw new PlanError(field, `${result.error.issues[0].message}, got ${JSON.stringify(commit)}`);
  return commit;
}

function withPlaceholder(steps: PlanStep[], sha: string, placeholder: string): PlanStep[] {
  const fix = (s: string) => s.split(sha).join(placeholder);
  return steps.map((s) => ({ ...s, title: fix(s.title), commands: s.commands.map(fix), ...(s.note === undefined ? {} : { note: fix(s.note) }) }));
}

function prepareHostsStage(h: Hypervisor, cluster: ClusterSummary, nodes: ClusterSummary['nodes'], commits: Record<Hypervisor, string | undefined>, jobs: number, withGuest: boolean): PlanStage {
  const sha = (x: Hypervisor) => commits[x] ?? SENTINEL[x].sha;
  let steps = nodes.flatMap((node) => [
    ...hostKernelSteps({ hypervisor: h, node: node.name, origin: node.origin, paths: cluster.paths, commit: sha(h), jobs }),
    // The guest kernel always comes from the FragVisor tree.
    ...(withGuest && node.origin ? guestKernelSteps({ node: node.name, paths: cluster.paths, commit: sha('fragvisor'), jobs }) : []),
  ]);
  for (const x of HYPERVISORS) if (commits[x] === undefined) steps = withPlaceholder(steps, SENTINEL[x].sha, SENTINEL[x].placeholder);
  const origin = nodes[0].name;
  return {
    key: `${h}/prepare-hosts`,
    title:
      h === 'fragvisor'
        ? `${NAMES[h]}: host kernel on ${nodes.length} node(s), guest kernel on the origin ${origin} in its own worktree`
        : `${NAMES[h]}: Linux-DSM host kernel on ${nodes.length} node(s)`,
    parallel: true,
    steps,
  };
}

/** kvmtool is on a shared path: one build on the origin serves every node's VM. */
function kvmtoolStage(cluster: ClusterSummary, origin: string, commit: string, jobs: number): PlanStage {
  return {
    key: 'fragvisor/kvmtool',
    title: `FragVisor: kvmtool (lkvm) at ${commit} built on the origin ${origin} (a shared path: one build serves every node)`,
    parallel: false,
    steps: kvmtoolSteps({ node: origin, dir: cluster.paths.kvmtool, commit, jobs }),
  };
}

function rebootStage(h: Hypervisor, cluster: ClusterSummary, nodes: ClusterSummary['nodes'], prefix = `${h}/reboot`): PlanStage {
  const release = h === 'fragvisor' ? `the release the host-kernel build reported (${FRAGVISOR_RELEASE} for fragvisor-linux)` : 'the release the Linux-DSM build reported';
  const { reboot, operator } = cluster.timeouts;
  const operatorWait = (node: string) =>
    `waits for an operator (signal operator {"node":"${node}","action":"power-cycled"} or "give-up") at most ${operator} s`;
  const steps = nodes.flatMap((node): PlanStep[] => {
    const key = (what: string) => `${prefix}/${node.name}/${what}`;
    const host = { node: node.name };
    const bmc = node.bmcEndpoint;
    return [
      { key: key('read-boot-state'), title: `${node.name}: read boot_id and uname -r before the reboot`, host, commands: [BOOT_STATE_COMMAND] },
      {
        key: key('soft-reboot'),
        title: `${node.name}: soft reboot`,
        host,
        commands: [SOFT_REBOOT_COMMAND],
        privileged: true,
        note: 'The SSH connection drops as the node goes down. Sent once: a hung reboot is never asked again.',
      },
      {
        key: key('await-boot'),
        title: `${node.name}: back with a new boot_id and uname -r = ${release}`,
        host,
        commands: [BOOT_STATE_COMMAND],
        note: `Polled until boot_id differs from the one read before (proof of a reboot) and uname -r matches, at most ${reboot} s. A wrong kernel stops the run.${
          bmc ? '' : ` Not back in time and no BMC: ${operatorWait(node.name)}.`
        }`,
      },
      ...(bmc
        ? [
            {
              key: key('bmc-power-cycle'),
              title: `${node.name}: escalation: BMC power cycle from the control host`,
              host: { controlHost: true as const },
              commands: [toCommandLine(['ipmitool', ...ipmitoolArgs({ host: bmc.host, port: bmc.port, user: bmc.user }, 'cycle')])],
              note: `Only when ${node.name} is not back within ${reboot} s of the soft reboot; ipmitool reads the password from IPMI_PASSWORD (-E), set from the worker's $${bmc.passwordEnv}. Then the new boot_id is awaited again; still not back: ${operatorWait(node.name)}.`,
            },
          ]
        : []),
    ];
  });
  return {
    key: prefix,
    title: `${NAMES[h]}: reboot ${nodes.length} node(s) into the new host kernel, proven by boot_id and uname -r`,
    parallel: true,
    steps,
  };
}

function messagingLayerStage(cluster: ClusterSummary, nodes: ClusterSummary['nodes']): PlanStage {
  return {
    key: 'fragvisor/messaging-layer',
    title: `FragVisor: RDMA messaging layer on ${nodes.length} node(s) (${nodes.map((n) => n.name).join(', ')}), insmod in node order`,
    parallel: false,
    steps: messagingLayerSteps({ hypervisor: 'fragvisor', nodes: nodes.map((n) => ({ name: n.name, rdmaIp: n.rdmaIp })), paths: cluster.paths }),
  };
}

/**
 * One epoch: its own boot cycle on the first n nodes (reboot, messaging layer for FragVisor), the
 * VM, guest setup and pinning, and one repetition of every benchmark variant.
 */
function epochStage(h: Hypervisor, experiment: Experiment, cluster: ClusterSummary, nodes: ClusterSummary['nodes'], input: ReproduceClaimsConfig): PlanStage {
  const n = nodes.length;
  const prefix = `${h}/${experiment}-n${n}`;
  const ring = nodes.map((x) => ({ name: x.name, rdmaIp: x.rdmaIp }));
  const variants = benchVariants(experiment, n, input.bench);
  const steps = [
    ...rebootStage(h, cluster, nodes, `${prefix}/reboot`).steps,
    ...(h === 'fragvisor' ? messagingLayerSteps({ hypervisor: prefix, nodes: ring, paths: cluster.paths }) : []),
    ...vmSteps({ hypervisor: h, experiment, nodeCount: n, nodes: ring, paths: cluster.paths, guest: cluster.guest, kernelImage: guestKernelLayout(cluster.paths).image }),
    ...guestSteps({ hypervisor: h, experiment, nodeCount: n, paths: cluster.paths }),
    ...benchSteps({ hypervisor: h, experiment, nodeCount: n, guestIp: cluster.guest.ip, clientHost: cluster.client ? 'client' : nodes[0].name, ...(input.bench ? { settings: input.bench } : {}) }),
  ];
  return {
    key: prefix,
    title: `${NAMES[h]}: ${experiment} on ${n} node(s): fresh boot, ${h === 'fragvisor' ? 'messaging layer, ' : ''}VM, guest setup and pinning, ${variants.length} variant(s) x ${input.repetitions} repetition(s)`,
    parallel: false,
    steps,
  };
}

export function planRun(asked: ReproduceClaimsConfig, cluster: ClusterSummary, opts: PlanOptions = {}): RunPlan {
  const input = withBaseline(asked);
  if (!input) throw new PlanError('baseline', BASELINE_NEEDS_FRAGVISOR);
  const n = Math.max(...input.nodeCounts);
  if (n > cluster.nodes.length) {
    throw new PlanError('nodeCounts', `expected at most ${cluster.nodes.length} nodes (the profile ${cluster.name} has ${cluster.nodes.length}), got ${n}`);
  }
  if (!cluster.nodes[0]?.origin) {
    throw new PlanError('cluster', `the profile ${cluster.name} must list the origin first (node id 0)`);
  }
  const commit = checkCommit('kernelCommit', opts.commit ?? input.kernelCommit);
  const giantvmCommit = checkCommit('giantvmCommit', opts.giantvmCommit);
  const commits: Record<Hypervisor, string | undefined> = { fragvisor: commit, giantvm: giantvmCommit };
  const nodes = cluster.nodes.slice(0, n);
  const { kvmtoolCommit } = input;
  if (kvmtoolCommit !== undefined && !input.hypervisors.includes('fragvisor')) {
    throw new PlanError('kvmtoolCommit', `kvmtool (lkvm) runs FragVisor's VMs, but this run measures ${input.hypervisors.join(', ')} only: add fragvisor to hypervisors or drop kvmtoolCommit`);
  }

  let stages: PlanStage[];
  try {
    const measuring = input.experiments.length > 0;
    // kvmtool first: a commit that does not build stops the run before hours of kernel builds and GiantVM epochs.
    stages = kvmtoolCommit === undefined ? [] : [kvmtoolStage(cluster, nodes[0].name, kvmtoolCommit, input.buildJobs)];
    stages.push(...input.hypervisors.flatMap((h, i) => [
      // The guest kernel, once: with the first hypervisor's hosts when epochs need a guest, else with FragVisor's.
      prepareHostsStage(h, cluster, nodes, commits, input.buildJobs, measuring ? i === 0 : h === 'fragvisor'),
      ...(measuring
        ? input.experiments.flatMap((e) => input.nodeCounts.map((count) => epochStage(h, e, cluster, nodes.slice(0, count), input)))
        : [rebootStage(h, cluster, nodes), ...(h === 'fragvisor' ? [messagingLayerStage(cluster, nodes)] : [])]),
    ]));
  } catch (err) {
    // The builders refuse values that could not be put in a command safely (the profile schema
    // normally stops them first); that is the profile's fault, never a reason to retry.
    throw new PlanError('cluster', `the profile ${cluster.name} has a value no command can carry: ${(err as Error).message}`);
  }

  const keys = new Set<string>();
  for (const key of [...stages.map((s) => s.key), ...stages.flatMap((s) => s.steps.map((st) => st.key))]) {
    // Builders own their keys; a clash would make the step ledger mix two steps up.
    if (keys.has(key)) throw new Error(`plan: duplicate step key ${key}`);
    keys.add(key);
  }

  const plan: Omit<RunPlan, 'hash'> = {
    cluster: cluster.name,
    simulated: cluster.simulated,
    profileHash: cluster.hash,
    nodes: nodes.map((node) => node.name),
    hypervisors: [...input.hypervisors],
    experiments: [...input.experiments],
    nodeCounts: [...input.nodeCounts],
    ...(commit === undefined ? {} : { commit }),
    ...(giantvmCommit === undefined || !input.hypervisors.includes('giantvm') ? {} : { giantvmCommit }),
    ...(kvmtoolCommit === undefined ? {} : { kvmtoolCommit }),
    stages,
  };
  return { ...plan, hash: fnv1a64(canonicalJson(plan)) };
}
