import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import { asActivityFailure } from '../../activities/failures';
import { InvalidRemoteJobSpecError, SudoPasswordRequiredError } from '../../activities/remoteJob/errors';
import {
  isSudoPasswordFailure,
  isValidKey,
  jobCommandLine,
  JobOutputError,
  JobOutputReader,
  killCommand,
  LastLine,
  parseHeader,
  pollCommand,
  remoteJobKey,
  resumeOffsetFrom,
  startCommand,
  tailLines,
  validateSpec,
  type JobHeader,
} from '../../activities/remoteJob/scripts';
import type { RemoteJobSpec } from '../../activities/remoteJob/types';
import { stepLog } from '../../activities/runStore';

/** The words a real bash makes of a command line (printed instead of run, so nothing in it executes). */
function words(commandLine: string): string[] {
  return execFileSync('bash', ['-c', `printf '%s\\0' ${commandLine}`], { encoding: 'utf8' }).split('\0').slice(0, -1);
}

const NASTY = ['$(touch /tmp/pwned)', '`id`', "it's", 'a; reboot', 'line1\nline2', '*', '$HOME', '', ' spaced ', '-rf', 'FOO=bar', 'héllo ✓'];

describe('remoteJobKey', () => {
  it.each<[string[], string | RegExp]>([
    [['run-1', 'kernel-build'], 'run-1.kernel-build'],
    [['wf_42', 'node0', 'modules_install'], 'wf_42.node0.modules_install'],
    [['a b', 'c'], /^a-b\.c-[0-9a-f]{12}$/],
    [['run.1'], /^run-1-[0-9a-f]{12}$/],
    [['..', '/etc/passwd'], /^etc-passwd-[0-9a-f]{12}$/],
    [['-x'], /^x-[0-9a-f]{12}$/],
    [[''], /^[0-9a-f]{12}$/],
    [['a', '', 'b'], /^a\.b-[0-9a-f]{12}$/],
    [['x'.repeat(200)], new RegExp(`^x{115}-[0-9a-f]{12}$`)],
  ])('%j -> %s', (parts, expected) => {
    const key = remoteJobKey(...parts);
    if (typeof expected === 'string') expect(key).toBe(expected);
    else expect(key).toMatch(expected);
    expect(isValidKey(key)).toBe(true);
    expect(key.length).toBeLessThanOrEqual(128);
    expect(remoteJobKey(...parts)).toBe(key); // stable
  });

  it('gives different inputs different keys, even when they sanitise alike', () => {
    const inputs = [['a b'], ['a-b'], ['a', 'b'], ['a.b'], ['a/b'], ['a', 'b', ''], ['x'.repeat(200)], ['x'.repeat(201)]];
    const keys = inputs.map((p) => remoteJobKey(...p));
    expect(new Set(keys).size).toBe(inputs.length);
  });

  it('every key names a run-store log', () => {
    const env = { AE_RUNS_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'rj-keys-')) };
    for (const parts of [['..', 'a'], ['x'.repeat(300)], ['a:b@c'], ['']]) {
      expect(stepLog('run', 'node0', remoteJobKey(...parts), env).relative).toMatch(/^logs\/node0\/[A-Za-z0-9][A-Za-z0-9_.-]*\.log$/);
    }
    fs.rmSync(env.AE_RUNS_DIR, { recursive: true });
  });

  it('needs at least one part', () => {
    expect(() => remoteJobKey()).toThrow(TypeError);
  });
});

