import { countRawAttempts, rawKeyId, type RunSnapshot } from '../../chaos/collect';
import {
  allowances,
  compareMeasurements,
  compareRun,
  cutKeyId,
  duplicatedActions,
  duplicatedRepetitions,
  genericPath,
  killCategory,
  lostArtifacts,
  totals,
  verdictDiffs,
  changedOnTimingsOnly,
  type RunInput,
} from '../../chaos/compare';
import { markdownReport } from '../../chaos/report';

const counters = (n: Record<string, number>) => ({ node0: { ...n }, node1: { ...n }, node2: { ...n }, node3: { ...n } });

describe('duplicated actions', () => {
  const ref = counters({ 'make:all': 2, 'make:install': 2, reboot: 6, boot: 6, insmod: 3, lkvm: 3, 'msglayer-make': 3 });

  it.each<[string, Record<string, Record<string, number>>, { node: string; step: string; at: string }[], string[]]>([
    ['the same counts: none', ref, [], []],
    ['a second kernel build on node2', { ...ref, node2: { ...ref.node2, 'make:all': 3 } }, [], ['node2 make:all +1']],
    ['an idempotent action (msg_layer make) is not counted', { ...ref, node1: { ...ref.node1, 'msglayer-make': 9 } }, [], []],
    ['a reboot the faults do not explain', { ...ref, node3: { ...ref.node3, reboot: 7 } }, [], ['node3 reboot +1']],
    ['a hung reboot explains one BMC power cycle', { ...ref, node1: { ...ref.node1, 'bmc:power-cycle': 1 } }, [{ node: 'node1', step: 'reboot-hang', at: 'fragvisor prepare hosts' }], []],
    ['... but not two', { ...ref, node1: { ...ref.node1, 'bmc:power-cycle': 2 } }, [{ node: 'node1', step: 'reboot-hang', at: 'fragvisor prepare hosts' }], ['node1 bmc:power-cycle +1']],
    [
      'a hung messaging layer explains a reboot and an insmod on every node',
      counters({ 'make:all': 2, 'make:install': 2, reboot: 7, boot: 7, insmod: 4, lkvm: 3, 'msglayer-make': 4 }),
      [{ node: 'node2', step: 'insmod-hang', at: 'fragvisor E2 reboot' }],
      [],
    ],
    [
      'a FragVisor guest that did not boot explains a boot cycle and one more lkvm',
      { ...counters({ 'make:all': 2, 'make:install': 2, reboot: 7, boot: 7, insmod: 4, lkvm: 3, 'msglayer-make': 3 }), node0: { 'make:all': 2, 'make:install': 2, reboot: 7, boot: 7, insmod: 4, lkvm: 4, 'msglayer-make': 3 } },
      [{ node: 'node3', step: 'guest-boot', at: 'fragvisor E1 messaging layer' }],
      [],
    ],
    [
      'a GiantVM guest that did not boot explains no insmod',
      counters({ 'make:all': 2, 'make:install': 2, reboot: 7, boot: 7, insmod: 4, lkvm: 3, 'msglayer-make': 3 }),
      [{ node: 'node3', step: 'guest-boot', at: 'giantvm E1 reboot' }],
      ['node0 insmod +1', 'node1 insmod +1', 'node2 insmod +1', 'node3 insmod +1'],
    ],
  ])('%s', (_name, faulted, fired, expected) => {
    const got = duplicatedActions(ref, faulted, allowances(fired)).map((d) => `${d.node} ${d.counter} +${d.extra}`);
    expect(got).toEqual(expected);
  });
});

