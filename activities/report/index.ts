import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { runsDir } from '../../config/paths';
import { judgeClaims, morePointsNeeded, type ClaimId, type ClaimsReport, type MoreRepetitions } from '../../workflows/claims/claims';
import type { ExtraRepetitionsRecord } from '../../workflows/claims/extra';
import type { Verdict } from '../../workflows/claims/rules';
import type { ClaimSettings, ClaimSettingsInput } from '../../workflows/claims/settings';
import { classified } from '../failures';
import type { ProvenanceFile } from '../provenance';
import { writeAtomic, type ResultsFile } from '../results';
import { runFile } from '../runStore';
import { renderReportHtml } from './html';
import { renderJunit } from './junit';
import { renderReportMd } from './markdown';
import { isSimulated, type ReportInput, type RunRecord, type StoredBaseline } from './model';

/**
 * The report's I/O: reads a run's files from the run store (results.json, claims.json,
 * baseline.json, provenance.json, run.json with its timeline), renders report.html, report.md and
 * junit.xml and writes them next to them. The workflow's `writeReport` activity and `ae report`
 * share it; only `ae report` re-judges the claims from the stored results.
 */

export const REPORT_FILES = { claims: 'claims.json', html: 'report.html', md: 'report.md', junit: 'junit.xml' } as const;

export interface WriteReportResult {
  /** Relative to the run folder. */
  files: { claims: string; html: string; md: string; junit: string };
  verdicts: { id: ClaimId; verdict: Verdict; why: string }[];
  simulated: boolean;
}

export interface BuildReportOptions {
  /** Judge the claims again from results.json (and write claims.json) even when claims.json exists. */
  rejudge: boolean;
  /** The time the report says it was made (tests pin it). */
  now?: Date;
}

const invalid = (runId: string, file: string, why: string) =>
  ApplicationFailure.nonRetryable(`run ${runId}: ${file}: ${why}`, 'ReportInputInvalid', { runId, file });

/** A JSON file of the run, or undefined when it does not exist; anything unreadable is an error naming it. */
async function readJson<T>(runId: string, name: string, check: (doc: unknown) => string | undefined): Promise<T | undefined> {
  const file = path.join(runsDir(), runId, name);
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw invalid(runId, name, `not valid JSON (${(err as Error).message})`);
  }
  const problem = check(doc);
  if (problem) throw invalid(runId, name, problem);
  return doc as T;
}

const isObject = (doc: unknown): doc is Record<string, unknown> => typeof doc === 'object' && doc !== null && !Array.isArray(doc);
const withArray = (field: string) => (doc: unknown) => (isObject(doc) && Array.isArray(doc[field]) ? undefined : `expected an object with a list "${field}"`);
const anObject = (doc: unknown) => (isObject(doc) ? undefined : 'expected a JSON object');

/** True when the run store has a folder for this run (checked without creating one). */
export function runExists(runId: string): boolean {
  return existsSync(path.join(runsDir(), runId));
}

/**
 * The settings to judge with: those the stored claims.json used (defaults filled in), else the
 * run input's `claims`, else the defaults.
 */
function settingsFor(stored: ClaimsReport | undefined, input: { claims?: ClaimSettingsInput } | undefined): ClaimSettingsInput {
  return stored?.settings ?? input?.claims ?? {};
}

