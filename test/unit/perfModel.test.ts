import { readFileSync } from 'node:fs';
import { parse as parseYaml, stringify } from 'yaml';
import { InvalidConfigError } from '../../config/errors';
import { loadModel, parseModel, resolveModelFile } from '../../sim/model/load';
import {
  diskThroughputMBps,
  lempThroughput,
  npbKernels,
  npbSeconds,
  openLambdaPhasesMs,
  phpWorkMs,
  staticRequestMs,
  staticThroughput,
} from '../../sim/model/model';
import { PHP_PAGE_BYTES } from '../../sim/guest/php';
import { uniform, withNoise } from '../../sim/model/prng';
import { createModel, measure, sleepMs, staticPageSleepMs } from '../../sim/model/runtime';
import { OPENLAMBDA_PHASES, type Hypervisor, type ModelSpec } from '../../sim/model/schema';

// Schema tests edit parsed YAML at arbitrary depths; typing each path would only restate the schema.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Loose = any;

const E3_SIZES = [1, 2, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576];
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** E1 as the artifact runs it: nginx on vCPU 0, one php-fpm worker per node on its own vCPU. */
function lemp(spec: ModelSpec, hypervisor: Hypervisor, nodes: number, loops: number): number {
  return lempThroughput(spec, { hypervisor, nodes, loops, nginxVcpus: [0], phpVcpus: range(nodes), responseBytes: PHP_PAGE_BYTES });
}

/** C1: at 4 nodes FragVisor has the higher throughput at every level but the shortest. */
function c1Holds(spec: ModelSpec): boolean {
  return spec.lemp.levels.slice(1).every((l) => lemp(spec, 'fragvisor', 4, l.loops) > lemp(spec, 'giantvm', 4, l.loops));
}

/** C2: every OpenLambda phase is faster on FragVisor, for every node count and worker vCPU. */
function c2Holds(spec: ModelSpec): boolean {
  return [1, 2, 3, 4].every((nodes) =>
    range(nodes).every((vcpu) => {
      const f = openLambdaPhasesMs(spec, { hypervisor: 'fragvisor', nodes, vcpu });
      const g = openLambdaPhasesMs(spec, { hypervisor: 'giantvm', nodes, vcpu });
      return OPENLAMBDA_PHASES.every((p) => f[p] < g[p]);
    }),
  );
}

const C3_TOLERANCE = 0.2;

/** C3: FragVisor's delegated case (worker on vCPU 1) stays within 20% of the local one, for network and disk. */
function c3Holds(spec: ModelSpec): boolean {
  const close = (delegated: number, local: number) => delegated >= (1 - C3_TOLERANCE) * local;
  return [2, 3, 4].every(
    (nodes) =>
      E3_SIZES.every((bytes) => {
        const at = (v: number) => staticThroughput(spec, { hypervisor: 'fragvisor', nodes, workerVcpus: [v], bytes }).requestsPerSecond;
        return close(at(1), at(0));
      }) &&
      (['read', 'write'] as const).every((op) => {
        const at = (vcpu: number) => diskThroughputMBps(spec, { hypervisor: 'fragvisor', nodes, vcpu, op });
        return close(at(1), at(0));
      }),
  );
}

describe('the shipped models', () => {
  it.each([
    { name: 'default', c1: true, c2: true, c3: true },
    { name: 'c1-fails', c1: false, c2: true, c3: true },
  ])('$name: C1 $c1, C2 $c2, C3 $c3', ({ name, c1, c2, c3 }) => {
    const { spec } = loadModel(name);
    expect(spec.name).toBe(name);
    expect({ c1: c1Holds(spec), c2: c2Holds(spec), c3: c3Holds(spec) }).toEqual({ c1, c2, c3 });
  });

  it('c1-fails: GiantVM is ahead at every longer level and node count >= 2', () => {
    const { spec } = loadModel('c1-fails');
    for (const level of spec.lemp.levels.slice(1)) {
      for (const nodes of [2, 3, 4]) expect(lemp(spec, 'giantvm', nodes, level.loops)).toBeGreaterThan(lemp(spec, 'fragvisor', nodes, level.loops));
    }
  });
});

