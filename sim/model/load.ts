import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { InvalidConfigError, describeZodError, profileErrorMap } from '../../config/errors';
import { PROJECT_ROOT } from '../../config/paths';
import { modelSpecSchema, type ModelSpec } from './schema';

export interface LoadedModel {
  spec: ModelSpec;
  /** Absolute path of the YAML file, or the source name given to parseModel. */
  file: string;
  /** sha256 of the normalised spec: results measured on the sim record which model produced them. */
  hash: string;
}

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;

export function modelsDir(): string {
  return path.join(PROJECT_ROOT, 'config', 'models');
}

/** A model reference is a name in config/models (`default`, `c1-fails`) or a path to a .yaml file. */
export function resolveModelFile(ref: string): string {
  if (NAME.test(ref)) return path.join(modelsDir(), `${ref}.yaml`);
  if (/\.ya?ml$/.test(ref)) return path.resolve(ref);
  throw new InvalidConfigError(`model: ${JSON.stringify(ref)} is neither a model name (letters, digits, - and _) in ${modelsDir()} nor a path to a .yaml file`);
}

export function parseModel(text: string, source: string): LoadedModel {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (err) {
    throw new InvalidConfigError(`${source}: not valid YAML: ${(err as Error).message.trim()}`);
  }
  const result = modelSpecSchema.safeParse(raw ?? undefined, { error: profileErrorMap });
  if (!result.success) {
    const problems = describeZodError(result.error);
    throw new InvalidConfigError(`${source}: invalid performance model:\n  ${problems.join('\n  ')}`, problems);
  }
  const hash = createHash('sha256').update(JSON.stringify(result.data)).digest('hex');
  return { spec: result.data, file: source, hash };
}

export function loadModel(ref: string): LoadedModel {
  const file = resolveModelFile(ref);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InvalidConfigError(`model ${JSON.stringify(ref)}: cannot read ${file}${code ? ` (${code})` : ''}`);
  }
  return parseModel(text, file);
}
