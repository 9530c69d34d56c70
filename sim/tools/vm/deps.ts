import { existsSync } from 'node:fs';
import path from 'node:path';
import { loadModel } from '../../model/load';
import { createModel, type SimModel } from '../../model/runtime';
import type { ModelSpec } from '../../model/schema';
import { msgLayerStatus } from '../msglayer/query';
import type { World, WorldNode } from '../types';

/**
 * What the VM tools need from the rest of the simulator. Injected (register(registry, deps) or
 * setVmDeps) so that this directory builds and tests on its own; the defaults below work with
 * today's tree, and say where they guess.
 */

/** A kernel as the kernel imitation (sim/fragvisor/) describes it. */
export interface KernelIdentity {
  /** 'fragvisor' (fragvisor-linux), 'giantvm' (Linux-DSM 4.8.10) or anything else (stock). */
  flavour: string;
  /** FragVisor's POPHYPE_HOST_KERNEL of the build: true = host kernel, false = guest kernel; undefined = unknown. */
  hostKernel?: boolean;
  /** `uname -r` of the build, for messages. */
  release?: string;
}

export interface MsgLayerView {
  /** Up among exactly the given nodes, in node order (node id i = nodes[i]). */
  ready: boolean;
  /** Why not (one line each), for lkvm's refusal. */
  problems: string[];
}

export interface VmDeps {
  /** The performance model the guests follow; default: config/models/$AE_SIM_MODEL (or default) with the world's seed and time scale. */
  model(world: World): SimModel;
  /** The simulator's state dir (sim.json, known_hosts, ssh_config, id_ed25519.pub; the guest's files go to DIR/guest). */
  stateDir(world: World): string;
  /** The messaging layer among exactly `nodes` (sim/tools/msglayer's msgLayerStatus). */
  msgLayer(world: World, nodes: readonly WorldNode[]): MsgLayerView;
  /** Identity of the kernel image at `nodePath` on `node` (a bzImage), undefined when there is none. */
  kernelImage(node: WorldNode, nodePath: string): KernelIdentity | undefined | Promise<KernelIdentity | undefined>;
  /** Identity of the kernel `node` runs now. */
  bootedKernel(node: WorldNode): KernelIdentity;
}

const specs = new Map<string, ModelSpec>();

function defaultModel(world: World): SimModel {
  const ref = process.env.AE_SIM_MODEL || 'default';
  let spec = specs.get(ref);
  if (!spec) specs.set(ref, (spec = loadModel(ref).spec));
  return createModel(spec, { seed: world.seed, timeScale: world.timeScale });
}

export const defaultVmDeps: VmDeps = {
  model: defaultModel,
  // sim/cluster.ts lays nodes out as DIR/nodes/<name>/fs/home.
  stateDir: (world) => path.resolve(world.nodes[0].hostPath('/home'), '../../../..'),
  msgLayer: (world, nodes) => msgLayerStatus(world, nodes),
  // Guess until sim/fragvisor says: an image that exists is taken for a guest build (the check cannot bite).
  kernelImage: (node, nodePath) => {
    try {
      return existsSync(node.hostPath(nodePath)) ? { flavour: 'fragvisor' } : undefined;
    } catch {
      return undefined;
    }
  },
  // FragVisor's host kernel is LOCALVERSION -pop-hype; GiantVM's is Linux-DSM 4.8.10.
  bootedKernel: (node) => ({
    flavour: /pop-hype/.test(node.kernelRelease) ? 'fragvisor' : /dsm|giantvm/i.test(node.kernelRelease) ? 'giantvm' : 'stock',
    hostKernel: /pop-hype/.test(node.kernelRelease) ? true : undefined,
    release: node.kernelRelease,
  }),
};

let current: VmDeps = defaultVmDeps;

export function vmDeps(): VmDeps {
  return current;
}

/** Replaces some dependencies (the rest keep their value); returns the previous set, for tests. */
export function setVmDeps(deps: Partial<VmDeps>): VmDeps {
  const previous = current;
  current = { ...current, ...deps };
  return previous;
}
