import { SshConfigSyntaxError } from './errors';
import { expandPath, expandTilde, type ExpansionTokens } from './expandPath';
import { memoizeByText } from './memo';
import { matchPatternList } from './pattern';

export { SshConfigSyntaxError };

/**
 * The subset of OpenSSH's client config (ssh_config(5)) the pool honours: Host, Match all, Include,
 * HostName, User, Port, IdentityFile, ProxyJump (and ProxyCommand, only to refuse it). Pure: files are
 * read through a ConfigSource. Semantics follow readconf.c: the first value obtained for a keyword wins
 * (IdentityFile accumulates), command-line values beat every file value.
 */

export interface SshConfigDirective {
  /** Lower-cased keyword. */
  keyword: string;
  args: string[];
  file: string;
  line: number;
}

/** File access for Include; the default implementation lives in configFiles.ts. */
export interface ConfigSource {
  /** The file's text, or undefined when it does not exist. */
  read(path: string): string | undefined;
  /** Existing paths matching a glob (`*`, `?`, `[...]`), sorted. */
  glob(pattern: string): string[];
}

/** Facts about the local side used in `~` and `%` expansions. */
export interface LocalContext {
  home: string;
  user: string;
  uid?: number;
  hostname?: string;
  env?: Readonly<Record<string, string | undefined>>;
}

/** Values given like ssh's command-line options (-l, -p, -i, -J): they beat the config files. */
export interface CommandLineOptions {
  user?: string;
  port?: number;
  identityFiles?: readonly string[];
  proxyJump?: string;
}

export interface ResolvedSshConfig {
  /** The destination as given (what Host patterns matched). */
  host: string;
  /** Where to connect: HostName with %h expanded, lower-cased, or `host`. */
  hostname: string;
  port: number;
  user: string;
  /** Command-line identity files first, then the config's, with ~, %, ${ENV} expanded. Empty: none named. */
  identityFiles: string[];
  /** The same before expansion, as `ssh -G` prints them. */
  rawIdentityFiles: string[];
  /** Jump hosts (`[user@]host[:port]`, comma-separated), absent for none. */
  proxyJump?: string;
  /** Set when the config asks for a ProxyCommand, which we do not run. */
  proxyCommand?: string;
  /** Parts of the config we skipped (e.g. Match criteria other than `all`). */
  warnings: string[];
}

const MAX_INCLUDE_DEPTH = 16; // READCONF_MAX_DEPTH in readconf.c

/** Splits the arguments like OpenSSH's argv_split(): quotes ' and ", backslash escapes, `#` ends the line. */
function splitArgs(s: string, where: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    if (s[i] === ' ' || s[i] === '\t') {
      i++;
      continue;
    }
    if (s[i] === '#') break;
    let arg = '';
    let quote = '';
    for (; i < s.length; i++) {
      const c = s[i];
      if (c === '\\' && (s[i + 1] === "'" || s[i + 1] === '"' || s[i + 1] === '\\' || (quote === '' && s[i + 1] === ' '))) {
        arg += s[++i];
      } else if (quote === '' && (c === ' ' || c === '\t')) {
        break;
      } else if (quote === '' && (c === '"' || c === "'")) {
        quote = c;
      } else if (quote !== '' && c === quote) {
        quote = '';
      } else {
        arg += c;
      }
    }
    if (quote !== '') throw new SshConfigSyntaxError(`${where}: unterminated quote`);
    out.push(arg);
  }
  return out;
}

/** Parses ssh_config text into directives (keyword, arguments) without interpreting them. */
export function parseSshConfig(text: string, file: string): SshConfigDirective[] {
  const out: SshConfigDirective[] = [];
  text.split('\n').forEach((raw, i) => {
    const where = `${file} line ${i + 1}`;
    // The keyword ends at whitespace or a single `=` (with optional whitespace around it), as strdelim().
    const m = /^[ \t\f\r]*([^ \t\f\r=]*)[ \t\f\r]*(?:=[ \t\f\r]*)?(.*?)[ \t\f\r]*$/.exec(raw);
    if (!m || m[1] === '' || m[1].startsWith('#')) return;
    const keyword = m[1].toLowerCase();
    const args = splitArgs(m[2], where);
    if (args.length === 0) throw new SshConfigSyntaxError(`${where}: no argument after keyword "${m[1]}"`);
    out.push({ keyword, args, file, line: i + 1 });
  });
  return out;
}

/** Every connect resolves its node against the same file (see memo.ts). */
const parseCached = memoizeByText(parseSshConfig);

interface Collected {
  hostname?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  /** How many of identityFiles came from the command line: ssh de-duplicates each origin separately. */
  cliIdentityCount: number;
  proxy?: { kind: 'jump' | 'command'; value: string };
  warnings: string[];
}

/** A numeric port. (ssh also takes service names from /etc/services; we refuse them rather than look up.) */
function parsePort(value: string, where: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (!(port >= 1 && port <= 65535)) throw new SshConfigSyntaxError(`${where}: bad port "${value}"`);
  return port;
}

function single(d: SshConfigDirective): string {
  if (d.args.length !== 1) throw new SshConfigSyntaxError(`${d.file} line ${d.line}: ${d.keyword} takes exactly one argument`);
  return d.args[0];
}

