import { timelineData } from './figures';
import { epochsTable, extraNote, isSimulated, nodesTable, pointsTable, provenanceFacts, ruleLines, simulatedNotice, timeTable, toolsTable, verdictTable, type ReportInput, type Table } from './model';
import { markdownCell, VERDICT_WORD } from './text';

/** report.md: the verdicts and tables of report.html without the charts, for a CI summary or a pull request. */

function table(t: Table): string {
  const line = (cells: string[]) => `| ${cells.map(markdownCell).join(' | ')} |`;
  return [line(t.header), `|${t.header.map(() => ' --- ').join('|')}|`, ...t.rows.map(line)].join('\n');
}

const paragraph = (text: string) => markdownCell(text);

export function renderReportMd(input: ReportInput): string {
  const { claims } = input;
  const runId = input.results.runId;
  const out: string[] = [`# FragVisor's claims on run ${paragraph(runId)}`, ''];
  if (isSimulated(input)) out.push(`> **${paragraph(simulatedNotice(input))}**`, '');
  const summary = claims.claims.map((c) => `${c.id} ${VERDICT_WORD[c.verdict]}`).join(', ');
  out.push(`**Verdicts:** ${summary || 'no claims judged'}`, '', table(verdictTable(claims)), '');
  const extra = extraNote(claims);
  if (extra) out.push(paragraph(extra), '');

  for (const c of claims.claims) {
    out.push(`## ${c.id}: ${VERDICT_WORD[c.verdict]}`, '', paragraph(c.statement), '', ...ruleLines(c).map((l) => `- ${paragraph(l)}`), '');
    out.push(c.points.length > 0 ? table(pointsTable(c, claims.extra)) : '_No compared points._', '');
  }

  const epochs = epochsTable(input.run);
  if (epochs) out.push('## Epochs', '', table(epochs), '');
  const timeline = input.timeline && timelineData(input.timeline);
  if (timeline) out.push('## Where the time went', '', 'Wall time per kind of step (parallel spans count once; kinds nest: an epoch holds its VM and benchmarks).', '', table(timeTable(timeline)), '');

  out.push('## Provenance', '', table(provenanceFacts(input)), '');
  if (input.provenance) out.push(table(nodesTable(input.provenance)), '', table(toolsTable(input.provenance)), '');
  else out.push('_provenance.json is missing from the run store._', '');
  out.push(`Claim settings: \`${JSON.stringify(claims.settings).replace(/`/g, "'")}\``, '', `Generated ${paragraph(input.generatedAt)} by \`ae report ${paragraph(runId)}\`; charts in report.html.`, '');
  return out.join('\n');
}
