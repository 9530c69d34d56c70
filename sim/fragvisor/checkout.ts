import { execFileSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, lchownSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fragvisorFiles, fragvisorLinuxFiles, kvmtoolFiles, linuxDsmFiles, lkvmStandIn, ramdiskFiles, type FileMap } from './content';

/**
 * The FragVisor checkout every simulated node has (ARTIFACT.md): real git repositories with stand-in
 * files, committed by a fixed author at a fixed date, so that the same content always gives the
 * same commit hash (the orchestrator's step ledger keys kernel installs by source commit):
 *
 *   <fragvisor>                  FragVisor, with fragvisor-linux as a submodule (gitlink)
 *   <fragvisor>/fragvisor-linux  the kernel tree (its own repository)
 *   <dirname(fragvisor)>/linux-dsm   GiantVM's host kernel tree
 *   <kvmtool>                    fragvisor-kvmtool: Makefile, msg_pophype4node.sh, and lkvm as built
 *   <ramdisks>                   the guest ramdisks (markers)
 *
 * Generated once per simulator state dir (a template, with the host's git on files we wrote
 * ourselves), then copied into each node that lacks it, at its first start, owned by the node user;
 * kept across reboots and restarts. Git never runs on a node's copy from the host side (a node could
 * plant hooks in it).
 */

export interface CheckoutPaths {
  fragvisor: string;
  kernelTree: string;
  kvmtool: string;
  ramdisks: string;
}

/** Bump when the generated content changes: older templates are regenerated. */
const TEMPLATE_VERSION = 2;

const IDENTITY = {
  GIT_AUTHOR_NAME: 'FragVisor AE simulator',
  GIT_AUTHOR_EMAIL: 'ae-sim@fragvisor-ae.invalid',
  GIT_AUTHOR_DATE: '2021-04-19T12:00:00+0000',
  GIT_COMMITTER_NAME: 'FragVisor AE simulator',
  GIT_COMMITTER_EMAIL: 'ae-sim@fragvisor-ae.invalid',
  GIT_COMMITTER_DATE: '2021-04-19T12:00:00+0000',
};

/** GiantVM's tree sits next to the FragVisor checkout. */
export const giantvmTreeOf = (paths: CheckoutPaths): string => path.posix.join(path.posix.dirname(paths.fragvisor), 'linux-dsm');

function git(cwd: string, home: string, args: string[]): string {
  return execFileSync('git', ['-c', 'advice.addEmbeddedRepo=false', '-c', 'init.defaultBranch=master', '-c', 'commit.gpgSign=false', ...args], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, LANG: 'C', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', ...IDENTITY },
  }).trim();
}

function writeFiles(dir: string, files: FileMap): void {
  for (const [rel, spec] of Object.entries(files)) {
    const file = path.join(dir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, spec.content);
    chmodSync(file, spec.mode ?? 0o644);
  }
}

function repo(dir: string, home: string, files: FileMap, message: string): string {
  mkdirSync(dir, { recursive: true });
  writeFiles(dir, files);
  git(dir, home, ['init', '-q']);
  git(dir, home, ['add', '-A', '-f']);
  git(dir, home, ['commit', '-q', '-m', message]);
  return git(dir, home, ['rev-parse', 'HEAD']);
}

/** Where a node path lands in the template (the template mirrors the node's /home). */
const inTemplate = (root: string, nodePath: string) => path.join(root, nodePath);