describe('default model, shapes of the figures', () => {
  const { spec } = loadModel('default');

  it('E1: the shortest level is a near tie at 4 nodes; the longer ones favour FragVisor by >= 15%', () => {
    const ratio = (loops: number) => lemp(spec, 'fragvisor', 4, loops) / lemp(spec, 'giantvm', 4, loops);
    const [shortest, ...longer] = spec.lemp.levels;
    expect(ratio(shortest.loops)).toBeGreaterThan(0.9);
    expect(ratio(shortest.loops)).toBeLessThan(1.1);
    for (const l of longer) expect(ratio(l.loops)).toBeGreaterThan(1.15);
  });

  it('E1: each level does about 10x the loops of the one before, and costs more', () => {
    const levels = spec.lemp.levels;
    for (let i = 1; i < levels.length; i++) {
      expect(levels[i].loops / levels[i - 1].loops).toBeGreaterThanOrEqual(2);
      expect(phpWorkMs(spec, levels[i].loops)).toBeGreaterThan(phpWorkMs(spec, levels[i - 1].loops));
    }
  });

  it.each(['250ms', '500ms'])('E1 %s: throughput grows with nodes, FragVisor faster than GiantVM', (label) => {
    const loops = spec.lemp.levels.find((l) => l.label === label)!.loops;
    const scaling = (h: Hypervisor) => lemp(spec, h, 4, loops) / lemp(spec, h, 1, loops);
    for (const h of ['fragvisor', 'giantvm'] as const) {
      for (const n of [2, 3, 4]) expect(lemp(spec, h, n, loops)).toBeGreaterThan(lemp(spec, h, n - 1, loops));
    }
    expect(scaling('fragvisor')).toBeGreaterThan(scaling('giantvm'));
  });

  it('E1: php-fpm workers crowded on one vCPU serve less than workers spread over the nodes', () => {
    const loops = spec.lemp.levels[3].loops;
    const crowded = lempThroughput(spec, { hypervisor: 'fragvisor', nodes: 4, loops, nginxVcpus: [0], phpVcpus: [0, 0, 0, 0], responseBytes: PHP_PAGE_BYTES });
    expect(crowded * 3).toBeLessThan(lemp(spec, 'fragvisor', 4, loops));
  });

  it.each(['fragvisor', 'giantvm'] as const)('E3 network %s: small responses are overhead-bound, large ones bandwidth-bound', (hypervisor) => {
    const at = (bytes: number) => staticThroughput(spec, { hypervisor, nodes: 2, workerVcpus: [0], bytes });
    expect(at(1).requestsPerSecond / at(1024).requestsPerSecond).toBeLessThan(1.1);
    const bandwidthKBps = (spec.hypervisors[hypervisor].network.bandwidthMBps * 1e6) / 1024;
    expect(at(1048576).transferKBps / bandwidthKBps).toBeGreaterThan(0.9);
    expect(at(1).transferKBps / bandwidthKBps).toBeLessThan(0.05);
  });

  it('E3 network: delegation costs GiantVM at least 2x at every size', () => {
    for (const bytes of E3_SIZES) {
      const ms = (workerVcpu: number) => staticRequestMs(spec, { hypervisor: 'giantvm', nodes: 2, workerVcpu, bytes });
      expect(ms(1) / ms(0)).toBeGreaterThan(2);
    }
  });

  it('E3 storage: GiantVM delegated disk I/O is much slower than local; FragVisor stays close', () => {
    const at = (hypervisor: Hypervisor, vcpu: number) => diskThroughputMBps(spec, { hypervisor, nodes: 2, vcpu, op: 'read' });
    expect(at('giantvm', 1) / at('giantvm', 0)).toBeLessThan(0.5);
    expect(at('fragvisor', 1) / at('fragvisor', 0)).toBeGreaterThan(0.85);
  });

  it.each(npbKernels(loadModel('default').spec))('NPB %s: remote run time >= local, GiantVM pays more off the origin', (kernel) => {
    const s = (hypervisor: Hypervisor, vcpu: number) => npbSeconds(spec, { hypervisor, nodes: 4, kernel, vcpu });
    expect(s('fragvisor', 2)).toBeGreaterThanOrEqual(s('fragvisor', 0));
    expect(s('giantvm', 2) / s('giantvm', 0)).toBeGreaterThanOrEqual(s('fragvisor', 2) / s('fragvisor', 0));
  });

  it('NPB: compute-bound ep.B barely cares where it runs, memory-bound cg.B does on GiantVM', () => {
    const ratio = (kernel: string) => npbSeconds(spec, { hypervisor: 'giantvm', nodes: 2, kernel, vcpu: 1 }) / npbSeconds(spec, { hypervisor: 'giantvm', nodes: 2, kernel, vcpu: 0 });
    expect(ratio('ep.B')).toBeLessThan(1.1);
    expect(ratio('cg.B')).toBeGreaterThan(1.5);
  });

  it.each([
    { what: 'node count 0', call: () => contentionCall(0) },
    { what: 'node count 9', call: () => contentionCall(9) },
    { what: 'vCPU beyond the nodes', call: () => openLambdaPhasesMs(spec, { hypervisor: 'fragvisor', nodes: 2, vcpu: 2 }) },
    { what: 'unknown NPB kernel', call: () => npbSeconds(spec, { hypervisor: 'fragvisor', nodes: 1, kernel: 'zz.Z', vcpu: 0 }) },
  ])('rejects $what', ({ call }) => {
    expect(call).toThrow(RangeError);
  });

  function contentionCall(nodes: number): number {
    return staticRequestMs(spec, { hypervisor: 'fragvisor', nodes, workerVcpu: 0, bytes: 1 });
  }
});

