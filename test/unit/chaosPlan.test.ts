import { positionOf, rank, type Position } from '../../chaos/position';
import { KILL_CATEGORIES, killPoint, planRuns, rotation, simFault, SIM_FAULT_KINDS } from '../../chaos/schedule';
import { currentEpochChild, type EpochProgress } from '../../workflows/progress';
import type { RunProgress } from '../../workflows/progress';

const NODES = ['node0', 'node1', 'node2', 'node3'];
const run = (extra: Partial<RunProgress>): RunProgress => ({ runId: 'r', phase: 'experiments', stages: [], nodes: {}, ...extra });
const epoch = (name: string, phase: EpochProgress['phase']): EpochProgress => ({ epoch: name, phase, nodes: {}, done: 0, total: 1 });

describe('positions along a run', () => {
  it.each<[string, RunProgress, EpochProgress | undefined, Position | undefined]>([
    ['planning: not yet', run({ phase: 'planning' }), undefined, undefined],
    ['prepare hosts', run({ phase: 'prepare hosts', hypervisor: 'giantvm' }), undefined, { stage: 'prepare', hypervisor: 'giantvm' }],
    ['an epoch phase', run({}), epoch('fragvisor/E2-n4', 'messaging layer'), { stage: 'epoch', hypervisor: 'fragvisor', experiment: 'E2', phase: 'messaging layer' }],
    ['an added-repetitions epoch is not a planned position', run({}), epoch('fragvisor/E2-n4/extra-1', 'vm'), undefined],
    ['report', run({ phase: 'report' }), undefined, { stage: 'report' }],
    ['done', run({ phase: 'done' }), undefined, { stage: 'done' }],
  ])('%s', (_name, r, e, expected) => {
    expect(positionOf(r, e)).toEqual(expected);
  });

  it('orders prepare < epochs (by experiment, then phase) < the next hypervisor < report < done', () => {
    const seq: Position[] = [
      { stage: 'prepare', hypervisor: 'fragvisor' },
      { stage: 'epoch', hypervisor: 'fragvisor', experiment: 'E1', phase: 'reboot' },
      { stage: 'epoch', hypervisor: 'fragvisor', experiment: 'E1', phase: 'benchmarks' },
      { stage: 'epoch', hypervisor: 'fragvisor', experiment: 'E3', phase: 'reboot' },
      { stage: 'prepare', hypervisor: 'giantvm' },
      { stage: 'epoch', hypervisor: 'giantvm', experiment: 'E1', phase: 'vm' },
      { stage: 'report' },
      { stage: 'done' },
    ];
    const ranks = seq.map(rank);
    expect([...ranks].sort((a, b) => a - b)).toEqual(ranks);
    expect(new Set(ranks).size).toBe(ranks.length);
  });

  it('finds the epoch child the nodes are running in', () => {
    const nodes = { node0: { step: 'E1 n=4', state: 'running' as const, child: 'r/fragvisor/E1-n4' } };
    expect(currentEpochChild(run({ nodes }))).toBe('r/fragvisor/E1-n4');
    expect(currentEpochChild(run({ phase: 'prepare hosts', nodes }))).toBeUndefined();
    expect(currentEpochChild(run({ nodes: { node0: { step: 'host kernel', state: 'running', child: 'r/fragvisor/host-kernel/node0' } } }))).toBeUndefined();
    // A round of added repetitions is an epoch too; a finished one is not current.
    expect(currentEpochChild(run({ nodes: { node0: { step: 'E3 n=4', state: 'running', child: 'r/fragvisor/E3-n4/extra-2' } } }))).toBe('r/fragvisor/E3-n4/extra-2');
    expect(currentEpochChild(run({ nodes: { node0: { step: 'E3 n=4', state: 'done', child: 'r/fragvisor/E3-n4' } } }))).toBeUndefined();
  });
});

