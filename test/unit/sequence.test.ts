import { execFileSync } from 'node:child_process';
import { parseSequenceOutput, sequenceCommand } from '../../workflows/commands/sequence';

/** Several commands in one round trip (workflows/commands/sequence.ts), run by real shells. */

const run = (shell: string, line: string) => execFileSync(shell, ['-c', line], { encoding: 'utf8', env: { PATH: '/usr/bin:/bin' } });

describe('sequenceCommand + parseSequenceOutput', () => {
  it.each(['sh', 'bash'])('in %s: each command its own output and status, a failure does not stop the rest', (shell) => {
    const argvs = [
      ['echo', 'one'],
      ['sh', '-c', 'echo to-stderr >&2; exit 3'],
      ['printf', 'no newline at the end'],
      ['echo', "it's $HOME; `reboot`"],
      ['true'],
    ];
    expect(parseSequenceOutput(run(shell, sequenceCommand(argvs)), argvs.length)).toEqual([
      { output: 'one', exitCode: 0 },
      { output: 'to-stderr', exitCode: 3 },
      { output: 'no newline at the end', exitCode: 0 },
      { output: "it's $HOME; `reboot`", exitCode: 0 },
      { output: '', exitCode: 0 },
    ]);
  });

  it.each([
    ['cut off inside the second command: it has what came, and no status; the third nothing', 'a\n\nAE-SEQ 0 0\npartial', 3, [{ output: 'a', exitCode: 0 }, { output: 'partial' }, { output: '' }]],
    ['nothing at all', '', 2, [{ output: '' }, { output: '' }]],
    ['a marker out of order is output, not a marker', 'AE-SEQ 1 0\nx\nAE-SEQ 0 2\n', 1, [{ output: 'AE-SEQ 1 0\nx', exitCode: 2 }]],
    ['markers beyond the count are output of nothing', 'AE-SEQ 0 0\nAE-SEQ 1 0\n', 1, [{ output: '', exitCode: 0 }]],
  ])('%s', (_what, stdout, count, want) => {
    expect(parseSequenceOutput(stdout, count)).toEqual(want);
  });

  it('no commands is a programming error', () => {
    expect(() => sequenceCommand([])).toThrow(/at least one command/);
  });
});
