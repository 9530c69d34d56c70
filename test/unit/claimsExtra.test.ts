import type { MoreRepetitions } from '../../workflows/claims/claims';
import { addedToPoint, effectiveClaimSettings, extraEpochs, mergeClaimSettings, tallyAdded, withinBudget, type AddedRepetitions } from '../../workflows/claims/extra';
import { claimSettings, type ClaimSettingsInput } from '../../workflows/claims/settings';
import { abortArgProblem, abortedMessage } from '../../workflows/control';
import { epochMeasurements } from '../../workflows/epoch';
import { benchVariants } from '../../workflows/commands/bench';
import { clusterProfileSchema } from '../../config/schema';
import { describeZodError } from '../../config/errors';
import { extraNote, pointsTable } from '../../activities/report/model';

/** Added repetitions (issue 6 item 5) and operator control: the pure decisions the run makes. */

const ask = (hypervisor: 'fragvisor' | 'giantvm', experiment: 'E1' | 'E3', variant: string, repetitions: number[], points = [`C? ${variant}`]): MoreRepetitions => ({
  hypervisor,
  experiment,
  nodeCount: 2,
  variant,
  have: repetitions[0] - 1,
  more: repetitions.length,
  repetitions,
  points,
});

describe('claim settings: the profile, then the input field by field', () => {
  it.each<[string, ClaimSettingsInput | undefined, ClaimSettingsInput | undefined, ClaimSettingsInput]>([
    ['nothing anywhere: the defaults', undefined, undefined, {}],
    ['the profile alone', { minRepetitions: 5 }, undefined, { minRepetitions: 5 }],
    ['the input wins per field', { minRepetitions: 5, maxRepetitions: 8 }, { maxRepetitions: 12 }, { minRepetitions: 5, maxRepetitions: 12 }],
    ['inside c1..c3 too', { c3: { tolerance: 0.1, netMetric: 'transferRateKBps' } }, { c3: { tolerance: 0.3 } }, { c3: { tolerance: 0.3, netMetric: 'transferRateKBps' } }],
    ['a section only in the input', { timeBudgetMinutes: 30 }, { c1: { margin: 0.05 } }, { timeBudgetMinutes: 30, c1: { margin: 0.05 } }],
  ])('%s', (_name, profile, input, merged) => {
    expect(mergeClaimSettings(profile, input)).toEqual(merged);
    expect(effectiveClaimSettings(profile, input)).toEqual({ settings: claimSettings(merged) });
  });

  it('a merge that breaks a rule spanning two sources names the field', () => {
    expect(effectiveClaimSettings({ minRepetitions: 6 }, { maxRepetitions: 4 })).toEqual({ problems: ['claims.maxRepetitions: expected maxRepetitions at least minRepetitions'] });
    expect(effectiveClaimSettings(undefined, { c3: { tolerance: 2 } })).toEqual({ problems: ['claims.c3.tolerance: expected the tolerance of the delegated case below 1'] });
  });

  it('the profile schema takes `claims:`; its errors name the field', () => {
    const base = { name: 'p', nodes: [{ name: 'n0', origin: true, host: 'h0', rdmaIp: '10.0.0.1' }], paths: { fragvisor: '/f', kernelTree: '/f/k', kvmtool: '/k', ramdisks: '/r' }, guest: { ip: '10.4.4.222', hostIp: '10.4.4.221', mac: '00:11:22:33:44:55', ssh: { host: '127.0.0.1', port: 22, user: 'root' } } };
    expect(clusterProfileSchema.parse({ ...base, claims: { minRepetitions: 4 } }).claims).toMatchObject({ minRepetitions: 4, maxRepetitions: 10 });
    const bad = clusterProfileSchema.safeParse({ ...base, claims: { timeBudgetMinutes: -1, c1: { margin: 'x' } } });
    expect(bad.success).toBe(false);
    expect(describeZodError(bad.error!)).toEqual(['claims.timeBudgetMinutes: expected a time budget of at least 0 minutes', 'claims.c1.margin: expected the margin FragVisor must lead by (a fraction 0..1)']);
  });
});

