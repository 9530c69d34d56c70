import { lstatSync, readlinkSync } from 'node:fs';
import path from 'node:path';

/**
 * Node paths -> host paths for one simulated node. Only the node's own directories map (what the
 * holder mounts over the host's /home, /root, /tmp, /var/tmp, /dev/shm, and the node state under
 * /home/.ae-sim/state); the rest of the node's view is the host's own files, read-only, which no
 * handler may write. Symlinks are followed as the NODE sees them (an absolute link target is a node
 * path), so that a link in a node's home can never lead a handler, running as root on the host,
 * to a host file.
 */

export interface NodeMounts {
  /** Host directory holding home/, root/, tmp/, var-tmp/, dev-shm/. */
  fsDir: string;
  /** Host path of the node state dir (/home/.ae-sim/state inside). */
  stateDir: string;
}

const MAX_LINKS = 40;

/** Read-only mounts inside /home: never a write target. */
const READ_ONLY = ['/home/.ae-sim/bin', '/home/.ae-sim/tools'];

function mapped(m: NodeMounts, p: string): string | undefined {
  const under = (root: string) => p === root || p.startsWith(`${root}/`);
  if (READ_ONLY.some(under)) return undefined;
  if (under('/home/.ae-sim/state')) return path.join(m.stateDir, p.slice('/home/.ae-sim/state'.length));
  const roots: [string, string][] = [
    ['/home', 'home'],
    ['/root', 'root'],
    ['/tmp', 'tmp'],
    ['/var/tmp', 'var-tmp'],
    ['/dev/shm', 'dev-shm'],
  ];
  for (const [root, dir] of roots) if (under(root)) return path.join(m.fsDir, dir, p.slice(root.length));
  return undefined;
}

/** Directories above the mapped roots: traversed, never mapped themselves. */
const ANCESTORS = new Set(['/', '/var', '/dev', '/home/.ae-sim']);

export class ReadOnlyPathError extends Error {
  override readonly name = 'ReadOnlyPathError';
}

/**
 * The host path of `nodePath` (absolute, inside the node), following the node's symlinks; throws a
 * ReadOnlyPathError for a path that is not the node's own.
 */
export function toHostPath(m: NodeMounts, nodeName: string, nodePath: string): string {
  if (!nodePath.startsWith('/')) throw new Error(`expected an absolute node path, got ${JSON.stringify(nodePath)}`);
  const readOnly = () =>
    new ReadOnlyPathError(`${nodePath}: read-only file system on simulated node ${nodeName} (its own directories are /home, /root, /tmp, /var/tmp and /dev/shm)`);
  let pending = path.posix.normalize(nodePath).split('/').filter(Boolean);
  let current = '/';
  let links = 0;
  while (pending.length > 0) {
    const name = pending.shift()!;
    const next = path.posix.join(current, name);
    if (ANCESTORS.has(next)) {
      current = next;
      continue;
    }
    const host = mapped(m, next);
    if (host === undefined) throw readOnly();
    let link: string | undefined;
    try {
      if (lstatSync(host).isSymbolicLink()) link = readlinkSync(host);
    } catch {
      // does not exist (yet): the rest is taken as it is
      return path.join(host, ...pending);
    }
    if (link === undefined) {
      current = next;
      continue;
    }
    if (++links > MAX_LINKS) throw new Error(`${nodePath}: too many levels of symbolic links`);
    const target = link.startsWith('/') ? link : path.posix.join(current, link);
    pending = [...path.posix.normalize(target).split('/').filter(Boolean), ...pending];
    current = '/';
  }
  const host = mapped(m, current);
  if (host === undefined) throw readOnly();
  return host;
}
