import { renderReportHtml } from '../../activities/report/html';
import { renderJunit } from '../../activities/report/junit';
import { renderReportMd } from '../../activities/report/markdown';
import { measuredStats, reportFigures, timelineData } from '../../activities/report/figures';
import { compactKeys, type ReportInput } from '../../activities/report/model';
import { escapeMarkup, formatBytes, markdownCell } from '../../activities/report/text';
import { exitCodeFor } from '../../cli/commands/report';
import { judgeClaims, type ClaimsReport } from '../../workflows/claims/claims';
import type { Verdict } from '../../workflows/claims/rules';
import type { Measurement } from '../../workflows/commands/bench';
import type { TimelineSpan } from '../../workflows/timeline';
import { fixtureBaseline, fixtureMeasurements, fixtureProvenance, fixtureResults, fixtureRun, fixtureTimeline } from '../fixtures/report/runStore';

const HOSTILE = `"><script>alert(1)</script><img src=x onerror=alert(2)> | pipe\nnew line & 'quote' \u0001`;
const runId = 'unit-report';

function input(overrides: Partial<ReportInput> = {}): ReportInput {
  const results = overrides.results ?? fixtureResults({ runId });
  return {
    results,
    claims: overrides.claims ?? judgeClaims({ measurements: results.measurements, ...(overrides.baseline ? { baseline: overrides.baseline } : {}) }),
    provenance: fixtureProvenance({ runId }),
    run: fixtureRun({ runId }),
    timeline: fixtureTimeline(),
    generatedAt: '2025-01-01T10:00:00.000Z',
    ...overrides,
  };
}

/** Every attribute value and text node of a rendered document, for "nothing raw got through" checks. */
const svgCount = (html: string) => (html.match(/<svg[\s>]/g) ?? []).length;

describe('text escapes', () => {
  test.each([
    ['<script>', '&#60;script&#62;'],
    [`a & "b" 'c'`, 'a &#38; &#34;b&#34; &#39;c&#39;'],
    ['ctrl\u0001\u0008\u000Bend', 'ctrl\uFFFD\uFFFD\uFFFDend'],
    ['tab\tnl\ncr\r', 'tab\tnl\ncr\r'],
    ['lone \uD800 surrogate', 'lone \uFFFD surrogate'],
    ['pair \uD83D\uDE00 kept', 'pair \uD83D\uDE00 kept'],
  ])('escapeMarkup(%j) = %j', (raw, escaped) => {
    expect(escapeMarkup(raw)).toBe(escaped);
  });

  test.each([
    ['a | b', 'a \\| b'],
    ['line\nbreak\r\nagain', 'line break again'],
    ['<b>bold</b> & more', '&#60;b&#62;bold&#60;/b&#62; &#38; more'],
    ['`code` *em* _u_ [link]', '\\`code\\` \\*em\\* \\_u\\_ \\[link\\]'],
  ])('markdownCell(%j) = %j', (raw, cell) => {
    expect(markdownCell(raw)).toBe(cell);
  });

  test.each([
    [1, '1 B'],
    [1000, '1000 B'],
    [1024, '1 KiB'],
    [65536, '64 KiB'],
    [1048576, '1 MiB'],
    [1536, '1536 B'],
  ])('formatBytes(%d) = %s', (bytes, label) => {
    expect(formatBytes(bytes)).toBe(label);
  });

  test('compactKeys folds repetitions per variant, in order', () => {
    expect(compactKeys(['fragvisor.E1.n4.php-500ms.rep1', 'fragvisor.E1.n4.php-500ms.rep2', 'giantvm.E1.n4.php-500ms.rep3', 'odd'])).toEqual([
      'fragvisor.E1.n4.php-500ms.rep1,2',
      'giantvm.E1.n4.php-500ms.rep3',
      'odd',
    ]);
  });
});

