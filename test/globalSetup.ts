import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { startDevServer } from '../workers/devServer';
import { findTemporalCli } from '../workers/temporalCli';
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
    bundleWorkflowCode({ workflowsPath: require.resolve('../workflows'), logger: { trace() {}, debug() {}, info() {}, warn: console.warn, error: console.error, log() {} } }),
  ]);
  const bundlePath = path.join(dir, 'workflow-bundle.js');
  writeFileSync(bundlePath, bundle.code);
  process.env.AE_TEST_DIR = dir;
  process.env.AE_RUNS_DIR = path.join(dir, 'runs');
  process.env.AE_TEST_TEMPORAL_ADDRESS = server.address;
  process.env.AE_WORKFLOW_BUNDLE = bundlePath;
  (globalThis as { __aeDevServer?: { stop(): Promise<void> } }).__aeDevServer = server;
}
