import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { reportActivities } from '../../activities/report';
import { reportFigures, timelineData } from '../../activities/report/figures';
import type { ClaimsReport } from '../../workflows/claims/claims';
import type { ResultsFile } from '../../activities/results';
import { fixtureBaseline, fixtureProvenance, fixtureResults, fixtureRun, fixtureTimeline } from '../fixtures/report/runStore';
import { spawnAe } from '../helpers/processes';

/**
 * The report from a hand-made run store: `ae report <runId>` rebuilds claims.json, report.html,
 * report.md and junit.xml; report.html opened in headless Chromium (Debian's, driven by
 * playwright-core) draws every chart and sends no request; junit.xml and every inline SVG parse as XML.
 */

/** Debian's chromium, installed by .ci/run (apt-get install chromium). */
const CHROMIUM = process.env.AE_CHROMIUM ?? '/usr/bin/chromium';
const HOSTILE = `"><script>window.injected = 1</script><img src="https://example.invalid/x.png">`;

let runs: string;
let browser: Browser;
const savedRunsDir = process.env.AE_RUNS_DIR;

beforeAll(async () => {
  runs = mkdtempSync(path.join(os.tmpdir(), 'ae-report-'));
  process.env.AE_RUNS_DIR = runs;
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium; .ci/run does) or set AE_CHROMIUM`);
  // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (savedRunsDir === undefined) delete process.env.AE_RUNS_DIR;
  else process.env.AE_RUNS_DIR = savedRunsDir;
  rmSync(runs, { recursive: true, force: true });
});

function writeStore(runId: string, files: Record<string, unknown>): string {
  const dir = path.join(runs, runId);
  mkdirSync(dir, { recursive: true });
  for (const [name, doc] of Object.entries(files)) writeFileSync(path.join(dir, name), typeof doc === 'string' ? doc : `${JSON.stringify(doc, null, 2)}\n`);
  return dir;
}

const readJson = <T>(file: string) => JSON.parse(readFileSync(file, 'utf8')) as T;

async function aeReport(runId: string, ...flags: string[]): Promise<{ code: number | null; output: string }> {
  const ae = spawnAe(['report', runId, ...flags], { AE_RUNS_DIR: runs });
  const { code } = await ae.exited;
  return { code, output: ae.output() };
}

/** The few DOM names the page-side code below uses: the project compiles without the DOM lib, and this file must not add it for all. */
interface PageElement {
  id: string;
  tagName: string;
  textContent: string | null;
  getBBox(): { width: number; height: number };
  getBoundingClientRect(): { width: number; height: number };
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement> & { length: number };
}
declare const document: PageElement & { body: PageElement & { innerText: string } };
declare const window: { injected?: unknown };
declare function getComputedStyle(e: PageElement): { visibility: string; display: string; fill: string; stroke: string };
declare class DOMParser {
  parseFromString(text: string, type: string): PageElement;
}

interface PageFacts {
  sections: string[];
  charts: { id: string; width: number; height: number; drawn: number; texts: number }[];
  scripts: number;
  injected: unknown;
  bodyText: string;
  svgParseErrors: string[];
  junit: { error: string | null; testcases: number; failures: number; skipped: number };
}

/** Opens report.html from disk with every other request aborted and recorded; reads what the page shows. */
async function openReport(dir: string): Promise<{ facts: PageFacts; requests: string[]; problems: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const url = pathToFileURL(path.join(dir, 'report.html')).href;
  const requests: string[] = [];
  const problems: string[] = [];
  try {
    await context.route('**/*', (route) => (route.request().url() === url ? route.continue() : route.abort()));
    const page = await context.newPage();
    page.on('request', (r) => {
      if (r.url() !== url) requests.push(r.url());
    });
    page.on('console', (m) => {
      if (m.type() === 'error' || m.type() === 'warning') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
    await page.goto(url, { waitUntil: 'load' });
    const raw = readFileSync(path.join(dir, 'report.html'), 'utf8');
    const svgs = raw.match(/<svg[\s\S]*?<\/svg>/g) ?? [];
    const junit = readFileSync(path.join(dir, 'junit.xml'), 'utf8');
    const facts = await page.evaluate(
      ({ svgs, junit }) => {
        const area = (e: PageElement) => {
          const b = e.getBBox();
          return e.tagName === 'line' ? b.width + b.height : b.width * b.height;
        };
        const charts = [...document.querySelectorAll('figure.chart')].map((f) => {
          const svg = f.querySelector('svg')!;
          const box = svg.getBoundingClientRect();
          const shapes = [...svg.querySelectorAll('path, rect, line, circle, polyline, polygon')].filter((e) => {
            const style = getComputedStyle(e);
            return area(e) > 0 && style.visibility !== 'hidden' && style.display !== 'none' && (style.fill !== 'none' || style.stroke !== 'none');
          });
          const texts = [...svg.querySelectorAll('text')].filter((t) => (t.textContent ?? '').trim() !== '' && t.getBBox().width > 0);
          return { id: f.id, width: box.width, height: box.height, drawn: shapes.length, texts: texts.length };
        });
        const parser = new DOMParser();
        const svgParseErrors = svgs.flatMap((s, i) => {
          const err = parser.parseFromString(s, 'image/svg+xml').querySelector('parsererror');
          return err ? [`svg ${i}: ${err.textContent}`] : [];
        });
        const doc = parser.parseFromString(junit, 'application/xml');
        return {
          sections: [...document.querySelectorAll('body > section')].map((s) => s.id),
          charts,
          scripts: document.querySelectorAll('script').length,
          injected: window.injected,
          bodyText: document.body.innerText,
          svgParseErrors,
          junit: {
            error: doc.querySelector('parsererror')?.textContent ?? null,
            testcases: doc.querySelectorAll('testsuite > testcase').length,
            failures: doc.querySelectorAll('testcase > failure').length,
            skipped: doc.querySelectorAll('testcase > skipped').length,
          },
        };
      },
      { svgs, junit },
    );
    return { facts, requests, problems };
  } finally {
    await context.close();
  }
}

/** Per chart with data, the marks it must draw with a non-zero area: a bar or a point symbol per value. */
function expectedMarks(results: ResultsFile): Record<string, number> {
  const figures = reportFigures({ measurements: results.measurements, netMetric: 'requestsPerSecond' }).flatMap((s) => s.figures);
  return Object.fromEntries(figures.map((f) => [f.id, f.series.flatMap((s) => s.points.filter((p) => p !== undefined)).length]));
}

/** Every chart is laid out with a size, draws at least its data marks (an empty chart draws only its legend) and some text. */
function expectDrawn(charts: PageFacts['charts'], marks: Record<string, number>): void {
  for (const c of charts) {
    expect({ id: c.id, sized: c.width > 100 && c.height > 100, marks: c.drawn >= marks[c.id] && marks[c.id] > 0, texts: c.texts >= 3 }).toEqual({ id: c.id, sized: true, marks: true, texts: true });
  }
}

test('ae report rebuilds claims.json, report.html, report.md and junit.xml; all pass -> exit 0; the page draws every chart and sends no request', async () => {
  const runId = 'report-pass';
  const results = fixtureResults({ runId });
  const dir = writeStore(runId, {
    'results.json': results,
    'provenance.json': fixtureProvenance({ runId }),
    'run.json': fixtureRun({ runId }),
    'input.json': { cluster: 'sim' },
    // Stale outputs: ae report must replace them, judging again from results.json.
    'claims.json': { claims: [{ id: 'C1', verdict: 'fail', why: 'stale' }] },
    'report.html': 'stale',
  });

  const { code, output } = await aeReport(runId, '--json');
  expect({ code, output }).toMatchObject({ code: 0 });
  const printed = JSON.parse(output.slice(output.indexOf('{'))) as { simulated: boolean; verdicts: { id: string; verdict: string }[]; files: Record<string, string> };
  expect(printed.simulated).toBe(true);
  expect(printed.verdicts.map((v) => `${v.id} ${v.verdict}`)).toEqual(['C1 pass', 'C2 pass', 'C3 pass']);
  expect(printed.files).toEqual({ claims: path.join(dir, 'claims.json'), html: path.join(dir, 'report.html'), md: path.join(dir, 'report.md'), junit: path.join(dir, 'junit.xml') });

  const claims = readJson<ClaimsReport>(path.join(dir, 'claims.json'));
  expect(claims.claims.map((c) => c.verdict)).toEqual(['pass', 'pass', 'pass']);
  expect(claims.settings.minRepetitions).toBe(3);
  const md = readFileSync(path.join(dir, 'report.md'), 'utf8');
  expect(md).toContain('**Verdicts:** C1 PASS, C2 PASS, C3 PASS');

  const { facts, requests, problems } = await openReport(dir);
  expect(requests).toEqual([]);
  expect(problems).toEqual([]);
  expect(facts.sections).toEqual(['verdicts', 'figures', 'claims', 'timeline', 'provenance']);
  expect(facts.bodyText.indexOf('SIMULATED')).toBeLessThan(facts.bodyText.indexOf('Verdicts'));

  const marks = { ...expectedMarks(results), 'timeline-chart': timelineData(fixtureTimeline())!.rows.length };
  expect(facts.charts.map((c) => c.id)).toEqual(Object.keys(marks));
  expectDrawn(facts.charts, marks);
  expect(facts.svgParseErrors).toEqual([]);
  expect(facts.junit).toEqual({ error: null, testcases: 3, failures: 0, skipped: 0 });
}, 120_000);

test('a claim that fails (GiantVM from a baseline file with a hostile source) -> exit 1, <failure> in junit.xml, nothing injected', async () => {
  const runId = 'report-fail';
  const baseline = fixtureBaseline(HOSTILE);
  // GiantVM's file figure beats FragVisor's ~76 requests/s at php-250ms on 4 nodes: C1 fails there.
  baseline.measurements[0] = { ...baseline.measurements[0], value: 200, stddev: 1, repetitions: 5 };
  const dir = writeStore(runId, {
    'results.json': fixtureResults({ runId, hypervisors: ['fragvisor'] }),
    'baseline.json': { hypervisor: 'giantvm', ...baseline },
    'provenance.json': fixtureProvenance({ runId, hostile: HOSTILE }),
  });

  const { code, output } = await aeReport(runId);
  expect({ code, output }).toMatchObject({ code: 1 });
  expect(output).toMatch(/^C1 +FAIL +\d+ of \d+ compared points fail: n4 php-250ms requestsPerSecond/m);
  expect(output).toContain(`report: ${path.join(dir, 'report.html')}`);

  const junit = readFileSync(path.join(dir, 'junit.xml'), 'utf8');
  expect(junit).toMatch(/<testcase classname="fragvisor-ae.claims" name="C1: [^"]*" time="0">\n {6}<failure message="\d+ of \d+ compared points fail: n4 php-250ms/);

  const { facts, requests, problems } = await openReport(dir);
  expect(requests).toEqual([]);
  expect(problems).toEqual([]);
  expect(facts.scripts).toBe(0);
  expect(facts.injected).toBeUndefined();
  expect(facts.bodyText).toContain(HOSTILE);
  expect(facts.charts.find((c) => c.id === 'fig12-php-250ms')).toBeDefined();
  expect(facts.svgParseErrors).toEqual([]);
  expect(facts.junit).toMatchObject({ error: null, testcases: 3, failures: 1 });
}, 120_000);

test('one repetition only -> every claim inconclusive, exit 3, <skipped> per claim; a store without provenance or run.json still reports', async () => {
  const runId = 'report-inconclusive';
  const dir = writeStore(runId, { 'results.json': fixtureResults({ runId, repetitions: 1 }) });
  const { code, output } = await aeReport(runId);
  expect({ code, output }).toMatchObject({ code: 3 });
  expect(output.match(/^C[123] +INCONCLUSIVE +.*too few repetitions/gm)).toHaveLength(3);
  const { facts, requests } = await openReport(dir);
  expect(requests).toEqual([]);
  expect(facts.junit).toEqual({ error: null, testcases: 3, failures: 0, skipped: 3 });
  expect(facts.bodyText).toContain('provenance.json is missing from the run store.');
  const marks = expectedMarks(readJson<ResultsFile>(path.join(dir, 'results.json')));
  expect(facts.charts.map((c) => c.id)).toEqual(Object.keys(marks));
  expectDrawn(facts.charts, marks);
}, 120_000);

test('ae report on a run the store does not have: usage error (2), nothing created', async () => {
  const { code, output } = await aeReport('no-such-run');
  expect(code).toBe(2);
  expect(output).toContain(`no run "no-such-run" in the run store ${runs}`);
  expect(existsSync(path.join(runs, 'no-such-run'))).toBe(false);
  const bad = await aeReport('../etc');
  expect(bad.code).toBe(2);
}, 60_000);

test('writeReport (the activity) judges only when claims.json is missing, and returns small relative paths', async () => {
  const runId = 'report-activity';
  const dir = writeStore(runId, { 'results.json': fixtureResults({ runId }), 'run.json': fixtureRun({ runId }) });
  const { writeReport } = reportActivities();

  const first = await writeReport({ runId });
  expect(first).toEqual({
    files: { claims: 'claims.json', html: 'report.html', md: 'report.md', junit: 'junit.xml' },
    verdicts: [expect.objectContaining({ id: 'C1', verdict: 'pass' }), expect.objectContaining({ id: 'C2', verdict: 'pass' }), expect.objectContaining({ id: 'C3', verdict: 'pass' })],
    simulated: true,
  });
  const judged = readJson<ClaimsReport>(path.join(dir, 'claims.json'));

  // The run's own claims.json is the record: the activity renders it as it is.
  judged.claims[0] = { ...judged.claims[0], verdict: 'inconclusive', why: 'the run said so' };
  writeFileSync(path.join(dir, 'claims.json'), JSON.stringify(judged));
  const second = await writeReport({ runId });
  expect(second.verdicts[0]).toEqual({ id: 'C1', verdict: 'inconclusive', why: 'the run said so' });
  expect(readFileSync(path.join(dir, 'junit.xml'), 'utf8')).toContain('<skipped message="inconclusive: the run said so"/>');

  writeFileSync(path.join(dir, 'claims.json'), JSON.stringify({ claims: [] }));
  await expect(writeReport({ runId })).rejects.toMatchObject({ type: 'ReportInputInvalid', nonRetryable: true, message: expect.stringContaining('claims.json: expected an object with a list "claims" and the "settings"') });
  writeFileSync(path.join(dir, 'results.json'), '{ not json');
  await expect(writeReport({ runId })).rejects.toMatchObject({ type: 'ReportInputInvalid', nonRetryable: true, message: expect.stringContaining('results.json: not valid JSON') });
}, 60_000);
