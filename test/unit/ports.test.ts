import { freePort, freshPort } from '../../sim/ports';
import { freeUdpPort } from '../../sim/bmc/rmcp';

/** The sim's ports: a port is never handed out twice, even when the kernel offers it again. */

it('freshPort skips a port it already handed out', async () => {
  const offers = [40001, 40001, 40001, 40002];
  const probe = () => Promise.resolve(offers.shift()!);
  expect(await freshPort(probe)).toBe(40001);
  expect(await freshPort(probe)).toBe(40002);
});

it('freshPort gives up rather than hand out a port twice', async () => {
  await freshPort(() => Promise.resolve(40003));
  await expect(freshPort(() => Promise.resolve(40003))).rejects.toThrow(/no fresh port/);
});

it.each([
  { kind: 'TCP', get: freePort },
  { kind: 'UDP', get: freeUdpPort },
])('$kind: 40 ports asked for at once are all different', async ({ get }) => {
  const ports = await Promise.all(Array.from({ length: 40 }, () => get()));
  expect(new Set(ports).size).toBe(ports.length);
});
