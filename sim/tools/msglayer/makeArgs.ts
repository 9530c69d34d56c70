/** The parts of a GNU make command line the msg_layer build cares about. */
export interface MakeArgs {
  /** Directory make runs in after every -C (node path). */
  dir: string;
  /** Some -C was given (make then prints "Entering directory"). */
  changedDir: boolean;
  /** M=<dir> (kbuild's external module directory), as written. */
  m: string | undefined;
  targets: string[];
  silent: boolean;
  printDirectory: boolean;
}

/** Parses make's argv (argv[0] is `make`); `resolve` turns a path relative to a directory into a node path. */
export function parseMakeArgs(argv: readonly string[], cwd: string, resolve: (cwd: string, p: string) => string): MakeArgs {
  const out: MakeArgs = { dir: cwd, changedDir: false, m: undefined, targets: [], silent: false, printDirectory: true };
  const withValue = new Set(['-f', '-I', '-o', '-W', '-l']);
  for (let i = 1; i < argv.length; i++) {
    const a = argv[i];
    if (a === '-C' || a === '--directory') {
      if (i + 1 < argv.length) out.dir = resolve(out.dir, argv[++i]);
      out.changedDir = true;
    } else if (a.startsWith('--directory=')) {
      out.dir = resolve(out.dir, a.slice('--directory='.length));
      out.changedDir = true;
    } else if (a.startsWith('-C')) {
      out.dir = resolve(out.dir, a.slice(2));
      out.changedDir = true;
    } else if (a === '-s' || a === '--silent' || a === '--quiet') {
      out.silent = true;
    } else if (a === '--no-print-directory') {
      out.printDirectory = false;
    } else if (withValue.has(a)) {
      i++;
    } else if (a === '-j' || a === '--jobs') {
      if (/^\d+$/.test(argv[i + 1] ?? '')) i++;
    } else if (a.startsWith('-')) {
      if (/^-[a-zA-Z]*s[a-zA-Z]*$/.test(a) && !a.startsWith('-j')) out.silent = true;
    } else if (a.includes('=')) {
      if (a.startsWith('M=')) out.m = a.slice(2);
    } else {
      out.targets.push(a);
    }
  }
  return out;
}