describe('the fault plan', () => {
  it('is a pure function of the seed', () => {
    const opts = { seed: 7, runs: 3, killsPerRun: 4, simFaultsPerRun: 3, nodes: NODES };
    expect(planRuns(opts)).toEqual(planRuns(opts));
    expect(planRuns(opts)).not.toEqual(planRuns({ ...opts, seed: 8 }));
  });

  it.each([1, 2, 3])('seed %i, 5 runs: 20 kills over every phase category, a restart and 3 distinct sim faults per run, in run order', (seed) => {
    const plans = planRuns({ seed, runs: 5, killsPerRun: 4, simFaultsPerRun: 3, nodes: NODES });
    const kills = plans.flat().filter((f) => f.kind === 'worker-kill');
    expect(kills).toHaveLength(20);
    for (const c of KILL_CATEGORIES) expect(kills.filter((k) => k.category === c).length).toBeGreaterThanOrEqual(2);
    for (const p of plans) {
      expect(p.filter((f) => f.kind === 'server-restart')).toHaveLength(1);
      const sims = p.filter((f) => (SIM_FAULT_KINDS as readonly string[]).includes(f.kind));
      expect(new Set(sims.map((f) => f.kind)).size).toBe(sims.length);
      expect(sims.length).toBeGreaterThanOrEqual(2);
      const ranks = p.map((f) => rank(f.at));
      expect([...ranks].sort((a, b) => a - b)).toEqual(ranks);
    }
    // Over the runs every sim fault kind is used.
    for (const k of SIM_FAULT_KINDS) expect(plans.flat().some((f) => f.kind === k)).toBe(true);
  });

  it('rotation: each item once per round', () => {
    const xs = rotation(['a', 'b', 'c'], 7, 1, 'k');
    expect(xs).toHaveLength(7);
    expect([...xs.slice(0, 3)].sort()).toEqual(['a', 'b', 'c']);
    expect([...xs.slice(3, 6)].sort()).toEqual(['a', 'b', 'c']);
  });

  it.each(KILL_CATEGORIES.map((c) => [c]))('a %s kill lands in its phase', (category) => {
    const { at, delayMs } = killPoint(category, 3, `k-${category}`);
    expect(delayMs).toBeGreaterThanOrEqual(0);
    if (category === 'prepare') expect(at.stage).toBe('prepare');
    else if (category === 'report') expect(at.stage).toBe('report');
    else if (category === 'reboot' || category === 'messaging layer') expect(at).toMatchObject({ stage: 'epoch', phase: category });
    else expect(at).toMatchObject({ stage: 'epoch', experiment: category });
    if (category === 'messaging layer') expect(at).toMatchObject({ hypervisor: 'fragvisor' });
  });

  it('an E2 kill waits at most 300 ms in its benchmarks (a few bursts), others up to 3 s', () => {
    const delays = (category: 'E1' | 'E2') =>
      Array.from({ length: 40 }, (_, s) => killPoint(category, s, 'k')).filter((p) => p.at.stage === 'epoch' && p.at.phase === 'benchmarks').map((p) => p.delayMs);
    expect(delays('E2').length).toBeGreaterThan(5);
    expect(Math.max(...delays('E2'))).toBeLessThanOrEqual(300);
    expect(Math.max(...delays('E1'))).toBeGreaterThan(300);
  });

  it.each(SIM_FAULT_KINDS.map((k) => [k]))('a %s sim fault is armed before the step it breaks', (kind) => {
    for (let s = 0; s < 20; s++) {
      const f = simFault(kind, s, 'x', NODES);
      expect(NODES).toContain(f.node);
      if (kind === 'reboot-hang') expect(f.at.stage).toBe('prepare');
      if (kind === 'insmod-hang') expect(f.at).toMatchObject({ hypervisor: 'fragvisor', phase: 'reboot' });
      if (kind === 'guest-boot') expect(f.at).toMatchObject({ stage: 'epoch', phase: expect.stringMatching(/^(reboot|messaging layer)$/) });
      if (kind === 'slow') expect(rank(f.until!)).toBeGreaterThan(rank(f.at));
    }
  });
});
