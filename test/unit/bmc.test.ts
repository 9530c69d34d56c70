import { ipmitoolArgs, IPMI_PASSWORD_ENV, type IpmiAction } from '../../workflows/commands/ipmitool';
import { buildLanConf, passwordProblem, type LanConfInput } from '../../sim/bmc/lanConf';
import { controlWrapper, shQuote } from '../../sim/bmc/controlClient';
import { isPresencePong, presencePing } from '../../sim/bmc/rmcp';

const echo5 = { host: 'echo5-ipmi', port: 623, user: 'ADMIN' };

describe('ipmitoolArgs', () => {
  test.each<[IpmiAction, string[]]>([
    ['status', ['chassis', 'power', 'status']],
    ['cycle', ['chassis', 'power', 'cycle']],
    ['off', ['chassis', 'power', 'off']],
    ['on', ['chassis', 'power', 'on']],
    ['sol', ['sol', 'activate']],
  ])('%s', (action, tail) => {
    expect(ipmitoolArgs(echo5, action)).toEqual(['-I', 'lanplus', '-C', '3', '-H', 'echo5-ipmi', '-p', '623', '-U', 'ADMIN', '-E', ...tail]);
  });

  test('the password comes from IPMI_PASSWORD (-E) or a file (-f), never -P', () => {
    expect(IPMI_PASSWORD_ENV).toBe('IPMI_PASSWORD');
    const viaFile = ipmitoolArgs({ ...echo5, passwordFile: '/run/ae/echo5.pass' }, 'cycle');
    expect(viaFile).toEqual(['-I', 'lanplus', '-C', '3', '-H', 'echo5-ipmi', '-p', '623', '-U', 'ADMIN', '-f', '/run/ae/echo5.pass', 'chassis', 'power', 'cycle']);
    for (const action of ['status', 'cycle', 'off', 'on', 'sol'] as const) {
      expect(ipmitoolArgs(echo5, action)).not.toContain('-P');
      expect(ipmitoolArgs({ ...echo5, passwordFile: '/p' }, action)).not.toContain('-P');
      expect(ipmitoolArgs({ ...echo5, passwordFile: '/p' }, action)).not.toContain('-E');
    }
  });

  test('simulated BMC on loopback, other cipher suite', () => {
    expect(ipmitoolArgs({ host: '127.0.0.1', port: 40123, user: 'admin', cipherSuite: 17 }, 'status')).toEqual([
      '-I', 'lanplus', '-C', '17', '-H', '127.0.0.1', '-p', '40123', '-U', 'admin', '-E', 'chassis', 'power', 'status',
    ]);
  });

  test.each([
    [{ ...echo5, host: '-oProxyCommand=x' }, /host/],
    [{ ...echo5, host: 'echo5 ipmi' }, /host/],
    [{ ...echo5, host: '300.1.1.1' }, /host/],
    [{ ...echo5, port: 0 }, /port/],
    [{ ...echo5, port: 70000 }, /port/],
    [{ ...echo5, port: 1.5 }, /port/],
    [{ ...echo5, user: '-P' }, /user/],
    [{ ...echo5, user: 'a'.repeat(17) }, /user/],
    [{ ...echo5, user: 'ad min' }, /user/],
    [{ ...echo5, passwordFile: '-P' }, /password file/],
    [{ ...echo5, passwordFile: '/a b' }, /password file/],
    [{ ...echo5, cipherSuite: 99 }, /cipher/],
  ])('refuses %o', (bmc, message) => {
    expect(() => ipmitoolArgs(bmc, 'status')).toThrow(message);
  });

  test('refuses an unknown action', () => {
    expect(() => ipmitoolArgs(echo5, 'reset' as IpmiAction)).toThrow(/unknown BMC action/);
  });
});

describe('ipmi_sim lan.conf', () => {
  const input: LanConfInput = { name: 'node0', host: '127.0.0.1', port: 40123, user: 'admin', password: 'pa55word!', chassisControl: '/tmp/x/bmc/chassis-control', solPort: 40200 };

  test('one LAN channel on its loopback port, one admin user, chassis control and SOL', () => {
    const conf = buildLanConf(input);
    expect(conf).toContain('name "node0"');
    expect(conf).toContain('    addr 127.0.0.1 40123');
    expect(conf).toContain('  chassis_control "/tmp/x/bmc/chassis-control 0x20"');
    expect(conf).toContain('  sol "tcp:127.0.0.1:40200" 115200');
    expect(conf).toContain('  user 2 true "admin" "pa55word!" admin 10 md5');
    expect(conf).not.toMatch(/^\s*user 1 /m); // no anonymous user
    expect(conf).not.toMatch(/startcmd|console /);
  });

  test('values that could end their quotes or start a directive are refused', () => {
    expect(() => buildLanConf({ ...input, password: 'a"b' })).toThrow(/quotes/);
    expect(() => buildLanConf({ ...input, password: "a'b" })).toThrow(/quotes/);
    expect(() => buildLanConf({ ...input, password: 'a\nuser 3 true "x" "y" admin 10 md5' })).toThrow(/printable/);
    expect(() => buildLanConf({ ...input, password: 'x'.repeat(21) })).toThrow(/1\.\.20/);
    expect(() => buildLanConf({ ...input, user: 'ad"min' })).toThrow(/user/);
    expect(() => buildLanConf({ ...input, name: 'node 0' })).toThrow(/name/);
    expect(() => buildLanConf({ ...input, host: '0.0.0.0 623\n' })).toThrow(/IPv4/);
    expect(() => buildLanConf({ ...input, chassisControl: '/tmp/a b/ctl' })).toThrow(/chassis-control/);
    expect(() => buildLanConf({ ...input, chassisControl: '/tmp/$(reboot)' })).toThrow(/chassis-control/);
    expect(() => buildLanConf({ ...input, port: 0 })).toThrow(/port/);
  });

  test('a refused password is never echoed', () => {
    const problem = passwordProblem('has"quote');
    expect(problem).not.toBeNull();
    expect(problem).not.toContain('has"quote');
    expect(passwordProblem('ok-Passw0rd')).toBeNull();
  });
});

describe('chassis-control wrapper', () => {
  test('quotes every path for sh', () => {
    expect(shQuote("it's")).toBe(`'it'\\''s'`);
    expect(controlWrapper('/usr/bin/node', '/s/client.cjs', '/s/ctl.sock')).toBe(`#!/bin/sh\nexec '/usr/bin/node' '/s/client.cjs' '/s/ctl.sock' "$@"\n`);
  });
});

describe('RMCP presence ping', () => {
  test('ASF ping bytes, and a pong is recognised by its tag', () => {
    expect([...presencePing(0x5a)]).toEqual([0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, 0x5a, 0x00, 0x00]);
    const pong = Buffer.from([0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x40, 0x5a, 0x00, 0x10, ...new Array(16).fill(0)]);
    expect(isPresencePong(pong, 0x5a)).toBe(true);
    expect(isPresencePong(pong, 0x5b)).toBe(false);
    expect(isPresencePong(presencePing(0x5a), 0x5a)).toBe(false);
  });
});