describe('benchmark repetitions', () => {
  const ref = { 'fragvisor.E1.n4.php-250ms.rep1': 1, 'fragvisor.E1.n4.php-250ms.rep2': 1, 'giantvm.E3.n4.disk-local.rep1': 1 };

  it.each<[string, Record<string, number>, string[], string[], number, number]>([
    ['none again', ref, [], [], 0, 0],
    ['run twice, no fault cut it: a duplicate', { ...ref, 'fragvisor.E1.n4.php-250ms.rep2': 2 }, [], [], 1, 0],
    ['run twice after a kill cut it: a re-run, not a duplicate', { ...ref, 'fragvisor.E1.n4.php-250ms.rep2': 2 }, ['fragvisor.E1.n4.php-250ms.rep2'], [], 0, 1],
    ['a kill cut another one', { ...ref, 'fragvisor.E1.n4.php-250ms.rep2': 2 }, ['fragvisor.E1.n4.php-250ms.rep1'], [], 1, 0],
    ['a dropped connection in that epoch explains one', { ...ref, 'giantvm.E3.n4.disk-local.rep1': 3 }, [], ['giantvm.E3'], 1, 1],
  ])('%s', (_name, faulted, cut, dropped, duplicated, rerun) => {
    const r = duplicatedRepetitions(ref, faulted, cut, dropped);
    expect(r.extra.reduce((s, d) => s + d.extra, 0)).toBe(duplicated);
    expect(r.rerunByFaults).toBe(rerun);
  });

  it.each<[string, string | undefined]>([
    ['raw/fragvisor/E1-n4/php-250ms.rep2.try1.txt', 'fragvisor.E1.n4.php-250ms.rep2'],
    ['raw/giantvm/E3-n4/net-4096-delegated.rep1.try2.3.txt', 'giantvm.E3.n4.net-4096-delegated.rep1'],
    ['measurements/fragvisor.E1.n4.php-250ms.rep2.json', undefined],
  ])('raw file %s belongs to %s', (file, id) => {
    expect(rawKeyId(file)).toBe(id);
  });

  it('counts attempts per key', () => {
    expect(countRawAttempts(['raw/fragvisor/E2-n4/openlambda.rep1.try1.txt', 'raw/fragvisor/E2-n4/openlambda.rep1.try2.txt', 'results.json'])).toEqual({ 'fragvisor.E2.n4.openlambda.rep1': 2 });
  });

  it.each<[string, string | undefined, string | undefined]>([
    ['fragvisor E1 benchmarks', 'php-250ms rep 2', 'fragvisor.E1.n4.php-250ms.rep2'],
    ['fragvisor E1 vm', 'php-250ms rep 2', undefined],
    ['giantvm E3 benchmarks', undefined, undefined],
  ])('a fault at %s while measuring %s cut %s', (at, measuring, id) => {
    expect(cutKeyId({ at, measuring }, 4)).toBe(id);
  });
});

describe('measurements, artifacts, verdicts', () => {
  it('compares wall-time metrics by key only, the rest by value', () => {
    const ref = { 'fragvisor.E1.n4.php-250ms.rep1': { requestsPerSecond: 10 }, 'fragvisor.E3.n4.disk-local.rep1': { readMBps: 100 }, 'fragvisor.E2.n4.openlambda.rep1': { wallSeconds: 1, initMs: 5 } };
    const same = compareMeasurements(ref, { ...ref, 'fragvisor.E1.n4.php-250ms.rep1': { requestsPerSecond: 11 }, 'fragvisor.E2.n4.openlambda.rep1': { wallSeconds: 2, initMs: 5 } });
    expect(same).toMatchObject({ missingKeys: [], extraKeys: [], valueDiffs: [], keyOnly: 2, comparedValues: 2 });
    const diff = compareMeasurements(ref, { 'fragvisor.E3.n4.disk-local.rep1': { readMBps: 90 }, 'x.E3.n4.disk-local.rep9': { readMBps: 1 } });
    expect(diff.missingKeys).toEqual(['fragvisor.E1.n4.php-250ms.rep1', 'fragvisor.E2.n4.openlambda.rep1']);
    expect(diff.extraKeys).toEqual(['x.E3.n4.disk-local.rep9']);
    expect(diff.valueDiffs).toEqual(['fragvisor.E3.n4.disk-local.rep1 readMBps: 100 -> 90']);
  });

  it('makes run ids, Temporal run ids and job hashes generic', () => {
    expect(genericPath('logs/node0/ae-1.node0.01a2189f-42fd-77be-9c3a-9eedd416a161.insmod.log', 'ae-1')).toBe('logs/node0/<run>.node0.<uuid>.insmod.log');
    expect(genericPath('logs/node0/fragvisor.node0.build.ae-1.x.aaee1ba1729901bf1d01463-2aa95b81acdc.log', 'ae-1')).toBe('logs/node0/fragvisor.node0.build.<run>.x.<hash>-<hash>.log');
  });

  it('finds what the faulted run lost, file by file', () => {
    const reference = { workflowId: 'ref', files: ['results.json', 'logs/node0/ref.a.log', 'logs/node0/ref.b-0123456789ab.log', 'logs/node0/ref.b-ba9876543210.log', 'raw/x.tmp'] };
    expect(lostArtifacts(reference, { workflowId: 'run', files: ['results.json', 'logs/node0/run.a.log', 'logs/node0/run.b-aaaaaaaaaaaa.log', 'logs/node0/run.b-bbbbbbbbbbbb.log', 'extra.txt'] })).toEqual([]);
    expect(lostArtifacts(reference, { workflowId: 'run', files: ['logs/node0/run.b-aaaaaaaaaaaa.log'] })).toEqual(['results.json', 'logs/node0/ref.a.log', 'logs/node0/ref.b-ba9876543210.log']);
  });

  it('diffs verdicts', () => {
    expect(verdictDiffs({ C1: 'pass', C2: 'pass' }, { C1: 'pass', C2: 'fail' })).toEqual(['C2: pass -> fail']);
    expect(verdictDiffs({ C1: 'pass' }, {})).toEqual(['C1: pass -> none']);
  });

  it.each([
    ['fragvisor prepare hosts', 'prepare'],
    ['giantvm E2 reboot', 'reboot'],
    ['fragvisor E3 messaging layer', 'messaging layer'],
    ['giantvm E1 benchmarks', 'E1'],
    ['report', 'report'],
  ])('a kill at %s counts for %s', (actual, category) => {
    expect(killCategory(actual)).toBe(category);
  });
});

