import type { ClaimsReport } from '../../workflows/claims/claims';
import { escapeMarkup as x, formatNumber, formatRatio, formatStats } from './text';

/**
 * junit.xml: one test case per claim, so any CI shows the verdicts. JUnit has exactly three
 * outcomes and the claims have three verdicts: pass -> passed, fail -> <failure>, inconclusive ->
 * <skipped>. An inconclusive claim is neither shown nor refuted (too few repetitions, an interval
 * over the threshold, nothing to compare); reporting it as a failure would make "the paper does not
 * hold here" and "this run cannot tell" look the same. A CI that must not go green on an
 * inconclusive claim gates on `ae report`'s exit code (3), not on the JUnit counts.
 */

export interface JunitMeta {
  runId: string;
  simulated: boolean;
  /** ISO 8601, the suite's timestamp. */
  timestamp?: string;
}

export function renderJunit(report: ClaimsReport, meta: JunitMeta): string {
  const count = (v: string) => report.claims.filter((c) => c.verdict === v).length;
  const [failures, skipped] = [count('fail'), count('inconclusive')];
  const suite = `fragvisor-ae claims, run ${meta.runId}${meta.simulated ? ' (SIMULATED)' : ''}`;
  const totals = `tests="${report.claims.length}" failures="${failures}" errors="0" skipped="${skipped}"`;
  const cases = report.claims.map((c) => {
    const details = [
      `${c.id}: ${c.statement}`,
      `verdict: ${c.verdict}: ${c.why}`,
      `rule: ${c.rule.compares}`,
      `reference: ${c.rule.reference}`,
      `tolerance: ${formatNumber(c.rule.tolerance)}; minimum repetitions: ${c.rule.minRepetitions}`,
      ...c.points.map((p) => `point ${p.label}: ${p.verdict}; FragVisor ${formatStats(p.fragvisor)}; reference ${formatStats(p.reference)}; ratio ${formatRatio(p.ratio)} vs ${formatNumber(p.threshold)}; ${p.why}`),
    ].join('\n');
    const outcome =
      c.verdict === 'fail' ? `\n      <failure message="${x(c.why)}" type="ClaimFailed">${x(details)}</failure>` : c.verdict === 'inconclusive' ? `\n      <skipped message="${x(`inconclusive: ${c.why}`)}"/>` : '';
    return `    <testcase classname="fragvisor-ae.claims" name="${x(`${c.id}: ${c.statement}`)}" time="0">${outcome}\n      <system-out>${x(details)}</system-out>\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${x(suite)}" ${totals}>`,
    `  <testsuite name="${x(suite)}" ${totals}${meta.timestamp ? ` timestamp="${x(meta.timestamp)}"` : ''}>`,
    '    <properties>',
    `      <property name="runId" value="${x(meta.runId)}"/>`,
    `      <property name="simulated" value="${meta.simulated}"/>`,
    '    </properties>',
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}
