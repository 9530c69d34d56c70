/** Durations on the command line: `7d`, `12h`, `1d12h`, `90s`, `2w`; a bare number is seconds. */

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const DURATION = /^(?:\d+(?:\.\d+)?[smhdw])+$/;

/** Milliseconds, or an Error saying what is expected. */
export function parseDuration(text: string): number | Error {
  const s = text.trim().toLowerCase();
  if (/^\d+(?:\.\d+)?$/.test(s)) return Number(s) * 1000;
  if (!DURATION.test(s)) return new Error(`expected a duration like 7d, 12h, 1d12h, 30m or 90s (units s m h d w), got ${JSON.stringify(text)}`);
  let ms = 0;
  for (const [, n, unit] of s.matchAll(/(\d+(?:\.\d+)?)([smhdw])/g)) ms += Number(n) * UNIT_MS[unit];
  return Math.round(ms);
}

/** The shortest exact spelling of whole seconds: 604800000 -> `7d`, 129600000 -> `1d12h`. */
export function formatInterval(ms: number): string {
  let rest = Math.round(ms / 1000);
  if (rest === 0) return '0s';
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400], ['h', 3_600], ['m', 60], ['s', 1]] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  return parts.join('');
}
