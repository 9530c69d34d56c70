import { defaultDemoInput } from '../../workers/demo';
import { claimSettings } from '../../workflows/claims/settings';
import { benchVariants } from '../../workflows/commands/bench';
import { EXPERIMENTS, HYPERVISORS, reproduceClaimsInput } from '../../workflows/inputs';

/** The demo (`npm start`) is the whole AE: every experiment, both hypervisors, every point a claim compares. */
describe('defaultDemoInput', () => {
  const config = reproduceClaimsInput.parse(defaultDemoInput(4));

  it('is a valid reproduceClaims input on the simulated cluster: every experiment, both hypervisors, 4 nodes', () => {
    expect(config).toMatchObject({ cluster: 'sim', experiments: [...EXPERIMENTS], hypervisors: [...HYPERVISORS], nodeCounts: [4] });
    expect(config.repetitions).toBeGreaterThanOrEqual(claimSettings(config.claims).minRepetitions);
  });

  it.each([
    [1, [1]],
    [2, [2]],
    [8, [4]],
  ])('on a %i-node simulated cluster runs on %j nodes', (nodes, counts) => {
    expect(reproduceClaimsInput.parse(defaultDemoInput(nodes)).nodeCounts).toEqual(counts);
  });

  it("keeps C1's longer PHP levels, E2's burst, and E3's local and delegated cases of pages and disk", () => {
    const variants = (e: (typeof EXPERIMENTS)[number]) => benchVariants(e, 4, config.bench).map((v) => v.variant);
    const longer = claimSettings(config.claims).c1.longerLevels.map((l) => `php-${l}`);
    expect(variants('E1')).toEqual(expect.arrayContaining(longer));
    expect(variants('E2')).toEqual(['openlambda']);
    const e3 = variants('E3');
    for (const pinning of ['local', 'delegated']) {
      expect(e3.filter((v) => v.startsWith('net-') && v.endsWith(`-${pinning}`)).length).toBeGreaterThanOrEqual(2);
      expect(e3).toContain(`disk-${pinning}`);
    }
    // Thinned for minutes, not hours: fewer E3 measurements than the artifact's full sweep.
    expect(e3.length).toBeLessThan(benchVariants('E3', 4, {}).length / 2);
  });

  it('stops adding repetitions within minutes', () => {
    expect(claimSettings(config.claims).timeBudgetMinutes).toBeLessThanOrEqual(5);
  });
});