describe('validateSpec', () => {
  const ok: RemoteJobSpec = { key: 'k', argv: ['make'] };
  it.each<[string, Partial<RemoteJobSpec>]>([
    ['a key with a slash', { key: 'a/b' }],
    ['a key with ..', { key: 'a..b' }],
    ['a key starting with a dot', { key: '.k' }],
    ['a key too long', { key: 'k'.repeat(129) }],
    ['no command', { argv: [] }],
    ['an empty command', { argv: [''] }],
    ['a NUL in an argument', { argv: ['echo', 'a\0b'] }],
    ['a relative cwd', { cwd: 'home/ae' }],
    ['a cwd with a space', { cwd: '/home/a e' }],
    ['a cwd with ..', { cwd: '/home/../etc' }],
  ])('refuses %s', (_what, patch) => {
    expect(() => validateSpec({ ...ok, ...patch })).toThrow(InvalidRemoteJobSpecError);
  });

  it('accepts a plain spec', () => {
    expect(() => validateSpec({ key: 'host-kernel.build', argv: ['make', '-j16'], cwd: '/home/ae/FragVisor/fragvisor-linux', sudo: true, stdin: 'x' })).not.toThrow();
  });

  it('is a non-retryable InvalidRemoteJobSpec failure in an activity', () => {
    const failure = asActivityFailure(new InvalidRemoteJobSpecError('bad', 'k'));
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect(failure).toMatchObject({ type: 'InvalidRemoteJobSpec', nonRetryable: true });
  });
});

describe('the job command line', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'rj-cmd-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('runs exactly the argv, in cwd, whatever the arguments hold', () => {
    const line = jobCommandLine({ key: 'k', argv: ['printf', '%s\\0', ...NASTY], cwd: dir });
    const out = execFileSync('bash', ['-c', line], { encoding: 'utf8' });
    expect(out.split('\0').slice(0, -1)).toEqual(NASTY);
    expect(execFileSync('bash', ['-c', jobCommandLine({ key: 'k', argv: ['pwd'], cwd: dir })], { encoding: 'utf8' })).toBe(`${dir}\n`);
    expect(fs.existsSync('/tmp/pwned')).toBe(false);
  });

  it('puts `sudo -n --` in front for privileged jobs', () => {
    // A stand-in sudo that prints what it was given.
    fs.writeFileSync(path.join(dir, 'sudo'), "#!/bin/sh\nprintf '%s\\0' \"$@\"\n", { mode: 0o755 });
    const line = jobCommandLine({ key: 'k', argv: ['make', ...NASTY], sudo: true });
    const out = execFileSync('bash', ['-c', line], { encoding: 'utf8', env: { PATH: `${dir}:/usr/bin:/bin` } });
    expect(out.split('\0').slice(0, -1)).toEqual(['-n', '--', 'make', ...NASTY]);
  });
});

describe('the remote scripts carry values only as quoted arguments', () => {
  it('start: the script text is constant; key, command line and flags are separate words', () => {
    const spec: RemoteJobSpec = { key: 'job-1', argv: ['echo', ...NASTY], cwd: '/home/ae', stdin: '$(reboot)' };
    const w = words(startCommand(spec));
    expect(w).toEqual(['bash', '-c', expect.any(String), 'ae-remote-job', 'job-1', jobCommandLine(spec), '1', '0', '10080']);
    // The same text whatever the spec: no value is ever spliced into it.
    expect(words(startCommand({ key: 'other', argv: ['true'] }))[2]).toBe(w[2]);
    expect(words(startCommand({ key: 'k', argv: ['x'], restartLost: true })).slice(3)).toEqual(['ae-remote-job', 'k', 'exec x', '0', '1', '10080']);
    expect(fs.existsSync('/tmp/pwned')).toBe(false);
  });

  it('poll and kill', () => {
    expect(words(pollCommand('k.1', 12345, 4194304)).slice(3)).toEqual(['ae-remote-job', 'k.1', '12345', '4194304']);
    expect(words(killCommand('k.1', 'timeout', 3000, true)).slice(3)).toEqual(['ae-remote-job', 'k.1', 'timeout', '30', '1']);
    expect(words(killCommand('k.1', 'cancelled', 0, false)).slice(3)).toEqual(['ae-remote-job', 'k.1', 'cancelled', '0', '0']);
  });

  it('every script is valid bash', () => {
    for (const cmd of [startCommand({ key: 'k', argv: ['true'] }), pollCommand('k', 0, 1), killCommand('k', 'timeout', 100, false)]) {
      expect(() => execFileSync('bash', ['-n', '-c', words(cmd)[2]])).not.toThrow();
    }
  });
});

