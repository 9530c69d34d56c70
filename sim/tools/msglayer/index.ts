// NOTE (wiring): `make` is shared with the kernel make handler. register() adds msgLayerMake as a `make`
// handler; the registry asks handlers in order, so register msglayer before the kernel one, or have
// the kernel `make` handler call `msgLayerMake(ctx)` first and go on only when it returns DELEGATE.
import type { ToolRegistry } from '../registry';
import { setMsgLayerDeps, type MsgLayerDeps } from './deps';
import { insmodHandler } from './insmod';
import { lsmodHandler } from './lsmod';
import { msgLayerMake } from './make';
import { rmmodHandler } from './rmmod';

/**
 * The FragVisor RDMA messaging layer imitation (ARTIFACT.md step 3): msg_layer build, insmod /
 * rmmod / lsmod of msg_rdma.ko with the real connection rules. See README.md.
 */

/** Registers make (msg_layer only), insmod, rmmod and lsmod; `deps` wires the kernel imitation (see deps.ts). */
export function register(registry: Pick<ToolRegistry, 'registerTool'>, deps?: Partial<MsgLayerDeps>): void {
  if (deps) setMsgLayerDeps(deps);
  registry.registerTool('make', msgLayerMake);
  registry.registerTool('insmod', insmodHandler);
  registry.registerTool('rmmod', rmmodHandler);
  registry.registerTool('lsmod', lsmodHandler);
}

export { msgLayerMake } from './make';
export { msgLayerNodeIds, msgLayerReady, msgLayerStatus, type MsgLayerStatus } from './query';
export { parseConfigH } from './configH';
// One renderer for the orchestrator and the simulator (the orchestrator's builders are the source).
export { renderConfigH } from '../../../workflows/commands/msglayer';
export { setMsgLayerDeps, type BootedKernel, type MsgLayerDeps } from './deps';
