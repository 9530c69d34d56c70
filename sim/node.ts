import { EventEmitter } from 'node:events';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { loadOrCreateKeyPair } from './keys';
import { clearVolatileDirs, Holder, NODE_HOME, NODE_PATH, NODE_STATE_DIR, NODE_USER, prepareSandbox, type HostTools, type SandboxMode } from './sandbox';
import { SshFront } from './ssh';
import type { Fault, FaultStep } from './tools/types';
import { kernelRelease, newBootId, NodeStateStore, type NodeState } from './state';

/** What a simulated node reports about itself (a snapshot). */
export interface SimNodeState {
  bootId: string;
  kernelRelease: string;
  /** Installed, becomes kernelRelease at the next reboot. */
  nextKernelRelease: string | null;
  bootedAt: Date;
  bootCount: number;
  /** Accepting SSH. */
  up: boolean;
  /**
   * 'up', 'rebooting' (down, coming back), 'hung' (powered but dead: a reboot that never came back,
   * until a power cycle), 'off' (powered off until powerOn()), 'stopped'.
   */
  power: 'up' | 'rebooting' | 'hung' | 'off' | 'stopped';
}

/** Counters for tests: they only grow while the simulator runs. */
export interface SimNodeStats {
  reboots: number;
  powerOffs: number;
  powerCycles: number;
  commands: number;
  connections: number;
  authFailures: number;
}

export interface SimNodeOptions {
  name: string;
  /** Host directory of this node: host key, state/, fs/. */
  nodeDir: string;
  mode: SandboxMode;
  tools: HostTools;
  /** The client public key the node accepts (OpenSSH line). */
  authorizedKey: string;
  /** Port to listen on; 0 = the port of the last run if free, else any. */
  port: number;
  /** How long a reboot keeps the node down, already scaled. */
  rebootDownMs: number;
  /** The cluster's time-scale knob: the node's `sleep` (sim/bin/sleep) follows it. */
  timeScale: number;
  /** Host directory of the generated tool wrappers (shared by every node). */
  toolsDir: string;
  log: (line: string) => void;
  /** This node's declared faults (sim/faults): `take` fires one, `peek` only looks. */
  faults?: { take(step: FaultStep): Fault | undefined; peek(step: FaultStep): Fault | undefined };
}

/** Why a node went down (the 'down' event's argument). */
export type DownReason = 'reboot' | 'power-cycle' | 'power-off' | 'stop';

/** Thrown by reboot() when the node hangs instead of coming back (fault `reboot-hang`). */
export class NodeHungError extends Error {
  override readonly name = 'NodeHungError';
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `uname -v` of a kernel built and installed on the node itself, e.g. `#1 SMP Mon Jun 19 13:30:12 UTC 2023`. */
function builtKernelVersion(at: Date): string {
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][at.getUTCDay()];
  const month = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][at.getUTCMonth()];
  const time = at.toISOString().slice(11, 19);
  return `#1 SMP ${day} ${month} ${at.getUTCDate()} ${time} UTC ${at.getUTCFullYear()}`;
}

/** What a node running the tool imitations needs in its commands' environment. */
const NODE_BIN = existsSync('/usr/bin/node') ? '/usr/bin/node' : process.execPath;

/**
 * One simulated node: its state, its sandbox (holder process), its SSH front, and its power:
 * reboot = drop every connection, kill every process, refuse SSH for rebootDownMs, come back on the
 * same port with a new boot_id and the installed kernel.
 *
 * Events (`events`): 'down' (the node just went down; argument: a DownReason) and 'boot' (argument:
 * fresh; a fresh boot comes after the state changed and before SSH accepts: listeners see the new
 * boot; a simulator start that keeps the node's boot is not fresh).
 */
