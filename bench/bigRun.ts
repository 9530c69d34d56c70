import { rerun, type BenchContext } from './context';
import { fullRun, SMALL_BENCH } from './fullRun';
import { loadavg } from './proc';
import type { Row } from './report';

/** The shape issue 9 bounds the top-level history for; a VM spans at most 9 nodes (lkvm's -a..-t). */
const NODES = 16;
const NODE_COUNTS = [2, 4, 8];
const REPETITIONS = 10;

/**
 * Figure 4 (history): one whole reproduceClaims on 16 simulated nodes (every host kernel on all 16),
 * both hypervisors, E1-E3 at 2, 4 and 8 nodes, 10 repetitions, small benchmark settings, time scale 0. The top-level history must stay
 * far below Temporal's limits however long the run: repetitions, measurements and logs live in the
 * epochs' children and in the run store, so what it holds grows with nodes and epochs only.
 * Run once (it measures sizes, not times).
 */
export async function bigRunHistory(ctx: BenchContext): Promise<Row[]> {
  const load = loadavg();
  const what = `full AE, ${NODES} nodes, both hypervisors, E1-E3 at ${NODE_COUNTS.join('/')} nodes, ${REPETITIONS} repetitions`;
  const command = rerun('history', false);
  ctx.log(`history: ${what}`);
  const r = await fullRun(ctx, { nodes: NODES, timeScale: 0, rebootDownMs: 300, input: { nodeCounts: NODE_COUNTS, repetitions: REPETITIONS, bench: SMALL_BENCH } });
  const [top, ...children] = r.tree;
  const largest = children.reduce((a, b) => (b.events > a.events ? b : a), children[0]);
  return [
    { figure: '4. scale', what: `${what}: top-level history events`, unit: '', values: [top.events], target: { op: '<', value: 10_240 }, command, load },
    { figure: '4. scale', what: `${what}: top-level history size`, unit: 'KiB', values: [top.bytes / 1024], command, load },
    { figure: '4. scale', what: `${what}: largest child history events`, unit: '', values: [largest.events], note: `${largest.type} ${largest.workflowId}`, command, load },
    { figure: '4. scale', what: `${what}: workflows / events in all histories`, unit: '', values: [r.tree.reduce((n, h) => n + h.events, 0)], note: `${r.tree.length} workflows`, command, load },
    { figure: '4. scale', what: `${what}: wall time`, unit: 's', values: [r.wallMs / 1000], command, load },
  ];
}
