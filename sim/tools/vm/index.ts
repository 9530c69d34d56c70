/**
 * The distributed VM on the simulated testbed (issue items 4, 5, 7): `lkvm` (FragVisor), GiantVM's
 * `qemu-system-x86_64`, and the origin's `ab` / `curl`, which reach the guest (sim/guest/) on its
 * loopback ports.
 *
 * Injected (deps.ts; defaults in parentheses, override with register(registry, deps) or setVmDeps):
 * - model(world): the performance model (config/models/$AE_SIM_MODEL or default, with the world's
 *   seed and time scale). The lead passes the model the cluster was started with.
 * - stateDir(world): the sim's state dir (derived from node0's hostPath('/home'), DIR/nodes/node0/fs/home).
 *   The lead passes cluster.stateDir.
 * - msgLayer(world, nodes): {ready, problems} (sim/tools/msglayer's msgLayerStatus).
 * - kernelImage(node, path): identity of a bzImage {flavour, hostKernel, release} (guess: an existing
 *   file is a FragVisor guest build, so the guest-build check cannot bite). The lead wires
 *   sim/fragvisor's bzImage identity reader here: flavour 'fragvisor' + hostKernel false =
 *   built with POPHYPE_HOST_KERNEL 0.
 * - bootedKernel(node): identity of the running kernel (guess from uname -r: -pop-hype = FragVisor,
 *   dsm/giantvm = GiantVM). The lead wires sim/fragvisor's bootedKernelIdentity.
 *
 * `brctl addif br0 tap0` (brctl.ts): tap0 exists on the origin while a VM with a tap network runs.
 *
 * State: world.shared('fragvisor-vm') holds the one VM; node.volatile('fragvisor-vm') marks nodes
 * that ran a VM in their current boot. Counters: node0 `lkvm` per `lkvm run`, `qemu` per instance.
 */
import type { ToolRegistry } from '../registry';
import { abHandler } from './ab';
import { brctlHandler } from './brctl';
import { curlHandler } from './curl';
import { setVmDeps, type VmDeps } from './deps';
import { lkvmHandler } from './lkvm';
import { qemuHandler } from './qemu';

export function register(registry: Pick<ToolRegistry, 'registerTool'>, deps?: Partial<VmDeps>): void {
  if (deps) setVmDeps(deps);
  registry.registerTool('lkvm', lkvmHandler);
  registry.registerTool('qemu-system-x86_64', qemuHandler);
  registry.registerTool('ab', abHandler);
  registry.registerTool('curl', curlHandler);
  registry.registerTool('brctl', brctlHandler);
}

export { abHandler, brctlHandler, curlHandler, lkvmHandler, qemuHandler };
export { currentVm, usedNodes, type VmRecord } from './vmState';
export { setVmDeps, vmDeps, defaultVmDeps, type VmDeps, type KernelIdentity, type MsgLayerView } from './deps';
export { parseLkvmArgs, type LkvmConfig } from './lkvmArgs';
export { parseQemuArgs, type QemuConfig } from './qemuArgs';
