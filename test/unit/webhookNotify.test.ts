import { outcomeOf } from '../../activities/notify';

const verdicts = [{ id: 'C1', verdict: 'pass', why: 'w' }];

it.each([
  ['a run with verdicts and a report', { runDir: '/runs/x', verdicts, report: { html: 'report.html', md: 'report.md' } }, { verdicts, report: { runDir: '/runs/x', html: 'report.html', md: 'report.md' } }],
  ['a prepare-only run (no verdicts, no report)', { runDir: '/runs/x', dryRun: true }, { verdicts: [], report: null }],
  ['a report without runDir is not pointed at', { verdicts, report: { html: 'r.html' } }, { verdicts, report: null }],
  ['verdicts that are not a list', { verdicts: 'pass' }, { verdicts: [], report: null }],
  ['no result at all', undefined, { verdicts: [], report: null }],
  ['null', null, { verdicts: [], report: null }],
])('callback outcome of %s', (_what, result, expected) => {
  expect(outcomeOf(result)).toEqual(expected);
});
