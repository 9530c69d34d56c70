import { timeline, type TimelineRecorder } from '../../workflows/timeline';

const T0 = Date.parse('2024-05-01T10:00:00.000Z');
const at = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();

/** A recorder on a clock the test moves (as workflow time moves from one workflow task to the next). */
function recorder(): { tl: TimelineRecorder; advance: (minutes: number) => void } {
  let now = T0;
  return { tl: timeline(() => now), advance: (minutes) => (now += minutes * 60_000) };
}

describe('timeline', () => {
  it('records spans in start order, nested and sequential, with the clock it is given', () => {
    const { tl, advance } = recorder();
    tl.start('fragvisor/prepare-hosts', 'build');
    advance(42);
    tl.end('fragvisor/prepare-hosts');
    tl.start('fragvisor/E1-n2', 'epoch');
    tl.start('fragvisor/E1-n2/boot', 'reboot');
    advance(5);
    tl.end('fragvisor/E1-n2/boot');
    advance(20);
    tl.end('fragvisor/E1-n2');
    expect(tl.spans()).toEqual([
      { key: 'fragvisor/prepare-hosts', what: 'build', start: at(0), end: at(42), outcome: 'ok' },
      { key: 'fragvisor/E1-n2', what: 'epoch', start: at(42), end: at(67), outcome: 'ok' },
      { key: 'fragvisor/E1-n2/boot', what: 'reboot', start: at(42), end: at(47), outcome: 'ok' },
    ]);
  });

  it('span(): ok when the work resolves, failed when it throws (and the error goes on); a closed key may recur', async () => {
    const { tl, advance } = recorder();
    await expect(tl.span('fragvisor/messaging-layer', 'messaging-layer', async () => (advance(3), 'up'))).resolves.toBe('up');
    const boom = new Error('insmod hung');
    await expect(
      tl.span('fragvisor/messaging-layer', 'messaging-layer', async () => {
        advance(5);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(tl.spans()).toEqual([
      { key: 'fragvisor/messaging-layer', what: 'messaging-layer', start: at(0), end: at(3), outcome: 'ok' },
      { key: 'fragvisor/messaging-layer', what: 'messaging-layer', start: at(3), end: at(8), outcome: 'failed' },
    ]);
  });

  it('an open span has no end; closeOpen() ends the open ones with the outcome given, and leaves closed ones alone', () => {
    const { tl, advance } = recorder();
    tl.start('plan', 'setup');
    tl.end('plan');
    tl.start('fragvisor/E3-n4', 'epoch');
    advance(1);
    tl.start('fragvisor/E3-n4/bench', 'benchmark');
    advance(2);
    expect(tl.spans()[2]).toEqual({ key: 'fragvisor/E3-n4/bench', what: 'benchmark', start: at(1) });
    tl.closeOpen('cancelled');
    expect(tl.spans()).toEqual([
      { key: 'plan', what: 'setup', start: at(0), end: at(0), outcome: 'ok' },
      { key: 'fragvisor/E3-n4', what: 'epoch', start: at(0), end: at(3), outcome: 'cancelled' },
      { key: 'fragvisor/E3-n4/bench', what: 'benchmark', start: at(1), end: at(3), outcome: 'cancelled' },
    ]);
    tl.closeOpen('failed');
    expect(tl.spans().map((s) => s.outcome)).toEqual(['ok', 'cancelled', 'cancelled']);
  });

  it('a span closed by closeOpen() while its work runs stays as closeOpen() left it', async () => {
    const { tl, advance } = recorder();
    await expect(
      tl.span('fragvisor/reboot', 'reboot', async () => {
        advance(1);
        tl.closeOpen('cancelled');
        throw new Error('cancelled');
      }),
    ).rejects.toThrow('cancelled');
    expect(tl.spans()).toEqual([{ key: 'fragvisor/reboot', what: 'reboot', start: at(0), end: at(1), outcome: 'cancelled' }]);
  });

  it.each([
    { name: 'a key that is already open', act: (tl: TimelineRecorder) => (tl.start('a', 'vm'), tl.start('a', 'vm')), error: /span "a" is already open/ },
    { name: 'ending a key never opened', act: (tl: TimelineRecorder) => tl.end('b'), error: /no open span "b" to end/ },
    { name: 'ending a key twice', act: (tl: TimelineRecorder) => (tl.start('c', 'wait'), tl.end('c'), tl.end('c')), error: /no open span "c"/ },
    { name: 'an empty key', act: (tl: TimelineRecorder) => tl.start('', 'wait'), error: /needs a key/ },
  ])('refuses $name', ({ act, error }) => {
    expect(() => act(recorder().tl)).toThrow(error);
  });

  it('spans() is a copy: changing it changes nothing recorded', () => {
    const { tl } = recorder();
    tl.start('x', 'report');
    tl.spans()[0].key = 'changed';
    expect(tl.spans()[0].key).toBe('x');
  });

  it('by default reads Date.now() (the workflow task time inside a workflow)', () => {
    const before = Date.now();
    const tl = timeline();
    tl.start('now', 'setup');
    const start = Date.parse(tl.spans()[0].start);
    expect(start).toBeGreaterThanOrEqual(before);
    expect(start).toBeLessThanOrEqual(Date.now());
  });
});
