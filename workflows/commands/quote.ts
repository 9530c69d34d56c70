/**
 * POSIX shell quoting. Every remote command goes through here: ssh hands the server one string that
 * the remote shell re-parses, so each argument must survive that parse byte for byte.
 */

/** Characters no POSIX shell treats specially (anywhere in a word), so such words need no quotes. */
const PLAIN_WORD = /^[A-Za-z0-9_\-/.=:,@+%]+$/;

/**
 * Words the shell parses as syntax when they stand first on a command line (POSIX reserved words plus
 * bash's extras). Quoting them keeps `toCommandLine(['if'])` a command called "if".
 */
const RESERVED = new Set(['!', '{', '}', 'case', 'do', 'done', 'elif', 'else', 'esac', 'fi', 'for', 'if', 'in', 'then', 'until', 'while', '[[', ']]', 'function', 'select', 'time', 'coproc']);

/** Quotes one argument for a POSIX shell: plain words stay as they are, anything else goes in single quotes. */
export function shellQuote(arg: string): string {
  if (arg.includes('\0')) {
    // A NUL ends a C string: the remote side would silently see a shorter argument.
    throw new TypeError('shellQuote: an argument cannot contain a NUL byte');
  }
  if (arg === '') return "''";
  if (PLAIN_WORD.test(arg)) return arg;
  // Inside single quotes every byte is literal except `'` itself, which we close, escape and reopen.
  return `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** Turns an argv array into one command line that runs exactly that argv (no globbing, no expansion). */
export function toCommandLine(argv: readonly string[]): string {
  if (argv.length === 0) throw new TypeError('toCommandLine: argv must name a command');
  const [command, ...args] = argv;
  const quoted = shellQuote(command);
  // First word only: an unquoted `NAME=value` there is a variable assignment, a reserved word is syntax.
  const first = quoted === command && (command.includes('=') || RESERVED.has(command)) ? `'${command}'` : quoted;
  return [first, ...args.map(shellQuote)].join(' ');
}
