import { bootElapsedMs } from '../../activities/vm';

/** How long a VM has had to boot, from its launchers' job reads (activities/vm.ts). */
describe('bootElapsedMs', () => {
  it.each([
    ['one launcher (FragVisor): since it started', [{ startMs: 1000, nowMs: 31_000 }], 30_000],
    ['GiantVM, all started together: since the last one', [{ startMs: 1000, nowMs: 5000 }, { startMs: 1200, nowMs: 5000 }], 3800],
    ['one started 35 s late (a worker killed half-way through the launch): it counts from that one', [{ startMs: 0, nowMs: 36_000 }, { startMs: 35_000, nowMs: 36_000 }], 1000],
    ['each on its own clock: a node whose clock is 10 s ahead changes nothing', [{ startMs: 0, nowMs: 4000 }, { startMs: 10_500, nowMs: 14_000 }], 3500],
    ['a launcher without a start stamp yet has only just started', [{ startMs: 0, nowMs: 9000 }, { nowMs: 9000 }], 0],
  ])('%s', (_what, reads, want) => {
    expect(bootElapsedMs(reads)).toBe(want);
  });
});