/** Reads the run's files, judges the claims when asked (or when claims.json is missing), writes the report files. */
export async function buildReport(runId: string, options: BuildReportOptions): Promise<WriteReportResult> {
  runFile(runId, [REPORT_FILES.claims]); // checks the run id is a safe folder name
  const results = (await readJson<ResultsFile>(runId, 'results.json', withArray('measurements'))) ?? { simulated: false, runId, count: 0, measurements: [] };
  const baseline = await readJson<StoredBaseline>(runId, 'baseline.json', withArray('measurements'));
  const provenance = await readJson<ProvenanceFile>(runId, 'provenance.json', withArray('nodes'));
  const run = await readJson<RunRecord>(runId, 'run.json', anObject);
  let stored: (ClaimsReport & Record<string, unknown>) | undefined;
  try {
    stored = await readJson(runId, REPORT_FILES.claims, (doc) =>
      isObject(doc) && Array.isArray(doc.claims) && isObject(doc.settings) ? undefined : 'expected an object with a list "claims" and the "settings" they used',
    );
  } catch (err) {
    // Rebuilding replaces a claims.json that is not one (the settings are then the input's).
    if (!(options.rejudge && err instanceof ApplicationFailure && err.type === 'ReportInputInvalid')) throw err;
  }

  let claims: ClaimsReport;
  if (stored && !options.rejudge) claims = stored;
  else {
    const input = await readJson<{ claims?: ClaimSettingsInput }>(runId, 'input.json', anObject);
    try {
      // Fields the run added beside the verdicts (e.g. repetitions it added) are kept.
      claims = { ...stored, ...judgeClaims({ measurements: results.measurements, ...(baseline ? { baseline } : {}), settings: settingsFor(stored, input) }) };
    } catch (err) {
      throw invalid(runId, stored ? REPORT_FILES.claims : 'input.json', `claim settings: ${(err as Error).message}`);
    }
    await writeAtomic(runFile(runId, [REPORT_FILES.claims]).file, `${JSON.stringify(claims, null, 2)}\n`);
  }

  const now = options.now ?? new Date();
  const report: ReportInput = {
    results,
    claims,
    ...(provenance ? { provenance } : {}),
    ...(run ? { run } : {}),
    ...(run?.timeline ? { timeline: run.timeline } : {}),
    ...(baseline ? { baseline } : {}),
    generatedAt: now.toISOString(),
  };
  const simulated = isSimulated(report);
  await writeAtomic(runFile(runId, [REPORT_FILES.html]).file, renderReportHtml(report));
  await writeAtomic(runFile(runId, [REPORT_FILES.md]).file, renderReportMd(report));
  await writeAtomic(runFile(runId, [REPORT_FILES.junit]).file, renderJunit(claims, { runId, simulated, timestamp: report.generatedAt }));
  return { files: { ...REPORT_FILES }, verdicts: claims.claims.map((c) => ({ id: c.id, verdict: c.verdict, why: c.why })), simulated };
}

export interface JudgeRunInput {
  runId: string;
  /** The run's effective settings (profile, then input). */
  settings: ClaimSettings;
  /** What the run added so far, recorded in claims.json. */
  extra?: ExtraRepetitionsRecord;
}

export interface JudgeRunResult {
  verdicts: { id: ClaimId; verdict: Verdict }[];
  /** The repetitions that could decide a point inconclusive only for too wide an interval (morePointsNeeded). */
  more: MoreRepetitions[];
}

/** Judges the run's results.json (with baseline.json) and writes claims.json; returns only verdicts and what to add. */
async function judgeStored({ runId, settings, extra }: JudgeRunInput): Promise<JudgeRunResult> {
  runFile(runId, [REPORT_FILES.claims]); // checks the run id is a safe folder name
  const results = await readJson<ResultsFile>(runId, 'results.json', withArray('measurements'));
  const baseline = await readJson<StoredBaseline>(runId, 'baseline.json', withArray('measurements'));
  const measurements = results?.measurements ?? [];
  const claims: ClaimsReport = { ...judgeClaims({ measurements, ...(baseline ? { baseline } : {}), settings }), ...(extra ? { extra } : {}) };
  await writeAtomic(runFile(runId, [REPORT_FILES.claims]).file, `${JSON.stringify(claims, null, 2)}\n`);
  return { verdicts: claims.claims.map((c) => ({ id: c.id, verdict: c.verdict })), more: morePointsNeeded(claims, { already: measurements.map((m) => m.key), reasons: ['too-wide'] }) };
}

export function reportActivities() {
  return {
    /** claims.json from the run's results with the run's settings; what more repetitions could decide. */
    async judgeRun(input: JudgeRunInput): Promise<JudgeRunResult> {
      return classified(() => judgeStored(input));
    },

    /**
     * Writes report.html, report.md and junit.xml from the run store's files; claims.json as the
     * run wrote it (judged here only when it is missing). Returns the relative paths and verdicts.
     */
    async writeReport({ runId }: { runId: string }): Promise<WriteReportResult> {
      return classified(() => buildReport(runId, { rejudge: false }));
    },
  };
}
