import { parseArgs } from 'node:util';
import { summarize } from '../../activities/cluster';
import { loadProfile } from '../../config/load';
import { giantvmTreePath, type KernelPaths } from '../../workflows/commands/kernel';
import type { ReproduceClaimsConfig } from '../../workflows/inputs';
import { FRAGVISOR_COMMIT_PLACEHOLDER, GIANTVM_COMMIT_PLACEHOLDER, PlanError, planRun, type RunPlan } from '../../workflows/plan/plan';
import type { PlanStep } from '../../workflows/plan/types';
import { RUN_INPUT_OPTIONS, RUN_INPUT_USAGE, runInputFromArgs, type RunInput } from '../runInput';
import { UsageError } from '../usageError';

export const usage = `ae plan --cluster <name|path.yaml> [options] [--json]
  Prints every stage and step of the run \`ae run\` would start with the same options, with every
  command line for every node. Runs nothing and connects nowhere: the profile is read locally.
  ${RUN_INPUT_USAGE}
  --json                       the input and the plan as JSON`;

function where(step: PlanStep): string {
  return 'node' in step.host ? step.host.node : 'guest' in step.host ? 'guest' : 'control-host';
}

/** What a planned run will do, for humans: a header, then every stage, step and command line. */
export function renderPlan(plan: RunPlan, input: ReproduceClaimsConfig, profile: { file: string; paths: KernelPaths }): string {
  const out: string[] = [];
  const nodes = plan.nodes.map((n, i) => (i === 0 ? `${n} (node 0, origin)` : `${n} (${i})`)).join(', ');
  out.push(`plan for cluster ${plan.cluster}${plan.simulated ? ' (SIMULATED)' : ''}: ${plan.nodes.length} node(s): ${nodes}`);
  out.push(`profile ${profile.file} (sha256 ${plan.profileHash})`);
  out.push(`hypervisors: ${plan.hypervisors.join(', ')}; node counts: ${plan.nodeCounts.join(', ')}; experiments: ${plan.experiments.join(', ') || 'none'}; repetitions: ${input.repetitions}`);
  if (plan.hypervisors.includes('fragvisor')) {
    out.push(
      plan.commit
        ? `FragVisor commit: ${plan.commit}`
        : `FragVisor commit: not pinned: ${FRAGVISOR_COMMIT_PLACEHOLDER} below is what ${profile.paths.fragvisor} on ${plan.nodes[0]} has checked out when the run starts (pin it with --commit SHA)`,
    );
  }
  if (plan.kvmtoolCommit) out.push(`kvmtool commit: ${plan.kvmtoolCommit} (checked out and built on ${plan.nodes[0]})`);
  if (plan.hypervisors.includes('giantvm')) {
    out.push(
      plan.giantvmCommit
        ? `GiantVM (Linux-DSM) commit: ${plan.giantvmCommit}`
        : `GiantVM (Linux-DSM) commit: ${GIANTVM_COMMIT_PLACEHOLDER} below is what ${giantvmTreePath(profile.paths)} on ${plan.nodes[0]} has checked out when the run starts`,
    );
  }
  out.push(`plan hash: ${plan.hash}`);
  out.push('Nothing has run: this is what `ae run` with the same options does, command line by command line.');

  plan.stages.forEach((stage, i) => {
    out.push('', `== stage ${i + 1}/${plan.stages.length}: ${stage.key}: ${stage.title}`);
    out.push(stage.parallel ? '   (nodes in parallel; each node\'s steps in the order shown)' : '   (steps in the order shown)');
    for (const step of stage.steps) {
      out.push('', `  ${step.key}: ${step.title}`);
      for (const command of step.commands) out.push(`    ${where(step)}$ ${command}`);
      if (step.note) out.push(`    note: ${step.note}`);
    }
  });

  out.push('');
  if (plan.experiments.length === 0) {
    out.push('experiments: none requested: the run prepares the cluster and stops.');
  } else {
    out.push(
      `experiments ${plan.experiments.join(', ')} on ${plan.nodeCounts.join(', ')} node(s): each epoch above shows one repetition of every variant; ` +
        `the run takes ${input.repetitions} repetition(s) of each and records every measurement in results.json.`,
    );
  }
  return out.join('\n');
}

/** planRun, with an input/profile mismatch reported against the flag (or file) that set the field. */
function planOrUsageError(runInput: RunInput, cluster: Parameters<typeof planRun>[1]): RunPlan {
  try {
    return planRun(runInput.config, cluster);
  } catch (err) {
    if (err instanceof PlanError) throw new UsageError(`${runInput.where(err.field)}: ${err.message}`);
    throw err;
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...RUN_INPUT_OPTIONS, json: { type: 'boolean', default: false } }, strict: true });
  const { json, ...flags } = values;
  const runInput = runInputFromArgs(flags);
  const loaded = loadProfile(runInput.config.cluster);
  const plan = planOrUsageError(runInput, summarize(loaded));
  if (json) console.log(JSON.stringify({ input: runInput.config, plan }, null, 2));
  else console.log(renderPlan(plan, runInput.config, { file: loaded.file, paths: loaded.profile.paths }));
  return 0;
}
