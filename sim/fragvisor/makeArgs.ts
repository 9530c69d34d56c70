import path from 'node:path';

/** GNU make's command line, as far as the kernel build imitation needs it. */
export interface MakeArgs {
  /** Directory make runs in (cwd, then every -C applied in order), a node path. */
  dir: string;
  /** True when a -C changed it (make then prints "Entering directory"). */
  changedDir: boolean;
  /** Job slots: a number, Infinity for a bare -j, 1 without -j. */
  jobs: number;
  silent: boolean;
  keepGoing: boolean;
  printDirectory: boolean;
  /** VAR=value from the command line (O, M, LOCALVERSION, V, ...). */
  vars: Record<string, string>;
  targets: string[];
  /** A -f naming another makefile: not a kernel build. */
  otherMakefile: boolean;
}

/** Options that take a value as the next argument when it is not attached. */
const WITH_VALUE = new Set(['-C', '-f', '-I', '-l', '-o', '-W']);

export function parseMakeArgs(argv: readonly string[], cwd: string, env: Record<string, string>): MakeArgs {
  const a: MakeArgs = { dir: cwd, changedDir: false, jobs: 1, silent: false, keepGoing: false, printDirectory: true, vars: {}, targets: [], otherMakefile: false };
  let jobsSet = false;
  const setJobs = (v: string | undefined) => {
    jobsSet = true;
    a.jobs = v === undefined || v === '' ? Infinity : Math.max(1, Number.parseInt(v, 10) || 1);
  };
  const chdir = (d: string) => {
    a.dir = path.posix.resolve(a.dir, d.replace(/^~(?=\/|$)/, '/home/ae'));
    a.changedDir = true;
  };
  const args = argv.slice(1);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === '--') {
      a.targets.push(...args.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const [name, value] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
      if (name === '--jobs') {
        const next = args[i + 1];
        if (value === undefined && next !== undefined && /^\d+$/.test(next)) setJobs(args[++i]);
        else setJobs(value);
      } else if (name === '--directory') chdir(value ?? args[++i] ?? '.');
      else if (name === '--file' || name === '--makefile') a.otherMakefile ||= !/^(GNUmakefile|makefile|Makefile)$/.test(value ?? args[++i] ?? '');
      else if (name === '--silent' || name === '--quiet') a.silent = true;
      else if (name === '--keep-going') a.keepGoing = true;
      else if (name === '--no-print-directory') a.printDirectory = false;
      continue;
    }
    if (arg.startsWith('-') && arg.length > 1) {
      // Clustered short options: -sj16, -j, -C dir, -Cdir.
      for (let k = 1; k < arg.length; k++) {
        const c = arg[k];
        const rest = arg.slice(k + 1);
        if (c === 'j') {
          if (/^\d+$/.test(rest)) setJobs(rest);
          else if (rest === '' && args[i + 1] !== undefined && /^\d+$/.test(args[i + 1])) setJobs(args[++i]);
          else setJobs(undefined);
          if (/^\d+$/.test(rest)) break;
          continue;
        }
        if (WITH_VALUE.has(`-${c}`)) {
          const value = rest !== '' ? rest : (args[++i] ?? '');
          if (c === 'C') chdir(value);
          if (c === 'f') a.otherMakefile ||= !/^(GNUmakefile|makefile|Makefile)$/.test(value);
          break;
        }
        if (c === 's') a.silent = true;
        else if (c === 'k') a.keepGoing = true;
      }
      continue;
    }
    const eq = arg.indexOf('=');
    if (eq > 0 && /^[A-Za-z_][A-Za-z0-9_]*$/.test(arg.slice(0, eq))) a.vars[arg.slice(0, eq)] = arg.slice(eq + 1);
    else a.targets.push(arg);
  }
  // A sub-make (the stand-in Makefile run by the real make) gets its -j through MAKEFLAGS.
  if (!jobsSet) {
    const m = /(?:^|\s)-j(\d*)(?:\s|$)|--jobs=(\d+)/.exec(env.MAKEFLAGS ?? '');
    if (m) setJobs(m[1] ?? m[2]);
  }
  return a;
}