describe('extra epochs', () => {
  it.each([
    ['nothing asked: no epoch', [], []],
    [
      'one epoch per (hypervisor, experiment, node count), in the asks order',
      [ask('fragvisor', 'E1', 'php-250ms', [4]), ask('fragvisor', 'E3', 'disk-delegated', [3]), ask('fragvisor', 'E3', 'disk-local', [3]), ask('giantvm', 'E1', 'php-250ms', [4, 5])],
      [
        { hypervisor: 'fragvisor', experiment: 'E1', nodeCount: 2, only: [{ variant: 'php-250ms', repetitions: [4] }] },
        { hypervisor: 'fragvisor', experiment: 'E3', nodeCount: 2, only: [{ variant: 'disk-delegated', repetitions: [3] }, { variant: 'disk-local', repetitions: [3] }] },
        { hypervisor: 'giantvm', experiment: 'E1', nodeCount: 2, only: [{ variant: 'php-250ms', repetitions: [4, 5] }] },
      ],
    ],
    ['an ask for no repetitions is no epoch', [ask('fragvisor', 'E1', 'php-250ms', [])], []],
  ])('%s', (_name, more, epochs) => {
    expect(extraEpochs(more as MoreRepetitions[])).toEqual(epochs);
  });

  it.each([
    [0, 0, 60, true],
    [0, 59 * 60_000, 60, true],
    [0, 60 * 60_000, 60, false],
    [1000, 1000, 0, false], // a budget of 0 turns added repetitions off
  ])('withinBudget(started %p, now %p, %p min) = %p', (started, now, minutes, ok) => {
    expect(withinBudget(started, now, minutes)).toBe(ok);
  });

  it('the tally counts per variant across rounds and keeps the asking points once', () => {
    const round1 = [ask('fragvisor', 'E3', 'disk-local', [3], ['C3 n2 disk read']), ask('fragvisor', 'E3', 'disk-delegated', [3], ['C3 n2 disk read'])];
    let tally: AddedRepetitions[] = [];
    for (const e of extraEpochs(round1)) tally = tallyAdded(tally, e, round1);
    const round2 = [ask('fragvisor', 'E3', 'disk-local', [4, 5], ['C3 n2 disk read', 'C3 n2 disk write'])];
    for (const e of extraEpochs(round2)) tally = tallyAdded(tally, e, round2);
    expect(tally).toEqual([
      { hypervisor: 'fragvisor', experiment: 'E3', nodeCount: 2, variant: 'disk-local', added: 3, points: ['C3 n2 disk read', 'C3 n2 disk write'] },
      { hypervisor: 'fragvisor', experiment: 'E3', nodeCount: 2, variant: 'disk-delegated', added: 1, points: ['C3 n2 disk read'] },
    ]);
    const ref = (variant: string) => ({ hypervisor: 'fragvisor' as const, experiment: 'E3' as const, nodeCount: 2, variant });
    expect(addedToPoint(tally, { fragvisor: ref('disk-delegated'), reference: ref('disk-local') })).toEqual({ fragvisor: 1, reference: 3 });
    expect(addedToPoint(tally, { fragvisor: ref('net-1-delegated') })).toEqual({ fragvisor: 0, reference: 0 });
    expect(addedToPoint(undefined, { fragvisor: ref('disk-local') })).toEqual({ fragvisor: 0, reference: 0 });
  });
});

