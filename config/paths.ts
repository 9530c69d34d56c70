import os from 'node:os';
import path from 'node:path';

/** The project root (this file lives in <root>/config). */
export const PROJECT_ROOT = path.resolve(__dirname, '..');

/** Where the local stack keeps its state: the dev server's SQLite file, the simulated cluster, logs. */
export function dataDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.AE_DATA_DIR ?? path.join(PROJECT_ROOT, '.data'));
}

/** State directory of the simulated cluster that the local stack runs (the cluster named `sim`). */
export function simStateDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.AE_SIM_STATE_DIR ?? path.join(dataDir(env), 'sim'));
}

/**
 * The run store: one folder per run, `<runs>/<workflowId>/`, holding logs, raw outputs, results and
 * reports. AE_RUNS_DIR moves it (e.g. to a disk that survives the control host's reinstall).
 */
export function runsDir(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.AE_RUNS_DIR ?? path.join(PROJECT_ROOT, 'runs'));
}

export function clustersDir(): string {
  return path.join(PROJECT_ROOT, 'config', 'clusters');
}

/** `~/x` -> home, relative -> against `base`. */
export function expandLocalPath(p: string, base: string): string {
  if (p === '~') return os.homedir();
  if (p.startsWith('~/')) return path.join(os.homedir(), p.slice(2));
  return path.resolve(base, p);
}
