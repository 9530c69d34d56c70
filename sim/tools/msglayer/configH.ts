/**
 * msg_layer/config.h: the node list the messaging layer is compiled with. The artifact's format
 * (systems-nuts/fragvisor-linux msg_layer/config.h, fragvisor-kvmtool kernel_scripts/config*.h):
 *
 *   const char *ip_addresses[] = {
 *   	/* Node 0 *\/ "10.4.6.15",
 *   	/* Node 1 *\/ "10.4.6.14",
 *   	/*   ...  *\/
 *   };
 *
 * Operators comment entries out (`//`, `/* *\/`, `#if 0`), so parsing drops comments and `#if 0`
 * blocks the way the C preprocessor would, then takes the string literals of the initializer.
 */

export class ConfigHError extends Error {
  override readonly name = 'ConfigHError';
}

/** Removes comments (keeping string literals intact) and lines inside `#if 0` blocks. */
function preprocess(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; ) {
    const two = text.slice(i, i + 2);
    if (two === '/*') {
      const end = text.indexOf('*/', i + 2);
      const comment = end < 0 ? text.slice(i) : text.slice(i, end + 2);
      out += comment.replace(/[^\n]/g, ' '); // keep line numbers for error messages
      i += comment.length;
    } else if (two === '//') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (text[i] === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"' && text[j] !== '\n') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else {
      out += text[i++];
    }
  }
  const lines = out.split('\n');
  let depth = 0; // nesting inside an `#if 0`
  return lines
    .map((line) => {
      const d = /^\s*#\s*(\w+)\s*(.*)$/.exec(line);
      if (d && depth > 0) {
        if (d[1].startsWith('if')) depth++;
        else if (d[1] === 'endif' || (depth === 1 && (d[1] === 'else' || d[1] === 'elif'))) depth--;
        return '';
      }
      if (d && d[1] === 'if' && d[2].trim() === '0') {
        depth = 1;
        return '';
      }
      return depth > 0 ? '' : line;
    })
    .join('\n');
}

/** The raw strings of `ip_addresses[]`, in order (node id = index). Throws ConfigHError like a compile error would. */
export function parseConfigH(text: string): string[] {
  const src = preprocess(text);
  const m = /\bip_addresses\s*\[\s*\d*\s*\]\s*=\s*\{([^}]*)\}\s*;/.exec(src);
  if (!m) throw new ConfigHError("'ip_addresses' undeclared (config.h has no `const char *ip_addresses[] = { ... };`)");
  const ips: string[] = [];
  const rest = m[1].replace(/"((?:[^"\\\n]|\\.)*)"/g, (_all, s: string) => {
    ips.push(s);
    return ',';
  });
  const junk = rest.replace(/[\s,]/g, '');
  if (junk) throw new ConfigHError(`expected string literals in ip_addresses[], found "${junk.slice(0, 40)}"`);
  return ips;
}

/**
 * The kernel's in_aton(): what the module makes of each string, byte by byte (no validation: a
 * typo becomes some other address, as on the real cluster). Returns the dotted quad `%pI4` prints.
 */
export function inAton(str: string): string {
  let l = 0;
  let p = 0;
  for (let i = 0; i < 4; i++) {
    l = (l << 8) >>> 0;
    if (p < str.length) {
      let val = 0;
      while (p < str.length && str[p] !== '.' && str[p] !== '\n') {
        val = (Math.imul(val, 10) + (str.charCodeAt(p) - 48)) >>> 0;
        p++;
      }
      l = (l | val) >>> 0;
      if (p < str.length) p++;
    }
  }
  return [l >>> 24, (l >>> 16) & 255, (l >>> 8) & 255, l & 255].join('.');
}