describe('what an epoch measures', () => {
  const e3 = benchVariants('E3', 2, { network: { sizes: [1] }, npb: { kernels: ['ep.B'] } });
  const ids = (ms: ReturnType<typeof epochMeasurements>) => ms.map((m) => `${m.variant}.rep${m.repetition}${m.pinning ? `@${m.pinning}` : ''}`);

  it.each([
    // In rounds: every variant's repetition 1, then every variant's repetition 2.
    ['every variant x 1..repetitions', undefined, ['net-1-local.rep1@local', 'net-1-delegated.rep1@delegated', 'disk-local.rep1', 'disk-delegated.rep1', 'npb-ep.B-vcpu0.rep1', 'npb-ep.B-vcpu1.rep1', 'net-1-local.rep2@local', 'net-1-delegated.rep2@delegated', 'disk-local.rep2', 'disk-delegated.rep2', 'npb-ep.B-vcpu0.rep2', 'npb-ep.B-vcpu1.rep2']],
    // Rounds by repetition number, each in the epoch's variant order (pinning cases grouped), whatever the order asked.
    ['only: those variants, those repetition numbers', [{ variant: 'disk-delegated', repetitions: [3] }, { variant: 'net-1-local', repetitions: [4, 3] }, { variant: 'disk-local', repetitions: [3] }], ['net-1-local.rep3@local', 'disk-local.rep3', 'disk-delegated.rep3', 'net-1-local.rep4@local']],
    ['only, empty: nothing', [], []],
  ])('%s', (_name, only, expected) => {
    expect(ids(epochMeasurements(e3, 2, only))).toEqual(expected);
  });

  it('a variant the epoch does not have is refused, naming it', () => {
    expect(() => epochMeasurements(e3, 2, [{ variant: 'php-25ms', repetitions: [2] }])).toThrow(/not variants of this epoch: php-25ms/);
  });
});

describe('abort', () => {
  it.each([
    [{ reason: 'node2 lost its RDMA link' }, undefined],
    [{ reason: '' }, /non-empty reason/],
    [{ reason: '   ' }, /non-empty reason/],
    [{ reason: 'x'.repeat(201) }, /201 characters; at most 200/],
    [{ reason: 'x'.repeat(200) }, undefined],
    [{}, /needs \{ reason/],
    [undefined, /needs \{ reason/],
    [{ reason: 42 }, /needs \{ reason/],
  ])('abortArgProblem(%p)', (arg, problem) => {
    const got = abortArgProblem(arg);
    if (problem === undefined) expect(got).toBeUndefined();
    else expect(got).toMatch(problem);
  });

  it('the failure message carries the reason', () => {
    expect(abortedMessage('  wrong kernel commit ')).toBe('aborted by an operator: wrong kernel commit');
  });
});

describe('the report on added repetitions', () => {
  const ref = (variant: string) => ({ hypervisor: 'fragvisor' as const, experiment: 'E3' as const, nodeCount: 2, variant });
  const point = { label: 'n2 disk delegated/local readMBps', metric: 'readMBps', keys: [], threshold: 0.8, direction: 'above' as const, verdict: 'pass' as const, why: 'ok', variants: { fragvisor: ref('disk-delegated'), reference: ref('disk-local') } };
  const claim = { id: 'C3' as const, statement: 's', verdict: 'pass' as const, why: 'w', rule: { compares: 'c', reference: 'r', tolerance: 0.2, minRepetitions: 2 }, points: [point] };
  const settings = claimSettings();
  const added = [{ ...ref('disk-delegated'), added: 1, points: ['C3 n2 disk'] }, { ...ref('disk-local'), added: 2, points: ['C3 n2 disk'] }];

  it.each([
    ['a run that did not judge twice: no note, no column', undefined, undefined, undefined],
    ['nothing added: the note says why, no column', { rounds: 0, added: [], stopped: 'no interval left to narrow' }, 'Added repetitions: none (no interval left to narrow).', undefined],
    ['added: per variant, and a column per point', { rounds: 2, added, stopped: 'the time budget of 60 min is spent' }, 'Added repetitions: 3 in 2 extra round(s) to narrow intervals that overlapped a threshold (fragvisor.E3.n2.disk-delegated +1, fragvisor.E3.n2.disk-local +2); stopped: the time budget of 60 min is spent.', '+1 / +2'],
  ])('%s', (_name, extra, note, cell) => {
    expect(extraNote({ claims: [claim], settings, ...(extra ? { extra } : {}) })).toBe(note);
    const table = pointsTable(claim, extra);
    const column = table.header.indexOf('added repetitions (FragVisor / reference)');
    expect(column >= 0 ? table.rows[0][column] : undefined).toBe(cell);
  });
});
