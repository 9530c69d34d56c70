import { parseArgs } from 'node:util';
import { findNode, sshTarget } from '../../activities/cluster';
import { SshPool } from '../../activities/ssh/pool';
import { InvalidConfigError } from '../../config/errors';
import { loadProfile } from '../../config/load';
import { toCommandLine } from '../../workflows/commands/quote';
import { absoluteClusterRef } from '../runInput';
import { parseDuration } from '../duration';
import { printJson } from '../format';
import { UsageError } from '../usageError';

export const usage = `ae exec --cluster <name|path.yaml> [--nodes a,b] [--timeout S] [--json] -- <command> [args...]
  Runs the command on every node of the cluster profile (or the --nodes given) at once, over SSH
  (one connection per node, host keys verified against the profile's known_hosts; no Temporal),
  and prints the output grouped by node in profile order: stdout, then stderr, and the exit code.
  Several words after -- are one argv: each is quoted, so nothing is re-interpreted by the remote
  shell (ae exec --cluster sim -- echo '$HOME' prints $HOME). A single word after -- is passed as a
  shell command line on purpose, so pipes and ; work: ae exec --cluster sim -- 'uname -r; uptime'.
  --nodes a,b    only these nodes (names from the profile)
  --timeout S    per node limit, e.g. 30, 90s, 5m (default none); the command is killed on expiry
  --json         [{"node","exitCode","stdout","stderr","ms"[,"error"]}] in node order
  exit codes: 0 every node exited 0, 1 a node failed (non-zero exit, unreachable, refused host key,
  timeout), 2 usage (unknown cluster or node)`;

export interface NodeResult {
  node: string;
  /** null when the command did not run to an exit status (see error). */
  exitCode: number | null;
  stdout: string;
  stderr: string;
  /** Connecting included. */
  ms: number;
  /** Why there is no exit status: unreachable, host key refused, timed out, killed by a signal. */
  error?: string;
  truncated?: boolean;
}

/** `ae exec` arguments: the options before `--`, the command after it. */
export function splitCommand(argv: readonly string[]): { options: string[]; command: string[] } {
  const at = argv.indexOf('--');
  if (at < 0 || at === argv.length - 1) throw new UsageError('expected the command after --, e.g. ae exec --cluster sim -- uname -r');
  return { options: argv.slice(0, at), command: argv.slice(at + 1) };
}

/** One word: a shell command line as given. Several: an argv, each word quoted. */
export function commandLine(command: readonly string[]): string {
  return command.length === 1 ? command[0] : toCommandLine(command);
}

/** The nodes to run on, in profile order; an unknown name is a usage error naming the known ones. */
export function selectNodes(all: readonly string[], flag?: string): string[] {
  if (flag === undefined) return [...all];
  const wanted = flag.split(',').map((s) => s.trim()).filter(Boolean);
  const unknown = wanted.filter((n) => !all.includes(n));
  if (wanted.length === 0 || unknown.length > 0) throw new UsageError(`--nodes ${flag}: ${unknown.length ? `unknown node(s) ${unknown.join(', ')}` : 'no node named'}; the profile has ${all.join(', ')}`);
  return all.filter((n) => wanted.includes(n));
}

const withNewline = (s: string) => (s === '' || s.endsWith('\n') ? s : `${s}\n`);

/** Text output: per node a header with its exit, its stdout, then its stderr; a summary line last. */
export function formatResults(results: readonly NodeResult[]): string {
  const out: string[] = [];
  for (const r of results) {
    const how = r.exitCode !== null ? `exit ${r.exitCode}` : `failed: ${r.error ?? 'no exit status'}`;
    out.push(`=== ${r.node} (${how}, ${r.ms} ms)\n`);
    out.push(withNewline(r.stdout));
    if (r.stderr !== '') out.push(`--- ${r.node} stderr\n${withNewline(r.stderr)}`);
    if (r.truncated) out.push(`[${r.node}: output truncated (the profile's ssh.maxOutputBytes)]\n`);
  }
  const failed = results.filter((r) => r.exitCode !== 0);
  out.push(`\n${results.length} node(s): ${results.length - failed.length} ok${failed.length ? `, ${failed.length} failed (${failed.map((r) => r.node).join(', ')})` : ''}\n`);
  return out.join('');
}

export async function run(argv: string[]): Promise<number> {
  const { options, command } = splitCommand(argv);
  const { values, positionals } = parseArgs({
    args: options,
    options: { cluster: { type: 'string' }, nodes: { type: 'string' }, timeout: { type: 'string' }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  if (positionals.length > 0) throw new UsageError(`unexpected ${positionals.join(' ')} before --: the command goes after --`);
  if (!values.cluster) throw new UsageError('--cluster is required (a profile name like sim or echo, or a path to a .yaml profile)');
  let timeoutMs: number | undefined;
  if (values.timeout !== undefined) {
    const ms = parseDuration(values.timeout);
    if (ms instanceof Error || ms <= 0) throw new UsageError(`--timeout ${values.timeout}: ${ms instanceof Error ? ms.message : 'expected more than 0'}`);
    timeoutMs = ms;
  }
  let loaded: ReturnType<typeof loadProfile>;
  try {
    loaded = loadProfile(absoluteClusterRef(values.cluster, process.cwd()) as string);
  } catch (err) {
    if (err instanceof InvalidConfigError) throw new UsageError(err.message);
    throw err;
  }
  const nodes = selectNodes(loaded.profile.nodes.map((n) => n.name), values.nodes);
  const line = commandLine(command);

  const pool = new SshPool();
  const stop = new AbortController();
  const onSigint = () => stop.abort(new Error('interrupted (Ctrl-C)'));
  process.once('SIGINT', onSigint);
  try {
    // Every node at once: the connects overlap, so the slowest node sets the time.
    const results = await Promise.all(
      nodes.map(async (name): Promise<NodeResult> => {
        const t0 = performance.now();
        const ms = () => Math.round(performance.now() - t0);
        try {
          const r = await pool.exec(sshTarget(findNode(loaded, name)), loaded.profile.ssh, line, { signal: stop.signal, ...(timeoutMs !== undefined ? { timeoutMs } : {}) });
          return {
            node: name,
            exitCode: r.exitCode,
            stdout: r.stdout,
            stderr: r.stderr,
            ms: ms(),
            ...(r.exitCode === null ? { error: `killed by ${r.signal ?? 'a signal'}` } : {}),
            ...(r.stdoutTruncated || r.stderrTruncated ? { truncated: true } : {}),
          };
        } catch (err) {
          return { node: name, exitCode: null, stdout: '', stderr: '', ms: ms(), error: (err as Error).message };
        }
      }),
    );
    if (values.json) printJson(results);
    else process.stdout.write(formatResults(results));
    return results.every((r) => r.exitCode === 0) ? 0 : 1;
  } finally {
    process.removeListener('SIGINT', onSigint);
    await pool.close();
  }
}
