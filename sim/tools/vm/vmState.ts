import type { Hypervisor } from '../../model/schema';
import type { Guest } from '../../guest/guest';
import type { World, WorldNode } from '../types';

/**
 * The cluster's one distributed VM, and what each node remembers of VMs in its current boot.
 * FragVisor's VM cannot be restarted (ARTIFACT.md step 4): once a VM ran on a node (whatever
 * ended it), that node takes no VM until it has rebooted. The node's per-boot store is dropped at
 * every boot, which is exactly that rule.
 */

export type VmPhase = 'booting' | 'running' | 'dead';

export interface VmRecord {
  readonly id: number;
  readonly hypervisor: Hypervisor;
  /** vCPU k runs on nodes[k]; nodes[0] is the origin. */
  readonly nodes: readonly WorldNode[];
  readonly guestIp: string;
  phase: VmPhase;
  guest?: Guest;
  /** Ends the VM (a node went down, the launcher was killed, the guest powered off). */
  kill(reason: string): void;
}

interface Board {
  current?: VmRecord;
  nextId: number;
  launches: number;
}

export function vmBoard(world: World): Board {
  return world.shared('fragvisor-vm', (): Board => ({ nextId: 1, launches: 0 }));
}

/** The VM that is booting or running, if any. */
export function currentVm(world: World): VmRecord | undefined {
  const vm = vmBoard(world).current;
  return vm && vm.phase !== 'dead' ? vm : undefined;
}

interface NodeVmUse {
  /** The VM that ran on this node in its current boot. */
  vmId?: number;
  hypervisor?: Hypervisor;
}

export function nodeVmUse(node: WorldNode): NodeVmUse {
  return node.volatile('fragvisor-vm', (): NodeVmUse => ({}));
}

/** Nodes among `nodes` that have hosted a VM since they last booted (they must reboot first). */
export function usedNodes(nodes: readonly WorldNode[]): WorldNode[] {
  return nodes.filter((n) => nodeVmUse(n).vmId !== undefined);
}
