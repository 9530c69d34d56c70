import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { freePort } from '../../sim/ports';
import { alive, descendants, spawnAe, type Spawned } from '../helpers/processes';

const dataDir = mkdtempSync(path.join(os.tmpdir(), 'ae-stack-'));
const started: Spawned[] = [];
let port: number;
let uiPort: number;

beforeAll(async () => {
  port = await freePort();
  uiPort = await freePort();
});

afterAll(() => {
  for (const s of started) s.child.kill('SIGKILL');
});

function up(extra: string[] = []): Spawned {
  // TEMPORAL_ADDRESS is for clients; the stack itself must start its own server on `port`.
  const s = spawnAe(['up', '--port', String(port), '--ui-port', String(uiPort), ...extra], { AE_DATA_DIR: dataDir, TEMPORAL_ADDRESS: '' });
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

it('npm start: dev server with UI, simulated cluster, worker, demo probe; Ctrl-C leaves nothing; a restart keeps the history', async () => {
  const first = up();
  await first.waitFor(/Ready\./, 120_000);
  const out = first.output();
  expect(out).toMatch(/cluster sim \(SIMULATED\): 4\/4 nodes reachable/);
  const workflowId = out.match(/workflow (probe-sim-[\w-]+)/)![1];
  expect(out).toContain(`http://127.0.0.1:${uiPort}/namespaces/default/workflows/${workflowId}`);
  const ui = await fetch(`http://127.0.0.1:${uiPort}/`);
  expect(ui.status).toBe(200);
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
}, 240_000);
