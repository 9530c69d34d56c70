import type { World, WorldNode } from '../types';
import type { BootedKernel } from './deps';
import type { ModuleImage } from './ko';

/**
 * One load of msg_rdma.ko on one node (one insmod, one boot). `init` runs the module's init;
 * `hung` never finishes it; `up` finished it (Ready, unless `problem` says otherwise). The end
 * states: `failed` (init returned -EINVAL), `removed` (rmmod), `gone` (the node went down).
 */
export type Phase = 'init' | 'hung' | 'up' | 'failed' | 'removed' | 'gone';

export class Instance {
  phase: Phase = 'init';
  /** Bound to the RDMA CM port and accepting connect requests (from init until the module goes away). */
  listening = false;
  /** Connect requests received, by the node id the client claims (its position in its own list). */
  readonly requests = new Map<number, Instance>();
  /** Established connections, by peer node id in our list. */
  readonly links = new Map<number, Instance>();
  /** Printed `Ready on InfiniBand RDMA`. */
  ready = false;
  problem: 'no-origin' | 'duplicate-origin' | undefined;
  /** Its connects (and connects to it) fail: fault `rdma-connect`. */
  brokenRdma = false;
  /** Aborted when the module goes away: ends every wait of its init. */
  readonly life = new AbortController();
  readonly bootId: string;

  constructor(
    readonly node: WorldNode,
    readonly image: ModuleImage,
    /** The node list as the module sees it (in_aton of each entry, dotted). */
    readonly table: readonly string[],
    /** Our node id: the last entry matching our IP (the kernel's loop keeps the last match); -1 if none. */
    readonly nid: number,
    readonly kernel: BootedKernel,
  ) {
    this.bootId = node.bootId;
  }

  /** Still in the kernel of the boot it was loaded in. */
  get live(): boolean {
    return (this.phase === 'init' || this.phase === 'hung' || this.phase === 'up') && this.node.up && this.node.bootId === this.bootId;
  }

  /** Appends to the node's kernel log, unless the module (or the boot it ran in) is gone. */
  log(line: string): void {
    if (this.phase === 'gone' || this.phase === 'removed' || this.node.bootId !== this.bootId) return;
    this.node.dmesg.append(line);
  }

  /** Ends the module: stops listening, ends its waits. */
  end(phase: 'failed' | 'removed' | 'gone'): void {
    this.phase = phase;
    this.listening = false;
    this.life.abort();
  }
}

/** Cluster-wide meeting point of the nodes' modules (World.shared), with change notification for waits. */
export class Rendezvous {
  private readonly loaded = new Map<string, Instance>();
  private readonly watchers = new Set<() => void>();

  constructor(readonly world: World) {
    // A node going down takes its module with it (and its peers see the connection drop).
    for (const node of world.nodes) {
      node.on('down', () => {
        const inst = this.loaded.get(node.name);
        if (inst && inst.phase !== 'gone') {
          inst.end('gone');
          this.notify();
        }
      });
    }
  }

  add(inst: Instance): void {
    this.loaded.set(inst.node.name, inst);
    this.notify();
  }

  /** The node's module if it is still in its kernel. */
  live(nodeName: string): Instance | undefined {
    const inst = this.loaded.get(nodeName);
    return inst?.live ? inst : undefined;
  }

  liveInstances(): Instance[] {
    return [...this.loaded.values()].filter((i) => i.live);
  }

  /** Re-evaluates every pending wait. Call after any change another node may be waiting for. */
  notify(): void {
    for (const w of [...this.watchers]) w();
  }

  watch(fn: () => void): () => void {
    this.watchers.add(fn);
    return () => this.watchers.delete(fn);
  }
}

export const rendezvous = (world: World): Rendezvous => world.shared('msglayer', () => new Rendezvous(world));

/** Per boot: the module this node's kernel holds (a reboot drops it, as it drops the real one). */
export interface NodeModuleState {
  module: Instance | undefined;
}

export const nodeState = (node: WorldNode): NodeModuleState => node.volatile<NodeModuleState>('msglayer', () => ({ module: undefined }));

/** The node's module when it is still there (loading, hung or up). */
export function loadedModule(node: WorldNode): Instance | undefined {
  const inst = nodeState(node).module;
  return inst?.live ? inst : undefined;
}