describe('seeded noise', () => {
  const { spec } = loadModel('default');
  const keys = range(50).map((i) => `php#${i}:php`);
  const draw = (seed: number) => {
    const model = createModel(spec, { seed });
    return keys.map((k) => measure(model, 100, k));
  };

  it('same seed and keys give the same sequence; another seed gives another', () => {
    expect(draw(7)).toEqual(draw(7));
    expect(draw(8)).not.toEqual(draw(7));
  });

  it('a value depends only on its own key, not on what was drawn before', () => {
    const model = createModel(spec, { seed: 3 });
    const alone = measure(model, 100, 'ol0#5:init');
    draw(3);
    expect(measure(model, 100, 'ol0#5:init')).toBe(alone);
  });

  it('stays within the declared fraction and is spread over it', () => {
    const values = range(2000).map((i) => withNoise(100, spec.noise, 11, `k${i}`));
    expect(Math.min(...values)).toBeGreaterThanOrEqual(100 * (1 - spec.noise));
    expect(Math.max(...values)).toBeLessThanOrEqual(100 * (1 + spec.noise));
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    expect(Math.abs(mean - 100)).toBeLessThan(0.3);
    const u = range(2000).map((i) => uniform(1, `u${i}`));
    expect(u.filter((x) => x < 0.5).length).toBeGreaterThan(900);
    expect(u.filter((x) => x < 0.5).length).toBeLessThan(1100);
  });

  it('noise 0 returns the mean itself', () => {
    expect(withNoise(42, 0, 1, 'x')).toBe(42);
  });
});

