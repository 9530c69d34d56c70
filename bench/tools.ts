import { existsSync } from 'node:fs';
import { run } from './proc';

/** The peers of figure 1, from Debian packages. */
export const PEERS = { pssh: { bin: '/usr/bin/parallel-ssh', pkg: 'pssh' }, ansible: { bin: '/usr/bin/ansible', pkg: 'ansible-core' } } as const;
export type Peer = keyof typeof PEERS;

/**
 * Installs the missing peers with apt (the only network the bench uses). Resolves with, per peer,
 * undefined when it is there, else why it is not (the figure is then reported as not measured).
 */
export async function ensurePeers(log: (line: string) => void): Promise<Record<Peer, string | undefined>> {
  const missing = (Object.keys(PEERS) as Peer[]).filter((p) => !existsSync(PEERS[p].bin));
  const why: Record<Peer, string | undefined> = { pssh: undefined, ansible: undefined };
  if (missing.length === 0) return why;
  if (process.getuid?.() !== 0) {
    for (const p of missing) why[p] = `${PEERS[p].pkg} is not installed and the bench is not root (apt-get install ${PEERS[p].pkg})`;
    return why;
  }
  log(`installing ${missing.map((p) => PEERS[p].pkg).join(', ')} with apt-get`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  const update = await run('apt-get', ['update', '-qq'], env);
  if (update.code !== 0) log(`apt-get update failed (${update.code}); trying the install anyway`);
  for (const p of missing) {
    const r = await run('apt-get', ['install', '-y', '-qq', PEERS[p].pkg], env);
    if (r.code !== 0 || !existsSync(PEERS[p].bin)) why[p] = `apt-get install ${PEERS[p].pkg} failed: ${r.out.trim().split('\n').pop() ?? `exit ${r.code}`}`;
  }
  return why;
}
