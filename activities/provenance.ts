import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PROJECT_ROOT } from '../config/paths';
import type { LoadedProfile } from '../config/load';
import type { SshSettings } from '../config/schema';
import {
  AB_VERSION,
  nodeQuestions,
  parseExtraAnswers,
  parseNodeProvenance,
  provenanceCommand,
  type GitHead,
  type ProvenanceAnswers,
  type SourceName,
  type ToolAnswer,
} from '../workflows/commands/provenance';
import { findTemporalCli } from '../workers/temporalCli';
import { clientTarget } from './bench';
import { loadPinnedProfile, sshTarget } from './cluster';
import { classified } from './failures';
import { withHeartbeat } from './heartbeat';
import type { BaselineUsed } from './run';
import { runFile } from './runStore';
import type { SshPool, SshTarget } from './ssh/pool';

/**
 * provenance.json (issue 6): what the run ran on and with. Every node answers in one round trip, in
 * parallel over the worker's pool; a node that does not answer is recorded as unreachable with the
 * reason, never fatal (provenance describes a run, it does not gate it). The control host adds its
 * own tools. On the simulated cluster the file says SIMULATED: its kernels, BMCs and VMs are
 * imitations, while CPU and memory are the simulator host's own.
 */

/** Where GiantVM's figures came from (the run's `baseline`): measured means qemu and Linux-DSM matter here. */
export type ProvenanceBaseline = BaselineUsed | { kind: 'measured' } | { kind: 'none' };

export interface CollectProvenanceInput {
  cluster: string;
  profileHash: string;
  runId: string;
  planHash: string;
  baseline?: ProvenanceBaseline;
}

export type NodeProvenance =
  | ({ node: string; origin: boolean; reachable: true } & Omit<ProvenanceAnswers, 'tools'>)
  /** Unreachable, or it answered something unreadable: `error` says which. */
  | { node: string; origin: boolean; reachable: boolean; error: string };

/** A tool's version and where it was asked: a node name, `client` (the load generator) or `control` (the worker host). */
export type ToolVersion = ToolAnswer & { host: string };

export interface ProvenanceFile {
  simulated: boolean;
  /** Present when simulated: what that means for every number of the run. */
  notice?: string;
  runId: string;
  /** When the worker collected it (ISO 8601). */
  collectedAt: string;
  cluster: { name: string; profileFile: string; profileHash: string };
  planHash: string;
  /** The source trees as the origin has them (commits or why not). */
  sources: Partial<Record<SourceName, GitHead & { node: string }>>;
  nodes: NodeProvenance[];
  tools: ToolVersion[];
  controlHost: { hostname: string; platform: string; orchestrator: { version: string } & GitHead };
  baseline: ProvenanceBaseline | { kind: 'unknown' };
}

export interface ProvenanceSummary {
  /** Relative to the run folder: `provenance.json`. */
  file: string;
  simulated: boolean;
  nodes: number;
  reachable: number;
  unreachable: string[];
  /** The origin's commits (only those that could be read). */
  commits: Partial<Record<SourceName, string>>;
}

export const SIMULATED_NOTICE =
  "SIMULATED: this run used the fragvisor-ae simulated cluster. Kernels, the messaging layer, BMCs and the VM are imitations and every measurement follows a performance model run at the simulator's time scale (at `ae up`'s 0.02, times read 50x shorter and throughputs 50x higher than the model's; E3's static pages never run faster than 3x their model time): compare ratios, not absolute numbers. CPU and memory are those of the machine that ran the simulator.";

/** One round trip per node may include `qemu --version`; connecting is bounded by the profile, the rest by this. */
const ANSWER_MS = 30_000;
const LOCAL_MS = 10_000;

/** A local command's first output line, or why there is none (async: the simulator may share this process). */
function localFirstLine(file: string, args: string[]): Promise<{ line: string } | { error: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { encoding: 'utf8', timeout: LOCAL_MS }, (err, stdout, stderr) => {
      const line = `${stdout}\n${stderr}`.split('\n').find((l) => l.trim() !== '')?.trim().slice(0, 300);
      if (!err && line) resolve({ line });
      else if ((err as NodeJS.ErrnoException | null)?.code === 'ENOENT') resolve({ error: `not installed (${file})` });
      else resolve({ error: err ? `${err.message.split('\n')[0]}${line ? `: ${line}` : ''}` : 'printed nothing' });
    });
  });
}

/** The control host's tools: Node, the Temporal CLI, ipmitool when a node has a BMC. */
async function controlTools(withBmc: boolean): Promise<ToolVersion[]> {
  const host = 'control';
  let temporal: ReturnType<typeof localFirstLine>;
  try {
    temporal = localFirstLine(findTemporalCli(), ['--version']);
  } catch (err) {
    // Not fatal: a worker may talk to a Temporal cluster without the CLI installed.
    temporal = Promise.resolve({ error: (err as Error).message });
  }
  const asked = [{ tool: 'temporal', answer: temporal }, ...(withBmc ? [{ tool: 'ipmitool', answer: localFirstLine('ipmitool', ['-V']) }] : [])];
  const answered = await Promise.all(
    asked.map(async ({ tool, answer }): Promise<ToolVersion> => {
      const a = await answer;
      return 'line' in a ? { tool, host, version: a.line } : { tool, host, error: a.error };
    }),
  );
  return [{ tool: 'node', host, version: process.version }, ...answered];
}

