import { DeliveryWindow } from '../../webhook/deliveries';
import { RateLimiter } from '../../webhook/rateLimit';

/** Replays `steps` (time in ms, source) through a limiter; each answer is "ok" or the Retry-After seconds. */
function replay(perSource: { burst: number; perSecond: number }, global: { burst: number; perSecond: number }, steps: [number, string][]): (string | number)[] {
  let t = 0;
  const limiter = new RateLimiter(perSource, global, () => t);
  return steps.map(([at, source]) => {
    t = at;
    return limiter.take(source) ?? 'ok';
  });
}

it.each([
  ['a burst per source, then refused', { burst: 3, perSecond: 1 }, { burst: 100, perSecond: 100 }, [[0, 'a'], [0, 'a'], [0, 'a'], [0, 'a']], ['ok', 'ok', 'ok', 1]],
  ['another source has its own bucket', { burst: 2, perSecond: 1 }, { burst: 100, perSecond: 100 }, [[0, 'a'], [0, 'a'], [0, 'a'], [0, 'b']], ['ok', 'ok', 1, 'ok']],
  ['tokens come back with time', { burst: 1, perSecond: 1 }, { burst: 100, perSecond: 100 }, [[0, 'a'], [500, 'a'], [1000, 'a']], ['ok', 1, 'ok']],
  ['Retry-After rounds up the wait', { burst: 1, perSecond: 0.25 }, { burst: 100, perSecond: 100 }, [[0, 'a'], [1000, 'a']], ['ok', 3]],
  ['the global bucket stops many sources', { burst: 10, perSecond: 1 }, { burst: 2, perSecond: 0.5 }, [[0, 'a'], [0, 'b'], [0, 'c'], [0, 'd']], ['ok', 'ok', 2, 2]],
  ['a refused request costs nothing', { burst: 1, perSecond: 1 }, { burst: 2, perSecond: 0.001 }, [[0, 'a'], [0, 'a'], [0, 'a'], [0, 'b']], ['ok', 1, 1, 'ok']],
] as const)('%s', (_what, perSource, global, steps, answers) => {
  expect(replay(perSource, global, steps as unknown as [number, string][])).toEqual(answers);
});

describe('delivery window', () => {
  let t = 0;
  const window = () => new DeliveryWindow<string>(60_000, () => t);

  it('a replay within the window gets the first answer and does not run again', async () => {
    t = 0;
    const w = window();
    let runs = 0;
    const first = w.once('d1', async () => `run-${++runs}`);
    t = 59_000;
    const again = w.once('d1', async () => `run-${++runs}`);
    expect([first.replay, again.replay]).toEqual([false, true]);
    expect([await first.result, await again.result, runs]).toEqual(['run-1', 'run-1', 1]);
  });

  it('after the window, or for another id, it runs again', async () => {
    t = 0;
    const w = window();
    let runs = 0;
    await w.once('d1', async () => `run-${++runs}`).result;
    expect(w.once('d2', async () => `run-${++runs}`).replay).toBe(false);
    t = 60_000;
    const late = w.once('d1', async () => `run-${++runs}`);
    expect([late.replay, await late.result]).toEqual([false, 'run-3']);
  });

  it('a failed first attempt is forgotten: the redelivery tries again', async () => {
    t = 0;
    const w = window();
    await expect(w.once('d1', async () => Promise.reject(new Error('Temporal down'))).result).rejects.toThrow('Temporal down');
    const retry = w.once('d1', async () => 'started');
    expect([retry.replay, await retry.result]).toEqual([false, 'started']);
  });
});
