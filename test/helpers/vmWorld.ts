import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import type { Fault, FaultStep, ToolContext, ToolHandler, World, WorldNode } from '../../sim/tools/types';

/**
 * A small real-filesystem World for driving the VM and guest handlers directly (no SSH front):
 * node paths live under a temp dir, reboots are instant, faults are armed by pushing to `faults`.
 */

export class FakeNode implements WorldNode {
  up = true;
  bootId = randomUUID();
  kernelRelease = '4.4.137-pop-hype';
  readonly counters: Record<string, number> = {};
  private store = new Map<string, unknown>();
  private readonly listeners = { down: [] as (() => void)[], boot: [] as (() => void)[] };
  private readonly lines: string[] = [];
  readonly dmesg = { append: (l: string) => void this.lines.push(l), lines: () => this.lines };

  constructor(
    readonly name: string,
    readonly index: number,
    readonly rdmaIp: string,
    private readonly fsDir: string,
  ) {
    for (const d of ['home/ae', 'root', 'tmp']) mkdirSync(path.join(fsDir, d), { recursive: true });
  }

  hostPath(p: string): string {
    const m = /^\/(home|root|tmp)(\/.*)?$/.exec(path.posix.normalize(p));
    if (!m) throw new Error(`${p}: read-only on the host`);
    return path.join(this.fsDir, m[1], m[2] ?? '');
  }

  resolve(cwd: string, p: string): string {
    return path.posix.resolve(cwd, p.replace(/^~(?=\/|$)/, '/home/ae'));
  }

  installKernel(release: string): void {
    this.kernelRelease = release;
  }

  volatile<T>(key: string, create: () => T): T {
    if (!this.store.has(key)) this.store.set(key, create());
    return this.store.get(key) as T;
  }

  count(action: string): void {
    this.counters[action] = (this.counters[action] ?? 0) + 1;
  }

  requestReboot(): void {
    void this.reboot();
  }

  /** Down (every listener), a new boot: new boot id, empty per-boot store. */
  async reboot(): Promise<void> {
    this.up = false;
    for (const l of this.listeners.down) l();
    await new Promise((r) => setTimeout(r, 10));
    this.store = new Map();
    this.bootId = randomUUID();
    this.up = true;
    for (const l of this.listeners.boot) l();
  }

  on(event: 'down' | 'boot', listener: () => void): void {
    this.listeners[event].push(listener);
  }
}

export class FakeWorld implements World {
  readonly timeScale = 0;
  readonly faults: { node: string; step: FaultStep; times: number }[] = [];
  private readonly sharedStore = new Map<string, unknown>();

  constructor(
    readonly nodes: FakeNode[],
    readonly seed = 1,
  ) {}

  node(name: string): FakeNode {
    const n = this.nodes.find((x) => x.name === name);
    if (!n) throw new Error(`no node ${name}`);
    return n;
  }

  nodeByRdmaIp(ip: string): FakeNode | undefined {
    return this.nodes.find((n) => n.rdmaIp === ip);
  }

  async sleep(simMs: number, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    await new Promise((r) => setTimeout(r, simMs * this.timeScale));
    signal?.throwIfAborted();
  }

  fault(node: string, step: FaultStep): Fault | undefined {
    const f = this.faults.find((x) => x.node === node && x.step === step && x.times > 0);
    if (!f) return undefined;
    f.times--;
    return { step };
  }

  shared<T>(key: string, create: () => T): T {
    if (!this.sharedStore.has(key)) this.sharedStore.set(key, create());
    return this.sharedStore.get(key) as T;
  }
}

export interface Call {
  done: Promise<number | symbol>;
  stdout: () => string;
  stderr: () => string;
  abort: () => void;
  waitFor: (re: RegExp, timeoutMs?: number) => Promise<void>;
}

export function call(world: World, handler: ToolHandler, node: WorldNode, argv: string[], opts: { sudo?: boolean; cwd?: string } = {}): Call {
  let out = '';
  let err = '';
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('data', (d: Buffer) => (out += d.toString()));
  stderr.on('data', (d: Buffer) => (err += d.toString()));
  const ctl = new AbortController();
  const ctx: ToolContext = {
    node,
    world,
    argv,
    cwd: opts.cwd ?? '/home/ae',
    env: { PATH: '/usr/bin:/bin', LANG: 'C' },
    sudo: opts.sudo ?? true,
    stdin: Readable.from([]),
    stdout,
    stderr,
    signal: ctl.signal,
  };
  const done = handler(ctx).catch((e: Error) => {
    err += `${e.message}\n`;
    return 1;
  });
  return {
    done,
    stdout: () => out,
    stderr: () => err,
    abort: () => ctl.abort(),
    waitFor: async (re, timeoutMs = 20_000) => {
      const deadline = Date.now() + timeoutMs;
      while (!re.test(out + err)) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${re} in:\n${out}${err}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
  };
}
