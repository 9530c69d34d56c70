import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { freePort } from '../../sim/ports';
import { alive, descendants, spawnAe, type Spawned } from '../helpers/processes';
import { testTempDir } from '../helpers/tempDir';

const dataDir = testTempDir('ae-stack-');
const started: Spawned[] = [];
let port: number;
let uiPort: number;
let webhookPort: number;

beforeAll(async () => {
  port = await freePort();
  uiPort = await freePort();
  webhookPort = await freePort();
});

afterAll(() => {
  for (const s of started) s.child.kill('SIGKILL');
});

function up(extra: string[] = []): Spawned {
  // TEMPORAL_ADDRESS is for clients; the stack itself must start its own server on `port`.
  const s = spawnAe(['up', '--port', String(port), '--ui-port', String(uiPort), ...extra], { AE_DATA_DIR: dataDir, AE_RUNS_DIR: path.join(dataDir, 'runs'), AE_WEBHOOK_PORT: String(webhookPort), AE_WEBHOOK_GITHUB_SECRET: 'local-stack-test', TEMPORAL_ADDRESS: '' });
  started.push(s);
  return s;
}

function commandLine(pid: number): string {
  try {
    return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')}`;
  } catch {
    return `${pid}: (gone)`;
  }
}

async function stopAndCheckNoOrphans(stack: Spawned, signal: NodeJS.Signals): Promise<void> {
  const tree = descendants(stack.child.pid!);
  expect(tree.length).toBeGreaterThan(0); // at least the dev server
  stack.child.kill(signal);
  const { code } = await stack.exited;
  expect(code).toBe(0);
  // Give the kernel a moment to reap; then whatever is left is an orphan, shown with its command line.
  for (let i = 0; i < 50 && tree.some(alive); i++) await new Promise((r) => setTimeout(r, 100));
  expect(tree.filter(alive).map(commandLine)).toEqual([]);
}

it('npm start: dev server with UI, simulated cluster, worker, a demo reproduceClaims ending with verdicts and the report; Ctrl-C leaves nothing; a restart keeps the history', async () => {
  // A small demo (one experiment, GiantVM from the example baseline file) at time scale 0: the default demo is the whole AE.
  const demoInput = path.join(dataDir, 'demo.json');
  writeFileSync(demoInput, JSON.stringify({ experiments: ['E2'], hypervisors: ['fragvisor'], baseline: path.resolve('config/baselines/example-giantvm.yaml'), bench: { openLambda: { gapSeconds: 0 } } }));
  const first = up(['--time-scale', '0', '--demo-input', demoInput]);
  await first.waitFor(/Ready\./, 120_000);
  await first.waitFor(/Demo demo-sim-[\w-]+ (completed|failed)/, 180_000);
  const out = first.output();
  const workflowId = out.match(/Demo: reproduceClaims on the simulated cluster \(workflow (demo-sim-[\w-]+)\)/)![1];
  expect(out).toContain(`http://127.0.0.1:${uiPort}/namespaces/default/workflows/${workflowId}`);
  expect(out.indexOf('Ready.')).toBeLessThan(out.indexOf('Demo: '));
  expect(out).toMatch(/phase: experiments/); // the live view
  expect(out).toContain(`Demo ${workflowId} completed.`);
  expect(out).toMatch(/Verdicts \(SIMULATED[^\n]*\):\n  C1  (pass|fail|inconclusive) +\S.*\n  C2  (pass|fail|inconclusive) +\S.*\n  C3  (pass|fail|inconclusive) +\S/);
  const report = out.match(/^Report: (\S+)$/m)![1];
  expect(report).toBe(path.join(dataDir, 'runs', workflowId, 'report.html'));
  expect(readFileSync(report, 'utf8')).toMatch(/^<!DOCTYPE html>/i);
  const ui = await fetch(`http://127.0.0.1:${uiPort}/`);
  expect(ui.status).toBe(200);
  // The webhook listener is up on loopback and refuses an unsigned push (nothing starts).
  expect(out).toContain(`Webhooks: http://127.0.0.1:${webhookPort}/webhooks/github`);
  const push = await fetch(`http://127.0.0.1:${webhookPort}/webhooks/github`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-github-event': 'push' }, body: '{}' });
  expect(push.status).toBe(401);
  await stopAndCheckNoOrphans(first, 'SIGINT');

  const second = up(['--no-demo']);
  await second.waitFor(/Ready\./, 120_000);
  expect(second.output()).not.toMatch(/Demo:/);
  const connection = await Connection.connect({ address: `127.0.0.1:${port}` });
  try {
    const earlier = await new Client({ connection }).workflow.getHandle(workflowId).describe();
    expect(earlier.status.name).toBe('COMPLETED');
  } finally {
    await connection.close();
  }
  await stopAndCheckNoOrphans(second, 'SIGTERM');
}, 400_000);
