import type { ClaimsReport, Claim } from '../../workflows/claims/claims';
import { addedToPoint } from '../../workflows/claims/extra';
import type { BaselineFigures } from '../../workflows/claims/rules';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import type { TimelineSpan } from '../../workflows/timeline';
import { formatDuration } from '../../cli/format';
import type { ProvenanceFile } from '../provenance';
import { SIMULATED_LABEL, type ResultsFile } from '../results';
import type { TimelineData } from './figures';
import { formatNumber, formatRatio, formatStats, VERDICT_WORD } from './text';

/**
 * What the report is made of (the run store's files, parsed) and the tables the HTML and Markdown
 * reports share, as plain rows of text: each renderer escapes the cells for its own format.
 */

/** run.json as reproduceClaims records it (every field optional: a failed run records less). */
export type RunRecord = Partial<ReproduceClaimsResult> & { outcome?: string; error?: string; timeline?: TimelineSpan[] };

/** baseline.json: the GiantVM baseline file the run used, with its name and sha256. */
export type StoredBaseline = BaselineFigures & { sha256?: string };

export interface ReportInput {
  results: ResultsFile;
  claims: ClaimsReport;
  provenance?: ProvenanceFile;
  timeline?: readonly TimelineSpan[];
  run?: RunRecord;
  baseline?: StoredBaseline;
  /** ISO 8601: when the report was rendered (passed in: the renderers are pure). */
  generatedAt: string;
}

export interface Table {
  header: string[];
  rows: string[][];
}

/** True when anything the report rests on came from the simulated cluster. */
export function isSimulated(input: Pick<ReportInput, 'results' | 'provenance' | 'run'>): boolean {
  return Boolean(input.results.simulated || input.provenance?.simulated || input.run?.simulated);
}

export function simulatedNotice(input: Pick<ReportInput, 'results' | 'provenance'>): string {
  return input.results.label ?? input.provenance?.notice ?? SIMULATED_LABEL;
}

export function verdictTable(report: ClaimsReport): Table {
  return { header: ['claim', 'verdict', 'statement', 'why'], rows: report.claims.map((c) => [c.id, VERDICT_WORD[c.verdict], c.statement, c.why]) };
}

export function ruleLines(c: Claim): string[] {
  return [
    `Compares: ${c.rule.compares}`,
    `Reference: ${c.rule.reference}`,
    `Tolerance: ${formatNumber(c.rule.tolerance)}; minimum repetitions per side: ${c.rule.minRepetitions}`,
  ];
}

/** Measurement ids with their repetitions folded: `fragvisor.E1.n4.php-500ms.rep1,2,3`. */
export function compactKeys(keys: readonly string[]): string[] {
  const reps = new Map<string, string[]>();
  for (const key of keys) {
    const m = /^(.*)\.rep(\d+)$/.exec(key);
    const [variant, rep] = m ? [m[1], m[2]] : [key, ''];
    reps.set(variant, [...(reps.get(variant) ?? []), ...(rep ? [rep] : [])]);
  }
  return [...reps].map(([variant, r]) => (r.length > 0 ? `${variant}.rep${r.join(',')}` : variant));
}

/** One line on the repetitions the run added to narrow intervals, when it added any. */
export function extraNote(report: ClaimsReport): string | undefined {
  const extra = report.extra;
  if (!extra) return undefined;
  const total = extra.added.reduce((s, a) => s + a.added, 0);
  if (total === 0) return `Added repetitions: none (${extra.stopped}).`;
  const per = extra.added.map((a) => `${a.hypervisor}.${a.experiment}.n${a.nodeCount}.${a.variant} +${a.added}`).join(', ');
  return `Added repetitions: ${total} in ${extra.rounds} extra round(s) to narrow intervals that overlapped a threshold (${per}); stopped: ${extra.stopped}.`;
}

export function pointsTable(c: Claim, extra?: ClaimsReport['extra']): Table {
  // The column appears only when the run added repetitions.
  const tally = extra && extra.added.length > 0 ? extra.added : undefined;
  const added = (p: Claim['points'][number]) => {
    if (!tally) return [];
    const a = addedToPoint(tally, p.variants);
    return [`+${a.fragvisor} / +${a.reference}`];
  };
  return {
    header: ['point', 'verdict', 'FragVisor (mean [95% CI] n)', 'reference', 'ratio [95% CI]', 'must lie', ...(tally ? ['added repetitions (FragVisor / reference)'] : []), 'why', 'evidence'],
    rows: c.points.map((p) => [
      p.label,
      VERDICT_WORD[p.verdict],
      formatStats(p.fragvisor),
      formatStats(p.reference),
      formatRatio(p.ratio),
      `${p.direction} ${formatNumber(p.threshold)}`,
      ...added(p),
      p.why,
      [...compactKeys(p.keys), ...(p.baselineEntry !== undefined ? [`baseline file measurements[${p.baselineEntry}]`] : [])].join(', '),
    ]),
  };
}

