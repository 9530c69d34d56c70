import { chownSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { WorldNode } from '../types';

/**
 * kvmtool's IPC sockets in /root/.lkvm/ (one per VM, on every node of the VM). A VM that dies
 * leaves them behind, and kvmtool refuses to start while one exists: the orchestrator must remove
 * them on every node before a launch (ARTIFACT.md step 4).
 */

export const LKVM_DIR = '/root/.lkvm';

/** Node paths of the sockets in /root/.lkvm on `node`. */
export function lkvmSockets(node: WorldNode): string[] {
  try {
    return readdirSync(node.hostPath(LKVM_DIR))
      .filter((f) => f.endsWith('.sock'))
      .sort()
      .map((f) => `${LKVM_DIR}/${f}`);
  } catch {
    return [];
  }
}

/** Leaves `<name>.sock` in /root/.lkvm on `node`, owned like the node's /root (the node user can remove it). */
export function createLkvmSocket(node: WorldNode, name: string): void {
  const root = node.hostPath('/root');
  const dir = node.hostPath(LKVM_DIR);
  const owner = statSync(root);
  if (!existsSync(dir)) {
    mkdirSync(dir, { mode: 0o755 });
    chownSync(dir, owner.uid, owner.gid);
  }
  const file = path.join(dir, `${name}.sock`);
  writeFileSync(file, '');
  chownSync(file, owner.uid, owner.gid);
}