describe('parseHeader', () => {
  const line = (fields: string) => `AE-JOB ${fields}`;
  it.each<[string, JobHeader]>([
    [line('action=started state=running reason=- size=0 rc=- start=1700000000000 end=- now=1700000000010'), { action: 'started', state: 'running', size: 0, startMs: 1700000000000, nowMs: 1700000000010 }],
    [
      line('action=poll state=finished reason=- size=18 rc=3 start=1000 end=3015 now=4000'),
      { action: 'poll', state: 'finished', size: 18, exitCode: 3, startMs: 1000, endMs: 3015, nowMs: 4000 },
    ],
    [line('action=killed state=killed reason=- size=5 rc=killed:timeout start=1 end=2 now=3'), { action: 'killed', state: 'killed', size: 5, killed: 'killed:timeout', startMs: 1, endMs: 2, nowMs: 3 }],
    [line('action=attached state=lost reason=rebooted size=7 rc=- start=1 end=- now=9'), { action: 'attached', state: 'lost', reason: 'rebooted', size: 7, startMs: 1, nowMs: 9 }],
    [line('action=poll state=missing reason=- size=0 rc=- start=- end=- now=9'), { action: 'poll', state: 'missing', size: 0, nowMs: 9 }],
  ])('%s', (text, expected) => {
    expect(parseHeader(text)).toEqual(expected);
  });

  it.each([
    '',
    'hello',
    line('action=poll state=exploded reason=- size=0 rc=- start=- end=- now=1'),
    line('action=jump state=running reason=- size=0 rc=- start=- end=- now=1'),
    line('action=poll state=running reason=- size=-1 rc=- start=- end=- now=1'),
    line('action=poll state=running reason=- size=0 rc=- start=- end=-'),
    `${line('action=poll state=running reason=- size=0 rc=- start=- end=- now=1')} extra`,
  ])('refuses %j', (text) => {
    expect(() => parseHeader(text)).toThrow(JobOutputError);
  });
});

describe('JobOutputReader', () => {
  const header = 'AE-JOB action=poll state=running reason=- size=99 rc=- start=1 end=- now=2\n';
  // Log bytes that look like a header, hold newlines, NULs and invalid UTF-8.
  const data = Buffer.concat([Buffer.from('AE-JOB action=poll\nline\r\n'), Buffer.from([0, 0xff, 0xfe, 10]), Buffer.from('tail without newline')]);
  const whole = Buffer.concat([Buffer.from(header), data]);

  it.each(Array.from({ length: whole.length + 1 }, (_, i) => i))('splits header and data wherever a chunk ends (cut at %i)', (cut) => {
    const r = new JobOutputReader();
    const out = [r.push(whole.subarray(0, cut)), r.push(whole.subarray(cut))];
    expect(r.header).toMatchObject({ state: 'running', size: 99 });
    expect(Buffer.concat(out).equals(data)).toBe(true);
  });

  it('byte by byte', () => {
    const r = new JobOutputReader();
    const out: Buffer[] = [];
    for (let i = 0; i < whole.length; i++) out.push(r.push(whole.subarray(i, i + 1)));
    expect(Buffer.concat(out).equals(data)).toBe(true);
  });

  it('a header alone (nothing new in the log)', () => {
    const r = new JobOutputReader();
    expect(r.push(Buffer.from(header)).length).toBe(0);
    expect(r.header?.action).toBe('poll');
  });

  it('output that is not ours fails instead of growing without bound', () => {
    const r = new JobOutputReader();
    expect(() => r.push(Buffer.alloc(2000, 'x'))).toThrow(JobOutputError);
    expect(() => new JobOutputReader().push(Buffer.from('bash: flock: command not found\n'))).toThrow(JobOutputError);
  });
});

