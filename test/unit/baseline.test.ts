import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { runActivities } from '../../activities/run';
import { PROJECT_ROOT } from '../../config/paths';
import { testTempDir } from '../helpers/tempDir';

/** GiantVM baseline files: checked field by field, copied into the run store with their hash. */

const dir = testTempDir('ae-baseline-');
const runs = path.join(dir, 'runs');
const { useBaseline } = runActivities();
const entry = { experiment: 'E1', nodeCount: 4, variant: 'php-250ms', metric: 'requestsPerSecond', value: 10, unit: '#/s' };

function file(name: string, text: string): string {
  const f = path.join(dir, name);
  writeFileSync(f, text);
  return f;
}

async function problem(f: string): Promise<string> {
  const err = await useBaseline({ runId: 'baseline-test', file: f }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApplicationFailure);
  expect((err as ApplicationFailure).type).toBe('InvalidInput');
  expect((err as ApplicationFailure).nonRetryable).toBe(true);
  return (err as ApplicationFailure).message;
}

const previousRuns = process.env.AE_RUNS_DIR;
beforeAll(() => {
  process.env.AE_RUNS_DIR = runs;
});
afterAll(() => {
  // Suites share this process (--runInBand): give the next one the run store it expects.
  if (previousRuns === undefined) delete process.env.AE_RUNS_DIR;
  else process.env.AE_RUNS_DIR = previousRuns;
});

it('the example file is valid, and the run store keeps a copy with its sha256', async () => {
  const example = path.join(PROJECT_ROOT, 'config/baselines/example-giantvm.yaml');
  const used = await useBaseline({ runId: 'baseline-test', file: example });
  expect(used).toMatchObject({ kind: 'file', file: example, approximate: true, entries: 3, sha256: expect.stringMatching(/^[0-9a-f]{64}$/) });
  expect(used.source).toMatch(/EXAMPLE ONLY/);
  const kept = JSON.parse(readFileSync(path.join(runs, 'baseline-test', 'baseline.json'), 'utf8')) as { sha256: string; measurements: unknown[] };
  expect(kept.sha256).toBe(used.sha256);
  expect(kept.measurements).toHaveLength(3);
});

it('JSON works as well as YAML', async () => {
  const f = file('ok.json', JSON.stringify({ hypervisor: 'giantvm', source: 'lab run 7', measurements: [entry] }));
  expect(await useBaseline({ runId: 'baseline-test', file: f })).toMatchObject({ entries: 1, approximate: false, source: 'lab run 7' });
});

it.each([
  { name: 'a missing file', text: undefined, message: /cannot read it on the worker host \(ENOENT\)/ },
  { name: 'broken YAML', text: 'hypervisor: [giantvm', message: /not valid YAML/ },
  { name: 'no source', text: JSON.stringify({ hypervisor: 'giantvm', measurements: [entry] }), message: /source: missing|source: expected/ },
  { name: 'the wrong hypervisor', text: JSON.stringify({ hypervisor: 'fragvisor', source: 's', measurements: [entry] }), message: /hypervisor: expected hypervisor: giantvm/ },
  { name: 'a value that is no number', text: JSON.stringify({ hypervisor: 'giantvm', source: 's', measurements: [{ ...entry, value: '10' }] }), message: /measurements\[0\]\.value: expected the value/ },
  { name: 'no unit', text: JSON.stringify({ hypervisor: 'giantvm', source: 's', measurements: [{ ...entry, unit: undefined }] }), message: /measurements\[0\]\.unit/ },
  { name: 'an unknown experiment', text: JSON.stringify({ hypervisor: 'giantvm', source: 's', measurements: [{ ...entry, experiment: 'E9' }] }), message: /measurements\[0\]\.experiment: expected one of E1, E2, E3/ },
  { name: 'a figure given twice', text: JSON.stringify({ hypervisor: 'giantvm', source: 's', measurements: [entry, entry] }), message: /measurements\[1\]: E1 n=4 php-250ms requestsPerSecond is given twice/ },
])('$name: a non-retryable InvalidInput naming the field', async ({ name, text, message }) => {
  const f = text === undefined ? path.join(dir, 'absent.yaml') : file(`${name.replace(/\W+/g, '-')}.${text.startsWith('{') ? 'json' : 'yaml'}`, text);
  const m = await problem(f);
  expect(m).toMatch(/^baseline: /);
  expect(m).toMatch(message);
});
