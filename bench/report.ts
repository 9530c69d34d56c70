import { meets, spread, type Spread, type Target } from './stats';

/** One measured figure: its values over the runs, how it is judged, and how to measure it again. */
export interface Row {
  /** `1. fan-out`, `2. overhead`, ... */
  figure: string;
  /** What exactly: `64 nodes, pssh cold: wall`. */
  what: string;
  unit: string;
  values: number[];
  /** A target on the median; or a verdict decided by the figure itself (relative targets), with its wording. */
  target?: Target | { text: string; pass: boolean };
  /** Why a value is missing, or how to read it. */
  note?: string;
  /** The shell command that measures this figure again. */
  command: string;
  /** 1, 5 and 15 minute load averages when the figure started. */
  load: number[];
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
  loadAtStart: number[];
  date: string;
}

export type Verdict = 'pass' | 'miss' | 'n/a';

export function verdict(row: Row): Verdict {
  if (!row.target || row.values.length === 0) return 'n/a';
  if ('text' in row.target) return row.target.pass ? 'pass' : 'miss';
  return meets(row.target, spread(row.values).median) ? 'pass' : 'miss';
}

export function targetText(t: Row['target'], unit: string): string {
  if (!t) return '';
  return 'text' in t ? t.text : `${t.op} ${t.value}${unit ? ` ${unit}` : ''}`;
}

/** 3 significant digits, no exponent for the magnitudes we measure. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return '-';
  if (Math.abs(x) >= 100) return String(Math.round(x));
  return String(Number(x.toPrecision(3)));
}

function spreadText(s: Spread): string {
  if (s.n === 0) return '-';
  if (s.n < 4) return `${fmt(s.min)}..${fmt(s.max)} (n=${s.n})`;
  return `${fmt(s.min)}..${fmt(s.max)}, IQR ${fmt(s.q1)}..${fmt(s.q3)} (n=${s.n})`;
}

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

export function markdown(machine: Machine, rows: readonly Row[], title: string): string {
  const out = [
    `# ${title}`,
    '',
    `Machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, kernel ${machine.kernel}; ` +
      `load average at start ${machine.loadAtStart.map(fmt).join(' ')}; ${machine.date}.`,
    '',
    '| figure | what | target | median | spread (min..max, IQR) | verdict | load (1/5/15 min) | notes | reproduce |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const s = spread(r.values);
    const median = s.n ? `${fmt(s.median)} ${r.unit}`.trim() : 'not measured';
    out.push(
      `| ${cell(r.figure)} | ${cell(r.what)} | ${cell(targetText(r.target, r.unit))} | ${cell(median)} | ${cell(spreadText(s))} | ${verdict(r)} | ${r.load.map(fmt).join(' ')} | ${cell(r.note ?? '')} | \`${cell(r.command)}\` |`,
    );
  }
  return `${out.join('\n')}\n`;
}
