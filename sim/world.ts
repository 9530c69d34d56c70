import { chownSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { FaultBook } from './faults';
import { toHostPath } from './hostPath';
import { KernelLog } from './kmsg';
import type { SimModel } from './model/runtime';
import type { DownReason, SimNode } from './node';
import { NODE_GID, NODE_HOME, NODE_UID, type SandboxMode } from './sandbox';
import type { Fault, FaultStep, World, WorldNode } from './tools/types';

/**
 * The simulated cluster as the tool handlers see it (sim/tools/types.ts), over the SimNodes.
 */

export class SimWorldNode implements WorldNode {
  readonly kmsg: KernelLog;
  private readonly perBoot = new Map<string, unknown>();
  private readonly counts: Record<string, number> = {};
  private readonly listeners = { down: new Set<() => void>(), boot: new Set<() => void>() };

  constructor(
    readonly sim: SimNode,
    readonly index: number,
    readonly rdmaIp: string,
    private readonly world: SimWorld,
  ) {
    this.kmsg = new KernelLog(path.join(sim.nodeDir, 'kmsg.jsonl'), path.join(sim.nodeDir, 'console.log'));
    sim.events.on('boot', (fresh: boolean) => this.onBoot(fresh));
    sim.events.on('down', (why: DownReason) => this.onDown(why));
  }

  get name(): string {
    return this.sim.name;
  }

  get up(): boolean {
    return this.sim.up;
  }

  get bootId(): string {
    return this.sim.state.bootId;
  }

  get kernelRelease(): string {
    return this.sim.state.kernelRelease;
  }

  /** Host directory for the simulator's own per-node files: invisible inside the node. */
  get privateDir(): string {
    return this.sim.nodeDir;
  }

  hostPath(nodePath: string): string {
    return toHostPath({ fsDir: path.join(this.sim.nodeDir, 'fs'), stateDir: this.sim.stateDir }, this.name, nodePath);
  }

  resolve(cwd: string, p: string): string {
    const expanded = p === '~' ? NODE_HOME : p.startsWith('~/') ? `${NODE_HOME}${p.slice(1)}` : p;
    return path.posix.resolve(cwd, expanded);
  }

  readonly dmesg = {
    append: (line: string): void => this.kmsg.append(line),
    lines: (): readonly string[] => this.kmsg.lines(),
  };

  installKernel(release: string): void {
    this.sim.setNextKernel(release);
  }

  volatile<T>(key: string, create: () => T): T {
    if (!this.perBoot.has(key)) this.perBoot.set(key, create());
    return this.perBoot.get(key) as T;
  }

  count(action: string): void {
    this.counts[action] = (this.counts[action] ?? 0) + 1;
  }

  get counters(): Readonly<Record<string, number>> {
    return { ...this.counts };
  }

  requestReboot(): void {
    setImmediate(() => {
      this.sim.reboot().catch((err: Error) => this.world.log(`${this.name}: reboot: ${err.message}`));
    });
  }

  on(event: 'down' | 'boot', listener: () => void): void {
    this.listeners[event].add(listener);
  }

  /** Removes a listener added with on(). */
  off(event: 'down' | 'boot', listener: () => void): void {
    this.listeners[event].delete(listener);
  }

  /** Multiplier of this node's simulated durations (the `slow` fault; 1 when none), without firing it. */
  slowFactor(): number {
    return this.world.faults.peek(this.name, 'slow')?.factor ?? 1;
  }

  /**
   * Writes a file inside the node as the node user would own it (a handler runs as root on the
   * host): parent directories are created (and owned by the node user) as needed.
   */
  writeFile(nodePath: string, data: string | Buffer, mode = 0o644): void {
    const host = this.hostPath(nodePath);
    this.mkdirs(path.posix.dirname(nodePath));
    writeFileSync(host, data, { mode });
    this.own(host);
  }

  /** `mkdir -p` inside the node, new directories owned by the node user. */
  mkdirs(nodeDir: string): void {
    const missing: string[] = [];
    for (let d = nodeDir; d !== '/' && !existsSync(this.hostPath(d)); d = path.posix.dirname(d)) missing.unshift(d);
    for (const d of missing) {
      const host = this.hostPath(d); // again: symlinks are resolved the node's way at each level
      try {
        mkdirSync(host);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      this.own(host);
    }
  }

  /** Hands a host path to the node user (root mode only: in a user namespace we are that user). */
  own(hostPath: string): void {
    if (this.world.sandboxMode === 'root') chownSync(hostPath, NODE_UID, NODE_GID);
  }

  private onBoot(fresh: boolean): void {
    const s = this.sim.state;
    this.kmsg.startBoot({ nodeName: this.name, bootId: s.bootId, bootedAtMs: s.bootedAt.getTime(), kernelRelease: s.kernelRelease, kernelVersion: this.sim.kernelVersion }, fresh);
    if (!fresh) return; // a simulator start: the node keeps its boot
    this.perBoot.clear();
    this.count('boot');
    this.fire('boot');
  }

  private onDown(why: DownReason): void {
    this.world.toolServerDown(this);
    if (why !== 'stop') this.count(why);
    const power = this.sim.state.power;
    if (power === 'hung') {
      this.kmsg.console('[  OK  ] Reached target Reboot.\r\nreboot: Restarting system\r\n');
      this.kmsg.console('INFO: task systemd-shutdow:1 blocked for more than 120 seconds. (SIMULATED reboot-hang)\r\n');
    } else if (power === 'rebooting') this.kmsg.console('reboot: Restarting system\r\n');
    else if (power === 'off') this.kmsg.console('reboot: Power down\r\n');
    this.fire('down');
  }

  private fire(event: 'down' | 'boot'): void {
    for (const l of this.listeners[event]) {
      try {
        l();
      } catch (err) {
        this.world.log(`${this.name}: ${event} listener failed: ${(err as Error).message}`);
      }
    }
  }
}

export interface SimWorldOptions {
  /** The simulator's state dir and the guests' performance model (for the tools that need them). */
  stateDir?: string;
  model?: SimModel;
  timeScale: number;
  seed: number;
  buildLogPadBytes?: number;
  faults: FaultBook;
  sandboxMode: SandboxMode;
  log: (line: string) => void;
}

export class SimWorld implements World {
  readonly nodes: SimWorldNode[] = [];
  readonly timeScale: number;
  readonly seed: number;
  readonly buildLogPadBytes: number;
  readonly faults: FaultBook;
  readonly sandboxMode: SandboxMode;
  readonly log: (line: string) => void;
  readonly stateDir: string | undefined;
  readonly model: SimModel | undefined;
  private readonly sharedState = new Map<string, unknown>();
  /** Set by the cluster: aborts the node's running tool calls when it goes down. */
  onNodeDown: (node: SimWorldNode) => void = () => {};

  constructor(opts: SimWorldOptions) {
    this.timeScale = opts.timeScale;
    this.seed = opts.seed;
    this.buildLogPadBytes = opts.buildLogPadBytes ?? 0;
    this.faults = opts.faults;
    this.sandboxMode = opts.sandboxMode;
    this.log = opts.log;
    this.stateDir = opts.stateDir;
    this.model = opts.model;
  }

  addNode(sim: SimNode, rdmaIp: string): SimWorldNode {
    const node = new SimWorldNode(sim, this.nodes.length, rdmaIp, this);
    this.nodes.push(node);
    return node;
  }

  node(name: string): SimWorldNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no simulated node "${name}" (have ${this.nodes.map((x) => x.name).join(', ')})`);
    return n;
  }

  nodeByRdmaIp(ip: string): SimWorldNode | undefined {
    return this.nodes.find((n) => n.rdmaIp === ip);
  }

  sleep(simMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(abortError(signal));
    const ms = Math.max(0, simMs * this.timeScale);
    if (ms === 0) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        clearTimeout(timer);
        reject(abortError(signal!));
      };
      const timer = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  fault(node: string, step: FaultStep): Fault | undefined {
    return this.faults.take(node, step);
  }

  shared<T>(key: string, create: () => T): T {
    if (!this.sharedState.has(key)) this.sharedState.set(key, create());
    return this.sharedState.get(key) as T;
  }

  /** Called by a node going down. */
  toolServerDown(node: SimWorldNode): void {
    this.onNodeDown(node);
  }
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const err = new Error('aborted');
  err.name = 'AbortError';
  return err;
}

/** The world node behind a WorldNode, when it is a real simulated one (not a test fake). */
export function asSimWorldNode(node: WorldNode): SimWorldNode | undefined {
  return node instanceof SimWorldNode ? node : undefined;
}

/** Writes a node file owned by the node user (falls back to a plain write for a fake node). */
export function writeNodeFile(node: WorldNode, nodePath: string, data: string | Buffer, mode = 0o644): void {
  const sim = asSimWorldNode(node);
  if (sim) return sim.writeFile(nodePath, data, mode);
  const host = node.hostPath(nodePath);
  mkdirSync(path.dirname(host), { recursive: true });
  writeFileSync(host, data, { mode });
}
