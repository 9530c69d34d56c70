import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { dataDir, PROJECT_ROOT } from '../config/paths';

/**
 * The bundle's inline source map without the sources' text: stack traces still point at the .ts line
 * (the SDK maps them), but the bundle is 1.8 MB instead of 3.3 MB, and the worker holds it in both
 * isolates (main thread and workflow thread): about 15 MiB less RSS per worker.
 */
const DEVTOOL = 'inline-nosources-source-map';

const quiet = () => {};

/** workflows/ bundled for the workflow sandbox (webpack + swc): seconds, and 150+ MiB of heap while it runs. */
export async function bundleWorkflows(): Promise<string> {
  const { code } = await bundleWorkflowCode({
    workflowsPath: require.resolve('../workflows'),
    webpackConfigHook: (config) => ({ ...config, devtool: DEVTOOL }),
    logger: { trace: quiet, debug: quiet, info: quiet, log: quiet, warn: console.warn, error: console.error },
  });
  return code;
}

/** What the bundle is made of: our workflow code, the config it imports, and the locked dependencies. */
const SOURCE_DIRS = ['workflows', 'config'];
const SOURCE_FILE = /\.(ts|js|json)$/;
const LOCK_FILE = 'package-lock.json';

/**
 * The cache key of a bundle: a hash of every input file's path and content (order-free) and of the
 * bundle options, so that any edit to workflow code makes a new bundle.
 */
export function bundleKey(files: readonly { path: string; content: string | Buffer }[]): string {
  const h = createHash('sha256').update(`${DEVTOOL}\0`);
  for (const f of [...files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))) {
    h.update(`${f.path}\0${f.content.length}\0`).update(f.content);
  }
  return h.digest('hex').slice(0, 24);
}

async function sourceFiles(root: string): Promise<{ path: string; content: Buffer }[]> {
  const names = (await Promise.all(SOURCE_DIRS.map((d) => readdir(path.join(root, d), { recursive: true }).then((xs) => xs.map((x) => path.join(d, x))))))
    .flat()
    .filter((p) => SOURCE_FILE.test(p));
  if (existsSync(path.join(root, LOCK_FILE))) names.push(LOCK_FILE);
  return Promise.all(names.map(async (p) => ({ path: p, content: await readFile(path.join(root, p)) })));
}

/** Bundles that no worker started from for this long are removed when a new one is written. */
const STALE_MS = 24 * 3_600_000;

/**
 * The path of a bundle of the current workflows/, built once per content (cached under
 * <data>/workflow-bundles/) in a short-lived child process: webpack's heap and module cache never
 * enter the worker, whose peak RSS stays ~180 MiB lower than bundling in-process.
 */
export async function cachedWorkflowBundle(cacheDir = path.join(dataDir(), 'workflow-bundles')): Promise<string> {
  const file = path.join(cacheDir, `workflows-${bundleKey(await sourceFiles(PROJECT_ROOT))}.js`);
  if (existsSync(file)) return file;
  await mkdir(cacheDir, { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await bundleInChild(tmp);
  await rename(tmp, file); // atomic: a worker starting at the same time reads a whole bundle or none
  for (const name of await readdir(cacheDir)) {
    const p = path.join(cacheDir, name);
    if (p !== file && Date.now() - (await stat(p)).mtimeMs > STALE_MS) await rm(p, { force: true });
  }
  return file;
}

/** Runs this file as a program (tsx compiles it) that writes the bundle to `out`; async (the sim may share the process). */
function bundleInChild(out: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--require', require.resolve('tsx/cjs'), __filename, out], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`bundling workflows/ failed (exit ${code}):\n${stderr.slice(-4000)}`))));
  });
}

if (require.main === module) {
  bundleWorkflows()
    .then((code) => writeFile(process.argv[2], code))
    .catch((err: unknown) => {
      console.error(err);
      process.exitCode = 1;
    });
}