describe('figures', () => {
  test.each([
    ['everything', undefined, ['fig12', 'fig13', 'fig6', 'fig7', 'npb']],
    ['E1 only', 'E1', ['fig12']],
    ['E2 only', 'E2', ['fig13']],
    ['E3 only', 'E3', ['fig6', 'fig7', 'npb']],
  ] as const)('%s: sections with data only', (_name, experiment, keys) => {
    const measurements = fixtureMeasurements({ runId }).filter((m) => !experiment || m.key.experiment === experiment);
    expect(reportFigures({ measurements, netMetric: 'requestsPerSecond' }).map((s) => s.key)).toEqual(keys);
  });

  test('no measurements: no figure at all', () => {
    expect(reportFigures({ measurements: [], netMetric: 'requestsPerSecond' })).toEqual([]);
  });

  test('Figure 12: one chart per PHP level, node counts on x, FragVisor and GiantVM with 95% intervals', () => {
    const [fig12] = reportFigures({ measurements: fixtureMeasurements({ runId }), netMetric: 'requestsPerSecond' });
    expect(fig12.figures.map((f) => f.id)).toEqual(['fig12-php-25ms', 'fig12-php-40ms', 'fig12-php-250ms', 'fig12-php-500ms']);
    const f = fig12.figures[2];
    expect(f.categories).toEqual(['2 nodes', '4 nodes']);
    expect(f.series.map((s) => s.name)).toEqual(['FragVisor', 'GiantVM']);
    for (const p of f.series.flatMap((s) => s.points)) {
      expect(p?.n).toBe(3);
      expect(p!.ci95![0]).toBeLessThan(p!.mean);
      expect(p!.ci95![1]).toBeGreaterThan(p!.mean);
    }
    expect(f.series[0].points[1]!.mean).toBeGreaterThan(f.series[1].points[1]!.mean);
  });

  test('GiantVM from a baseline file: its own series, only where the file has a figure', () => {
    const measurements = fixtureMeasurements({ runId, hypervisors: ['fragvisor'] });
    const sections = reportFigures({ measurements, baseline: fixtureBaseline('paper, Fig. 12'), netMetric: 'requestsPerSecond' });
    const fig12 = sections.find((s) => s.key === 'fig12')!;
    const byId = Object.fromEntries(fig12.figures.map((f) => [f.id, f.series.map((s) => s.name)]));
    expect(byId['fig12-php-25ms']).toEqual(['FragVisor']);
    expect(byId['fig12-php-250ms']).toEqual(['FragVisor', 'GiantVM (baseline file, approximate)']);
    const baseline = fig12.figures.find((f) => f.id === 'fig12-php-500ms')!.series[1];
    expect(baseline.points).toEqual([undefined, { source: 'baseline', mean: 25, ci95: [25, 25] }]);
    // E2's wall time is charted in ms: 1.1 s from the file is 1100 ms.
    const fig13 = sections.find((s) => s.key === 'fig13')!.figures.find((f) => f.id === 'fig13-n4')!;
    const wall = fig13.categories.indexOf('burst wall');
    expect(fig13.series[1].points[wall]!.mean).toBeCloseTo(1100);
  });

  test('Figure 6 uses the claims\' network metric and a log scale across sizes', () => {
    const measurements = fixtureMeasurements({ runId }).filter((m) => m.key.experiment === 'E3');
    const [fig6] = reportFigures({ measurements, netMetric: 'transferRateKBps' });
    expect(fig6.figures.map((f) => f.id)).toEqual(['fig6-fragvisor-n2', 'fig6-fragvisor-n4', 'fig6-giantvm-n2', 'fig6-giantvm-n4']);
    expect(fig6.figures[0]).toMatchObject({ kind: 'line', yName: 'KiB/s', logY: true, categories: ['1 B', '1 KiB', '64 KiB', '1 MiB'] });
    expect(fig6.figures[0].series.map((s) => s.name)).toEqual(['local (vCPU 0)', 'delegated (vCPU 1)']);
  });

  test('a variant that names nothing we run is left out, not drawn or thrown', () => {
    const odd: Measurement = { ...fixtureMeasurements({ runId })[0], key: { hypervisor: 'fragvisor', experiment: 'E1', nodeCount: 4, variant: 'php-<b>', repetition: 1 } };
    expect(reportFigures({ measurements: [odd], netMetric: 'requestsPerSecond' })).toEqual([]);
  });

  test.each([
    [[], undefined],
    [[5], { source: 'measured', n: 1, mean: 5 }],
  ])('measuredStats(%j)', (values, stats) => {
    expect(measuredStats(values)).toEqual(stats);
  });

  test('measuredStats of three values: Student t interval', () => {
    const s = measuredStats([9, 10, 11])!;
    expect(s).toMatchObject({ n: 3, mean: 10, stddev: 1 });
    expect(s.ci95![1] - 10).toBeCloseTo(4.302653 / Math.sqrt(3), 5);
  });
});

