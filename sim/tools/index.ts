import { bootedKernelIdentity, kernelImage, registerFragvisorTools } from '../fragvisor';
import type { SimModel } from '../model/runtime';
import { dmesgHandler } from './dmesg';
import { ToolRegistry, globalTools } from './registry';
import type { World } from './types';
import { SimWorld } from '../world';

/**
 * Every tool the simulated nodes answer, registered in one place for one cluster. Registration
 * order is dispatch order for a shared name (`make`: the messaging layer's msg_layer builds first,
 * then the kernel trees; each passes on what is not its own).
 */

export interface ToolDeps {
  /** The simulator's state dir. */
  stateDir: string;
  /** The performance model the guests follow (seed and time scale included). */
  model: SimModel;
}

type Register = (registry: ToolRegistry, deps?: unknown) => void;
interface OptionalToolModule {
  register?: Register;
  msgLayerMake?: Parameters<ToolRegistry['registerTool']>[1];
}

/**
 * A tool folder that another part of the simulator provides, or undefined while it does not exist
 * yet. Loaded untyped on purpose: its register() signature may still change under us.
 */
function optional(id: string): OptionalToolModule | undefined {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require(id) as OptionalToolModule;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'MODULE_NOT_FOUND' && e.message.includes(`'${id}'`)) return undefined;
    throw err;
  }
}

export function registerAllTools(deps: ToolDeps): ToolRegistry {
  const registry = new ToolRegistry(globalTools);
  registry.registerTool('dmesg', dmesgHandler);

  // ---- messaging layer: sim/tools/msglayer (config.h, make -C msg_layer, insmod/rmmod/lsmod msg_rdma.ko) ----
  const msglayer = optional('./msglayer');
  msglayer?.register?.(registry, { bootedKernel: bootedKernelIdentity });
  if (msglayer?.msgLayerMake) registry.registerTool('make', msglayer.msgLayerMake); // no-op if register() added it
  // ---- end messaging layer ----

  // ---- kernel trees: sim/fragvisor (make in fragvisor-linux / linux-dsm, install, booted identity) ----
  registerFragvisorTools(registry);

  // ---- VM and guest: sim/tools/vm, sim/guest (lkvm, qemu-system-x86_64, the guest) ----
  const vm = optional('./vm');
  // The VM tools keep their deps process-wide: answer per world, so that two clusters never mix.
  vm?.register?.(registry, {
    model: (world: World) => (world instanceof SimWorld && world.model) || deps.model,
    stateDir: (world: World) => (world instanceof SimWorld && world.stateDir) || deps.stateDir,
    kernelImage,
    bootedKernel: bootedKernelIdentity,
  });
  // ---- end VM and guest ----

  return registry;
}
