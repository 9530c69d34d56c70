import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describeZodError } from '../config/errors';
import { reproduceClaimsInput, type ReproduceClaimsConfig } from '../workflows/inputs';
import { UsageError } from './usageError';

/**
 * The one place that turns `ae plan` / `ae run` flags (and an optional `--input file.json`) into the
 * reproduceClaims input, through the workflow's own zod schema: what `ae plan` prints is what
 * `ae run` starts, and a mistake is reported against the flag the user typed.
 */

export const RUN_INPUT_OPTIONS = {
  cluster: { type: 'string' },
  experiments: { type: 'string' },
  'node-counts': { type: 'string' },
  hypervisors: { type: 'string' },
  repetitions: { type: 'string' },
  commit: { type: 'string' },
  'kvmtool-commit': { type: 'string' },
  jobs: { type: 'string' },
  'if-busy': { type: 'string' },
  input: { type: 'string' },
} as const;

export const RUN_INPUT_USAGE = `--cluster <name|path.yaml>  profile name (echo, fox, sim) or a .yaml profile
  --experiments E1,E3|all|none  experiments to run (default all; none prepares the cluster only)
  --node-counts 2,4            node counts (default 4; the first n nodes of the profile)
  --hypervisors fragvisor,giantvm  in this order (default both)
  --repetitions N              repetitions per measurement (default 3)
  --commit SHA                 kernel source commit (default: what the origin's checkout has)
  --kvmtool-commit SHA         fragvisor-kvmtool commit (40 hex) to check out and build on the origin
                               before the first FragVisor VM (default: no build, the lkvm that is there)
  --jobs N                     make -jN for the kernel and kvmtool builds (default 16)
  --if-busy wait|refuse        another run holds the cluster: queue behind it (default) or fail at once
  --input file.json            a reproduceClaims input (the Web UI's JSON); flags override its fields`;

export type RunInputFlags = Partial<Record<Exclude<keyof typeof RUN_INPUT_OPTIONS, 'input'>, string>>;

/** The input field each flag sets. */
const FIELD_OF_FLAG: Record<keyof RunInputFlags, keyof ReproduceClaimsConfig> = {
  cluster: 'cluster',
  experiments: 'experiments',
  'node-counts': 'nodeCounts',
  hypervisors: 'hypervisors',
  repetitions: 'repetitions',
  commit: 'kernelCommit',
  'kvmtool-commit': 'kvmtoolCommit',
  jobs: 'buildJobs',
  'if-busy': 'ifBusy',
};

export interface RunInput {
  config: ReproduceClaimsConfig;
  /** Where a field's value came from, for error messages: `--node-counts 8`, `--input run.json`, `the default`. */
  where(field: string): string;
}

/** Whole numbers become numbers; anything else stays a string, so the schema reports what it got. */
function numberOrText(s: string): number | string {
  return /^-?\d+$/.test(s.trim()) ? Number(s.trim()) : s.trim();
}

function list(s: string): string[] {
  return s.split(',').map((x) => x.trim());
}

/** The JSON value a flag stands for, in the schema's terms. */
function flagValue(flag: keyof RunInputFlags, raw: string): unknown {
  switch (flag) {
    case 'experiments': {
      const word = raw.trim().toLowerCase();
      if (word === 'none') return [];
      if (word === 'all') return undefined;
      return list(raw).map((x) => x.toUpperCase());
    }
    case 'hypervisors':
      return list(raw).map((x) => x.toLowerCase());
    case 'node-counts':
      return list(raw).map(numberOrText);
    case 'repetitions':
    case 'jobs':
      return numberOrText(raw);
    case 'commit':
    case 'kvmtool-commit':
      // git prints hashes in lower case; an upper-case paste means the same commit.
      return raw.trim().toLowerCase();
    default:
      return raw.trim();
  }
}

/** A cluster given as a .yaml path is made absolute against `cwd`: the worker resolves it on its own host. */
export function absoluteClusterRef(ref: unknown, cwd: string): unknown {
  return typeof ref === 'string' && /\.ya?ml$/.test(ref) && !ref.startsWith('~') ? path.resolve(cwd, ref) : ref;
}

/**
 * Pure: flags over an optional input file's JSON, validated by reproduceClaimsInput. Every problem
 * names the flag (or the file) and the field: `--node-counts 8,x: nodeCounts[1]: expected a node count (a number)`.
 */
export function buildRunInput(flags: RunInputFlags, file?: { name: string; json: unknown }, cwd = '/'): RunInput {
  if (file && (typeof file.json !== 'object' || file.json === null || Array.isArray(file.json))) {
    throw new UsageError(`--input ${file.name}: expected a JSON object like {"cluster":"sim","experiments":["E1"]}`);
  }
  const raw: Record<string, unknown> = { ...(file?.json as Record<string, unknown> | undefined) };
  const fromFlag = new Map<string, string>();
  for (const [flag, value] of Object.entries(flags) as [keyof RunInputFlags, string | undefined][]) {
    if (value === undefined) continue;
    const field = FIELD_OF_FLAG[flag];
    const v = flagValue(flag, value);
    if (v === undefined) delete raw[field];
    else raw[field] = v;
    fromFlag.set(field, `--${flag} ${value}`);
  }
  if (raw.cluster === undefined) {
    throw new UsageError(`--cluster is required${file ? ` (${file.name} has no "cluster")` : ''}: a profile name like sim or echo, or a path to a .yaml profile`);
  }
  raw.cluster = absoluteClusterRef(raw.cluster, cwd);
  const where = (field: string) => fromFlag.get(field) ?? (file && field in raw ? `--input ${file.name}` : 'the default');

  const result = reproduceClaimsInput.safeParse(raw);
  if (!result.success) {
    const lines = describeZodError(result.error).map((line) => {
      const field = /^[A-Za-z_$][\w$]*/.exec(line)?.[0];
      const source = field !== undefined && fromFlag.has(field) ? fromFlag.get(field)! : file ? `--input ${file.name}` : 'input';
      return `${source}: ${line}`;
    });
    throw new UsageError(lines.join('\n'));
  }
  return { config: result.data, where };
}

/** Reads `--input file.json` (if given) and builds the input from the parsed flags. */
export function runInputFromArgs(values: RunInputFlags & { input?: string }, cwd = process.cwd()): RunInput {
  const { input: fileName, ...flags } = values;
  if (fileName === undefined) return buildRunInput(flags, undefined, cwd);
  let text: string;
  try {
    text = readFileSync(path.resolve(cwd, fileName), 'utf8');
  } catch (err) {
    throw new UsageError(`--input ${fileName}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UsageError(`--input ${fileName}: not valid JSON: ${(err as Error).message}`);
  }
  return buildRunInput(flags, { name: fileName, json }, cwd);
}
