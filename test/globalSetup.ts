import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startDevServer } from '../workers/devServer';
import { findTemporalCli } from '../workers/temporalCli';
import { bundleWorkflows } from '../workers/workflowBundle';
import { freePort } from '../sim/ports';

/**
 * One real Temporal dev server and one workflow bundle per test run, shared by every suite
 * (suites run in parallel workers, forked after this). Their coordinates reach the suites through
 * the environment.
 */
export default async function globalSetup(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ae-test-'));
  const [server, bundle] = await Promise.all([
    freePort().then((port) =>
      startDevServer({ cliPath: findTemporalCli(), port, dbFile: path.join(dir, 'temporal.db'), logFile: path.join(dir, 'temporal.log') }),
    ),
    bundleWorkflows(),
  ]);
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle);
  process.env.AE_TEST_DIR = dir;
  process.env.AE_RUNS_DIR = path.join(dir, 'runs');
  process.env.AE_TEST_TEMPORAL_ADDRESS = server.address;
  process.env.AE_WORKFLOW_BUNDLE = bundlePath;
  (globalThis as { __aeDevServer?: { stop(): Promise<void> } }).__aeDevServer = server;
}
