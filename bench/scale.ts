import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { rerun, type BenchContext } from './context';
import { historyTree } from './history';
import { loadavg, vmHwmMiB } from './proc';
import { fmt, type Row } from './report';
import { spread } from './stats';
import { startBenchSim, taskQueueFor, workerProcess } from './stack';
import { runsDir } from '../config/paths';

/** What each of 4 nodes' kernel build prints in the log-streaming case (issue 9: 100 MB). */
const STREAM_MIB = 100;

interface PrepareHostsRun {
  wall: number;
  conn: number;
  extra: number;
  rss: number;
  idleRss: number;
  topEvents: number;
  topKiB: number;
  maxChildEvents: number;
  maxChildKiB: number;
  /** Bytes of the kernel build logs the run store received, per node (largest). */
  buildLogBytes: number;
}

/** One prepare-hosts on a fresh `n`-node sim with `ae worker` as its own process. */
async function prepareHosts(ctx: BenchContext, n: number, buildLogMiB = 0): Promise<PrepareHostsRun> {
  const t = await ctx.temporal();
  const dir = mkdtempSync(path.join(ctx.tmp, `scale-${n}-`));
  const taskQueue = taskQueueFor(`scale${n}`);
  let stopSim: (() => Promise<void>) | undefined;
  let worker: Awaited<ReturnType<typeof workerProcess>> | undefined;
  try {
    const { sim, profile } = await startBenchSim(path.join(dir, 'sim'), { nodes: n, timeScale: 0, rebootDownMs: 300, timeouts: { messagingLayer: 60 }, buildLogMiB });
    stopSim = () => sim.stop();
    worker = await workerProcess(t.address, taskQueue);
    const idleRss = vmHwmMiB(worker.child.pid!);
    const before = sim.nodes.map((x) => ({ conn: x.stats.connections, reboots: x.stats.reboots }));
    const workflowId = `${taskQueue}-prepare`;
    const t0 = performance.now();
    await (await t.client.workflow.start('reproduceClaims', { taskQueue, workflowId, args: [{ cluster: profile, experiments: [], hypervisors: ['fragvisor'] }] })).result();
    const wall = (performance.now() - t0) / 1000;
    const rss = vmHwmMiB(worker.child.pid!);
    const perNode = sim.nodes.map((x, k) => ({ conn: x.stats.connections - before[k].conn, reboots: x.stats.reboots - before[k].reboots }));
    const tree = await historyTree(t.client, workflowId);
    return {
      wall,
      rss,
      idleRss,
      conn: Math.max(...perNode.map((p) => p.conn)),
      // Beyond the one connection each boot of the node needs (a reboot drops every connection).
      extra: Math.max(...perNode.map((p) => p.conn - (1 + p.reboots))),
      topEvents: tree[0].events,
      topKiB: tree[0].bytes / 1024,
      maxChildEvents: Math.max(0, ...tree.slice(1).map((h) => h.events)),
      maxChildKiB: Math.max(0, ...tree.slice(1).map((h) => h.bytes / 1024)),
      buildLogBytes: largestBuildLog(workflowId),
    };
  } finally {
    if (worker) {
      worker.child.kill('SIGTERM');
      await worker.exited;
    }
    await stopSim?.();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The largest host-kernel build log in the run store of `runId`. */
function largestBuildLog(runId: string): number {
  const logs = path.join(runsDir(), runId, 'logs');
  if (!existsSync(logs)) return 0;
  const sizes = readdirSync(logs).flatMap((node) =>
    readdirSync(path.join(logs, node))
      .filter((f) => /\.build\./.test(f))
      .map((f) => statSync(path.join(logs, node, f)).size),
  );
  return Math.max(0, ...sizes);
}

/**
 * Figure 4: prepare-hosts (reproduceClaims with `experiments: []`, FragVisor: host kernels built,
 * installed, booted and proven, messaging layer loaded) on 4, 16 and 64 simulated nodes at time
 * scale 0, with the worker as its own `ae worker` process: wall time, SSH connections the sim
 * counted per node, the worker's peak RSS (VmHWM), events and bytes of each workflow history; then
 * once more on 4 nodes whose kernel builds print 100 MiB of log each, streamed to the run store.
 */
export async function scale(ctx: BenchContext): Promise<Row[]> {
  const sizes = ctx.sizes;
  const rows: Row[] = [];
  const command = rerun('scale', ctx.quick);
  const runs = ctx.quick ? 1 : 2;
  const walls = new Map<number, number[]>();
  for (const n of sizes) {
    const load = loadavg();
    const done: PrepareHostsRun[] = [];
    let note: string | undefined;
    for (let i = 0; i < runs; i++) {
      ctx.log(`scale: prepare-hosts on ${n} nodes, run ${i + 1}/${runs}`);
      try {
        done.push(await prepareHosts(ctx, n));
      } catch (err) {
        note = `failed: ${(err as Error).message.slice(0, 300)}`;
        ctx.log(`scale ${n}: ${note}`);
      }
    }
    const s = (k: keyof PrepareHostsRun) => done.map((r) => r[k]);
    walls.set(n, s('wall'));
    const at = `prepare-hosts, ${n} nodes`;
    rows.push(
      { figure: '4. scale', what: `${at}: wall`, unit: 's', values: s('wall'), ...(note ? { note } : {}), command, load },
      { figure: '4. scale', what: `${at}: SSH connections per node (max)`, unit: '', values: s('conn'), note: 'one worker; every reboot drops the connection', command, load },
      { figure: '4. scale', what: `${at}: connections per node beyond 1 per boot (max)`, unit: '', values: s('extra'), target: { op: '<=', value: 0 }, command, load },
      { figure: '4. scale', what: `${at}: worker peak RSS (VmHWM)`, unit: 'MiB', values: s('rss'), target: { op: '<', value: 300 }, command, load },
      { figure: '4. scale', what: `${at}: worker peak RSS once polling, before the run`, unit: 'MiB', values: s('idleRss'), note: 'the floor: Node, tsx, the SDK core and the workflow bundle', command, load },
      { figure: '4. scale', what: `${at}: top-level history events`, unit: '', values: s('topEvents'), command, load },
      { figure: '4. scale', what: `${at}: top-level history size`, unit: 'KiB', values: s('topKiB'), command, load },
      { figure: '4. scale', what: `${at}: largest child history events`, unit: '', values: s('maxChildEvents'), command, load },
      { figure: '4. scale', what: `${at}: largest child history size`, unit: 'KiB', values: s('maxChildKiB'), command, load },
    );
  }
  const lo = Math.min(...sizes);
  const hi = Math.max(...sizes);
  const a = spread(walls.get(lo) ?? []).median;
  const b = spread(walls.get(hi) ?? []).median;
  if (hi > lo && Number.isFinite(a) && Number.isFinite(b)) {
    rows.push({ figure: '4. scale', what: `prepare-hosts wall growth ${lo} -> ${hi} nodes (median / median)`, unit: 'x', values: [b / a], target: { op: '<', value: 1.5 }, note: `${fmt(a)} s -> ${fmt(b)} s`, command, load: loadavg() });
  }

  const load = loadavg();
  const at = `prepare-hosts, 4 nodes streaming ${STREAM_MIB} MiB build logs each`;
  ctx.log(`scale: ${at}`);
  let streamed: PrepareHostsRun | undefined;
  let note: string | undefined;
  try {
    streamed = await prepareHosts(ctx, 4, STREAM_MIB);
  } catch (err) {
    note = `failed: ${(err as Error).message.slice(0, 300)}`;
  }
  rows.push(
    { figure: '4. scale', what: `${at}: worker peak RSS (VmHWM)`, unit: 'MiB', values: streamed ? [streamed.rss] : [], target: { op: '<', value: 300 }, ...(note ? { note } : {}), command, load },
    { figure: '4. scale', what: `${at}: largest build log in the run store`, unit: 'MiB', values: streamed ? [streamed.buildLogBytes / 2 ** 20] : [], note: 'proof the logs went through the worker to disk', command, load },
    { figure: '4. scale', what: `${at}: wall`, unit: 's', values: streamed ? [streamed.wall] : [], command, load },
  );
  return rows;
}