export class SimNode {
  readonly name: string;
  /** `ssh-ed25519 AAAA... root@nodeN`, for known_hosts. */
  readonly hostPublicKey: string;
  readonly stats: SimNodeStats = { reboots: 0, powerOffs: 0, powerCycles: 0, commands: 0, connections: 0, authFailures: 0 };
  readonly events = new EventEmitter();
  private readonly store: NodeStateStore;
  private data: NodeState;
  private readonly front: SshFront;
  private holder: Holder | undefined;
  private power: SimNodeState['power'] = 'off';
  private transition: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private watcher: FSWatcher | undefined;
  private poller: NodeJS.Timeout | undefined;
  private currentPort = 0;

  constructor(private readonly opts: SimNodeOptions) {
    this.name = opts.name;
    const stateDir = path.join(opts.nodeDir, 'state');
    mkdirSync(stateDir, { recursive: true });
    this.store = new NodeStateStore(stateDir);
    this.data = this.store.load(opts.name);
    const hostKey = loadOrCreateKeyPair(path.join(opts.nodeDir, 'ssh_host_ed25519_key'), `root@${opts.name}`);
    this.front = new SshFront({
      nodeName: opts.name,
      hostKey: hostKey.private,
      authorizedKey: opts.authorizedKey,
      user: NODE_USER,
      stats: this.stats,
      run: (command, env) => this.run(command, env),
      dropAfterMs: () => opts.faults?.peek('ssh-drop')?.afterMs,
      takeDrop: () => opts.faults?.take('ssh-drop') !== undefined,
    });
    this.hostPublicKey = hostKey.public;
  }

  get port(): number {
    return this.currentPort;
  }

  get up(): boolean {
    return this.power === 'up';
  }

  get state(): SimNodeState {
    return {
      bootId: this.data.bootId,
      kernelRelease: this.data.kernelRelease,
      nextKernelRelease: this.store.peekInstalledKernel() ?? this.data.nextKernelRelease,
      bootedAt: new Date(this.data.bootedAtMs),
      bootCount: this.data.bootCount,
      up: this.up,
      power: this.power,
    };
  }

  /** Host path of the node's state directory (AE_SIM_STATE inside the node). */
  get stateDir(): string {
    return this.store.stateDir;
  }

  /** `uname -v` of the running kernel. */
  get kernelVersion(): string {
    return this.data.kernelVersion;
  }

  /** Host directory of this node (host key, state/, fs/, private files of the simulator). */
  get nodeDir(): string {
    return this.opts.nodeDir;
  }

  /** Host path of the node's filesystem root for /home (the node user's home is `<this>/ae`). */
  get homeDir(): string {
    return path.join(this.opts.nodeDir, 'fs', 'home');
  }

  /** Pids of every process running in the node right now (its holder included). */
  processes(): number[] {
    return this.holder?.processes() ?? [];
  }

  /**
   * Whether `sudo` on this node wants a password (as without a NOPASSWD sudoers rule): then it fails
   * like the real one over SSH (`sudo: a password is required`, exit 1). Kept across reboots.
   */
  requireSudoPassword(required: boolean): void {
    const flag = path.join(this.store.stateDir, 'sudo_password_required');
    if (required) writeFileSync(flag, 'a NOPASSWD rule is missing\n');
    else rmSync(flag, { force: true });
  }

  /** Marks `release` as installed: the next reboot boots it (what a `make install` does). */
  setNextKernel(release: string): void {
    this.data.nextKernelRelease = kernelRelease.parse(release);
    this.store.save(this.data);
  }

  /** First start of this simulator run: the node keeps the boot it had (boot_id, kernel, uptime). */
  async start(): Promise<void> {
    prepareSandbox(this.opts.nodeDir, this.store.stateDir, this.opts.mode);
    this.store.resetRequests();
    this.watchRequests();
    await this.boot(false);
  }

  /** Reboots the node; resolves when it accepts SSH again (a reboot in progress is joined). */
  reboot(): Promise<void> {
    if (this.transition) return this.transition;
    if (this.power !== 'up') return Promise.reject(new Error(`node ${this.name} is ${this.power}, not up: cannot reboot it`));
    return this.transit(async () => {
      const hang = this.opts.faults?.take('reboot-hang') !== undefined;
      const downMs = this.downMs();
      this.opts.log(`${this.name}: rebooting (down for ${downMs} ms)`);
      await this.goDown(hang ? 'hung' : 'rebooting', 'reboot');
      this.stats.reboots++;
      if (hang) {
        this.opts.log(`${this.name}: hung during the reboot (fault reboot-hang): only a power cycle brings it back`);
        throw new NodeHungError(`node ${this.name} hung during the reboot (simulated fault reboot-hang): power-cycle it through its BMC`);
      }
      await this.pause(downMs);
      if (this.power === 'stopped') return;
      await this.boot(true);
    });
  }