/** Walks directives with readconf.c's rules: `active` is the current Host/Match state, shared with Includes. */
function walk(
  directives: readonly SshConfigDirective[],
  host: string,
  st: { active: boolean },
  neverMatch: boolean,
  depth: number,
  out: Collected,
  source: ConfigSource,
  local: LocalContext,
): void {
  for (const d of directives) {
    const where = `${d.file} line ${d.line}`;
    switch (d.keyword) {
      case 'host':
        st.active = !neverMatch && matchPatternList(host, d.args);
        break;
      case 'match':
        if (d.args.length === 1 && d.args[0].toLowerCase() === 'all') {
          st.active = !neverMatch;
        } else {
          // Other criteria (host, user, exec, ...) are not implemented: skip the block rather than guess.
          st.active = false;
          out.warnings.push(`${where}: "Match ${d.args.join(' ')}" is not supported; its block was skipped`);
        }
        break;
      case 'include': {
        if (depth >= MAX_INCLUDE_DEPTH) throw new SshConfigSyntaxError(`${where}: Include nested too deeply`);
        // An Include in an inactive block can never take effect (readconf.c passes SSHCONF_NEVERMATCH).
        if (!st.active || neverMatch) break;
        for (const arg of d.args) {
          const pattern = arg.startsWith('~') ? expandTilde(arg, local, where) : arg.startsWith('/') ? arg : `${local.home}/.ssh/${arg}`;
          for (const file of source.glob(pattern)) {
            const text = source.read(file);
            if (text === undefined) continue;
            walk(parseCached(text, file), host, st, false, depth + 1, out, source, local);
            st.active = true; // restore: we only get here from an active context
          }
        }
        break;
      }
      case 'hostname':
        if (st.active && out.hostname === undefined) out.hostname = single(d);
        break;
      case 'user':
        if (st.active && out.user === undefined) out.user = single(d);
        break;
      case 'port': {
        const port = parsePort(single(d), where); // ssh validates even in inactive blocks
        if (st.active && out.port === undefined) out.port = port;
        break;
      }
      case 'identityfile': {
        const file = single(d);
        if (st.active && !out.identityFiles.slice(out.cliIdentityCount).includes(file)) out.identityFiles.push(file);
        break;
      }
      case 'proxyjump':
      case 'proxycommand':
        // The two are exclusive: whichever is obtained first wins, including `none`.
        if (st.active && out.proxy === undefined) out.proxy = { kind: d.keyword === 'proxyjump' ? 'jump' : 'command', value: d.args.join(' ') };
        break;
      default:
        break; // everything else is outside the subset we honour
    }
  }
}

/** Characters ssh refuses in a host name (ssh.c "hostname contains invalid characters"), plus whitespace. */
const BAD_HOST = /[\s'"`$\\;&<>|(){}\x00-\x1f\x7f]|^-/;

/** Resolves the effective settings for `host` from a config file (may be absent) and command-line values. */
export function resolveSshConfig(
  host: string,
  opts: { configFile?: string; source: ConfigSource; local: LocalContext; cli?: CommandLineOptions },
): ResolvedSshConfig {
  const { source, local, cli = {} } = opts;
  if (host === '' || BAD_HOST.test(host)) throw new SshConfigSyntaxError(`host "${host}" contains invalid characters`);
  const out: Collected = { identityFiles: [], cliIdentityCount: 0, warnings: [] };
  // Command-line values are "obtained" first, so file values for the same keywords never take effect.
  if (cli.user !== undefined) out.user = cli.user;
  if (cli.port !== undefined) out.port = cli.port;
  if (cli.proxyJump !== undefined) out.proxy = { kind: 'jump', value: cli.proxyJump };
  for (const f of cli.identityFiles ?? []) if (!out.identityFiles.includes(f)) out.identityFiles.push(f);
  out.cliIdentityCount = out.identityFiles.length;

  const text = opts.configFile === undefined ? undefined : source.read(opts.configFile);
  if (text !== undefined && opts.configFile !== undefined) {
    walk(parseCached(text, opts.configFile), host, { active: true }, false, 0, out, source, local);
  }

  // HostName knows only %h and %% (ssh.c); anything else is an error there too.
  const hostname = (out.hostname ?? host)
    .replace(/%(.?)/g, (_m, c: string) => {
      if (c === '%') return '%';
      if (c === 'h') return host;
      throw new SshConfigSyntaxError(`HostName ${out.hostname ?? ''}: unknown token "%${c}"`);
    })
    .toLowerCase();
  if (hostname === '' || BAD_HOST.test(hostname)) throw new SshConfigSyntaxError(`hostname "${hostname}" (for ${host}) contains invalid characters`);
  const user = out.user ?? local.user;
  const port = out.port ?? 22;
  const tokens: ExpansionTokens = { h: hostname, r: user, p: port, n: host };
  const proxy = out.proxy && out.proxy.value.toLowerCase() !== 'none' ? out.proxy : undefined;
  return {
    host,
    hostname,
    port,
    user,
    identityFiles: out.identityFiles.map((f) => expandPath(f, tokens, local)),
    rawIdentityFiles: [...out.identityFiles],
    ...(proxy?.kind === 'jump' ? { proxyJump: proxy.value } : {}),
    ...(proxy?.kind === 'command' ? { proxyCommand: proxy.value } : {}),
    warnings: out.warnings,
  };
}
