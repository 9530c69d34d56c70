import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { writeFileAtomic } from '../state';
import type { Fault, FaultStep } from '../tools/types';

/**
 * Declared faults of a simulated cluster: `{ node, step, times?, factor?, afterMs? }`, given to
 * startSimCluster or injected while it runs (in process: `sim.faults.add(...)`; from another
 * process: `injectFault(stateDir, ...)`, which `ae sim fault` uses, drops a file into
 * DIR/faults/inbox that the running simulator picks up).
 *
 * A fault fires when its step happens on its node and then counts down `times` (default 1); `slow`
 * (a state, not an event) stays unless given `times`. DIR/faults/active.json lists what is left.
 */

export const FAULT_STEPS = ['reboot-hang', 'kernel-build', 'kvmtool-build', 'insmod-hang', 'rdma-connect', 'ssh-drop', 'guest-boot', 'slow'] as const satisfies readonly FaultStep[];

export const faultSpecSchema = z
  .object({
    node: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,62}$/, 'expected a node name like node2'),
    step: z.enum(FAULT_STEPS, { error: `expected one of ${FAULT_STEPS.join(', ')}` }),
    times: z.number().int().min(1).optional(),
    factor: z.number().positive().max(1000).optional(),
    afterMs: z.number().min(0).max(3_600_000).optional(),
  })
  .strict();
export type FaultSpec = z.infer<typeof faultSpecSchema>;

const clearSchema = z.object({ clear: z.literal(true), node: z.string().optional(), step: z.enum(FAULT_STEPS).optional() }).strict();

/** Defaults that make a bare `{ node, step }` useful. */
const DEFAULTS: Partial<Record<FaultStep, Partial<Fault>>> = {
  slow: { factor: 5 },
  'ssh-drop': { afterMs: 1000 },
};

interface Entry {
  node: string;
  fault: Fault;
  /** Firings left (Infinity for a `slow` without `times`). */
  left: number;
}

export interface ActiveFault extends FaultSpec {
  /** Firings left; null = until cleared. */
  remaining: number | null;
}

export class FaultBook {
  private entries: Entry[] = [];
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: {
      /** DIR/faults: inbox/ for injected faults, active.json for what is left. */
      dir?: string;
      /** Node names a fault may name. */
      nodes: readonly string[];
      log: (line: string) => void;
    },
  ) {}

  /** Declares a fault; throws on an unknown node or a malformed spec. */
  add(spec: FaultSpec): void {
    const s = faultSpecSchema.parse(spec);
    if (!this.opts.nodes.includes(s.node)) throw new Error(`fault for unknown node "${s.node}" (have ${this.opts.nodes.join(', ')})`);
    const fault: Fault = { ...DEFAULTS[s.step], step: s.step, ...(s.times !== undefined ? { times: s.times } : {}) };
    if (s.factor !== undefined) fault.factor = s.factor;
    if (s.afterMs !== undefined) fault.afterMs = s.afterMs;
    const left = s.times ?? (s.step === 'slow' ? Infinity : 1);
    this.entries.push({ node: s.node, fault, left });
    this.opts.log(`fault armed: ${s.node} ${s.step}${Number.isFinite(left) ? ` x${left}` : ''}`);
    this.save();
  }

  /** Removes faults (all, or those of a node and/or step). */
  clear(node?: string, step?: FaultStep): void {
    this.entries = this.entries.filter((e) => (node !== undefined && e.node !== node) || (step !== undefined && e.fault.step !== step));
    this.save();
  }

  /** The fault that would fire now, without firing it. */
  peek(node: string, step: FaultStep): Fault | undefined {
    this.drain();
    return this.entries.find((e) => e.node === node && e.fault.step === step && e.left > 0)?.fault;
  }

  /** Fires the fault for this node and step, if one is armed (counts one of its `times`). */
  take(node: string, step: FaultStep): Fault | undefined {
    this.drain();
    const entry = this.entries.find((e) => e.node === node && e.fault.step === step && e.left > 0);
    if (!entry) return undefined;
    entry.left--;
    if (entry.left <= 0) this.entries = this.entries.filter((e) => e !== entry);
    this.opts.log(`fault fired: ${node} ${step}${Number.isFinite(entry.left) ? ` (${entry.left} left)` : ''}`);
    this.save();
    return { ...entry.fault };
  }

  list(): ActiveFault[] {
    return this.entries.map((e) => ({ node: e.node, ...e.fault, remaining: Number.isFinite(e.left) ? e.left : null }));
  }

  /** Picks up injected faults as they arrive (files in DIR/faults/inbox). */
  watch(): void {
    const inbox = this.inbox();
    if (!inbox) return;
    mkdirSync(inbox, { recursive: true });
    for (const f of readdirSync(inbox)) rmSync(path.join(inbox, f), { force: true }); // from an earlier run: void
    try {
      this.watcher = watch(inbox, () => this.drain());
      this.watcher.on('error', () => {});
    } catch {
      // polling below still works
    }
    this.poller = setInterval(() => this.drain(), 200);
    this.poller.unref();
    this.save();
  }

  stop(): void {
    this.watcher?.close();
    this.watcher = undefined;
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
  }

  /** Reads the inbox now (also done before every consultation, so an injection is never late). */
  drain(): void {
    const inbox = this.inbox();
    if (!inbox || !this.poller) return;
    let files: string[];
    try {
      files = readdirSync(inbox).filter((f) => f.endsWith('.json')).sort();
    } catch {
      return;
    }
    for (const f of files) {
      const full = path.join(inbox, f);
      let raw: unknown;
      try {
        raw = JSON.parse(readFileSync(full, 'utf8'));
      } catch {
        continue; // being written: next time
      }
      rmSync(full, { force: true });
      try {
        const clear = clearSchema.safeParse(raw);
        if (clear.success) this.clear(clear.data.node, clear.data.step);
        else this.add(raw as FaultSpec);
      } catch (err) {
        this.opts.log(`ignoring injected fault ${f}: ${(err as Error).message}`);
      }
    }
  }

  private inbox(): string | undefined {
    return this.opts.dir && path.join(this.opts.dir, 'inbox');
  }

  private save(): void {
    if (!this.opts.dir || !existsSync(this.opts.dir)) return;
    writeFileAtomic(path.join(this.opts.dir, 'active.json'), `${JSON.stringify(this.list(), null, 2)}\n`);
  }
}

/** DIR/faults of a simulator state dir. */
export const faultsDir = (stateDir: string): string => path.join(stateDir, 'faults');

/**
 * Injects a fault into the simulator running from `stateDir` (any process); resolves once the
 * simulator took it (rejects after `timeoutMs` if nothing picks it up).
 */
export async function injectFault(stateDir: string, spec: FaultSpec | { clear: true; node?: string; step?: FaultStep }, timeoutMs = 5000): Promise<void> {
  if (!('clear' in spec)) faultSpecSchema.parse(spec);
  const inbox = path.join(faultsDir(stateDir), 'inbox');
  if (!existsSync(inbox)) throw new Error(`no simulator fault inbox in ${stateDir} (is \`ae sim up\` running from there?)`);
  const file = path.join(inbox, `${Date.now()}-${randomBytes(4).toString('hex')}.json`);
  writeFileAtomic(file, JSON.stringify(spec));
  const deadline = Date.now() + timeoutMs;
  while (existsSync(file)) {
    if (Date.now() > deadline) {
      rmSync(file, { force: true });
      throw new Error(`the simulator running from ${stateDir} did not pick up the fault within ${timeoutMs} ms`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}
