/**
 * Remembers the last few results of a pure parser, by its (string) arguments. A pool opens one
 * connection per node and each connect re-reads the same ssh_config and known_hosts: parsing a file
 * with a block per node once per node is quadratic (64 nodes: 45,000 ssh_config lines per fan-out).
 * Keyed by the text itself, so an edited file is parsed afresh. Callers must not mutate the result.
 */
export function memoizeByText<A extends string[], R>(parse: (...args: A) => R, size = 4): (...args: A) => R {
  const cache = new Map<string, R>();
  return (...args: A): R => {
    const key = args.map((a) => `${a.length}:${a}`).join(''); // length-prefixed: no two argument lists collide
    if (cache.has(key)) {
      const hit = cache.get(key) as R;
      cache.delete(key); // most recently used last
      cache.set(key, hit);
      return hit;
    }
    const result = parse(...args);
    cache.set(key, result);
    if (cache.size > size) cache.delete(cache.keys().next().value as string);
    return result;
  };
}