export function timeTable(data: TimelineData): Table {
  return {
    header: ['kind', 'wall time', 'spans', 'failed'],
    rows: [...data.byKind.map((k) => [k.what, formatDuration(k.wallMs / 1000), String(k.spans), String(k.failed)]), ['whole run', formatDuration(data.totalMs / 1000), String(data.rows.length), '']],
  };
}

export function epochsTable(run: RunRecord | undefined): Table | undefined {
  if (!run?.epochs?.length) return undefined;
  return { header: ['epoch', 'measured', 'reused', 'boot cycles'], rows: run.epochs.map((e) => [e.epoch, String(e.measured), String(e.reused), String(e.attempts)]) };
}

const gib = (kib: number) => `${formatNumber(kib / 1024 / 1024)} GiB`;

/** Key facts of provenance.json: run, cluster, hashes, sources, baseline. */
export function provenanceFacts(input: Pick<ReportInput, 'provenance' | 'run' | 'baseline' | 'results'>): Table {
  const p = input.provenance;
  const rows: string[][] = [];
  if (p) {
    rows.push(
      ['cluster', `${p.cluster.name} (${p.cluster.profileFile})`],
      ['profile sha256', p.cluster.profileHash],
      ['plan hash', p.planHash],
      ...Object.entries(p.sources).map(([name, head]) => [`source: ${name}`, 'commit' in head ? `${head.commit} (${head.path} on ${head.node})` : `unknown: ${head.error} (${head.path} on ${head.node})`]),
      ['orchestrator', `fragvisor-ae ${p.controlHost.orchestrator.version}, ${'commit' in p.controlHost.orchestrator ? p.controlHost.orchestrator.commit : p.controlHost.orchestrator.error}`],
      ['control host', `${p.controlHost.hostname} (${p.controlHost.platform})`],
      ['collected', p.collectedAt],
    );
  } else if (input.run) {
    if (input.run.cluster) rows.push(['cluster', input.run.cluster]);
    if (input.run.planHash) rows.push(['plan hash', input.run.planHash]);
  }
  if (input.run?.outcome) rows.push(['run outcome', `${input.run.outcome}${input.run.error ? `: ${input.run.error}` : ''}`]);
  rows.push(['measurements', String(input.results.count)]);
  const b = input.baseline;
  rows.push(['GiantVM baseline', b ? `file ${b.file ?? 'baseline.json'}${b.sha256 ? ` (sha256 ${b.sha256})` : ''}: ${b.source}${b.approximate ? ' (approximate: read off a plot)' : ''}` : baselineKind(input)]);
  return { header: ['what', 'value'], rows };
}

function baselineKind(input: Pick<ReportInput, 'provenance' | 'run'>): string {
  const kind = input.run?.baseline?.kind ?? input.provenance?.baseline.kind;
  return kind === 'measured' ? 'measured in this run' : kind === 'none' ? 'none (GiantVM neither measured nor given)' : 'not recorded';
}

export function nodesTable(p: ProvenanceFile): Table {
  return {
    header: ['node', 'role', 'kernel release', 'boot_id', 'CPU', 'memory', 'kernel tree'],
    rows: p.nodes.map((n) => {
      const role = n.origin ? 'origin' : '';
      if ('error' in n) return [n.node, role, n.reachable ? 'unreadable' : 'unreachable', '', '', '', n.error];
      const cpu = `${n.cpu.model ?? 'unknown model'}, ${n.cpu.logical} logical CPUs`;
      const tree = n.commits.kernel ? ('commit' in n.commits.kernel ? n.commits.kernel.commit : n.commits.kernel.error) : '';
      return [n.node, role, n.kernelRelease, n.bootId, cpu, gib(n.memory.totalKiB), tree];
    }),
  };
}

export function toolsTable(p: ProvenanceFile): Table {
  return { header: ['host', 'tool', 'version'], rows: p.tools.map((t) => [t.host, t.tool, 'version' in t ? t.version : `unknown: ${t.error}`]) };
}
