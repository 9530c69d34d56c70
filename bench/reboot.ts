import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { summarize } from '../activities/cluster';
import { loadProfile } from '../config/load';
import type { RebootNodesInput } from '../workflows/rebootNodes';
import { rerun, type BenchContext } from './context';
import { historyTree } from './history';
import { loadavg } from './proc';
import type { Row } from './report';
import { quantile } from './stats';
import { inProcessWorker, startBenchSim, taskQueueFor } from './stack';

const DOWN_MS = 1500;
const NODES = 4;

/**
 * Figure 5: rebootNodes on 4 simulated nodes at time scale 1 (down 1.5 s, so "down" is seen), a few
 * rounds: per reboot, from the moment the node's SSH accepts again (the sim's own view, polled every
 * 2 ms in this process) to the awaitBoot activity's completion event in the history.
 */
export async function reboot(ctx: BenchContext): Promise<Row[]> {
  const t = await ctx.temporal();
  const load = loadavg();
  const rounds = ctx.quick ? 2 : 5;
  const dir = mkdtempSync(path.join(ctx.tmp, 'reboot-'));
  const delays: number[] = [];
  let note: string | undefined;
  const { sim } = await startBenchSim(path.join(dir, 'sim'), { nodes: NODES, timeScale: 1, rebootDownMs: DOWN_MS });
  const taskQueue = taskQueueFor('reboot');
  const stopWorker = await inProcessWorker(t.address, taskQueue);
  const upAt = new Map<string, number[]>();
  for (const n of sim.nodes) {
    n.events.on('boot', (fresh: boolean) => {
      if (!fresh) return;
      // 'boot' comes before SSH listens: wait for the node to accept.
      const poll = setInterval(() => {
        if (!n.up) return;
        clearInterval(poll);
        upAt.set(n.name, [...(upAt.get(n.name) ?? []), Date.now()]);
      }, 2);
    });
  }
  try {
    const summary = summarize(loadProfile(sim.profileFile));
    for (let round = 0; round < rounds; round++) {
      ctx.log(`reboot detection: round ${round + 1}/${rounds}`);
      upAt.clear();
      const workflowId = `${taskQueue}-${round}`;
      const input: RebootNodesInput = {
        cluster: sim.profileFile,
        profileHash: summary.hash,
        runId: workflowId,
        nodes: sim.nodes.map((n) => n.name),
        bmcNodes: [],
        reason: 'bench: reboot detection',
        timeouts: { reboot: 60, operator: 60 },
      };
      await (await t.client.workflow.start('rebootNodes', { taskQueue, workflowId, args: [input] })).result();
      const [h] = await historyTree(t.client, workflowId);
      for (const a of h.activities.filter((x) => x.type === 'awaitBoot' && x.closed !== undefined && x.node)) {
        const up = upAt.get(a.node!)?.at(-1);
        if (up !== undefined) delays.push(a.closed! - up);
      }
    }
  } catch (err) {
    note = `failed: ${(err as Error).message.slice(0, 300)}`;
  } finally {
    await stopWorker();
    await sim.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  const command = rerun('reboot', ctx.quick);
  const sorted = [...delays].sort((a, b) => a - b);
  const what = `${NODES} nodes in parallel x ${rounds} rounds, time scale 1, down ${DOWN_MS} ms`;
  return [
    { figure: '5. reboot detection', what: `${what}: SSH back -> awaitBoot completed, p95 over ${delays.length} reboots`, unit: 'ms', values: delays.length ? [quantile(sorted, 0.95)] : [], target: { op: '<', value: 1000 }, note: note ?? 'awaitBoot polls every 250 ms (activities/reboot.ts)', command, load },
    { figure: '5. reboot detection', what: `${what}: SSH back -> awaitBoot completed, each reboot`, unit: 'ms', values: delays, command, load },
  ];
}
