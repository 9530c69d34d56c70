import { PowerController } from '../../sim/bmc/power';

/** A fake node plus manual timers: the controller's decisions, without ipmi_sim or real time. */
function setup(initial: 'on' | 'off' = 'on') {
  const node = { power: initial as 'on' | 'off', calls: [] as string[] };
  const timers = new Map<number, () => void>();
  let next = 1;
  const hooks = {
    status: () => node.power,
    powerOff: async () => {
      node.calls.push('powerOff');
      node.power = 'off';
    },
    powerOn: async () => {
      node.calls.push('powerOn');
      node.power = 'on';
    },
    powerCycle: async () => {
      node.calls.push('powerCycle');
    },
  };
  const pc = new PowerController({
    hooks,
    cycleWindowMs: 2500,
    log: () => undefined,
    setTimer: (fn) => {
      const id = next++;
      timers.set(id, fn);
      return id;
    },
    clearTimer: (h) => timers.delete(h as number),
  });
  const fire = () => {
    const pending = [...timers.entries()];
    timers.clear();
    for (const [, fn] of pending) fn();
  };
  return { node, pc, timers, fire };
}

describe('PowerController (ipmi_sim chassis control -> power hooks)', () => {
  test('get power follows the node', () => {
    const { node, pc } = setup();
    expect(pc.handle(['get', 'power'])).toEqual({ out: 'power:1\n', code: 0 });
    node.power = 'off';
    expect(pc.handle(['get', 'power'])).toEqual({ out: 'power:0\n', code: 0 });
  });

  test('power cycle as ipmi_sim does it (set 0, get, set 1) is ONE powerCycle()', async () => {
    const { node, pc, timers } = setup();
    expect(pc.handle(['set', 'power', '0'])).toEqual({ out: '', code: 0 });
    expect(pc.handle(['get', 'power'])).toEqual({ out: 'power:0\n', code: 0 }); // held off: ipmi_sim's timer goes on
    expect(pc.handle(['set', 'power', '1'])).toEqual({ out: '', code: 0 });
    await pc.idle();
    expect(node.calls).toEqual(['powerCycle']);
    expect(timers.size).toBe(0);
  });

  test('power off alone becomes powerOff() when the window ends', async () => {
    const { node, pc, fire } = setup();
    pc.handle(['set', 'power', '0']);
    await pc.idle();
    expect(node.calls).toEqual([]);
    fire();
    await pc.idle();
    expect(node.calls).toEqual(['powerOff']);
    pc.handle(['set', 'power', '1']);
    await pc.idle();
    expect(node.calls).toEqual(['powerOff', 'powerOn']);
  });

  test('power on of a running node and power off of an off node do nothing', async () => {
    const { node, pc, fire } = setup();
    pc.handle(['set', 'power', '1']);
    await pc.idle();
    node.power = 'off';
    pc.handle(['set', 'power', '0']);
    fire();
    await pc.idle();
    expect(node.calls).toEqual([]);
  });

  test('a cycle of an off node powers it on', async () => {
    const { node, pc } = setup('off');
    pc.handle(['set', 'power', '0']);
    pc.handle(['set', 'power', '1']);
    await pc.idle();
    expect(node.calls).toEqual(['powerOn']);
  });

  test('reset of a running node is a power cycle; soft off powers off', async () => {
    const { node, pc } = setup();
    pc.handle(['set', 'reset', '1']);
    await pc.idle();
    expect(node.calls).toEqual(['powerCycle']);
    pc.handle(['set', 'shutdown', '1']);
    await pc.idle();
    expect(node.calls).toEqual(['powerCycle', 'powerOff']);
  });

  test('boot and identify are accepted; garbage is an error', () => {
    const { pc } = setup();
    expect(pc.handle(['set', 'boot', 'pxe'])).toEqual({ out: '', code: 0 });
    expect(pc.handle(['get', 'boot'])).toEqual({ out: 'boot:default\n', code: 0 });
    expect(pc.handle(['set', 'power']).code).toBe(1);
    expect(pc.handle(['set', 'power', '7']).code).toBe(1);
    expect(pc.handle(['get', 'fan']).code).toBe(1);
    expect(pc.handle(['check', 'power', '1']).code).toBe(1);
    expect(pc.handle(['frobnicate']).code).toBe(1);
  });

  test('a failing hook is logged and does not block the next one', async () => {
    const lines: string[] = [];
    const calls: string[] = [];
    const pc = new PowerController({
      hooks: {
        status: () => 'on',
        powerOff: async () => undefined,
        powerOn: async () => undefined,
        powerCycle: async () => {
          calls.push('cycle');
          throw new Error('node is stopped');
        },
      },
      cycleWindowMs: 10,
      log: (l) => lines.push(l),
    });
    pc.handle(['set', 'reset', '1']);
    pc.handle(['set', 'reset', '1']);
    await pc.idle();
    expect(calls).toEqual(['cycle', 'cycle']);
    expect(lines).toContain('powerCycle() failed: node is stopped');
    await pc.stop();
  });

  test('stop drops a held power-off and refuses further requests', async () => {
    const { node, pc, timers } = setup();
    pc.handle(['set', 'power', '0']);
    await pc.stop();
    expect(timers.size).toBe(0);
    expect(pc.handle(['get', 'power']).code).toBe(1);
    expect(node.calls).toEqual([]);
  });
});
