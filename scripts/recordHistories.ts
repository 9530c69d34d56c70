import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { historyToJSON } from '@temporalio/common/lib/proto-utils';
import { SMALL_BENCH } from '../bench/fullRun';
import { fetchHistoryTree } from '../bench/history';
import { inProcessWorker, startBenchSim, startTemporal } from '../bench/stack';
import { REPLAY_FIXTURES_DIR, REPLAY_TASK_QUEUE, type ReplayFixture } from '../test/helpers/replay';

/**
 * `npm run record:histories`: one small but complete reproduceClaims (2 simulated nodes, both
 * hypervisors, E1-E3, one repetition, time scale 0) and every workflow it started, their histories
 * written to test/fixtures/histories/ for the replay test (test/integration/replay.test.ts). Record
 * again only when a change to workflow code is meant to break the replay of runs in flight (after
 * guarding it with patched() where runs may be open).
 */
async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ae-record-'));
  const temporal = await startTemporal(path.join(dir, 'temporal'));
  const { sim, profile } = await startBenchSim(path.join(dir, 'sim'), { nodes: 2, timeScale: 0, rebootDownMs: 300, timeouts: { messagingLayer: 20, vmBoot: 60 } });
  const stopWorker = await inProcessWorker(temporal.address, REPLAY_TASK_QUEUE);
  try {
    const workflowId = 'replay-fixture';
    const run = await temporal.client.workflow.start('reproduceClaims', { taskQueue: REPLAY_TASK_QUEUE, workflowId, args: [{ cluster: profile, nodeCounts: [2], repetitions: 1, bench: SMALL_BENCH }] });
    await run.result();
    mkdirSync(REPLAY_FIXTURES_DIR, { recursive: true });
    for (const old of readdirSync(REPLAY_FIXTURES_DIR)) rmSync(path.join(REPLAY_FIXTURES_DIR, old));
    const tree = await fetchHistoryTree(temporal.client, workflowId);
    tree.forEach(({ workflowId: id, history }, n) => {
      const fixture: ReplayFixture = { workflowId: id, history: JSON.parse(historyToJSON(history)) as unknown };
      const file = `${String(n).padStart(3, '0')}-${id.replace(/[^A-Za-z0-9_.-]+/g, '_')}.json.gz`;
      writeFileSync(path.join(REPLAY_FIXTURES_DIR, file), gzipSync(JSON.stringify(fixture)));
    });
    console.log(`recorded ${tree.length} histories in ${path.relative(process.cwd(), REPLAY_FIXTURES_DIR)}`);
  } finally {
    await stopWorker();
    await sim.stop();
    await temporal.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
