import { rerun, type BenchContext } from './context';
import { fullRun, SMALL_BENCH } from './fullRun';
import { loadavg } from './proc';
import type { Row } from './report';
import { unionLength } from './stats';

/** A server's reboot, model time (BIOS, POST, kernel): the sim's default 3 s is a test convenience. */
const REBOOT_MODEL_MS = 120_000;

/**
 * Figure 3: a full reproduceClaims with the model's durations scaled down (builds, reboots, boots,
 * benchmarks) against a lower bound from the measured activity durations: the union over time of
 * every activity's started..closed span across the run and its children. For stages run one after
 * the other, each over parallel nodes started together, that union is the sum over stages of the
 * longest node, i.e. the critical path. Efficiency = that bound / wall time (1 = the cluster was
 * never waiting for the orchestrator).
 */
export async function criticalPath(ctx: BenchContext): Promise<Row[]> {
  const load = loadavg();
  const timeScale = ctx.quick ? 0.002 : 0.004;
  const runs = ctx.quick ? 1 : 2;
  const eff: number[] = [];
  const walls: number[] = [];
  let note = `bound from the measured activity spans, not the model (the model's durations are spread over sim/ and the epoch logic)`;
  for (let i = 0; i < runs; i++) {
    ctx.log(`critical path: full run ${i + 1}/${runs} at time scale ${timeScale}`);
    try {
      const r = await fullRun(ctx, { nodes: 2, timeScale, rebootDownMs: REBOOT_MODEL_MS, input: { nodeCounts: [2], repetitions: 1, bench: SMALL_BENCH } });
      const top = r.tree[0];
      const wall = (top.close ?? NaN) - top.start;
      const bound = unionLength(r.tree.flatMap((h) => h.activities).filter((s) => s.started !== undefined && s.closed !== undefined).map((s) => [s.started!, s.closed!] as const));
      eff.push(bound / wall);
      walls.push(wall / 1000);
    } catch (err) {
      note = `failed run: ${(err as Error).message.slice(0, 300)}`;
    }
  }
  const command = rerun('critical-path', ctx.quick);
  const what = `full AE, time scale ${timeScale} (reboot ${REBOOT_MODEL_MS / 1000} s model), 2 nodes, both hypervisors, E1-E3, 1 repetition`;
  return [
    { figure: '3. critical path', what: `${what}: efficiency`, unit: '', values: eff, target: { op: '>=', value: 0.95 }, note, command, load },
    { figure: '3. critical path', what: `${what}: wall`, unit: 's', values: walls, command, load },
  ];
}
