import fs from 'node:fs';
import path from 'node:path';
import { matchPattern } from './pattern';
import { SshConfigSyntaxError, type ConfigSource } from './sshConfig';

/**
 * The real-filesystem ConfigSource for ssh_config: reads files (refusing ones others could have
 * written, as ssh does) and expands Include globs.
 */

/** Like OpenSSH's secure_permissions(): owned by us or root, not writable by group or others. */
function assertPrivate(file: string, st: fs.Stats): void {
  const uid = process.getuid?.();
  if ((uid !== undefined && st.uid !== uid && st.uid !== 0) || (st.mode & 0o022) !== 0) {
    throw new SshConfigSyntaxError(`bad owner or permissions on ${file}: it must belong to you (or root) and not be writable by others (chmod go-w)`);
  }
}

function read(file: string): string | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  if (!st.isFile()) return undefined;
  assertPrivate(file, st);
  return fs.readFileSync(file, 'utf8');
}

const WILD = /[*?[]/;

/** One path segment against a glob segment: `*`, `?` and `[...]` classes; dot files need an explicit dot. */
function segmentMatches(name: string, glob: string): boolean {
  if (name.startsWith('.') && !glob.startsWith('.')) return false;
  if (!glob.includes('[')) return matchPattern(name, glob);
  // Rare: translate the segment to an anchored regex, escaping everything but the wildcards.
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        let body = glob.slice(i + 1, end).replace(/\\/g, '\\\\');
        if (body.startsWith('!')) body = `^${body.slice(1)}`;
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`^${re}$`).test(name);
}

/** Expands an absolute glob one segment at a time; results are sorted like glob(3). */
function glob(pattern: string): string[] {
  const parts = pattern.split('/').filter((p) => p !== '');
  let found = ['/'];
  for (const part of parts) {
    const next: string[] = [];
    for (const dir of found) {
      if (!WILD.test(part)) {
        const p = path.join(dir, part);
        if (fs.existsSync(p)) next.push(p);
        continue;
      }
      let names: string[];
      try {
        names = fs.readdirSync(dir);
      } catch {
        continue;
      }
      for (const n of names.sort()) if (segmentMatches(n, part)) next.push(path.join(dir, n));
    }
    found = next;
  }
  return found.sort();
}

export const fileConfigSource: ConfigSource = { read, glob };
