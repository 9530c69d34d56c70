import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import type { Fault, FaultStep, ToolContext, World, WorldNode } from '../../sim/tools/types';

/**
 * An in-memory World for unit tests of the imitations: nodes whose files live under a host
 * directory, a virtual clock that moves only when the test says so, declarative faults, reboots.
 */

export class VirtualClock {
  now = 0;
  private seq = 0;
  private timers: { at: number; seq: number; fire: () => void }[] = [];

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new Error('aborted'));
      const timer = { at: this.now + Math.max(0, ms), seq: this.seq++, fire: () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      } };
      const onAbort = () => {
        this.timers = this.timers.filter((t) => t !== timer);
        reject(new Error('aborted'));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.timers.push(timer);
    });
  }

  /** Lets every pending promise chain run (no timer fires). */
  async settle(): Promise<void> {
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
  }

  /** Moves time forward by `ms`, firing due timers in order and settling after each. */
  async advance(ms: number): Promise<void> {
    const end = this.now + ms;
    await this.settle();
    for (;;) {
      const due = this.timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (!due) break;
      this.timers = this.timers.filter((t) => t !== due);
      this.now = due.at;
      due.fire();
      await this.settle();
    }
    this.now = end;
    await this.settle();
  }

  get pending(): number {
    return this.timers.length;
  }
}

export class FakeNode implements WorldNode {
  up = true;
  bootId = randomUUID();
  nextKernel: string | undefined;
  private log: string[] = [];
  private store = new Map<string, unknown>();
  private listeners: { down: (() => void)[]; boot: (() => void)[] } = { down: [], boot: [] };
  readonly counters: Record<string, number> = {};
  readonly dmesg = { append: (line: string) => void this.log.push(line), lines: () => [...this.log] as readonly string[] };

  constructor(
    readonly name: string,
    readonly index: number,
    readonly rdmaIp: string,
    public kernelRelease: string,
    private readonly root: string,
  ) {}

  hostPath(nodePath: string): string {
    if (!/^\/(home|root|tmp|var\/tmp|dev\/shm)(\/|$)/.test(nodePath)) throw new Error(`${nodePath}: read-only on the host`);
    return path.join(this.root, this.name, nodePath);
  }

  resolve(cwd: string, p: string): string {
    return path.posix.resolve(cwd, p.replace(/^~(?=\/|$)/, '/home/ae'));
  }

  installKernel(release: string): void {
    this.nextKernel = release;
  }

  volatile<T>(key: string, create: () => T): T {
    if (!this.store.has(key)) this.store.set(key, create());
    return this.store.get(key) as T;
  }

  count(action: string): void {
    this.counters[action] = (this.counters[action] ?? 0) + 1;
  }

  requestReboot(): void {
    this.reboot();
  }

  on(event: 'down' | 'boot', listener: () => void): void {
    this.listeners[event].push(listener);
  }

  /** Down and up again at once: new boot_id, installed kernel, empty ring buffer and per-boot state. */
  reboot(): void {
    this.up = false;
    this.listeners.down.forEach((l) => l());
    this.store.clear();
    this.log = [];
    this.bootId = randomUUID();
    if (this.nextKernel) this.kernelRelease = this.nextKernel;
    this.nextKernel = undefined;
    this.up = true;
    this.listeners.boot.forEach((l) => l());
  }
}

export class FakeWorld implements World {
  readonly clock = new VirtualClock();
  readonly timeScale = 0;
  readonly seed = 1;
  readonly nodes: FakeNode[];
  private readonly faults = new Map<string, Fault & { fired: number }>();
  private readonly sharedState = new Map<string, unknown>();

  constructor(root: string, ips: readonly string[], kernelRelease: string) {
    this.nodes = ips.map((ip, i) => new FakeNode(`node${i}`, i, ip, kernelRelease, root));
  }

  node(name: string): FakeNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  nodeByRdmaIp(ip: string): FakeNode | undefined {
    return this.nodes.find((n) => n.rdmaIp === ip);
  }

  sleep(simMs: number, signal?: AbortSignal): Promise<void> {
    return this.clock.sleep(simMs, signal);
  }

  /** Declares a fault; it fires `times` times (default once), like sim/faults. */
  addFault(node: string, fault: Fault): void {
    this.faults.set(`${node}/${fault.step}`, { ...fault, fired: 0 });
  }

  fault(node: string, step: FaultStep): Fault | undefined {
    const f = this.faults.get(`${node}/${step}`);
    if (!f || f.fired >= (f.times ?? 1)) return undefined;
    f.fired++;
    return f;
  }

  shared<T>(key: string, create: () => T): T {
    if (!this.sharedState.has(key)) this.sharedState.set(key, create());
    return this.sharedState.get(key) as T;
  }
}

export interface Call {
  /** Resolves with the tool's exit code. */
  done: Promise<number | symbol>;
  stdout(): string;
  stderr(): string;
  /** The calling process goes away (Ctrl-C, SSH drop). */
  abort(): void;
  /** Settled yet (and with what). */
  result(): number | symbol | undefined;
}

/** Runs `handler` as `argv` on `node` the way the tool channel would. */
export function call(
  world: World,
  node: WorldNode,
  handler: (ctx: ToolContext) => Promise<number | symbol>,
  argv: string[],
  opts: { cwd?: string; sudo?: boolean } = {},
): Call {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ac = new AbortController();
  let settled: number | symbol | undefined;
  const ctx: ToolContext = {
    node,
    world,
    argv,
    cwd: opts.cwd ?? '/home/ae',
    env: {},
    sudo: opts.sudo ?? false,
    stdin: new PassThrough(),
    stdout,
    stderr,
    signal: ac.signal,
  };
  const done = handler(ctx).then((rc) => (settled = rc));
  return { done, stdout: () => out, stderr: () => err, abort: () => ac.abort(), result: () => settled };
}
