import path from 'node:path';

/** Plain-text table: header row, then rows, columns padded to their widest cell. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => (c ?? '').padEnd(widths[i])).join('  ').trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function formatDuration(seconds: number): string {
  if (seconds < 60) return `${Math.round(seconds)}s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m${String(Math.round(seconds % 60)).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  return h < 48 ? `${h}h${String(m % 60).padStart(2, '0')}m` : `${Math.floor(h / 24)}d${h % 24}h`;
}

/**
 * `<prefix>-<cluster name>-<UTC time to the ms>`: unique per start, and runs are easy to find by
 * cluster in the UI. A .yaml path counts by its file name.
 */
export function workflowIdFor(prefix: string, cluster: string, now: Date): string {
  return `${prefix}-${clusterName(cluster)}-${now.toISOString().replace(/[:.]/g, '-')}`;
}

/** A cluster reference's name: the profile name, or a .yaml path's file name. */
export function clusterName(cluster: string): string {
  return path.basename(cluster).replace(/\.ya?ml$/, '');
}

/** `--json` output: one JSON document on stdout. */
export function printJson(value: unknown): void {
  console.log(JSON.stringify(value, null, 2));
}