describe('LastLine', () => {
  it.each<[string, string[], string | undefined]>([
    ['nothing yet', [], undefined],
    ['a partial line only', ['compiling'], undefined],
    ['one line', ['CC kernel/fork.o\n'], 'CC kernel/fork.o'],
    ['a line split over chunks', ['CC ker', 'nel/fork', '.o\nLD'], 'CC kernel/fork.o'],
    ['the last of many', ['a\nb\nc\n'], 'c'],
    ['blank lines keep the line before', ['a\n\n\n'], 'a'],
    ['blank lines in a later chunk keep the earlier line', ['a\n', '\n  \n'], 'a'],
    ['a blank-only chunk after a partial line', ['ab', '\n\n'], 'ab'],
    ['CRLF', ['x\r\n'], 'x'],
    ['a later chunk wins', ['a\n', 'b\n'], 'b'],
  ])('%s', (_what, chunks, expected) => {
    const l = new LastLine();
    for (const c of chunks) l.push(Buffer.from(c));
    expect(l.line).toBe(expected);
  });

  it('stays bounded on a huge line', () => {
    const l = new LastLine();
    for (let i = 0; i < 100; i++) l.push(Buffer.alloc(100_000, 'y'));
    l.push(Buffer.from('\n'));
    expect(l.line?.length).toBe(512);
  });
});

describe('tails, sudo prompts, resume offsets', () => {
  it.each<[string, number, string[]]>([
    ['', 40, []],
    ['a\nb\n', 40, ['a', 'b']],
    ['a\nb', 40, ['a', 'b']],
    ['1\n2\n3\n4\n', 2, ['3', '4']],
    ['x\r\n', 40, ['x']],
  ])('tailLines(%j, %i)', (text, n, expected) => {
    expect(tailLines(text, n)).toEqual(expected);
  });

  it.each<[string, boolean | undefined, number, string[], boolean]>([
    ['sudo -n without a rule', true, 1, ['sudo: a password is required'], true],
    ['sudo without -n and no tty', true, 1, ['sudo: a terminal is required to read the password; either use the -S option', 'sudo: a password is required'], true],
    ['old sudo, no tty', true, 1, ['sudo: no tty present and no askpass program specified'], true],
    ['a failing privileged build', true, 2, ['make: *** [install] Error 2'], false],
    ['not a sudo job', false, 1, ['sudo: a password is required'], false],
    ['a sudo job that succeeded', true, 0, ['sudo: a password is required'], false],
    ['the words inside a line', true, 1, ['echo sudo: a password is required'], false],
  ])('%s', (_what, sudo, exitCode, tail, expected) => {
    expect(isSudoPasswordFailure({ sudo }, exitCode, tail)).toBe(expected);
  });

  it('SudoPasswordRequired is a non-retryable failure that names the node and the fix', () => {
    const err = new SudoPasswordRequiredError({ node: 'node2', key: 'k', tail: ['sudo: a password is required'], logBytes: 29 }, 'make', 'ae');
    expect(err.message).toMatch(/node node2/);
    expect(err.message).toMatch(/NOPASSWD/);
    expect(err.message).toMatch(/sudo -n true/);
    expect(asActivityFailure(err)).toMatchObject({ type: 'SudoPasswordRequired', nonRetryable: true, details: [expect.objectContaining({ node: 'node2', command: 'make' })] });
  });

  it.each<[unknown, number | undefined]>([
    [undefined, undefined],
    [null, undefined],
    [42, undefined],
    [{ key: 'k', offset: 100 }, 100],
    [{ key: 'k', offset: 0, lastLine: 'x' }, 0],
    [{ key: 'other', offset: 100 }, undefined],
    [{ key: 'k', offset: -1 }, undefined],
    [{ key: 'k', offset: 1.5 }, undefined],
    [{ key: 'k', offset: '100' }, undefined],
  ])('resumeOffsetFrom(%j)', (details, expected) => {
    expect(resumeOffsetFrom(details, 'k')).toBe(expected);
  });
});
