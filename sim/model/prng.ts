/**
 * Seeded noise without hidden state: every draw is a pure function of (seed, key), so a value does
 * not depend on how many other values were drawn before it, only on its own stable key (for example
 * `php#17`). The same seed and the same request sequence give identical numbers.
 */

/** FNV-1a over the UTF-16 code units: a stable 32-bit hash of the key. */
function fnv1a(key: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** splitmix32's finaliser: spreads nearby inputs (seed 1 vs 2) over the whole 32-bit range. */
function mix32(x: number): number {
  let z = (x + 0x9e3779b9) | 0;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** Uniform in [0, 1) for this seed and key. */
export function uniform(seed: number, key: string): number {
  return mix32(fnv1a(key) ^ mix32(seed | 0)) / 2 ** 32;
}

/** `value` scaled by a factor uniform in [1 - noise, 1 + noise]. */
export function withNoise(value: number, noise: number, seed: number, key: string): number {
  if (noise === 0) return value;
  return value * (1 + noise * (2 * uniform(seed, key) - 1));
}
