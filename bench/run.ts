import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { bigRunHistory } from './bigRun';
import type { BenchContext } from './context';
import { criticalPath } from './criticalPath';
import { fanout } from './fanout';
import { overhead } from './overhead';
import { describeMachine } from './proc';
import { markdown, verdict, type Machine, type Row } from './report';
import { reboot } from './reboot';
import { scale } from './scale';
import { startTemporal, type BenchTemporal } from './stack';
import { installRuntime } from '../workers/runtime';

/**
 * `npm run bench [-- --quick] [--only fanout,reboot] [--nodes 4,16,64] [--runs N]`: the figures of issue 9, each with its
 * median and spread over several runs. Writes bench/results/<date>.json and bench/results/latest.md
 * (figures not run this time are carried over from the previous latest.json, with their own load).
 */

const FIGURES: Record<string, (ctx: BenchContext) => Promise<Row[]>> = {
  fanout,
  reboot,
  overhead,
  'critical-path': criticalPath,
  scale,
  history: bigRunHistory,
};

const RESULTS = path.join(__dirname, 'results');

interface ResultFile {
  machine: Machine;
  quick: boolean;
  figures: string[];
  rows: (Row & { measuredAt?: string })[];
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { quick: { type: 'boolean', default: false }, only: { type: 'string' }, runs: { type: 'string' }, nodes: { type: 'string', default: '4,16,64' } }, strict: true });
  const only = values.only?.split(',').map((s) => s.trim()).filter(Boolean) ?? Object.keys(FIGURES);
  const unknown = only.filter((f) => !(f in FIGURES));
  if (unknown.length) {
    console.error(`--only: unknown figure(s) ${unknown.join(', ')}; known: ${Object.keys(FIGURES).join(', ')}`);
    return 2;
  }
  const runs = values.runs !== undefined ? Number(values.runs) : values.quick ? 2 : 3;
  if (!Number.isInteger(runs) || runs < 1) {
    console.error(`--runs ${values.runs}: expected a whole number >= 1`);
    return 2;
  }
  const sizes = values.nodes.split(',').map(Number);
  if (sizes.some((n) => !Number.isInteger(n) || n < 1 || n > 64)) {
    console.error(`--nodes ${values.nodes}: expected node counts in 1..64, e.g. 4,16,64`);
    return 2;
  }
  installRuntime('WARN'); // the SDK's INFO lines would drown the progress
  const machine = describeMachine();
  const log = (line: string) => console.log(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}`);
  log(`${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, node ${machine.node}, load ${machine.loadAtStart.join(' ')}; figures: ${only.join(', ')}${values.quick ? ' (quick)' : ''}`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'ae-bench-'));
  let temporal: Promise<BenchTemporal> | undefined;
  const ctx: BenchContext = { quick: values.quick, runs, sizes, tmp, log, temporal: () => (temporal ??= startTemporal(path.join(tmp, 'temporal'))) };
  const rows: Row[] = [];
  try {
    for (const f of only) {
      const t0 = performance.now();
      rows.push(...(await FIGURES[f](ctx)));
      log(`${f}: done in ${Math.round((performance.now() - t0) / 1000)} s`);
    }
  } finally {
    if (temporal) await (await temporal).stop();
    rmSync(tmp, { recursive: true, force: true });
  }

  mkdirSync(RESULTS, { recursive: true });
  const stamp = machine.date.replace(/:/g, '-').replace(/\.\d+Z$/, 'Z');
  const file: ResultFile = { machine, quick: values.quick, figures: only, rows };
  writeFileSync(path.join(RESULTS, `${stamp}.json`), `${JSON.stringify(file, null, 2)}\n`);
  const latestJson = path.join(RESULTS, 'latest.json');
  const previous = existsSync(latestJson) ? (JSON.parse(readFileSync(latestJson, 'utf8')) as ResultFile) : undefined;
  const carried = (previous?.rows ?? []).filter((r) => !only.some((f) => figureOf(r) === f)).map((r) => ({ ...r, measuredAt: r.measuredAt ?? previous!.machine.date }));
  const merged: ResultFile = { machine, quick: values.quick, figures: [...new Set([...(previous?.figures ?? []), ...only])], rows: [...rows.map((r) => ({ ...r, measuredAt: machine.date })), ...carried].sort((a, b) => a.figure.localeCompare(b.figure, 'en', { numeric: true })) };
  writeFileSync(latestJson, `${JSON.stringify(merged, null, 2)}\n`);
  const shown = merged.rows.map((r) => (r.measuredAt && r.measuredAt !== machine.date ? { ...r, note: `${r.note ? `${r.note}; ` : ''}measured ${r.measuredAt}` } : r));
  writeFileSync(path.join(RESULTS, 'latest.md'), markdown(machine, shown, `fragvisor-ae bench${values.quick ? ' (quick)' : ''}`));
  const misses = rows.filter((r) => verdict(r) === 'miss');
  log(`wrote ${path.relative(process.cwd(), path.join(RESULTS, `${stamp}.json`))} and bench/results/latest.md; ${rows.filter((r) => verdict(r) === 'pass').length} target(s) met, ${misses.length} missed${misses.length ? `: ${misses.map((r) => r.what).join('; ')}` : ''}`);
  return 0;
}

/** The --only name of a row's figure. */
function figureOf(r: Row): string {
  return { '1': 'fanout', '2': 'overhead', '3': 'critical-path', '4': 'scale', '5': 'reboot' }[r.figure.split('.')[0]] ?? r.figure;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Sim servers and SDK handles may linger; the results are written.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
