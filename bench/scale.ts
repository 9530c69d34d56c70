import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import { rerun, type BenchContext } from './context';
import { historyTree } from './history';
import { loadavg, vmHwmMiB } from './proc';
import { fmt, type Row } from './report';
import { spread } from './stats';
import { startBenchSim, taskQueueFor, workerProcess } from './stack';

/**
 * Figure 4: prepare-hosts (reproduceClaims with `experiments: []`, FragVisor: host kernels built,
 * installed, booted and proven, messaging layer loaded) on 4, 16 and 64 simulated nodes at time
 * scale 0, with the worker as its own `ae worker` process: wall time, SSH connections the sim
 * counted per node, the worker's peak RSS (VmHWM), events and bytes of each workflow history.
 */
export async function scale(ctx: BenchContext): Promise<Row[]> {
  const sizes = ctx.sizes;
  const t = await ctx.temporal();
  const rows: Row[] = [];
  const command = rerun('scale', ctx.quick);
  const runs = ctx.quick ? 1 : 2;
  const walls = new Map<number, number[]>();
  for (const n of sizes) {
    const load = loadavg();
    const s = { wall: [] as number[], conn: [] as number[], extra: [] as number[], rss: [] as number[], idleRss: [] as number[], topEvents: [] as number[], topKiB: [] as number[], maxChildEvents: [] as number[], maxChildKiB: [] as number[] };
    let note: string | undefined;
    for (let i = 0; i < runs; i++) {
      ctx.log(`scale: prepare-hosts on ${n} nodes, run ${i + 1}/${runs}`);
      const dir = mkdtempSync(path.join(ctx.tmp, `scale-${n}-`));
      const taskQueue = taskQueueFor(`scale${n}`);
      let stopSim: (() => Promise<void>) | undefined;
      let worker: Awaited<ReturnType<typeof workerProcess>> | undefined;
      try {
        const { sim, profile } = await startBenchSim(path.join(dir, 'sim'), { nodes: n, timeScale: 0, rebootDownMs: 300, timeouts: { messagingLayer: 60 } });
        stopSim = () => sim.stop();
        worker = await workerProcess(t.address, taskQueue);
        s.idleRss.push(vmHwmMiB(worker.child.pid!));
        const before = sim.nodes.map((x) => ({ conn: x.stats.connections, reboots: x.stats.reboots }));
        const workflowId = `${taskQueue}-prepare`;
        const t0 = performance.now();
        await (await t.client.workflow.start('reproduceClaims', { taskQueue, workflowId, args: [{ cluster: profile, experiments: [], hypervisors: ['fragvisor'] }] })).result();
        s.wall.push((performance.now() - t0) / 1000);
        s.rss.push(vmHwmMiB(worker.child.pid!));
        const perNode = sim.nodes.map((x, k) => ({ conn: x.stats.connections - before[k].conn, reboots: x.stats.reboots - before[k].reboots }));
        s.conn.push(Math.max(...perNode.map((p) => p.conn)));
        // Beyond the one connection each boot of the node needs (a reboot drops every connection).
        s.extra.push(Math.max(...perNode.map((p) => p.conn - (1 + p.reboots))));
        const tree = await historyTree(t.client, workflowId);
        s.topEvents.push(tree[0].events);
        s.topKiB.push(tree[0].bytes / 1024);
        s.maxChildEvents.push(Math.max(0, ...tree.slice(1).map((h) => h.events)));
        s.maxChildKiB.push(Math.max(0, ...tree.slice(1).map((h) => h.bytes / 1024)));
      } catch (err) {
        note = `failed: ${(err as Error).message.slice(0, 300)}`;
        ctx.log(`scale ${n}: ${note}`);
      } finally {
        if (worker) {
          worker.child.kill('SIGTERM');
          await worker.exited;
        }
        await stopSim?.();
        rmSync(dir, { recursive: true, force: true });
      }
    }
    walls.set(n, s.wall);
    const at = `prepare-hosts, ${n} nodes`;
    rows.push(
      { figure: '4. scale', what: `${at}: wall`, unit: 's', values: s.wall, ...(note ? { note } : {}), command, load },
      { figure: '4. scale', what: `${at}: SSH connections per node (max)`, unit: '', values: s.conn, note: 'one worker; every reboot drops the connection', command, load },
      { figure: '4. scale', what: `${at}: connections per node beyond 1 per boot (max)`, unit: '', values: s.extra, target: { op: '<=', value: 0 }, command, load },
      { figure: '4. scale', what: `${at}: worker peak RSS (VmHWM)`, unit: 'MiB', values: s.rss, target: { op: '<', value: 300 }, command, load },
      { figure: '4. scale', what: `${at}: worker peak RSS once polling, before the run`, unit: 'MiB', values: s.idleRss, note: 'the floor: Node, tsx, the SDK core and the workflow bundle', command, load },
      { figure: '4. scale', what: `${at}: top-level history events`, unit: '', values: s.topEvents, command, load },
      { figure: '4. scale', what: `${at}: top-level history size`, unit: 'KiB', values: s.topKiB, command, load },
      { figure: '4. scale', what: `${at}: largest child history events`, unit: '', values: s.maxChildEvents, command, load },
      { figure: '4. scale', what: `${at}: largest child history size`, unit: 'KiB', values: s.maxChildKiB, command, load },
    );
  }
  const lo = Math.min(...sizes);
  const hi = Math.max(...sizes);
  const a = spread(walls.get(lo) ?? []).median;
  const b = spread(walls.get(hi) ?? []).median;
  if (hi > lo && Number.isFinite(a) && Number.isFinite(b)) {
    rows.push({ figure: '4. scale', what: `prepare-hosts wall growth ${lo} -> ${hi} nodes (median / median)`, unit: 'x', values: [b / a], target: { op: '<', value: 1.5 }, note: `${fmt(a)} s -> ${fmt(b)} s`, command, load: loadavg() });
  }
  return rows;
}
