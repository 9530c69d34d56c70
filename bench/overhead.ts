import { rerun, type BenchContext } from './context';
import { fullRun, SMALL_BENCH } from './fullRun';
import { topActivityTypes } from './history';
import { loadavg } from './proc';
import type { Row } from './report';
import { unionLength } from './stats';

/**
 * Figure 2: a full reproduceClaims (both hypervisors, E1-E3, 2 nodes, one repetition, small
 * benchmarks) at time scale 0: wall time over the activities it ran (ActivityTaskScheduled in the
 * run's and its children's histories). The activities' own work (real SSH, real `ab`) is in that
 * wall time too; the second row counts only the time in which no activity ran at all.
 */
export async function overhead(ctx: BenchContext): Promise<Row[]> {
  const load = loadavg();
  const perActivity: number[] = [];
  const idlePerActivity: number[] = [];
  const counts: number[] = [];
  const topEvents: number[] = [];
  const topBytes: number[] = [];
  const runs = ctx.quick ? 1 : 2;
  let note: string | undefined;
  let where = '';
  for (let i = 0; i < runs; i++) {
    ctx.log(`overhead: full run ${i + 1}/${runs}`);
    try {
      const r = await fullRun(ctx, { nodes: 2, timeScale: 0, rebootDownMs: 300, input: { nodeCounts: [2], repetitions: 1, bench: SMALL_BENCH } });
      const spans = r.tree.flatMap((h) => h.activities);
      const busy = unionLength(spans.filter((s) => s.started !== undefined && s.closed !== undefined).map((s) => [s.started!, s.closed!] as const));
      where = topActivityTypes(spans);
      const top = r.tree[0];
      const wall = (top.close ?? NaN) - top.start;
      counts.push(spans.length);
      perActivity.push(r.wallMs / spans.length);
      idlePerActivity.push((wall - busy) / spans.length);
      topEvents.push(top.events);
      topBytes.push(top.bytes / 1024);
    } catch (err) {
      note = `failed run: ${(err as Error).message.slice(0, 300)}`;
    }
  }
  const command = rerun('overhead', ctx.quick);
  const what = 'full AE, time scale 0, 2 nodes, both hypervisors, E1-E3, 1 repetition';
  return [
    { figure: '2. overhead', what: `${what}: wall / activities`, unit: 'ms', values: perActivity, target: { op: '<', value: 30 }, note: [note, where && `where the time goes (last run): ${where}`].filter(Boolean).join('; '), command, load },
    { figure: '2. overhead', what: `${what}: time no activity ran / activities`, unit: 'ms', values: idlePerActivity, note: 'the orchestration share proper: gaps between activities across the whole tree', command, load },
    { figure: '2. overhead', what: `${what}: activities run`, unit: '', values: counts, command, load },
    { figure: '2. overhead', what: `${what}: top-level history events`, unit: '', values: topEvents, command, load },
    { figure: '2. overhead', what: `${what}: top-level history size`, unit: 'KiB', values: topBytes, command, load },
  ];
}
