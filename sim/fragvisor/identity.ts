import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { writeFileAtomic } from '../state';
import type { WorldNode } from '../tools/types';
import { asSimWorldNode } from '../world';

/**
 * What a simulated kernel image is: the content of every bzImage the make imitation writes, and what
 * the tools that care (msg layer, lkvm) read to know which kernel a node booted and with which
 * origin flag. A JSON text that says SIMULATED.
 *
 * The booted kernel follows the real chain: `make install` copies the image to /boot/vmlinuz-<release>
 * (here: the node's private `boot/` dir), and a boot loads the image of the release it boots.
 * Installing the same release again changes what the NEXT boot runs, not the running kernel.
 */

export interface KernelIdentity {
  simulated: true;
  notice: string;
  /** 'fragvisor' (fragvisor-linux), 'giantvm' (Linux-DSM), 'stock' (the distribution's kernel). */
  flavour: 'fragvisor' | 'giantvm' | 'stock';
  /** `uname -r`. */
  release: string;
  /** Built from fragvisor-linux: exports what msg_rdma.ko links against. */
  fragvisor: boolean;
  /** Built with CONFIG_POPCORN_ORIGIN_NODE defined (FragVisor only; undefined otherwise). */
  origin?: boolean;
  /** POPHYPE_HOST_KERNEL: true = a host kernel, false = a guest kernel (FragVisor only). */
  hostKernel?: boolean;
  /** The other debug.h knobs as numbers (FragVisor only). */
  knobs?: Record<string, number>;
  /** `git rev-parse HEAD` of the source tree (undefined when it is not a git checkout). */
  sourceCommit?: string;
  /** Node path of the source tree and of the build output. */
  sourceTree?: string;
  outputDir?: string;
  /** sha256 of the .config used. */
  configSha256?: string;
  /** Config options the orchestrator flips (y/m/n). */
  config?: Record<string, string>;
  /** kbuild's build number (`#N`) and where and when it was built. */
  build?: number;
  builtOn?: string;
  builtAt?: string;
}

export const NOTICE = 'SIMULATED kernel image written by the fragvisor-ae simulator: nothing was compiled and nothing here boots';

/** The image's content, as written to arch/x86/boot/bzImage. */
export function renderIdentity(id: KernelIdentity): string {
  return `${JSON.stringify(id, null, 2)}\n`;
}

/** The identity in an image file's text; undefined when it is not a simulated kernel image. */
export function parseIdentity(text: string): KernelIdentity | undefined {
  try {
    const raw = JSON.parse(text) as Partial<KernelIdentity>;
    if (raw.simulated !== true || typeof raw.release !== 'string' || typeof raw.flavour !== 'string') return undefined;
    return raw as KernelIdentity;
  } catch {
    return undefined;
  }
}

/** The identity of the image at `nodePath` on `node` (e.g. a guest bzImage lkvm is given). */
export function kernelImage(node: WorldNode, nodePath: string): KernelIdentity | undefined {
  try {
    return parseIdentity(readFileSync(node.hostPath(nodePath), 'utf8'));
  } catch {
    return undefined;
  }
}

/** The kernel a node boots when it has not booted one of ours: the distribution's. */
export function stockIdentity(release: string): KernelIdentity {
  return { simulated: true, notice: NOTICE, flavour: 'stock', release, fragvisor: false };
}

const bootDir = (privateDir: string) => path.join(privateDir, 'boot');
const SAFE_RELEASE = /^[A-Za-z0-9][A-Za-z0-9._+~-]{0,63}$/;

/** `make install`: the image of `release` that the node's next boot of that release loads. */
export function recordInstalledImage(node: WorldNode, id: KernelIdentity): void {
  const sim = asSimWorldNode(node);
  if (!sim || !SAFE_RELEASE.test(id.release)) return;
  mkdirSync(bootDir(sim.privateDir), { recursive: true });
  writeFileAtomic(path.join(bootDir(sim.privateDir), `vmlinuz-${id.release}.json`), renderIdentity(id));
}

/** `make modules_install`: remembered per release, for messages and tests. */
export function recordModulesInstalled(node: WorldNode, release: string): void {
  const sim = asSimWorldNode(node);
  if (!sim || !SAFE_RELEASE.test(release)) return;
  mkdirSync(bootDir(sim.privateDir), { recursive: true });
  writeFileSync(path.join(bootDir(sim.privateDir), `modules-${release}`), `${new Date().toISOString()}\n`);
}

export function modulesInstalled(node: WorldNode, release: string): boolean {
  const sim = asSimWorldNode(node);
  return !!sim && SAFE_RELEASE.test(release) && existsSync(path.join(bootDir(sim.privateDir), `modules-${release}`));
}

/**
 * At every boot: the booted kernel is the installed image of the release the node came up with
 * (none installed: the stock kernel of that release). Kept with the boot id, so that a restarted
 * simulator (same boot) keeps it.
 */
export function loadBootedImage(node: WorldNode): void {
  const sim = asSimWorldNode(node);
  if (!sim) return;
  const release = node.kernelRelease;
  const dir = bootDir(sim.privateDir);
  let id: KernelIdentity | undefined;
  const image = path.join(dir, `vmlinuz-${release}.json`);
  if (SAFE_RELEASE.test(release) && existsSync(image)) id = parseIdentity(readFileSync(image, 'utf8'));
  mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, 'booted.json'), `${JSON.stringify({ bootId: node.bootId, identity: id ?? stockIdentity(release) }, null, 2)}\n`);
}

/** Which kernel `node` booted, with which origin flag (the stock kernel when none of ours). */
export function bootedKernelIdentity(node: WorldNode): KernelIdentity {
  const sim = asSimWorldNode(node);
  if (!sim) return stockIdentity(node.kernelRelease);
  const file = path.join(bootDir(sim.privateDir), 'booted.json');
  try {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { bootId?: string; identity?: unknown };
    const id = parseIdentity(JSON.stringify(saved.identity));
    if (saved.bootId === node.bootId && id && id.release === node.kernelRelease) return id;
  } catch {
    // never recorded for this boot
  }
  return stockIdentity(node.kernelRelease);
}
