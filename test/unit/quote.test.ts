import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { shellQuote, toCommandLine } from '../../workflows/commands/quote';

/** What a real shell makes of `printf '%s\0' <words>`: the arguments it received, split on NUL. */
function shellArgs(shell: 'bash' | 'sh', words: string): string[] {
  const out = execFileSync(shell, ['-c', `printf '%s\\0' ${words}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

const NASTY: Array<[string, string]> = [
  ['empty string', ''],
  ['single quote', "it's"],
  ['only quotes', "''"],
  ['double quotes', '"a" "b"'],
  ['command substitution', '$(touch /tmp/pwned)'],
  ['backticks', '`id`'],
  ['variable', '$HOME ${PATH}'],
  ['newline', 'line1\nline2'],
  ['trailing newline', 'x\n'],
  ['tab and spaces', ' a\tb  '],
  ['glob', '*.ts ?[a-z]'],
  ['redirects and pipes', 'a > b | c < d 2>&1'],
  ['semicolon and ampersand', 'a; b && c || d &'],
  ['backslashes', 'C:\\path\\ \\n'],
  ['history expansion', '!!'],
  ['tilde', '~root'],
  ['brace expansion', '{a,b}'],
  ['comment', '# not a comment'],
  ['unicode', 'héllo wörld ✓ 日本語 🚀'],
  ['control chars', '\x01\x7f\x1b[31m'],
  ['leading dash', '-rf'],
  ['assignment-like', 'FOO=bar'],
];

describe('shellQuote', () => {
  it.each(NASTY)('%s survives bash and sh unchanged', (_name, input) => {
    expect(shellArgs('bash', shellQuote(input))).toEqual([input]);
    expect(shellArgs('sh', shellQuote(input))).toEqual([input]);
  });

  it('never executes what it quotes', () => {
    const marker = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'quote-')), 'pwned');
    const attacks = [`$(touch ${marker})`, `\`touch ${marker}\``, `; touch ${marker}`, `' ; touch ${marker}; '`, `\n touch ${marker}`];
    for (const a of attacks) expect(shellArgs('bash', shellQuote(a))).toEqual([a]);
    expect(fs.existsSync(marker)).toBe(false);
    fs.rmSync(path.dirname(marker), { recursive: true });
  });

  it('round-trips all the nasty inputs as one argv through bash', () => {
    const inputs = NASTY.map(([, v]) => v);
    expect(shellArgs('bash', inputs.map(shellQuote).join(' '))).toEqual(inputs);
  });

  it.each(['a-b_c/d.e=f:1,2@x+y%', 'abc', '/usr/bin/env', '10.4.6.15', 'user@host', '--flag=value', 'a,b'])('leaves the simple word %j unquoted', (word) => {
    expect(shellQuote(word)).toBe(word);
  });

  it.each([
    ['', "''"],
    ["it's", `'it'\\''s'`],
    ['a b', "'a b'"],
    ['$x', "'$x'"],
  ])('quotes %j as %s', (input, quoted) => {
    expect(shellQuote(input)).toBe(quoted);
  });

  it('refuses a NUL byte, which no argv can carry', () => {
    expect(() => shellQuote('a\0b')).toThrow(/NUL/);
  });
});

describe('toCommandLine', () => {
  it('runs exactly the given argv through bash', () => {
    const argv = ['printf', '%s\\0', ...NASTY.map(([, v]) => v)];
    const out = execFileSync('bash', ['-c', toCommandLine(argv)], { encoding: 'utf8' });
    expect(out.split('\0').slice(0, -1)).toEqual(NASTY.map(([, v]) => v));
  });

  it('does not let a NAME=value first word become a variable assignment', () => {
    expect(toCommandLine(['FOO=bar', 'x'])).toBe("'FOO=bar' x");
    expect(() => execFileSync('bash', ['-c', toCommandLine(['FOO=bar'])], { stdio: 'pipe' })).toThrow(/FOO=bar: command not found/);
  });

  it('quotes a reserved word used as the command', () => {
    expect(toCommandLine(['if', 'then'])).toBe("'if' then");
  });

  it('joins plain words with single spaces', () => {
    expect(toCommandLine(['taskset', '-pc', '0-3', '1234'])).toBe('taskset -pc 0-3 1234');
  });

  it('rejects an empty argv', () => {
    expect(() => toCommandLine([])).toThrow(/argv/);
  });
});