describe('timelineData', () => {
  const at = (min: number) => new Date(Date.UTC(2025, 0, 1) + min * 60_000).toISOString();
  test('parallel spans of a kind count once; an open span lasts to the last moment known; unreadable times are left out', () => {
    const spans: TimelineSpan[] = [
      { key: 'b/node0', what: 'build', start: at(10), end: at(40), outcome: 'ok' },
      { key: 'b/node1', what: 'build', start: at(20), end: at(50), outcome: 'failed' },
      { key: 'setup', what: 'setup', start: at(0), end: at(5), outcome: 'ok' },
      { key: 'epoch', what: 'epoch', start: at(60) },
      { key: 'bad', what: 'reboot', start: 'yesterday', end: at(1) },
      { key: 'late', what: 'reboot', start: at(70), end: at(90), outcome: 'ok' },
    ];
    const d = timelineData(spans)!;
    expect(d.t0).toBe(at(0));
    expect(d.totalMs).toBe(90 * 60_000);
    expect(d.rows.map((r) => r.key)).toEqual(['setup', 'b/node0', 'b/node1', 'epoch', 'late']);
    expect(d.rows.find((r) => r.key === 'epoch')).toMatchObject({ open: true, startMs: 60 * 60_000, endMs: 90 * 60_000 });
    expect(d.byKind).toEqual([
      { what: 'build', wallMs: 40 * 60_000, spans: 2, failed: 1 },
      { what: 'epoch', wallMs: 30 * 60_000, spans: 1, failed: 0 },
      { what: 'reboot', wallMs: 20 * 60_000, spans: 1, failed: 0 },
      { what: 'setup', wallMs: 5 * 60_000, spans: 1, failed: 0 },
    ]);
  });

  test.each([[[]], [[{ key: 'x', what: 'setup', start: 'not a time' }]]])('nothing readable: undefined (%j)', (spans) => {
    expect(timelineData(spans as TimelineSpan[])).toBeUndefined();
  });
});

/** A claims report with the given verdicts and a hostile why. */
function claimsWith(verdicts: Verdict[]): ClaimsReport {
  const base = judgeClaims({ measurements: fixtureMeasurements({ runId }) });
  return { ...base, claims: base.claims.slice(0, verdicts.length).map((c, i) => ({ ...c, verdict: verdicts[i], why: `${verdicts[i]} because ${HOSTILE}` })) };
}

