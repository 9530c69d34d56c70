import type { RunComparison, Totals } from './compare';

/** chaos/results/latest.md: a table per run, then the totals (pure). */

export interface ReportInput {
  date: string;
  seed: number;
  timeScale: number;
  /** Runs at a time (the reference among them). */
  parallel: number;
  reference: { workflowId: string; status: string; durationMs: number; snapshot: { verdicts: Record<string, string>; measurements: Record<string, unknown> } };
  compared: readonly RunComparison[];
  totals: Totals;
  wallMs: number;
}

const yes = (ok: boolean) => (ok ? 'yes' : '**NO**');
const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
const list = (xs: readonly string[], max = 6) => (xs.length === 0 ? 'none' : `${xs.slice(0, max).join('; ')}${xs.length > max ? `; +${xs.length - max} more` : ''}`);
const verdictText = (v: Record<string, string>) => Object.entries(v).map(([id, x]) => `${id} ${x}`).join(', ') || 'none';

function runTable(r: RunComparison): string {
  const m = r.measurements;
  const rows: [string, string][] = [
    ['workflow', `\`${r.workflowId}\``],
    ['finished', `${yes(r.finished)}${r.error ? ` (${r.status}: ${r.error})` : ''}`],
    [
      'faults',
      `${r.faults.workerKills} worker kills (${list(r.faults.killPhases, 10)}); ${r.faults.serverRestarts} dev-server restart(s); sim faults fired: ${list(r.faults.simFaultsFired)}${r.faults.simFaultsUnfired.length ? `; armed, never fired: ${list(r.faults.simFaultsUnfired)}` : ''}${r.faults.notInjected.length ? `; not injected (the run ended first): ${list(r.faults.notInjected)}` : ''}${r.faults.other.length ? `; ${list(r.faults.other)}` : ''}`,
    ],
    ['verdicts same', `${yes(r.verdictsSame)} (${verdictText(r.verdicts)})${r.verdictDiffs.length ? `: ${list(r.verdictDiffs)}` : ''}`],
    [
      'measurements same',
      `${yes(m.missingKeys.length + m.extraKeys.length + m.valueDiffs.length === 0)}: ${m.comparedValues} values compared, ${m.keyOnly} wall-time metrics by key only; missing ${list(m.missingKeys)}, extra ${list(m.extraKeys)}, differing ${list(m.valueDiffs)}`,
    ],
    ['duplicated actions', `${r.duplicatedCount}${r.duplicates.length ? `: ${list(r.duplicates.map((d) => `${d.node ?? ''} ${d.counter} ${d.faulted} vs ${d.reference} (+${d.allowed} allowed)`.trim()))}` : ''}`],
    ['repetitions re-run because a fault cut them', String(r.rerunByFaults)],
    ['artifacts lost', `${r.lost.length}${r.lost.length ? `: ${list(r.lost)}` : ''}`],
    ['time added', `${r.addedSeconds} s`],
  ];
  return [`### ${r.label}`, '', '| | |', '|---|---|', ...rows.map(([k, v]) => `| ${k} | ${cell(v)} |`)].join('\n');
}

export function markdownReport(input: ReportInput): string {
  const t = input.totals;
  const tally = (x: Record<string, number>) => Object.entries(x).map(([k, n]) => `${k} ${n}`).join(', ') || 'none';
  const ref = input.reference;
  return `${[
    `# Chaos runs ${input.date}`,
    '',
    `\`npm run chaos -- --runs ${t.runs} --seed ${input.seed} --parallel ${input.parallel}\`, time scale ${input.timeScale}, 4 simulated nodes, whole reproduceClaims (E1-E3, FragVisor and GiantVM, small benchmark settings); ${input.parallel} run(s) at a time, each with its own dev server, worker and sim; ${Math.round(input.wallMs / 1000)} s in all.`,
    `Reference (no faults): \`${ref.workflowId}\`, ${ref.status} in ${Math.round(ref.durationMs / 1000)} s, ${Object.keys(ref.snapshot.measurements).length} measurements, verdicts ${verdictText(ref.snapshot.verdicts)}.`,
    'ab- and wall-clock-based metrics (E1, E3 network, E2 wall time) are real timings and vary between any two runs: they are compared by key only, every other metric by value; a verdict that changed only on points judged on them counts as the same (noted in the run).',
    '',
    '## Totals',
    '',
    '| | |',
    '|---|---|',
    `| runs finished | ${t.finished}/${t.runs} |`,
    `| verdicts same as the reference | ${t.verdictsSame}/${t.runs}${t.timingFlips ? ` (${t.timingFlips} claim(s) changed on real timings only, counted as same)` : ''} |`,
    `| measurements same (keys; values where deterministic) | ${t.measurementsSame}/${t.runs} |`,
    `| worker SIGKILLs | ${t.workerKills} (${tally(t.killPhases)}) |`,
    `| dev-server restarts | ${t.serverRestarts} |`,
    `| sim faults fired | ${tally(t.simFaultsFired)}${t.simFaultsUnfired ? `; ${t.simFaultsUnfired} armed but never fired` : ''} |`,
    `| duplicated non-idempotent actions | ${t.duplicated}${t.duplicated ? ` (${tally(t.duplicatedByGroup)})` : ''} |`,
    `| repetitions re-run because a fault cut them | ${t.rerunByFaults} |`,
    `| artifacts lost | ${t.lost} |`,
    `| time added (sum) | ${t.addedSeconds} s |`,
    `| targets (all finish, same verdicts, 0 duplicated, 0 lost) | ${t.targetsMet ? 'met' : '**not met**'} |`,
    '',
    '## Runs',
    '',
    ...input.compared.map((r) => `${runTable(r)}\n`),
  ].join('\n')}\n`;
}
