import type { Stats, Verdict } from '../../workflows/claims/rules';

/**
 * Text helpers shared by the three renderers (HTML, Markdown, JUnit). Every string that comes from
 * a file (variant names, baseline sources, tool versions, error messages) goes through one of the
 * escapes before it reaches a document.
 */

/** Characters XML 1.0 forbids even escaped (C0 controls but tab, LF, CR; lone surrogates; U+FFFE/F). */
const NOT_XML = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Forbidden characters replaced: for text handed to a library that escapes markup but not these (ECharts' SVG). */
export function xmlChars(text: string): string {
  return text.replace(NOT_XML, '\uFFFD');
}

/** Text or attribute value for HTML and XML alike: the five markup characters escaped, forbidden characters replaced. */
export function escapeMarkup(text: string): string {
  return xmlChars(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A Markdown table cell: one line, no column break, no raw HTML (GitHub renders inline HTML). */
export function markdownCell(text: string): string {
  return xmlChars(text)
    .replace(/\r?\n|\r/g, ' ')
    .replace(/[&<>]/g, (c) => `&#${c.charCodeAt(0)};`)
    .replace(/[\\|`*_[\]]/g, (c) => `\\${c}`);
}

/** Four significant digits, no exponent for the magnitudes measured here. */
export function formatNumber(x: number): string {
  return String(Number(x.toPrecision(4)));
}

/** `412.3 [405.1, 419.5] n=3`; `412.3 n=1`; a baseline figure says so. */
export function formatStats(s: Stats | undefined): string {
  if (!s) return 'none';
  const ci = s.ci95 && s.ci95[0] !== s.ci95[1] ? ` [${formatNumber(s.ci95[0])}, ${formatNumber(s.ci95[1])}]` : '';
  const n = s.n !== undefined ? ` n=${s.n}` : '';
  return `${formatNumber(s.mean)}${ci}${n}${s.source === 'baseline' ? ' (baseline file)' : ''}`;
}

/** `1.23 [1.1, 1.4]`, or none when the point has no ratio. */
export function formatRatio(r: { estimate: number; ci95?: [number, number] } | undefined): string {
  if (!r) return 'none';
  return `${formatNumber(r.estimate)}${r.ci95 ? ` [${formatNumber(r.ci95[0])}, ${formatNumber(r.ci95[1])}]` : ' (interval unbounded)'}`;
}

export const VERDICT_WORD: Record<Verdict, string> = { pass: 'PASS', fail: 'FAIL', inconclusive: 'INCONCLUSIVE' };

const UNITS = ['B', 'KiB', 'MiB', 'GiB'];

/** A page size as Figure 6 labels it: 1 B, 4 KiB, 1 MiB (exact multiples only; else bytes). */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (unit < UNITS.length - 1 && value >= 1024 && value % 1024 === 0) {
    value /= 1024;
    unit++;
  }
  return `${value} ${UNITS[unit]}`;
}