const wallPoint = (verdict: string) => ({ label: 'n4 openlambda wallSeconds', metric: 'wallSeconds', keys: ['fragvisor.E2.n4.openlambda.rep1', 'giantvm.E2.n4.openlambda.rep1'], verdict });
const initPoint = (verdict: string) => ({ label: 'n4 openlambda initMs', metric: 'initMs', keys: ['fragvisor.E2.n4.openlambda.rep1', 'giantvm.E2.n4.openlambda.rep1'], verdict });
const php = (verdict: string) => ({ label: 'n4 php-500ms requestsPerSecond', metric: 'requestsPerSecond', keys: ['fragvisor.E1.n4.php-500ms.rep1'], verdict });

describe('changedOnTimingsOnly', () => {
  it.each([
    { name: 'E2 wall time only', before: [wallPoint('inconclusive'), initPoint('pass')], after: [wallPoint('pass'), initPoint('pass')], expected: ['wallSeconds'] },
    { name: 'E1 (ab) and E2 wall time', before: [php('pass'), wallPoint('pass')], after: [php('inconclusive'), wallPoint('inconclusive')], expected: ['requestsPerSecond', 'wallSeconds'] },
    { name: 'a seeded phase too', before: [wallPoint('inconclusive'), initPoint('pass')], after: [wallPoint('pass'), initPoint('fail')], expected: undefined },
    { name: 'a point on one side only', before: [wallPoint('pass')], after: [wallPoint('pass'), initPoint('pass')], expected: undefined },
    { name: 'no point changed (the gaps did)', before: [wallPoint('pass')], after: [wallPoint('pass')], expected: undefined },
    { name: 'no points known', before: undefined, after: undefined, expected: undefined },
  ])('$name -> $expected', ({ before, after, expected }) => {
    expect(changedOnTimingsOnly(before, after)).toEqual(expected);
  });
});

