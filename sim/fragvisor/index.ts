import type { ToolRegistry } from '../tools/registry';
import { loadBootedImage } from './identity';
import { kvmtoolMakeHandler } from './kvmtool';
import { kernelMakeHandler } from './make';

/**
 * The FragVisor side of the simulated nodes: the generated checkout (checkout.ts), the build
 * imitations behind `make` (kernel trees: make.ts; the kvmtool checkout: kvmtool.ts) and the
 * identity of built, installed and booted kernels (identity.ts), which the messaging layer and lkvm
 * imitations read.
 */

export { bootedKernelIdentity, kernelImage, parseIdentity, type KernelIdentity } from './identity';
export { ensureCheckouts, giantvmTreeOf, type CheckoutPaths } from './checkout';
export { kernelMakeHandler, parallelTime } from './make';

/** `make` for kernel trees and the kvmtool checkout, and the booted kernel's identity kept up to date at every boot. */
export function registerFragvisorTools(registry: ToolRegistry): void {
  registry.registerTool('make', kernelMakeHandler);
  registry.registerTool('make', kvmtoolMakeHandler);
  registry.registerNodeSetup((node) => node.on('boot', () => loadBootedImage(node)));
}