describe('renderJunit', () => {
  test.each([
    [['pass', 'pass', 'pass'], 0, 0],
    [['pass', 'fail', 'inconclusive'], 1, 1],
    [['fail', 'fail', 'inconclusive'], 2, 1],
    [['inconclusive', 'inconclusive', 'inconclusive'], 0, 3],
  ] as [Verdict[], number, number][])('%j: failures=%d skipped=%d, one testcase per claim', (verdicts, failures, skipped) => {
    const xml = renderJunit(claimsWith(verdicts), { runId, simulated: true });
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites ')).toBe(true);
    expect(xml).toContain(`tests="3" failures="${failures}" errors="0" skipped="${skipped}"`);
    expect((xml.match(/<testcase /g) ?? []).length).toBe(3);
    expect((xml.match(/<\/testcase>/g) ?? []).length).toBe(3);
    expect((xml.match(/<failure /g) ?? []).length).toBe(failures);
    expect((xml.match(/<skipped /g) ?? []).length).toBe(skipped);
    expect(xml).toContain('(SIMULATED)');
    verdicts.forEach((v, i) => {
      const block = xml.split('<testcase ')[i + 1];
      expect(block).toMatch(new RegExp(`^classname="fragvisor-ae.claims" name="C${i + 1}: `));
      if (v === 'fail') expect(block).toContain(`<failure message="${escapeMarkup(`fail because ${HOSTILE}`)}" type="ClaimFailed">`);
      if (v === 'inconclusive') expect(block).toContain(`<skipped message="${escapeMarkup(`inconclusive: inconclusive because ${HOSTILE}`)}"/>`);
    });
  });

  test('hostile text never breaks out of an attribute or an element', () => {
    const xml = renderJunit(claimsWith(['fail', 'inconclusive', 'pass']), { runId: 'r"<&>', simulated: false });
    expect(xml).not.toContain('<script');
    expect(xml).not.toContain('<img');
    expect(xml).not.toContain('\u0001');
    // Inside quotes there is no raw markup character.
    for (const value of xml.match(/="[^"]*"/g) ?? []) expect(value.slice(2, -1)).not.toMatch(/[<>&](?!#\d+;)/);
    expect(xml).toContain('name="runId" value="r&#34;&#60;&#38;&#62;"');
  });
});

describe('renderReportMd', () => {
  test('verdicts first, one table row per claim, points tables, time and provenance', () => {
    const md = renderReportMd(input());
    const lines = md.split('\n');
    expect(lines[0]).toBe(`# FragVisor's claims on run ${runId}`);
    expect(md.indexOf('**Verdicts:** C1 PASS, C2 PASS, C3 PASS')).toBeLessThan(md.indexOf('## C1'));
    expect(lines.filter((l) => /^\| C[123] \| PASS \|/.test(l))).toHaveLength(3);
    expect(md).toContain('> **SIMULATED');
    expect(md).toContain('| n4 php-500ms requestsPerSecond | PASS |');
    expect(md).toContain('## Where the time went');
    expect(md).toMatch(/\| build \| 46m00s \| 1 \| 0 \|/);
    expect(md).toContain('| node1 |  | unreachable |');
  });

  test('hostile strings stay inside their cell and render no HTML', () => {
    const md = renderReportMd(input({ claims: claimsWith(['fail', 'inconclusive', 'pass']), baseline: fixtureBaseline(HOSTILE) }));
    const rows = md.split('\n').filter((l) => /^\| C[123] \|/.test(l));
    expect(rows).toHaveLength(3);
    for (const row of rows) expect(row.split(/(?<!\\)\|/).length).toBe(6);
    expect(md).not.toMatch(/<script|<img/);
    expect(md).toContain('| C1 | FAIL |');
  });

  test('no simulated banner on real results', () => {
    const results = fixtureResults({ runId, simulated: false });
    expect(renderReportMd(input({ results, provenance: fixtureProvenance({ runId, simulated: false }), run: { ...fixtureRun({ runId }), simulated: false } }))).not.toContain('SIMULATED');
  });
});

describe('renderReportHtml', () => {
  test('the verdicts come first, then one SVG per chart with data and the timeline; no external URL', () => {
    const i = input();
    const html = renderReportHtml(i);
    const order = ['class="simulated"', 'id="verdicts"', 'id="figures"', 'id="claims"', 'id="timeline"', 'id="provenance"'].map((s) => html.indexOf(s));
    expect(order.every((at) => at > 0)).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // Nothing but the header and the banner before the verdicts.
    expect(html.slice(html.indexOf('<body>'), order[1])).not.toMatch(/<table|<svg/);

    const figures = reportFigures({ measurements: i.results.measurements, netMetric: 'requestsPerSecond' }).flatMap((s) => s.figures);
    expect(figures.length).toBe(4 + 2 + 4 + 4 + 4);
    const charts = [...html.matchAll(/<figure class="chart" id="([^"]+)"[^>]*>(.*?)<\/figure>/gs)];
    expect(charts.map((c) => c[1])).toEqual([...figures.map((f) => f.id), 'timeline-chart']);
    for (const [, , svg] of charts) expect(svgCount(svg)).toBe(1);
    expect(svgCount(html)).toBe(charts.length);
    // Every attribute closes where it should (a raw quote inside one, e.g. a quoted font name in a style, would not).
    expect(html).not.toMatch(/="[^"]*"[^\s/>]/);

    expect(html).not.toMatch(/\s(?:src|href|xlink:href|action|srcset)\s*=\s*["']?\s*(?:https?:)?\/\//i);
    expect(html).not.toMatch(/url\(\s*['"]?(?:https?:)?\/\//i);
    expect(html).not.toMatch(/<script|<link|<iframe|<img|@import/i);
    expect(html).toContain(`content="default-src 'none'; style-src 'unsafe-inline'"`);
    expect(html).toContain('<span class="verdict pass">PASS</span>');
  });

  test('hostile strings from any file are escaped, in tables and in charts', () => {
    const provenance = fixtureProvenance({ runId, hostile: HOSTILE });
    provenance.tools.push({ tool: HOSTILE, host: HOSTILE, version: HOSTILE });
    // An OpenLambda phase is named by its metric: a hand-edited results.json puts it in a chart's axis.
    const results = fixtureResults({ runId });
    const e2 = results.measurements.find((m) => m.key.experiment === 'E2')!;
    const phase = HOSTILE.replace(/\n/g, ' ');
    e2.metrics = { ...e2.metrics, [`${phase}Ms`]: 1, [`${phase}MaxMs`]: 2 };
    const html = renderReportHtml(
      input({
        results,
        claims: claimsWith(['fail', 'inconclusive', 'pass']),
        baseline: fixtureBaseline(HOSTILE),
        provenance,
        run: { ...fixtureRun({ runId }), error: HOSTILE },
        timeline: [{ key: HOSTILE, what: 'setup', start: '2025-01-01T00:00:00Z', end: '2025-01-01T00:01:00Z', outcome: 'ok' }],
      }),
    );
    const fig13 = html.slice(html.indexOf('id="fig13-n2"'), html.indexOf('</figure>', html.indexOf('id="fig13-n2"')));
    expect(fig13).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).not.toMatch(/<script|<img|onerror=alert\(2\)>/);
    expect(html).not.toContain('\u0001');
    expect(html).toContain(escapeMarkup(HOSTILE));
    expect(html).toContain('<span class="verdict fail">FAIL</span>');
    expect(html).toContain('<span class="verdict inconclusive">INCONCLUSIVE</span>');
  });

  test('no measurements: no chart but the timeline; missing provenance and timeline are said, not drawn', () => {
    const results = { simulated: false, runId, count: 0, measurements: [] };
    const bare = renderReportHtml({ results, claims: judgeClaims({ measurements: [] }), generatedAt: 'now' });
    expect(svgCount(bare)).toBe(0);
    expect(bare).toContain('No measurements to chart.');
    expect(bare).toContain('No timeline recorded for this run.');
    expect(bare).toContain('provenance.json is missing from the run store.');
    expect(bare).not.toContain('class="simulated"');
    expect((bare.match(/<span class="verdict inconclusive">/g) ?? []).length).toBe(6);
  });
});

describe('ae report exit code', () => {
  test.each([
    [['pass', 'pass', 'pass'], 0],
    [['pass', 'fail', 'pass'], 1],
    [['fail', 'inconclusive', 'pass'], 1],
    [['pass', 'inconclusive', 'pass'], 3],
    [[], 3],
  ] as [Verdict[], number][])('%j -> %d', (verdicts, code) => {
    expect(exitCodeFor(verdicts.map((verdict) => ({ verdict })))).toBe(code);
  });
});
