import type { World, WorldNode } from '../types';
import { rendezvous, type Instance } from './rendezvous';

/** What the VM imitation (lkvm) needs to know about the messaging layer. */
export interface MsgLayerStatus {
  /**
   * The layer spans exactly the given nodes, in node-id order (nodes[i] is node id i): each is up and
   * Ready, connected to every other, all built with the same node list.
   */
  ready: boolean;
  /** Node name -> node id, for the given nodes whose module is in the kernel (loading, hung or up). */
  nodeIds: Record<string, number>;
  /**
   * Node id of the origin when exactly one node runs an origin kernel; undefined when none does (the
   * layer comes up, but a VM cannot start), several do, or the kernel imitation cannot tell.
   */
  origin: number | undefined;
  /** Why it is not ready (or what will go wrong next), one line each, for error messages. */
  problems: string[];
}

function linked(a: Instance, b: Instance): boolean {
  return a.links.get(b.nid) === b && b.links.get(a.nid) === a;
}

export function msgLayerStatus(world: World, nodes: readonly WorldNode[]): MsgLayerStatus {
  const rv = rendezvous(world);
  const problems: string[] = [];
  const nodeIds: Record<string, number> = {};
  const insts: Instance[] = [];
  for (const node of nodes) {
    const inst = rv.live(node.name);
    if (!inst) {
      problems.push(`${node.name}: msg_rdma is not loaded`);
      continue;
    }
    nodeIds[node.name] = inst.nid;
    insts.push(inst);
    if (inst.phase === 'hung') problems.push(`${node.name}: msg_rdma is hung in its init (only a reboot clears it)`);
    else if (inst.phase === 'init') problems.push(`${node.name}: msg_rdma is still connecting`);
    else if (inst.problem === 'duplicate-origin') problems.push(`${node.name}: more than one node runs an origin kernel`);
  }
  const lists = new Set(insts.map((i) => i.table.join(',')));
  if (lists.size > 1) problems.push('the nodes were built with different node lists (msg_layer/config.h)');
  else if (insts.length > 0 && insts[0].table.length !== nodes.length) problems.push(`the node list (msg_layer/config.h) has ${insts[0].table.length} entries for ${nodes.length} nodes`);
  nodes.forEach((node, i) => {
    const id = nodeIds[node.name];
    if (id !== undefined && id !== i) problems.push(`${node.name} is node ${id} of the messaging layer, expected ${i}`);
  });
  for (let a = 0; a < insts.length; a++) {
    for (let b = a + 1; b < insts.length; b++) {
      if (insts[a].phase === 'up' && insts[b].phase === 'up' && !linked(insts[a], insts[b])) problems.push(`${insts[a].node.name} and ${insts[b].node.name} are not connected`);
    }
  }
  const origins = insts.filter((i) => i.kernel.origin);
  const known = insts.length > 0 && insts.every((i) => i.kernel.origin !== undefined);
  const origin = origins.length === 1 ? origins[0].nid : undefined;
  if (known && origins.length === 0) problems.push('no node runs an origin kernel (CONFIG_POPCORN_ORIGIN_NODE)');
  const blocking = problems.filter((p) => !p.startsWith('no node runs an origin'));
  const ready = nodes.length > 0 && insts.length === nodes.length && blocking.length === 0 && insts.every((i) => i.ready);
  return { ready, nodeIds, origin, problems };
}

/** The layer spans exactly `nodes` (in node-id order): all loaded, Ready, connected to each other, with the same node list. */
export function msgLayerReady(world: World, nodes: readonly WorldNode[]): boolean {
  return msgLayerStatus(world, nodes).ready;
}

/** Node name -> messaging-layer node id, for every node whose module is in the kernel. */
export function msgLayerNodeIds(world: World): Record<string, number> {
  return Object.fromEntries(rendezvous(world).liveInstances().map((i) => [i.node.name, i.nid]));
}
