import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { WorldNode } from '../tools/types';
import { TREE_MARKER, type Flavour } from './content';

/**
 * Reading a simulated kernel tree on a node: which tree it is (its Makefile's marker line), the
 * release it builds, its debug.h knobs and .config, and its git HEAD. Pure file reads through the
 * node's symlink-safe host paths: nothing from a node's tree is ever executed on the host.
 */

export interface KernelTree {
  /** Node path of the source tree. */
  dir: string;
  flavour: Flavour;
  /** VERSION.PATCHLEVEL.SUBLEVEL + EXTRAVERSION. */
  kernelVersion: string;
  /** The Makefile's LOCALVERSION (a command-line LOCALVERSION overrides it). */
  localversion: string;
}

function read(node: WorldNode, nodePath: string): string | undefined {
  try {
    return readFileSync(node.hostPath(nodePath), 'utf8');
  } catch {
    return undefined;
  }
}

/** The kernel tree at `dir`, or undefined when `dir` is not one of the simulated trees. */
export function detectTree(node: WorldNode, dir: string): KernelTree | undefined {
  const makefile = read(node, path.posix.join(dir, 'Makefile'));
  if (makefile === undefined) return undefined;
  const marker = new RegExp(`^#\\s*${TREE_MARKER}\\s*(fragvisor|giantvm)\\s*$`, 'm').exec(makefile);
  if (!marker) return undefined;
  const v = (name: string) => new RegExp(`^${name}\\s*[:?]?=[ \\t]*(.*)$`, 'm').exec(makefile)?.[1].trim() ?? '';
  return {
    dir,
    flavour: marker[1] as Flavour,
    kernelVersion: `${v('VERSION')}.${v('PATCHLEVEL')}.${v('SUBLEVEL')}${v('EXTRAVERSION')}`,
    localversion: v('LOCALVERSION'),
  };
}

/** `CONFIG_X=y` lines (and `# CONFIG_X is not set` as `n`). */
export function parseConfig(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const set = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (set) out[set[1]] = set[2].replace(/^"(.*)"$/, '$1');
    const unset = /^# (CONFIG_[A-Za-z0-9_]+) is not set$/.exec(line);
    if (unset) out[unset[1]] = 'n';
  }
  return out;
}

/** The C preprocessor's view of debug.h, as far as the knobs go: comments dropped, defines read. */
export function parseDebugH(text: string): { origin: boolean; knobs: Record<string, number> } {
  const code = text.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/\/\/[^\n]*/g, '');
  const knobs: Record<string, number> = {};
  let origin = false;
  for (const line of code.split('\n')) {
    const d = /^\s*#\s*define\s+([A-Za-z_][A-Za-z0-9_]*)(?:\s+(\S+))?\s*$/.exec(line);
    if (d) {
      if (d[1] === 'CONFIG_POPCORN_ORIGIN_NODE') origin = true;
      else if (d[2] !== undefined && /^-?\d+$/.test(d[2])) knobs[d[1]] = Number(d[2]);
    }
    const u = /^\s*#\s*undef\s+([A-Za-z_][A-Za-z0-9_]*)/.exec(line);
    if (u?.[1] === 'CONFIG_POPCORN_ORIGIN_NODE') origin = false;
  }
  return { origin, knobs };
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** The release a build of `tree` with `config` reports (`uname -r`), as kbuild composes it. */
export function releaseOf(tree: KernelTree, config: Record<string, string>, cmdLocalversion?: string): string {
  return `${tree.kernelVersion}${config.CONFIG_LOCALVERSION ?? ''}${cmdLocalversion ?? tree.localversion}`;
}

const SHA = /^[0-9a-f]{40}$/;

/** `git rev-parse HEAD` of the checkout at `dir`, read from its files (never by running git). */
export function gitHead(node: WorldNode, dir: string): string | undefined {
  let gitDir = path.posix.join(dir, '.git');
  const asFile = read(node, gitDir);
  if (asFile !== undefined) {
    // A worktree or absorbed submodule: `.git` is a file naming the real git dir.
    const m = /^gitdir:\s*(.+)$/m.exec(asFile);
    if (!m) return undefined;
    gitDir = path.posix.resolve(dir, m[1].trim());
  }
  const head = read(node, path.posix.join(gitDir, 'HEAD'))?.trim();
  if (!head) return undefined;
  if (SHA.test(head)) return head;
  const ref = /^ref:\s*(\S+)$/.exec(head)?.[1];
  if (!ref || ref.includes('..')) return undefined;
  const common = read(node, path.posix.join(gitDir, 'commondir'))?.trim();
  const refDirs = common ? [gitDir, path.posix.resolve(gitDir, common)] : [gitDir];
  for (const d of refDirs) {
    const loose = read(node, path.posix.join(d, ref))?.trim();
    if (loose && SHA.test(loose)) return loose;
    const packed = read(node, path.posix.join(d, 'packed-refs'));
    const line = packed?.split('\n').find((l) => l.endsWith(` ${ref}`));
    const sha = line?.split(' ')[0];
    if (sha && SHA.test(sha)) return sha;
  }
  return undefined;
}
