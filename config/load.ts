import { createHash } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { SIM_CLUSTER } from './constants';
import { InvalidConfigError, describeZodError } from './errors';
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

/** A cluster reference is a profile name (`echo`, `sim`) or a path to a YAML file. */
export function resolveProfileFile(ref: string, env: NodeJS.ProcessEnv = process.env): string {
  if (ref === SIM_CLUSTER) return path.join(simStateDir(env), 'cluster.yaml');
  if (NAME.test(ref)) return path.join(clustersDir(), `${ref}.yaml`);
  if (/\.ya?ml$/.test(ref)) return path.resolve(ref);
  throw new InvalidConfigError(`cluster: "${ref}" is neither a profile name (letters, digits, - and _) nor a path to a .yaml file`);
}

/** Parse and validate profile text; local file paths in it resolve against `baseDir`. */
export function parseProfile(text: string, source: string, baseDir: string): LoadedProfile {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new InvalidConfigError(`${source}: not valid YAML: ${(err as Error).message}`);
  }
  const result = clusterProfileSchema.safeParse(raw);
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
  if (!existsSync(file)) {
    const hint =
      ref === SIM_CLUSTER
        ? 'the simulated cluster is not running: start the local stack with `npm start` (or `npx ae sim up`)'
        : `expected a profile name from ${clustersDir()} or a path to a YAML profile`;
    throw new InvalidConfigError(`cluster: no profile at ${file}; ${hint}`);
  }
  return parseProfile(readFileSync(file, 'utf8'), file, path.dirname(file));
}
