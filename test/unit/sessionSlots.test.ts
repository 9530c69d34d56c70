import { SessionSlots } from '../../activities/ssh/sessions';

const never = () => new AbortController().signal;
/** Settles pending promise callbacks. */
const tick = () => new Promise((r) => setImmediate(r));

describe('SessionSlots', () => {
  it.each([
    { maxSessions: 10, capacity: 9 },
    { maxSessions: 3, capacity: 2 },
    { maxSessions: 2, capacity: 1 },
    { maxSessions: 1, capacity: 1 },
  ])('a server allowing $maxSessions sessions runs $capacity commands at once', async ({ maxSessions, capacity }) => {
    const slots = new SessionSlots(maxSessions);
    expect(slots.capacity).toBe(capacity);
    let granted = 0;
    for (let i = 0; i < capacity + 2; i++) void slots.acquire(never()).then(() => granted++);
    await tick();
    expect(granted).toBe(capacity);
    expect(slots.busy).toBe(capacity);
  });

  it('grants waiting commands first come, first served, as slots are released', async () => {
    const slots = new SessionSlots(2);
    const release = await slots.acquire(never());
    const order: number[] = [];
    const waiting = [1, 2, 3].map((i) => slots.acquire(never()).then((r) => (order.push(i), r)));
    await tick();
    expect(order).toEqual([]);
    release();
    release(); // a second call does nothing
    await tick();
    expect(order).toEqual([1]);
    (await waiting[0])();
    await tick();
    expect(order).toEqual([1, 2]);
    expect(slots.busy).toBe(1);
  });

  it('a wait that is aborted rejects with the reason and leaves the queue', async () => {
    const slots = new SessionSlots(2);
    const release = await slots.acquire(never());
    const ctl = new AbortController();
    const reason = new Error('timed out');
    const aborted = slots.acquire(ctl.signal);
    const next = slots.acquire(never());
    ctl.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    release();
    await expect(next).resolves.toEqual(expect.any(Function));
    expect(slots.busy).toBe(1);
    await expect(slots.acquire(ctl.signal)).rejects.toBe(reason);
  });

  it.each([
    { configured: 10, refusedAt: 3, capacity: 2 },
    { configured: 10, refusedAt: 1, capacity: 1 },
    { configured: 3, refusedAt: 8, capacity: 2 },
  ])('refused with $refusedAt open (profile says $configured): $capacity at once from then on', ({ configured, refusedAt, capacity }) => {
    const slots = new SessionSlots(configured);
    slots.serverRefusedAt(refusedAt);
    expect(slots.capacity).toBe(capacity);
  });
});
