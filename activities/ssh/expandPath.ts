import { SshConfigSyntaxError } from './errors';
import type { LocalContext } from './sshConfig';

/** `~`, `%` and `${ENV}` expansion of ssh_config paths, as ssh's tilde_expand + percent_dollar_expand. */

/** `~` and `~/...` become the local home; `~user` is refused rather than guessed. */
export function expandTilde(path: string, local: LocalContext, where: string): string {
  if (path === '~') return local.home;
  if (path.startsWith('~/')) return `${local.home}${path.slice(1)}`;
  throw new SshConfigSyntaxError(`${where}: "~user/" paths are not supported (${path})`);
}

export interface ExpansionTokens {
  /** Remote host name (after HostName). */
  h: string;
  /** Remote user. */
  r: string;
  /** Remote port. */
  p: number;
  /** Host as originally given. */
  n: string;
}

/**
 * Expands an IdentityFile path: a leading `~`, `%` tokens (%% %d %h %i %L %l %n %p %r %u) and `${ENV}`,
 * as ssh's percent_dollar_expand(). Unknown tokens or unset variables are errors, as in ssh.
 */
export function expandPath(template: string, t: ExpansionTokens, local: LocalContext): string {
  const where = `IdentityFile ${template}`;
  const s = template.startsWith('~') ? expandTilde(template, local, where) : template;
  const localHost = local.hostname ?? '';
  const tokens: Record<string, string | undefined> = {
    '%': '%',
    d: local.home,
    h: t.h,
    i: local.uid === undefined ? undefined : String(local.uid),
    L: localHost.split('.')[0],
    l: localHost,
    n: t.n,
    p: String(t.p),
    r: t.r,
    u: local.user,
  };
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '%') {
      const v = tokens[s[i + 1] ?? ''];
      if (v === undefined) throw new SshConfigSyntaxError(`${where}: unknown or unavailable token "%${s[i + 1] ?? ''}"`);
      out += v;
      i++;
    } else if (c === '$' && s[i + 1] === '{') {
      const end = s.indexOf('}', i + 2);
      const name = end < 0 ? '' : s.slice(i + 2, end);
      const value = /^[A-Za-z_][A-Za-z0-9_]*$/.test(name) ? local.env?.[name] : undefined;
      if (value === undefined) throw new SshConfigSyntaxError(`${where}: environment variable "${name}" is not set or not a valid name`);
      out += value;
      i = end;
    } else {
      out += c;
    }
  }
  return out;
}
