import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SIM_CLUSTER } from './constants';
import { InvalidConfigError, describeZodError, profileErrorMap } from './errors';
import { clustersDir, expandLocalPath, simStateDir } from './paths';
import { clusterProfileSchema, type ClusterProfile } from './schema';

export interface LoadedProfile {
  profile: ClusterProfile;
  /** Absolute path of the YAML file it came from. */
  file: string;
  /** sha256 of the normalised profile, for provenance and step keys. */
  hash: string;
}

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
/** A profile is a few KiB; anything this large is the wrong file. */
const MAX_PROFILE_BYTES = 1024 * 1024;

/**
 * Names of the real-cluster profiles in config/clusters (`echo`, `fox`). `sim.yaml` there is only the
 * template of the simulated cluster; the profile named `sim` is the one the running sim writes.
 */
export function availableProfiles(): string[] {
  try {
    return readdirSync(clustersDir())
      .filter((f) => f.endsWith('.yaml') && f !== `${SIM_CLUSTER}.yaml`)
      .map((f) => f.slice(0, -'.yaml'.length))
      .sort();
  } catch {
    return [];
  }
}

function choices(): string {
  const names = [...availableProfiles(), SIM_CLUSTER];
  return `expected one of ${names.join(', ')} (profiles live in ${clustersDir()}; "${SIM_CLUSTER}" is the simulated cluster the local stack runs) or a path to a .yaml profile`;
}

/** A cluster reference is a profile name (`echo`, `sim`) or a path to a YAML file. */
export function resolveProfileFile(ref: string, env: NodeJS.ProcessEnv = process.env): string {
  if (ref === SIM_CLUSTER) return path.join(simStateDir(env), 'cluster.yaml');
  if (NAME.test(ref)) return path.join(clustersDir(), `${ref}.yaml`);
  if (/\.ya?ml$/.test(ref)) return path.resolve(ref);
  throw new InvalidConfigError(`cluster: ${JSON.stringify(ref)} is neither a profile name (letters, digits, - and _) nor a path to a .yaml file; ${choices()}`);
}

/** Parse and validate profile text; local file paths in it resolve against `baseDir`. */
export function parseProfile(text: string, source: string, baseDir: string): LoadedProfile {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new InvalidConfigError(`${source}: not valid YAML: ${(err as Error).message.trim()}`);
  }
  if (raw === null || raw === undefined) {
    const problem = '(top level): expected a cluster profile: a YAML mapping with name, nodes, paths and guest, got an empty document';
    throw new InvalidConfigError(`${source}: invalid cluster profile:\n  ${problem}`, [problem]);
  }
  const result = clusterProfileSchema.safeParse(raw, { error: profileErrorMap });
  if (!result.success) {
    const problems = describeZodError(result.error);
    throw new InvalidConfigError(`${source}: invalid cluster profile:\n  ${problems.join('\n  ')}`, problems);
  }
  const profile = result.data;
  const ssh = profile.ssh;
  ssh.knownHosts = expandLocalPath(ssh.knownHosts, baseDir);
  ssh.configFile = expandLocalPath(ssh.configFile, baseDir);
  if (ssh.identityFile) ssh.identityFile = expandLocalPath(ssh.identityFile, baseDir);
  const hash = createHash('sha256').update(JSON.stringify(profile)).digest('hex');
  return { profile, file: source, hash };
}

export function loadProfile(ref: string, env: NodeJS.ProcessEnv = process.env): LoadedProfile {
  const file = resolveProfileFile(ref, env);
  let size: number;
  try {
    const st = statSync(file);
    if (!st.isFile()) throw new InvalidConfigError(`cluster: ${file} is not a file; ${choices()}`);
    size = st.size;
  } catch (err) {
    if (err instanceof InvalidConfigError) throw err;
    const hint =
      ref === SIM_CLUSTER
        ? 'the simulated cluster is not running: start the local stack with `npm start` (or `npx ae sim up`), which writes it'
        : choices();
    throw new InvalidConfigError(`cluster: no profile at ${file}; ${hint}`);
  }
  if (size > MAX_PROFILE_BYTES) throw new InvalidConfigError(`${file}: ${size} bytes is too large for a cluster profile (at most ${MAX_PROFILE_BYTES})`);
  return parseProfile(readFileSync(file, 'utf8'), file, path.dirname(file));
}