  /**
   * A hard power cycle (what a BMC's `chassis power cycle` or `reset` does): works on a running,
   * hung or powered-off node; resolves when it accepts SSH again.
   */
  powerCycle(): Promise<void> {
    if (this.transition) return this.transition.catch(() => {}).then(() => this.powerCycle());
    if (this.power === 'stopped') return Promise.reject(new Error(`node ${this.name} is stopped`));
    return this.transit(async () => {
      this.opts.log(`${this.name}: power cycle`);
      if (this.power === 'up') await this.goDown('rebooting', 'power-cycle');
      else this.power = 'rebooting';
      this.stats.powerCycles++;
      await this.pause(this.downMs());
      if ((this.power as SimNodeState['power']) === 'stopped') return;
      await this.boot(true);
    });
  }

  /** How long the node stays down over a reboot (a `slow` node takes longer). */
  private downMs(): number {
    return this.opts.rebootDownMs * (this.opts.faults?.peek('slow')?.factor ?? 1);
  }

  /** Waits `ms`, or less if the simulator stops meanwhile. */
  private async pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wakeUp = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wakeUp = undefined;
  }

  /** Powers the node off (what `poweroff` inside it does): down until powerOn(). */
  powerOff(): Promise<void> {
    if (this.transition) return this.transition.catch(() => {}).then(() => this.powerOff());
    if (this.power === 'hung') {
      this.power = 'off';
      this.stats.powerOffs++;
      return Promise.resolve();
    }
    if (this.power !== 'up') return Promise.resolve();
    return this.transit(async () => {
      this.opts.log(`${this.name}: powering off`);
      await this.goDown('off', 'power-off');
      this.stats.powerOffs++;
    });
  }

  /** Powers an off node on: a fresh boot. */
  powerOn(): Promise<void> {
    if (this.transition) return this.transition.catch(() => {}).then(() => this.powerOn());
    if (this.power !== 'off') return Promise.resolve();
    return this.transit(() => this.boot(true));
  }

  /** Stops the node for good (simulator shutdown): state stays on disk, every process dies. */
  async stop(): Promise<void> {
    const inFlight = this.transition;
    this.power = 'stopped';
    this.wakeUp?.();
    await inFlight?.catch(() => {});
    this.watcher?.close();
    this.watcher = undefined;
    if (this.poller) clearInterval(this.poller);
    this.poller = undefined;
    await this.goDown('stopped', 'stop');
  }

  /** Synchronous last resort for process exit handlers: kills every process of the node. */
  killAllSync(): void {
    this.holder?.killAllSync();
  }

  private transit(fn: () => Promise<void>): Promise<void> {
    const p = fn().finally(() => {
      if (this.transition === p) this.transition = undefined;
    });
    this.transition = p;
    return p;
  }

  private async goDown(next: SimNodeState['power'], why: DownReason): Promise<void> {
    const wasUp = this.power === 'up' || this.holder !== undefined;
    if (this.power !== 'stopped') this.power = next;
    await this.front.cut();
    const holder = this.holder;
    this.holder = undefined;
    await holder?.killAll();
    if (wasUp) this.emit('down', why);
  }

  /** Listeners are the simulator's own code: one that throws is logged, never breaks a boot. */
  private emit(event: 'down' | 'boot', arg: boolean | DownReason): void {
    for (const listener of this.events.listeners(event)) {
      try {
        (listener as (arg: boolean | DownReason) => void)(arg);
      } catch (err) {
        this.opts.log(`${this.name}: ${event} listener failed: ${(err as Error).message}`);
      }
    }
  }

  private async boot(fresh: boolean): Promise<void> {
    if (fresh) {
      const installed = this.store.takeInstalledKernel() ?? this.data.nextKernelRelease;
      if (installed) {
        this.data.kernelRelease = installed;
        this.data.kernelVersion = builtKernelVersion(new Date());
      }
      this.data.nextKernelRelease = null;
      this.data.bootId = newBootId();
      this.data.bootedAtMs = Date.now();
      this.data.bootCount++;
      this.store.resetVolatile();
      clearVolatileDirs(this.opts.nodeDir);
    }
    this.store.writeBootId(this.data);
    this.store.save(this.data);
    this.emit('boot', fresh);
    this.holder = await Holder.start({ mode: this.opts.mode, tools: this.opts.tools, nodeName: this.name, nodeDir: this.opts.nodeDir, toolsDir: this.opts.toolsDir, log: this.opts.log });
    try {
      this.currentPort = await this.listen();
    } catch (err) {
      await this.holder.killAll();
      this.holder = undefined;
      this.power = 'off';
      throw err;
    }
    if (this.data.port !== this.currentPort) {
      this.data.port = this.currentPort;
      this.store.save(this.data);
    }
    if ((this.power as SimNodeState['power']) === 'stopped') {
      await this.goDown('stopped', 'stop');
      return;
    }
    this.power = 'up';
    if (fresh) this.opts.log(`${this.name}: up on port ${this.currentPort}, boot_id ${this.data.bootId}, kernel ${this.data.kernelRelease}`);
  }

  /** The configured port; else this node's port of the last run (when free); else any free port. */
  private async listen(): Promise<number> {
    const wanted = this.opts.port || this.currentPort || this.data.port || 0;
    // After a reboot the port must be the same: retry briefly if something holds it.
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.front.listen(wanted);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (code !== 'EADDRINUSE') throw err;
        if (!this.opts.port && !this.currentPort && wanted !== 0) return this.front.listen(0);
        if (attempt >= 20) throw new Error(`node ${this.name}: port ${wanted} is taken by another process: ${(err as Error).message}`);
        await sleep(100);
      }
    }
  }

  private run(command: string, clientEnv: Record<string, string>) {
    if (!this.holder || this.power !== 'up') throw new Error('the node is going down');
    const env: Record<string, string> = {
      ...clientEnv,
      HOME: NODE_HOME,
      USER: NODE_USER,
      LOGNAME: NODE_USER,
      SHELL: '/bin/bash',
      PATH: NODE_PATH,
      AE_SIM_NODE: this.name,
      AE_SIM_STATE: NODE_STATE_DIR,
      AE_SIM_NODE_BIN: NODE_BIN,
      AE_SIM_TIME_SCALE: String(this.opts.timeScale),
    };
    return this.holder.run(command, env);
  }

  /** Requests from inside the node (the reboot/poweroff imitations) arrive as files in state/ctl. */
  private watchRequests(): void {
    const ctl = path.join(this.store.stateDir, 'ctl');
    try {
      this.watcher = watch(ctl, () => this.takeRequests());
      this.watcher.on('error', () => {});
    } catch {
      // polling below still works
    }
    this.poller = setInterval(() => this.takeRequests(), 200);
    this.poller.unref();
  }

  private takeRequests(): void {
    const ctl = path.join(this.store.stateDir, 'ctl');
    if (!existsSync(ctl)) return;
    for (const file of readdirSync(ctl)) {
      if (file.endsWith('.tmp')) continue;
      const full = path.join(ctl, file);
      let action = '';
      try {
        action = readFileSync(full, 'utf8').trim();
      } catch {
        continue;
      }
      rmSync(full, { force: true });
      if (this.power !== 'up' || this.transition) continue;
      const fail = (err: Error) => this.opts.log(`${this.name}: ${action} failed: ${err.message}`);
      if (action === 'reboot') this.reboot().catch(fail);
      else if (action === 'poweroff') this.powerOff().catch(fail);
      else this.opts.log(`${this.name}: ignoring unknown request "${action}" in ${full}`);
    }
  }
}
