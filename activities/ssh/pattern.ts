/**
 * OpenSSH's host patterns (match.c): `*` is any run of characters, `?` exactly one, everything else is
 * literal. Shared by ssh_config `Host` lines and known_hosts host fields.
 */

/** True when `text` matches the whole `pattern`. Case-sensitive, like OpenSSH's match_pattern(). */
export function matchPattern(text: string, pattern: string): boolean {
  // Iterative wildcard match with one backtrack point: linear-ish, no regex built from config text.
  let t = 0;
  let p = 0;
  let starP = -1;
  let starT = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] === '*') {
      starP = p++;
      starT = t;
    } else if (p < pattern.length && (pattern[p] === '?' || pattern[p] === text[t])) {
      t++;
      p++;
    } else if (starP >= 0) {
      p = starP + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p++;
  return p === pattern.length;
}

/**
 * A list of patterns, some negated with `!`: matches when some positive pattern matches and no negated
 * one does (a negated match vetoes the whole list, as in OpenSSH).
 */
export function matchPatternList(text: string, patterns: readonly string[]): boolean {
  let matched = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    if (matchPattern(text, negated ? raw.slice(1) : raw)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}
