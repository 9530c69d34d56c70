/**
 * Turns ipmi_sim's chassis-control calls into the node's power hooks.
 *
 * ipmi_sim runs its `chassis_control` program as `<prog> get power` (chassis status: answer
 * `power:1` or `power:0`) and `<prog> set power 0|1`, `set reset 1`, `set shutdown 1`, `set boot X`.
 * It implements `chassis power cycle` as `set power 0`, then a 1 s timer that runs `get power` until
 * it reads 0 and then `set power 1`: the program is never told "cycle". So a `set power 0` is held for
 * `cycleWindowMs` (reported as off meanwhile): a `set power 1` within the window makes it one
 * powerCycle() (powerOn() if the node was already off); otherwise the window ends in powerOff().
 * An explicit `off` followed by `on` within the window is, like on a real chassis, a power cycle.
 *
 * Replies never wait for the hooks (a real BMC acknowledges at once and the host boots in the
 * background; ipmi_sim blocks while its program runs). Hook calls run one at a time, in order.
 */

export interface PowerHooks {
  powerOff(): Promise<void>;
  powerOn(): Promise<void>;
  powerCycle(): Promise<void>;
  status(): 'on' | 'off';
}

export interface ChassisReply {
  /** What the program prints (ipmi_sim parses `name:value` lines of a `get`). */
  out: string;
  /** The program's exit code: non-zero makes ipmi_sim answer the IPMI request with an error. */
  code: number;
}

export interface PowerControllerOptions {
  hooks: PowerHooks;
  /** How long a `set power 0` waits for the `set power 1` that makes it a cycle. */
  cycleWindowMs: number;
  log: (line: string) => void;
  /** Injected for tests. */
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (handle: unknown) => void;
}

type Hook = 'powerOff' | 'powerOn' | 'powerCycle';

export class PowerController {
  private pendingOff: { handle: unknown; wasOn: boolean } | null = null;
  private queue: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly setTimer: (fn: () => void, ms: number) => unknown;
  private readonly clearTimer: (handle: unknown) => void;

  constructor(private readonly opts: PowerControllerOptions) {
    this.setTimer = opts.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = opts.clearTimer ?? ((h) => clearTimeout(h as NodeJS.Timeout));
  }

  /** Handles one run of the chassis-control program: `args` are what follows the device argument. */
  handle(args: string[]): ChassisReply {
    if (this.stopped) return { out: 'BMC is stopping\n', code: 1 };
    const [op, ...rest] = args;
    if (op === 'get') return this.get(rest);
    if (op === 'set') return this.set(rest);
    if (op === 'check') return { out: '', code: 1 }; // "check is not supported for chassis control"
    return { out: `Unknown operation: ${String(op)}\n`, code: 1 };
  }

  /** Resolves once every hook call queued so far has finished. */
  idle(): Promise<void> {
    return this.queue;
  }

  /** Drops a held power-off (it never reaches the hooks) and refuses further requests. */
  stop(): Promise<void> {
    this.stopped = true;
    if (this.pendingOff) this.clearTimer(this.pendingOff.handle);
    this.pendingOff = null;
    return this.queue;
  }

  private get(parms: string[]): ChassisReply {
    let out = '';
    for (const parm of parms) {
      if (parm === 'power') out += `power:${this.poweredOn() ? 1 : 0}\n`;
      else if (parm === 'boot') out += 'boot:default\n';
      else return { out: `Invalid parameter: ${parm}\n`, code: 1 };
    }
    return { out, code: 0 };
  }

  private set(pairs: string[]): ChassisReply {
    if (pairs.length % 2 !== 0) return { out: `No value present for parameter ${pairs[pairs.length - 1]}\n`, code: 1 };
    for (let i = 0; i < pairs.length; i += 2) {
      const [parm, value] = [pairs[i], pairs[i + 1]];
      if (parm === 'power' && (value === '0' || value === '1')) this.setPower(value === '1');
      else if (parm === 'reset' && value === '1') this.reset();
      else if (parm === 'shutdown' && value === '1') this.softOff();
      else if (parm === 'boot' || parm === 'identify') continue; // accepted, no effect on the simulation
      else return { out: `Invalid parameter or value: ${parm} ${value}\n`, code: 1 };
    }
    return { out: '', code: 0 };
  }

  private poweredOn(): boolean {
    if (this.pendingOff) return false;
    return this.opts.hooks.status() === 'on';
  }

  private setPower(on: boolean): void {
    if (!on) {
      if (this.pendingOff) return;
      const wasOn = this.opts.hooks.status() === 'on';
      const handle = this.setTimer(() => {
        if (this.pendingOff?.handle !== handle) return;
        this.pendingOff = null;
        this.enqueue('powerOff', () => this.opts.hooks.status() === 'on');
      }, this.opts.cycleWindowMs);
      this.pendingOff = { handle, wasOn };
      return;
    }
    const pending = this.pendingOff;
    if (pending) {
      this.clearTimer(pending.handle);
      this.pendingOff = null;
      if (pending.wasOn) this.enqueue('powerCycle', () => true);
      else this.enqueue('powerOn', () => this.opts.hooks.status() === 'off');
      return;
    }
    this.enqueue('powerOn', () => this.opts.hooks.status() === 'off');
  }

  /** `chassis power reset`: a hard reset of a running node is a power cycle; of an off node, nothing. */
  private reset(): void {
    if (this.pendingOff) return;
    this.enqueue('powerCycle', () => this.opts.hooks.status() === 'on');
  }

  /** `chassis power soft` (ACPI shutdown request): the simulated node just powers off. */
  private softOff(): void {
    if (this.pendingOff) return;
    this.enqueue('powerOff', () => this.opts.hooks.status() === 'on');
  }

  /** Queues a hook call; `when` is checked right before the call, after the calls queued before it. */
  private enqueue(hook: Hook, when: () => boolean): void {
    this.queue = this.queue.then(async () => {
      if (this.stopped || !when()) return;
      this.opts.log(`${hook}()`);
      try {
        await this.opts.hooks[hook]();
      } catch (err) {
        this.opts.log(`${hook}() failed: ${err instanceof Error ? err.message : String(err)}`);
      }
    });
  }
}