/** Builds the template (once per content version); returns its root. */
export function checkoutTemplate(stateDir: string, paths: CheckoutPaths): string {
  const root = path.join(stateDir, 'checkout-template', `v${TEMPLATE_VERSION}`);
  if (existsSync(path.join(root, '.complete'))) return root;
  rmSync(path.join(stateDir, 'checkout-template'), { recursive: true, force: true });
  const tmp = `${root}.${process.pid}.tmp`;
  const home = path.join(tmp, '.git-home');
  mkdirSync(home, { recursive: true });
  const treeUnderFragvisor = paths.kernelTree.startsWith(`${paths.fragvisor}/`);
  // The kernel tree first: FragVisor records its commit as the submodule's.
  repo(inTemplate(tmp, paths.kernelTree), home, fragvisorLinuxFiles(), 'fragvisor-linux: Linux 4.4.137 with FragVisor (SIMULATED stand-in)');
  const fragvisor = inTemplate(tmp, paths.fragvisor);
  mkdirSync(fragvisor, { recursive: true });
  const top = fragvisorFiles();
  if (treeUnderFragvisor) {
    const sub = path.posix.relative(paths.fragvisor, paths.kernelTree);
    top['.gitmodules'] = { content: `[submodule "${sub}"]\n\tpath = ${sub}\n\turl = https://github.com/systems-nuts/fragvisor-linux.git\n` };
  } else delete top['.gitmodules'];
  repo(fragvisor, home, top, 'FragVisor artifact (SIMULATED stand-in)');
  if (treeUnderFragvisor) {
    // As after `git submodule update --init`: the submodule is registered and checked out.
    const sub = path.posix.relative(paths.fragvisor, paths.kernelTree);
    git(fragvisor, home, ['config', `submodule.${sub}.url`, 'https://github.com/systems-nuts/fragvisor-linux.git']);
    git(fragvisor, home, ['config', `submodule.${sub}.active`, 'true']);
  }
  repo(inTemplate(tmp, giantvmTreeOf(paths)), home, linuxDsmFiles(), 'linux-dsm: GiantVM Linux-DSM 4.8.10 (SIMULATED stand-in)');
  const kvmtool = inTemplate(tmp, paths.kvmtool);
  const kvmtoolCommit = repo(kvmtool, home, kvmtoolFiles(), 'fragvisor-kvmtool (SIMULATED stand-in)');
  // As after a `make`: lkvm is a build product, untracked (.gitignore), from the checked-out commit.
  writeFiles(kvmtool, { lkvm: { content: lkvmStandIn(kvmtoolCommit), mode: 0o755 } });
  writeFiles(inTemplate(tmp, paths.ramdisks), ramdiskFiles());
  rmSync(home, { recursive: true, force: true });
  writeFileSync(path.join(tmp, '.complete'), `${TEMPLATE_VERSION}\n`);
  renameSync(tmp, root);
  return root;
}

/** The top-level directories a node gets (node paths). */
export function checkoutRoots(paths: CheckoutPaths): string[] {
  const roots = [paths.fragvisor, giantvmTreeOf(paths), paths.kvmtool, paths.ramdisks];
  if (!paths.kernelTree.startsWith(`${paths.fragvisor}/`)) roots.push(paths.kernelTree);
  return roots;
}

function chownTree(p: string, uid: number, gid: number): void {
  lchownSync(p, uid, gid);
  let entries;
  try {
    entries = readdirSync(p, { withFileTypes: true });
  } catch {
    return; // not a directory
  }
  for (const e of entries) {
    const full = path.join(p, e.name);
    if (e.isDirectory()) chownTree(full, uid, gid);
    else lchownSync(full, uid, gid);
  }
}

export interface CheckoutTarget {
  name: string;
  /** Host path of a node path (symlink-safe). */
  hostPath(nodePath: string): string;
  /** Creates a node directory and its missing parents, owned by the node user. */
  mkdirs(nodeDir: string): void;
}

/**
 * Copies the checkout into every node that lacks a part of it. Returns the node names that got
 * something. `owner`: the node user (root mode), else files keep our own uid.
 */
export function ensureCheckouts(stateDir: string, paths: CheckoutPaths, nodes: readonly CheckoutTarget[], owner?: { uid: number; gid: number }): string[] {
  const missing = nodes.map((n) => ({ n, roots: checkoutRoots(paths).filter((r) => !existsSync(n.hostPath(r))) })).filter((x) => x.roots.length > 0);
  if (missing.length === 0) return [];
  const template = checkoutTemplate(stateDir, paths);
  for (const { n, roots } of missing) {
    for (const root of roots) {
      n.mkdirs(path.posix.dirname(root));
      const dest = n.hostPath(root);
      cpSync(inTemplate(template, root), dest, { recursive: true, preserveTimestamps: true, verbatimSymlinks: true });
      if (owner) chownTree(dest, owner.uid, owner.gid);
    }
  }
  return missing.map((x) => x.n.name);
}
