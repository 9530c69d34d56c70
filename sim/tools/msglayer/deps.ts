import { readFileSync } from 'node:fs';
import { bootedKernelIdentity, kernelImage } from '../../fragvisor/identity';
import type { WorldNode } from '../types';

/**
 * What the messaging layer needs from the kernel imitation (sim/fragvisor). The defaults read it;
 * tests inject their own through `setMsgLayerDeps` (or `register(registry, deps)`).
 */
export interface BootedKernel {
  release: string;
  /** Built from FragVisor's tree: exports the Popcorn symbols msg_rdma.ko links against. */
  fragvisor: boolean;
  /** Built with CONFIG_POPCORN_ORIGIN_NODE; undefined = unknown, and the origin checks are skipped. */
  origin?: boolean;
}

export interface MsgLayerDeps {
  /** The kernel `node` runs now. */
  bootedKernel(node: WorldNode): BootedKernel;
  /** The release the kernel tree at `treeDir` (node path) is configured for; undefined when it was never prepared. */
  treeRelease(node: WorldNode, treeDir: string): string | undefined;
  /**
   * Real-time floor (ms) of the 60 s connection windows. They wait for the operator's next insmod
   * over SSH, which no time scale speeds up: at timeScale 0 a zero-length window would make the
   * layer impossible to bring up. Env AE_SIM_MSG_WINDOW_FLOOR_MS overrides the default.
   */
  windowFloorMs: number;
}

function envFloor(): number | undefined {
  const v = Number(process.env.AE_SIM_MSG_WINDOW_FLOOR_MS);
  return process.env.AE_SIM_MSG_WINDOW_FLOOR_MS && Number.isFinite(v) && v >= 0 ? v : undefined;
}

export const defaultDeps: MsgLayerDeps = {
  bootedKernel: (node) => {
    const id = bootedKernelIdentity(node);
    return { release: id.release, fragvisor: id.fragvisor, origin: id.origin };
  },
  // What kbuild itself reads (`make prepare` writes include/config/kernel.release); else the release
  // of the tree's built image.
  treeRelease: (node, treeDir) => {
    try {
      const release = readFileSync(node.hostPath(`${treeDir}/include/config/kernel.release`), 'utf8').trim();
      if (release) return release;
    } catch {
      // not prepared by a kbuild that writes it
    }
    return kernelImage(node, `${treeDir}/arch/x86/boot/bzImage`)?.release;
  },
  windowFloorMs: envFloor() ?? 10_000,
};

let current: MsgLayerDeps = defaultDeps;

export function msgLayerDeps(): MsgLayerDeps {
  return current;
}

/** Replaces some dependencies (the rest keep their current value); returns the previous set, for tests. */
export function setMsgLayerDeps(deps: Partial<MsgLayerDeps>): MsgLayerDeps {
  const previous = current;
  current = { ...current, ...deps };
  return previous;
}
