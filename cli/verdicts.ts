import path from 'node:path';
import type { ReproduceClaimsResult } from '../workflows/reproduceClaims';

/**
 * How a finished run ends for people (`ae run --wait`, the `npm start` demo): a line per claim with
 * its verdict and why, then where the report is. The result's report paths are relative to runDir.
 */
export function verdictSummary(result: Pick<ReproduceClaimsResult, 'simulated' | 'runDir' | 'verdicts' | 'report'>): string[] {
  if (!result.verdicts || result.verdicts.length === 0) return ['No claims judged: the run measured nothing (a dry run, or the cluster prepared only).'];
  const width = Math.max(...result.verdicts.map((v) => v.verdict.length));
  const lines = [
    `Verdicts${result.simulated ? " (SIMULATED: the simulated cluster's performance model, not FragVisor on hardware)" : ''}:`,
    ...result.verdicts.map((v) => `  ${v.id}  ${v.verdict.padEnd(width)}  ${v.why}`),
  ];
  if (result.report) {
    const { html, ...others } = result.report;
    lines.push(`Report: ${path.join(result.runDir, html)}`, `  with ${Object.values(others).map((f) => path.basename(f)).join(', ')} in ${path.join(result.runDir, path.dirname(html))}`);
  }
  return lines;
}