async function orchestrator(): Promise<{ version: string } & GitHead> {
  const { version } = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
  // An install from a tarball has no git checkout: then the error says so.
  const head = await localFirstLine('git', ['-C', PROJECT_ROOT, 'rev-parse', 'HEAD']);
  if ('line' in head && /^[0-9a-f]{40}/.test(head.line)) return { version, path: PROJECT_ROOT, commit: head.line };
  return { version, path: PROJECT_ROOT, error: 'line' in head ? `not a commit: ${head.line}` : head.error };
}

export function provenanceActivities({ ssh }: { ssh: SshPool }) {
  const ask = async (target: SshTarget, settings: SshSettings, command: string, signal: AbortSignal | undefined): Promise<string> => {
    const r = await ssh.exec(target, settings, command, { timeoutMs: settings.connectTimeoutSeconds * 1000 + ANSWER_MS, signal });
    // Each answer carries its own exit code and the last printf exits 0: anything else means the shell never got to the end.
    if (r.exitCode !== 0) throw new Error(`the round trip ended with ${r.exitCode === null ? `signal ${r.signal ?? '(none)'}` : `exit ${r.exitCode}`}: ${r.stderr.trim().slice(0, 300)}`);
    return r.stdout;
  };

  async function collect(loaded: LoadedProfile, baseline: ProvenanceBaseline | undefined, signal: AbortSignal | undefined) {
    const { profile } = loaded;
    const giantvm = baseline?.kind === 'measured';
    const nodes = Promise.all(
      profile.nodes.map(async (n): Promise<{ node: NodeProvenance; tools: ToolVersion[] }> => {
        const questions = nodeQuestions({ paths: profile.paths, origin: n.origin, giantvm, loadGenerator: n.origin && !profile.client });
        let stdout: string;
        try {
          stdout = await ask(sshTarget(n), profile.ssh, provenanceCommand(questions), signal);
        } catch (err) {
          return { node: { node: n.name, origin: n.origin, reachable: false, error: (err as Error).message }, tools: [] };
        }
        try {
          const { tools, ...facts } = parseNodeProvenance(stdout, questions);
          return { node: { node: n.name, origin: n.origin, reachable: true, ...facts }, tools: tools.map((t) => ({ ...t, host: n.name })) };
        } catch (err) {
          return { node: { node: n.name, origin: n.origin, reachable: true, error: (err as Error).message }, tools: [] };
        }
      }),
    );
    const client = profile.client
      ? ask(clientTarget(loaded), profile.ssh, provenanceCommand([AB_VERSION]), signal).then(
          (out) => parseExtraAnswers(out, [AB_VERSION]).tools.map((t) => ({ ...t, host: 'client' })),
          (err: Error) => [{ tool: AB_VERSION.tool, host: 'client', error: `client ${profile.client?.host} unreachable: ${err.message}` }],
        )
      : Promise.resolve([]);
    const [perNode, clientTools, control, self] = await Promise.all([nodes, client, controlTools(profile.nodes.some((n) => n.bmc)), orchestrator()]);
    // A cancelled activity must not leave a file that reads as "every node unreachable".
    if (signal?.aborted) throw signal.reason;
    return { perNode, tools: [...perNode.flatMap((p) => p.tools), ...clientTools, ...control], self };
  }

  return {
    /** Writes `runs/<runId>/provenance.json`; returns its path and a small summary. */
    async collectProvenance(input: CollectProvenanceInput): Promise<ProvenanceSummary> {
      return classified(async () => {
        const loaded = loadPinnedProfile(input.cluster, input.profileHash);
        const { profile } = loaded;
        const { perNode, tools, self } = await withHeartbeat((signal) => collect(loaded, input.baseline, signal));
        const nodes = perNode.map((p) => p.node);
        const origin = nodes.find((n) => n.origin);
        const sources: ProvenanceFile['sources'] = {};
        if (origin && 'commits' in origin) for (const [name, head] of Object.entries(origin.commits)) sources[name as SourceName] = { ...head, node: origin.node };
        const file: ProvenanceFile = {
          simulated: profile.simulated,
          ...(profile.simulated ? { notice: SIMULATED_NOTICE } : {}),
          runId: input.runId,
          collectedAt: new Date().toISOString(),
          cluster: { name: profile.name, profileFile: loaded.file, profileHash: loaded.hash },
          planHash: input.planHash,
          sources,
          nodes,
          tools,
          controlHost: { hostname: os.hostname(), platform: `${os.platform()} ${os.release()} ${os.arch()}`, orchestrator: self },
          baseline: input.baseline ?? { kind: 'unknown' },
        };
        const out = runFile(input.runId, ['provenance.json']);
        writeFileSync(out.file, `${JSON.stringify(file, null, 2)}\n`);
        const commits: ProvenanceSummary['commits'] = {};
        for (const [name, head] of Object.entries(sources)) if ('commit' in head) commits[name as SourceName] = head.commit;
        return {
          file: out.relative,
          simulated: profile.simulated,
          nodes: nodes.length,
          reachable: nodes.filter((n) => n.reachable).length,
          unreachable: nodes.filter((n) => !n.reachable).map((n) => n.node),
          commits,
        };
      });
    },
  };
}