describe('time scale', () => {
  const { spec } = loadModel('default');
  it.each([
    { timeScale: 0, expected: 0 },
    { timeScale: 0.01, expected: 5 },
    { timeScale: 1, expected: 500 },
  ])('timeScale $timeScale sleeps $expected ms for 500 ms of model time', ({ timeScale, expected }) => {
    expect(sleepMs(createModel(spec, { timeScale }), 500)).toBeCloseTo(expected);
  });

  it.each([
    { timeScale: 0, expected: 0 },
    { timeScale: 0.02, expected: 1.5 },
    { timeScale: 1, expected: 1.5 },
    { timeScale: 3, expected: 1.5 },
    { timeScale: 10, expected: 5 },
  ])('a static page of 0.5 model ms is held $expected ms at timeScale $timeScale (never faster than 3x)', ({ timeScale, expected }) => {
    expect(staticPageSleepMs(createModel(spec, { timeScale }), 0.5)).toBeCloseTo(expected);
  });

  it.each([-1, Number.NaN, Number.POSITIVE_INFINITY])('rejects timeScale %p', (timeScale) => {
    expect(() => createModel(spec, { timeScale })).toThrow(/timeScale/);
  });
});

describe('model schema errors name the field', () => {
  const text = readFileSync(resolveModelFile('default'), 'utf8');
  const base = () => parseYaml(text) as Loose;

  it.each([
    { name: 'missing factor', edit: (m: Loose) => delete m.hypervisors.giantvm.lemp.remoteComputeFactor, error: 'hypervisors.giantvm.lemp.remoteComputeFactor: missing' },
    { name: 'misspelt field', edit: (m: Loose) => (m.hypervisors.fragvisor.network.bandwidthMbps = 1), error: 'hypervisors.fragvisor.network.bandwidthMbps: unknown field' },
    { name: 'string for a number', edit: (m: Loose) => (m.hypervisors.fragvisor.openLambda.init.localMs = '450ms'), error: 'hypervisors.fragvisor.openLambda.init.localMs: expected a number, got string "450ms"' },
    { name: 'negative noise', edit: (m: Loose) => (m.noise = -0.1), error: 'noise: expected a value of at least 0' },
    { name: 'levels out of order', edit: (m: Loose) => (m.lemp.levels[2].loops = 5), error: 'lemp.levels[2].loops: expected more loops' },
    { name: 'duplicate level', edit: (m: Loose) => (m.lemp.levels[1].label = '25ms'), error: 'lemp.levels[1].label: duplicate level label' },
    { name: 'bad kernel name', edit: (m: Loose) => (m.npb.kernels['EP-B'] = { localSeconds: 1, memoryIntensity: 0 }), error: 'npb.kernels["EP-B"]: expected an NPB kernel name like ep.B' },
    { name: 'missing hypervisor', edit: (m: Loose) => delete m.hypervisors.giantvm, error: 'hypervisors.giantvm: missing: expected a mapping' },
    { name: 'missing phase', edit: (m: Loose) => delete m.hypervisors.fragvisor.openLambda.cleanup, error: 'hypervisors.fragvisor.openLambda.cleanup: missing' },
  ])('$name', ({ edit, error }) => {
    const doc = base();
    edit(doc);
    expect(() => parseModel(stringify(doc), 'm.yaml')).toThrow(InvalidConfigError);
    expect(() => parseModel(stringify(doc), 'm.yaml')).toThrow(error);
  });

  it.each([
    { name: 'not YAML', text: 'a: [1', error: /m\.yaml: not valid YAML/ },
    { name: 'empty file', text: '', error: /\(top level\): missing: expected a mapping/ },
  ])('$name', ({ text: t, error }) => {
    expect(() => parseModel(t, 'm.yaml')).toThrow(error);
  });

  it('names the unknown model and where models live', () => {
    expect(() => loadModel('no-such-model')).toThrow(/cannot read .*config\/models\/no-such-model\.yaml \(ENOENT\)/);
    expect(() => loadModel('../etc/passwd')).toThrow(/neither a model name/);
  });

  it('hashes the normalised spec', () => {
    expect(loadModel('default').hash).toMatch(/^[0-9a-f]{64}$/);
    expect(loadModel('default').hash).not.toBe(loadModel('c1-fails').hash);
  });
});
