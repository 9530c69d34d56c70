import { promises as fs } from 'node:fs';
import { ApplicationFailure } from '@temporalio/common';
import { ZodError } from 'zod';
import type { LoadedProfile } from '../config/load';
import type { SshSettings } from '../config/schema';
import {
  benchCommands,
  benchSettings,
  judgeBenchmark,
  measurementKeyId,
  parseVariant,
  type BenchCase,
  type BenchCommand,
  type BenchSettings,
  type BenchSettingsInput,
  type CommandOutput,
  type Measurement,
  type MeasurementKey,
} from '../workflows/commands/bench';
import { guestSshRoute, loadPinnedProfile, sshTarget } from './cluster';
import { classified } from './failures';
import { activityContext, withHeartbeat } from './heartbeat';
import { resultsActivities } from './results';
import { runFile } from './runStore';
import type { ExecResult, SshPool, SshTarget } from './ssh/pool';

/**
 * ARTIFACT.md step 6, one measurement per call: the variant's commands on the guest (over its SSH
 * endpoint) and on the load-generator host (the profile's `client`, else the origin), every output
 * kept in the run store, the parsed numbers returned. No remote job: a benchmark cut short by a lost
 * connection measured nothing trustworthy, so a retry runs it again from the start.
 *
 * Failure policy (docs/BENCHMARKS.md): BenchmarkFailed, retryable, when the run measured nothing
 * usable (a tool's non-zero exit, no report, fewer requests than asked, a wrong page, errors above
 * maxErrorRatio); each attempt's raw output stays in the run store. A run with fewer errors is
 * recorded with its counts. A bad variant or settings object is InvalidBenchmarkInput (no retry).
 */

export interface RunBenchmarkInput extends MeasurementKey {
  cluster: string;
  profileHash: string;
  runId: string;
  settings?: BenchSettingsInput;
}

/** Details of a BenchmarkFailed failure. */
export interface BenchmarkFailedDetails {
  key: MeasurementKey;
  reason: string;
  /** The tool's last lines (its error, the counts). */
  lines: string[];
  /** This attempt's raw output, relative to the run folder. */
  raw: string;
}

/** The client host's name in the pool and in messages (a profile's `client` has no name of its own). */
export const CLIENT_NODE = 'client';

/** Where ab and the OpenLambda POSTs run: the profile's client host, else the origin node. */
export function clientTarget(loaded: LoadedProfile): SshTarget {
  const { client, nodes } = loaded.profile;
  if (client) return { node: CLIENT_NODE, host: client.host, port: client.port, user: client.user };
  return sshTarget(nodes.find((n) => n.origin) ?? nodes[0]);
}

function invalid(input: RunBenchmarkInput, err: unknown): ApplicationFailure {
  const why = err instanceof ZodError ? err.issues.map((i) => `settings.${i.path.join('.')}: ${i.message}`).join('; ') : (err as Error).message;
  return ApplicationFailure.nonRetryable(`runBenchmark ${input.hypervisor} ${input.experiment} on ${input.nodeCount} node(s): ${why}`, 'InvalidBenchmarkInput', { variant: input.variant });
}

/**
 * A new raw file `<base>.txt` (else `<base>.2.txt`, ...): never one an earlier attempt wrote, so the
 * evidence of a failed run survives a retried epoch, whose attempts count from 1 again.
 */
async function createRaw(runId: string, dir: string[], base: string, header: string): Promise<{ file: string; relative: string }> {
  for (let n = 1; ; n++) {
    const raw = runFile(runId, [...dir, n === 1 ? `${base}.txt` : `${base}.${n}.txt`]);
    try {
      await fs.writeFile(raw.file, header, { flag: 'wx' });
      return raw;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

function rawSection(target: SshTarget, cmd: BenchCommand, out: CommandOutput, r: ExecResult): string {
  const cut = [r.stdoutTruncated ? 'stdout' : '', r.stderrTruncated ? 'stderr' : ''].filter(Boolean);
  return [
    `### ${cmd.what} on ${target.node}: ${cmd.command}`,
    ...(cmd.stdin !== undefined ? [`### stdin: ${Buffer.byteLength(cmd.stdin)} bytes`] : []),
    `### exit ${out.exitCode ?? r.signal ?? 'unknown'} after ${r.durationMs} ms${cut.length > 0 ? ` (${cut.join(' and ')} cut at the profile's ssh.maxOutputBytes)` : ''}`,
    '### stdout',
    out.stdout,
    '### stderr',
    out.stderr,
    '',
  ].join('\n');
}

export function benchActivities({ ssh }: { ssh: SshPool }) {
  return {
    /** One repetition of one variant: its commands, its raw output in the run store, its numbers. */
    async runBenchmark(input: RunBenchmarkInput): Promise<Measurement> {
      return classified(async () => {
        const key: MeasurementKey = { hypervisor: input.hypervisor, experiment: input.experiment, nodeCount: input.nodeCount, variant: input.variant, repetition: input.repetition };
        let c: BenchCase;
        let settings: BenchSettings;
        let id: string;
        try {
          id = measurementKeyId(key);
          c = parseVariant(input.experiment, input.variant, input.nodeCount);
          settings = benchSettings(input.settings);
        } catch (err) {
          throw invalid(input, err);
        }
        const loaded = loadPinnedProfile(input.cluster, input.profileHash);
        const { profile } = loaded;
        const where: Record<BenchCommand['host'], { target: SshTarget; settings: SshSettings }> = { guest: guestSshRoute(profile), client: { target: clientTarget(loaded), settings: profile.ssh } };
        const ctx = { guestIp: profile.guest.ip, nodeCount: input.nodeCount, settings };
        const attempt = activityContext()?.info.attempt ?? 1;
        const measuredAt = new Date().toISOString();
        const raw = await createRaw(
          input.runId,
          ['raw', input.hypervisor, `${input.experiment}-n${input.nodeCount}`],
          `${input.variant}.rep${input.repetition}.try${attempt}`,
          `### ${id} attempt ${attempt} at ${measuredAt}${profile.simulated ? ' (SIMULATED cluster)' : ''}\n### settings ${JSON.stringify(settings)}\n\n`,
        );

        const outputs: CommandOutput[] = [];
        for (const cmd of benchCommands(c, ctx)) {
          const { target, settings: sshSettings } = where[cmd.host];
          const r = await withHeartbeat((signal) =>
            ssh.exec(target, sshSettings, cmd.command, { timeoutMs: profile.timeouts.benchmark * 1000, ...(signal ? { signal } : {}), ...(cmd.stdin !== undefined ? { stdin: cmd.stdin } : {}) }),
          );
          const out = { what: cmd.what, exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr };
          outputs.push(out);
          await fs.appendFile(raw.file, rawSection(target, cmd, out, r));
          // What follows a failed command would measure a guest that is not set up (or waste the time).
          if (r.exitCode !== 0) break;
        }

        const outcome = judgeBenchmark(c, outputs, ctx);
        if (!outcome.ok) {
          const details: BenchmarkFailedDetails = { key, reason: outcome.reason, lines: outcome.lines, raw: raw.relative };
          throw ApplicationFailure.retryable(
            `${id}: ${outcome.reason}; raw output in the run store: ${input.runId}/${raw.relative}${outcome.lines.length > 0 ? `\n  ${outcome.lines.join('\n  ')}` : ''}`,
            'BenchmarkFailed',
            details,
          );
        }
        return { key, metrics: outcome.metrics, units: outcome.units, raw: raw.relative, simulated: profile.simulated || outcome.simulated, measuredAt, attempt };
      });
    },

    ...resultsActivities(),
  };
}
