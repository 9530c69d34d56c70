import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { runsDir } from '../config/paths';

/**
 * The run store on the control host: `<runs>/<runId>/`. Everything a run produces goes here (build
 * logs, consoles, raw benchmark output, results); Temporal payloads carry only paths relative to it.
 * Run ids and step keys become path segments, so both are checked against a safe alphabet.
 */

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$/;

function segment(what: string, value: string): string {
  if (!SEGMENT.test(value) || value.includes('..')) {
    throw new Error(`${what} ${JSON.stringify(value)} cannot name a folder in the run store: use letters, digits and _ . : @ + - (no "/" or "..")`);
  }
  return value;
}

/** Absolute folder of one run (created on demand). */
export function runDir(runId: string, env: NodeJS.ProcessEnv = process.env): string {
  const dir = path.join(runsDir(env), segment('run id', runId));
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * A file inside a run's folder, by path segments (e.g. `['logs', 'node0', 'host-kernel.build.log']`),
 * with its parent folders created. Returns the absolute path and the path relative to the run folder
 * (what payloads carry).
 */
export function runFile(runId: string, parts: readonly string[], env: NodeJS.ProcessEnv = process.env): { file: string; relative: string } {
  const safe = parts.map((p) => segment('run store path segment', p));
  const file = path.join(runDir(runId, env), ...safe);
  mkdirSync(path.dirname(file), { recursive: true });
  return { file, relative: safe.join('/') };
}

/** The log of one step on one node: `logs/<node>/<step>.log`. */
export function stepLog(runId: string, node: string, step: string, env: NodeJS.ProcessEnv = process.env): { file: string; relative: string } {
  return runFile(runId, ['logs', node, `${step.replace(/\//g, '.')}.log`], env);
}

/** An append stream (for logs followed while a remote job runs). */
export function appendStream(file: string): WriteStream {
  return createWriteStream(file, { flags: 'a' });
}
