import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { clientTarget } from '../../activities/bench';
import { resultsActivities, SIMULATED_LABEL, type ResultsFile } from '../../activities/results';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { sshTarget } from '../../activities/cluster';
import { parseProfile, type LoadedProfile } from '../../config/load';
import type { Measurement, MeasurementKey } from '../../workflows/commands/bench';

/** recordMeasurement / listMeasurements on a real run store (a temp AE_RUNS_DIR); the client host choice. */

let runsDir: string;
let previous: string | undefined;
const acts = resultsActivities();

beforeAll(() => {
  previous = process.env.AE_RUNS_DIR;
  runsDir = mkdtempSync(path.join(os.tmpdir(), 'ae-results-'));
  process.env.AE_RUNS_DIR = runsDir;
});

afterAll(() => {
  if (previous === undefined) delete process.env.AE_RUNS_DIR;
  else process.env.AE_RUNS_DIR = previous;
  rmSync(runsDir, { recursive: true, force: true });
});

const key = (over: Partial<MeasurementKey> = {}): MeasurementKey => ({ hypervisor: 'fragvisor', experiment: 'E3', nodeCount: 4, variant: 'net-2-local', repetition: 1, ...over });
const measurement = (k: MeasurementKey, rps: number, simulated = true): Measurement => ({
  key: k,
  metrics: { requestsPerSecond: rps },
  units: { requestsPerSecond: 'requests/s' },
  raw: `raw/${k.hypervisor}/${k.experiment}-n${k.nodeCount}/${k.variant}.rep${k.repetition}.try1.txt`,
  simulated,
  measuredAt: '2026-01-01T00:00:00.000Z',
  attempt: 1,
});
const results = (runId: string) => JSON.parse(readFileSync(path.join(runsDir, runId, 'results.json'), 'utf8')) as ResultsFile;

describe('recordMeasurement and listMeasurements', () => {
  it('one file per key, results.json sorted by key, a key recorded again replaced', async () => {
    const runId = 'run-a';
    expect(await acts.listMeasurements({ runId })).toEqual([]);
    const keys = [key({ variant: 'net-16-local' }), key({ hypervisor: 'giantvm' }), key({ repetition: 10 }), key({ experiment: 'E1', variant: 'php-500ms' }), key({ repetition: 2 }), key({ nodeCount: 2 })];
    // All at once: the regenerations of one run queue up, every file lands in results.json.
    const recorded = await Promise.all(keys.map((k, i) => acts.recordMeasurement({ runId, measurement: measurement(k, 100 + i) })));
    expect(recorded.map((r) => r.file)).toContain('measurements/giantvm.E3.n4.net-2-local.rep1.json');
    const order = ['fragvisor.E1.n4.php-500ms.rep1', 'fragvisor.E3.n2.net-2-local.rep1', 'fragvisor.E3.n4.net-2-local.rep2', 'fragvisor.E3.n4.net-2-local.rep10', 'fragvisor.E3.n4.net-16-local.rep1', 'giantvm.E3.n4.net-2-local.rep1'];
    const ids = (ks: MeasurementKey[]) => ks.map((k) => `${k.hypervisor}.${k.experiment}.n${k.nodeCount}.${k.variant}.rep${k.repetition}`);
    expect(ids(await acts.listMeasurements({ runId }))).toEqual(order);
    const file = results(runId);
    expect(file).toMatchObject({ simulated: true, label: SIMULATED_LABEL, runId, count: 6 });
    expect(ids(file.measurements.map((m) => m.key))).toEqual(order);

    await acts.recordMeasurement({ runId, measurement: measurement(key({ nodeCount: 2 }), 999) });
    expect(results(runId).count).toBe(6);
    expect(results(runId).measurements[1].metrics.requestsPerSecond).toBe(999);
    // Atomic writes leave no temporary files behind.
    expect(readdirSync(path.join(runsDir, runId, 'measurements')).filter((n) => !n.endsWith('.json'))).toEqual([]);
    expect(readdirSync(path.join(runsDir, runId)).sort()).toEqual(['measurements', 'results.json']);
  });

  it('measured on a real cluster: no SIMULATED label', async () => {
    await acts.recordMeasurement({ runId: 'run-real', measurement: measurement(key(), 1, false) });
    expect(results('run-real')).toEqual({ simulated: false, runId: 'run-real', count: 1, measurements: [measurement(key(), 1, false)] });
  });

  it('refuses metrics JSON cannot carry, and a foreign file in the measurements folder', async () => {
    await expect(acts.recordMeasurement({ runId: 'run-b', measurement: { ...measurement(key(), 1), metrics: { requestsPerSecond: Infinity } } })).rejects.toMatchObject({
      type: 'InvalidMeasurement',
      nonRetryable: true,
      message: expect.stringContaining('requestsPerSecond=Infinity') as unknown,
    });
    await acts.recordMeasurement({ runId: 'run-b', measurement: measurement(key(), 1) });
    writeFileSync(path.join(runsDir, 'run-b', 'measurements', 'notes.json'), '{"hello": 1}');
    await expect(acts.listMeasurements({ runId: 'run-b' })).rejects.toMatchObject({ type: 'ResultsCorrupt', nonRetryable: true, message: expect.stringContaining('measurements/notes.json is not a measurement') as unknown });
  });
});

describe('the client host: profile field and SSH target', () => {
  const minimal = parseYaml(readFileSync(path.join(__dirname, '..', 'fixtures', 'profiles', 'minimal.yaml'), 'utf8')) as Record<string, unknown>;
  const withClient = (client?: unknown) => parseProfile(stringifyYaml({ ...minimal, ...(client === undefined ? {} : { client }) }), 'x.yaml', '/base');

  it.each([
    { name: 'no client: the origin node', client: undefined, expected: (l: LoadedProfile) => sshTarget(l.profile.nodes[0]) },
    { name: 'a client host with port and user', client: { host: 'loadgen', port: 2200, user: 'bench' }, expected: () => ({ node: 'client', host: 'loadgen', port: 2200, user: 'bench' }) },
    { name: 'a client host alone', client: { host: '10.4.6.99' }, expected: () => ({ node: 'client', host: '10.4.6.99', port: undefined, user: undefined }) },
  ])('$name', ({ client, expected }) => {
    const loaded = withClient(client);
    expect(clientTarget(loaded)).toEqual(expected(loaded));
  });

  it('a bad client is refused by field', () => {
    expect(() => withClient({ host: 'load gen' })).toThrow(/client\.host: expected a host name/);
    expect(() => withClient({ host: 'loadgen', password: 'x' })).toThrow(/client\.password: a secret never goes in a profile/);
  });
});
