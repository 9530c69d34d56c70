import { toCommandLine } from './quote';

/**
 * Several short commands in one SSH round trip, each still run and reported on its own: after each
 * one a marker line carries its index and exit status, so one that fails does not stop the rest and
 * its output is its own. For steps like pinning, where a guest process per command over a high-RTT
 * link made the step cost a round trip per process. POSIX sh only (a guest's shell may be busybox).
 */

const MARKER = 'AE-SEQ';
const MARKER_LINE = new RegExp(`^${MARKER} (\\d+) (\\d+)$`);

/** One command line that runs every argv in order, each with stderr on stdout, then `AE-SEQ <i> <status>`. */
export function sequenceCommand(argvs: readonly (readonly string[])[]): string {
  if (argvs.length === 0) throw new TypeError('sequenceCommand: give at least one command');
  // The newline before the marker puts it on a line of its own even after output without one.
  return argvs.map((argv, i) => `${toCommandLine(argv)} 2>&1; printf '\\n${MARKER} ${i} %s\\n' "$?"`).join('\n');
}

export interface SequenceStep {
  /** Its stdout and stderr, as one text. */
  output: string;
  /** Its exit status; undefined when it never reported (the sequence was cut off before it ended). */
  exitCode?: number;
}

/** `count` steps from a sequenceCommand's stdout, in order; those it never reached have no exit status. */
export function parseSequenceOutput(stdout: string, count: number): SequenceStep[] {
  const steps: SequenceStep[] = Array.from({ length: count }, () => ({ output: '' }));
  let lines: string[] = [];
  let next = 0;
  for (const line of stdout.split('\n')) {
    const m = MARKER_LINE.exec(line);
    if (m && Number(m[1]) === next && next < count) {
      // The line the marker's own newline ended is empty, or the output's last line without a newline.
      if (lines.at(-1) === '') lines.pop();
      steps[next] = { output: lines.join('\n'), exitCode: Number(m[2]) };
      next++;
      lines = [];
    } else lines.push(line);
  }
  if (next < count) steps[next] = { output: lines.join('\n').replace(/\n$/, '') };
  return steps;
}
