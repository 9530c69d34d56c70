import { figureSvg, timelineSvg } from './charts';
import { reportFigures, timelineData } from './figures';
import { epochsTable, extraNote, isSimulated, nodesTable, pointsTable, provenanceFacts, ruleLines, simulatedNotice, timeTable, toolsTable, verdictTable, type ReportInput, type Table } from './model';
import { escapeMarkup as x, VERDICT_WORD } from './text';

/**
 * report.html: one self-contained file (inline CSS, inline SVG charts, no script, no external
 * resource) that opens offline. Order: the SIMULATED banner when it applies, the verdicts, the
 * figures, each claim's evidence, the timeline, the provenance.
 */

const CSS = `
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; margin: 0 auto; max-width: 1200px; padding: 16px 24px 48px; color: #1d1d1f; }
h1 { font-size: 22px; margin: 8px 0 4px; } h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; padding-bottom: 4px; } h3 { font-size: 15px; margin: 18px 0 6px; }
.meta { color: #555; margin: 0 0 12px; }
.simulated { background: #fff3cd; border: 2px solid #d39e00; color: #5c4400; padding: 10px 14px; font-weight: 600; margin: 12px 0; }
table { border-collapse: collapse; margin: 8px 0 12px; width: 100%; font-size: 13px; }
th, td { border: 1px solid #d8d8d8; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f6; }
td.num { font-variant-numeric: tabular-nums; white-space: nowrap; }
.verdict { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 700; font-size: 12px; color: #fff; }
.verdict.pass { background: #2e7d32; } .verdict.fail { background: #c62828; } .verdict.inconclusive { background: #b26a00; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
figure.chart { margin: 0; border: 1px solid #e4e4e4; padding: 6px; background: #fff; max-width: 100%; overflow-x: auto; }
figure.chart svg { display: block; }
.caption { color: #555; font-size: 13px; }
ul.rule { margin: 4px 0 8px; padding-left: 20px; }
code { font-size: 12px; }
`;

const badge = (verdict: 'pass' | 'fail' | 'inconclusive') => `<span class="verdict ${verdict}">${VERDICT_WORD[verdict]}</span>`;

function table(t: Table, cell: (value: string, column: number) => string = (v) => x(v), attrs = ''): string {
  const head = `<tr>${t.header.map((h) => `<th>${x(h)}</th>`).join('')}</tr>`;
  const body = t.rows.map((r) => `<tr>${r.map((v, i) => `<td>${cell(v, i)}</td>`).join('')}</tr>`).join('\n');
  return `<table${attrs}>\n<thead>${head}</thead>\n<tbody>\n${body}\n</tbody>\n</table>`;
}

/** A verdict word in a table becomes its badge; everything else is escaped text. */
const verdictCell = (column: number) => (v: string, i: number) => {
  const verdict = (Object.keys(VERDICT_WORD) as (keyof typeof VERDICT_WORD)[]).find((k) => VERDICT_WORD[k] === v);
  return i === column && verdict ? badge(verdict) : x(v);
};

const chart = (id: string, svg: string) => `<figure class="chart" id="${x(id)}" data-chart="${x(id)}">${svg}</figure>`;

export function renderReportHtml(input: ReportInput): string {
  const { claims } = input;
  const runId = input.results.runId;
  const simulated = isSimulated(input);
  const body: string[] = [];
  body.push(`<h1>FragVisor's claims on run ${x(runId)}</h1>`);
  body.push(`<p class="meta">Generated ${x(input.generatedAt)} from the run store by <code>ae report ${x(runId)}</code>; ${input.results.count} measurement(s).</p>`);
  if (simulated) body.push(`<div class="simulated" role="alert">${x(simulatedNotice(input))}</div>`);

  const extra = extraNote(claims);
  body.push('<section id="verdicts"><h2>Verdicts</h2>', table(verdictTable(claims), verdictCell(1), ' class="verdicts"'), ...(extra ? [`<p class="caption">${x(extra)}</p>`] : []), '</section>');

  const sections = reportFigures({ measurements: input.results.measurements, ...(input.baseline ? { baseline: input.baseline } : {}), netMetric: claims.settings.c3.netMetric });
  body.push('<section id="figures"><h2>Figures</h2>');
  if (sections.length === 0) body.push('<p class="caption">No measurements to chart.</p>');
  for (const s of sections) {
    body.push(`<h3 id="${x(s.key)}">${x(s.title)}</h3>`, `<p class="caption">${x(s.caption)}</p>`);
    body.push(`<div class="charts">${s.figures.map((f) => chart(f.id, figureSvg(f))).join('\n')}</div>`);
  }
  body.push('</section>');

  body.push('<section id="claims"><h2>Evidence per claim</h2>');
  for (const c of claims.claims) {
    body.push(`<h3 id="claim-${x(c.id)}">${x(c.id)} ${badge(c.verdict)}</h3>`, `<p>${x(c.statement)}</p>`, `<p><strong>Why:</strong> ${x(c.why)}</p>`);
    body.push(`<ul class="rule">${ruleLines(c).map((l) => `<li>${x(l)}</li>`).join('')}</ul>`);
    body.push(c.points.length > 0 ? table(pointsTable(c, claims.extra), verdictCell(1)) : '<p class="caption">No compared points.</p>');
  }
  body.push('</section>');

  const timeline = input.timeline && timelineData(input.timeline);
  const epochs = epochsTable(input.run);
  body.push('<section id="timeline"><h2>Timeline: where the hours went</h2>');
  if (timeline) {
    body.push(`<p class="caption">From ${x(timeline.t0)}. Wall time per kind of step (parallel spans count once; kinds nest: an epoch holds its VM and benchmarks). A red outline marks a failed span, a dashed one a span still open when the run stopped.</p>`);
    body.push(table(timeTable(timeline)), `<div class="charts">${chart('timeline-chart', timelineSvg(timeline))}</div>`);
  } else body.push('<p class="caption">No timeline recorded for this run.</p>');
  if (epochs) body.push('<h3>Epochs</h3>', table(epochs));
  body.push('</section>');

  body.push('<section id="provenance"><h2>Provenance</h2>', table(provenanceFacts(input)));
  if (input.provenance) body.push('<h3>Nodes</h3>', table(nodesTable(input.provenance)), '<h3>Tools</h3>', table(toolsTable(input.provenance)));
  else body.push('<p class="caption">provenance.json is missing from the run store.</p>');
  body.push(`<h3>Claim settings</h3><p><code>${x(JSON.stringify(claims.settings))}</code></p>`, '</section>');

  return [
    '<!DOCTYPE html>',
    '<html lang="en">',
    '<head>',
    '<meta charset="utf-8">',
    // No script, no request: the report must open offline and be safe to open from anywhere.
    `<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">`,
    '<meta name="viewport" content="width=device-width, initial-scale=1">',
    `<title>${simulated ? 'SIMULATED ' : ''}FragVisor claims: ${x(runId)}</title>`,
    `<style>${CSS}</style>`,
    '</head>',
    '<body>',
    ...body,
    '</body>',
    '</html>',
    '',
  ].join('\n');
}