describe('a run against the reference, the totals and the table', () => {
  const snap = (over: Partial<RunSnapshot> = {}): RunSnapshot => ({
    counters: counters({ 'make:all': 2, reboot: 6, insmod: 3, lkvm: 3 }),
    files: ['results.json', 'raw/fragvisor/E1-n4/php-250ms.rep1.try1.txt'],
    measurements: { 'fragvisor.E1.n4.php-250ms.rep1': { requestsPerSecond: 10 } },
    rawAttempts: { 'fragvisor.E1.n4.php-250ms.rep1': 1 },
    verdicts: { C1: 'pass', C2: 'pass', C3: 'pass' },
    points: {},
    ...over,
  });
  const ref: RunInput = { label: 'reference', workflowId: 'ref', status: 'completed', durationMs: 100_000, snapshot: snap(), injected: [], fired: [] };

  it('a clean faulted run meets the targets', () => {
    const run: RunInput = {
      ...ref,
      label: 'run 1',
      workflowId: 'r1',
      durationMs: 130_000,
      snapshot: snap({ rawAttempts: { 'fragvisor.E1.n4.php-250ms.rep1': 2 } }),
      injected: [
        { kind: 'worker-kill', actual: 'fragvisor E1 benchmarks', measuring: 'php-250ms rep 1' },
        { kind: 'server-restart', actual: 'giantvm prepare hosts' },
      ],
    };
    const c = compareRun(ref, run);
    expect(c).toMatchObject({ finished: true, verdictsSame: true, duplicatedCount: 0, rerunByFaults: 1, lost: [], addedSeconds: 30 });
    expect(c.faults).toMatchObject({ workerKills: 1, serverRestarts: 1, killPhases: ['fragvisor E1 benchmarks'] });
    const t = totals([c]);
    expect(t).toMatchObject({ runs: 1, finished: 1, verdictsSame: 1, duplicated: 0, lost: 0, targetsMet: true, killPhases: { E1: 1 } });
    const md = markdownReport({ date: 'd', seed: 1, timeScale: 0.01, parallel: 1, reference: ref, compared: [c], totals: t, wallMs: 1000 });
    expect(md).toContain('| runs finished | 1/1 |');
    expect(md).toContain('### run 1');
    expect(md).toContain('| targets (all finish, same verdicts, 0 duplicated, 0 lost) | met |');
  });

  it('a verdict that changed on real timings only counts as the same, and the table says so', () => {
    const c2 = (wall: string, init: string) => ({ C2: [wallPoint(wall), initPoint(init)] });
    const reference: RunInput = { ...ref, snapshot: snap({ verdicts: { C1: 'pass', C2: 'inconclusive', C3: 'pass' }, points: c2('inconclusive', 'pass') }) };
    const timing = compareRun(reference, { ...reference, label: 'run 3', snapshot: snap({ verdicts: { C1: 'pass', C2: 'pass', C3: 'pass' }, points: c2('pass', 'pass') }) });
    expect(timing).toMatchObject({ verdictsSame: true, verdictDiffs: ['C2: inconclusive -> pass (on real timings only: wallSeconds)'], timingFlips: ['C2: inconclusive -> pass (on real timings only: wallSeconds)'] });
    const t = totals([timing]);
    expect(t).toMatchObject({ verdictsSame: 1, timingFlips: 1, targetsMet: true });
    expect(markdownReport({ date: 'd', seed: 1, timeScale: 0.01, parallel: 1, reference, compared: [timing], totals: t, wallMs: 1000 })).toContain('| verdicts same as the reference | 1/1 (1 claim(s) changed on real timings only, counted as same) |');
    // A seeded (deterministic) phase that changed is a real difference.
    const real = compareRun(reference, { ...reference, label: 'run 4', snapshot: snap({ verdicts: { C1: 'pass', C2: 'pass', C3: 'pass' }, points: c2('pass', 'fail') }) });
    expect(real).toMatchObject({ verdictsSame: false, timingFlips: [] });
  });

  it('a failed run with a changed verdict, a duplicate and a lost file misses the targets', () => {
    const run: RunInput = {
      ...ref,
      label: 'run 2',
      workflowId: 'r2',
      status: 'failed',
      error: 'boom',
      unfired: ['ssh-drop node2'],
      snapshot: snap({ files: ['results.json'], verdicts: { C1: 'fail', C2: 'pass', C3: 'pass' }, counters: { ...counters({ 'make:all': 2, reboot: 6, insmod: 3, lkvm: 3 }), node1: { 'make:all': 3, reboot: 6, insmod: 3 } } }),
    };
    const c = compareRun(ref, run);
    expect(c).toMatchObject({ finished: false, verdictsSame: false, duplicatedCount: 1, lost: ['raw/fragvisor/E1-n4/php-250ms.rep1.try1.txt'] });
    const t = totals([c]);
    expect(t.targetsMet).toBe(false);
    expect(t.duplicatedByGroup).toEqual({ 'kernel builds': 1 });
    const md = markdownReport({ date: 'd', seed: 1, timeScale: 0.01, parallel: 1, reference: ref, compared: [c], totals: t, wallMs: 1000 });
    expect(md).toContain('**not met**');
    expect(md).toContain('node1 make:all 3 vs 2');
    expect(md).toContain('armed, never fired: ssh-drop node2');
    expect(md).toContain('1 armed but never fired');
  });
});
