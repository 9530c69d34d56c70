import type { ToolHandler, World, WorldNode } from './types';

/**
 * Which handlers answer which tool names on the simulated nodes. One registry per running cluster
 * (handlers may close over per-cluster things such as the performance model), whose lookups fall
 * back to the process-wide `globalTools` (ad-hoc tools, e.g. in tests).
 *
 * Several handlers may share a name: they are asked in registration order, and a handler that
 * returns DELEGATE passes the call on to the next one (e.g. `make`: the msg_layer handler, then
 * the kernel tree handler); when every one delegates, the node runs the system's real tool.
 */

/** Runs once per node when the cluster starts (e.g. to subscribe to the node's boots). */
export type NodeSetup = (node: WorldNode, world: World) => void;

/** Tool names become file names on the node's PATH: no slashes, nothing a shell would mangle. */
const TOOL_NAME = /^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$/;

export class ToolRegistry {
  private readonly tools = new Map<string, ToolHandler[]>();
  private readonly setups: NodeSetup[] = [];

  constructor(private readonly parent?: ToolRegistry) {}

  registerTool(name: string, handler: ToolHandler): void {
    if (!TOOL_NAME.test(name)) throw new Error(`tool name must be letters, digits and . _ + - (no slash), got ${JSON.stringify(name)}`);
    if (typeof handler !== 'function') throw new Error(`tool ${name}: the handler must be a function`);
    const list = this.tools.get(name) ?? [];
    if (list.includes(handler)) return; // registering the same function twice is a no-op
    list.push(handler);
    this.tools.set(name, list);
  }

  /** Runs `setup` for every node of every cluster started with this registry. */
  registerNodeSetup(setup: NodeSetup): void {
    this.setups.push(setup);
  }

  /** The handlers for `name`, in the order they are asked (own first, then the parent's). */
  handlers(name: string): readonly ToolHandler[] {
    return [...(this.tools.get(name) ?? []), ...(this.parent?.handlers(name) ?? [])];
  }

  /** Every tool name with at least one handler. */
  names(): string[] {
    return [...new Set([...this.tools.keys(), ...(this.parent?.names() ?? [])])].sort();
  }

  nodeSetups(): readonly NodeSetup[] {
    return [...(this.parent?.nodeSetups() ?? []), ...this.setups];
  }
}

/** Tools every cluster started in this process answers (after its own). */
export const globalTools = new ToolRegistry();

/** Registers a process-wide tool: the clusters started afterwards get a wrapper for it on PATH. */
export function registerTool(name: string, handler: ToolHandler): void {
  globalTools.registerTool(name, handler);
}
