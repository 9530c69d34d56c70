import type { Readable, Writable } from 'node:stream';

/**
 * The contract between the simulator and its FragVisor imitations (kernel make, msg_layer, insmod,
 * lkvm, qemu, guest tools). A node command like `sudo insmod msg_rdma.ko` runs a thin client on the
 * node (sim/bin/<tool> -> sim/bin/_ctl.js) that forwards argv, cwd and environment over the node's
 * control socket to the simulator process, where a ToolHandler does the work with access to the
 * whole simulated cluster (other nodes, the messaging layer, the VM). Output streams back; the exit
 * code ends the call; the client process dying (Ctrl-C, kill, node reboot) aborts `signal`.
 *
 * Registration: sim/tools/registry.ts (`registerTool(name, handler)`; several handlers may share a
 * name and are asked in order, DELEGATE passing to the next), wired for every cluster in
 * sim/tools/index.ts. A registered name without a file in sim/bin gets a generated wrapper on the
 * node's PATH. Implementation: sim/world.ts (`asSimWorldNode(node)` for the simulator's extras:
 * `writeFile`/`writeNodeFile` (files owned by the node user), `slowFactor()`, `kmsg`, `privateDir`).
 */
export interface ToolContext {
  /** The node the command runs on. */
  node: WorldNode;
  world: World;
  /** argv[0] is the tool name as invoked (e.g. `insmod`). */
  argv: string[];
  /** Working directory inside the node (a node path such as /home/ae/FragVisor/fragvisor-linux). */
  cwd: string;
  env: Record<string, string>;
  /** True when invoked through the node's sudo imitation (the command acts as root). */
  sudo: boolean;
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  /** Aborted when the calling process goes away or the node goes down. */
  signal: AbortSignal;
}

/**
 * Returns the exit code, or DELEGATE to run the system's real tool instead (e.g. `make` outside a
 * FragVisor tree). Throwing prints the message on stderr and exits 1.
 */
export type ToolHandler = (ctx: ToolContext) => Promise<number | typeof DELEGATE>;
export const DELEGATE = Symbol('delegate to the real tool');

/** Per node, what the imitations share. */
export interface WorldNode {
  readonly name: string;
  /** Node id = position in the profile (the origin is 0). */
  readonly index: number;
  readonly rdmaIp: string;
  readonly up: boolean;
  readonly bootId: string;
  readonly kernelRelease: string;
  /**
   * Host path for a path inside the node (/home, /root, /tmp, /var/tmp, /dev/shm); throws elsewhere
   * (read-only host). Symlinks are followed as the node sees them, so a link never leads to a host file.
   * Files a handler creates are owned by root (the simulator): see writeNodeFile in sim/world.ts.
   */
  hostPath(nodePath: string): string;
  /** Node path for a path relative to `cwd` (resolves `..`, `~` = /home/ae). */
  resolve(cwd: string, p: string): string;
  /**
   * The kernel ring buffer: what `dmesg` prints, cleared at boot (its first line says SIMULATED).
   * lines() are the messages as appended, without the `[   12.345678] ` timestamps dmesg adds;
   * every message also goes to the node's serial console (the BMC's SOL).
   */
  readonly dmesg: { append(line: string): void; lines(): readonly string[] };
  /** Installs a kernel: it becomes `uname -r` at the next boot. */
  installKernel(release: string): void;
  /** Per-boot state of one imitation (messaging layer, VM, ...): created on first use, dropped at every boot. */
  volatile<T>(key: string, create: () => T): T;
  /**
   * Counts non-idempotent actions (make, insmod, lkvm, reboots) for tests and chaos runs. Counted by
   * the simulator itself: `boot`, `reboot`, `power-cycle`, `power-off`, `bmc:power-*`, `make:<target>`.
   */
  count(action: string): void;
  readonly counters: Readonly<Record<string, number>>;
  /** Asks for a reboot as `reboot` would (the node goes down shortly after; a `reboot-hang` fault applies). */
  requestReboot(): void;
  /** Subscribe to boots and shutdowns (e.g. the VM dies when any of its nodes goes down). */
  on(event: 'down' | 'boot', listener: () => void): void;
}

export interface World {
  readonly nodes: readonly WorldNode[];
  node(name: string): WorldNode;
  /** The node whose rdmaIp is `ip`, if any. */
  nodeByRdmaIp(ip: string): WorldNode | undefined;
  /** Sleeps `simMs` of simulated time (scaled by the one time-scale knob; 0 = no wait); rejects on abort. */
  sleep(simMs: number, signal?: AbortSignal): Promise<void>;
  readonly timeScale: number;
  readonly seed: number;
  /** Extra bytes of compiler command lines (as `make V=1` prints them) in every kernel build log: the bench's log-streaming figure. */
  readonly buildLogPadBytes?: number;
  /**
   * Fires the fault declared for this node and step, if one is armed (see sim/faults): call it once,
   * when the step happens; each call counts one of its `times` (default 1). `slow` stays armed until
   * cleared unless it was given `times`.
   */
  fault(node: string, step: FaultStep): Fault | undefined;
  /** Cluster-wide state of one imitation (e.g. the running VM), kept until the sim stops. */
  shared<T>(key: string, create: () => T): T;
}

export type FaultStep =
  | 'reboot-hang' // a reboot never comes back; only a BMC power cycle cures it
  | 'kernel-build' // make fails with a compiler error
  | 'kvmtool-build' // make in the kvmtool checkout fails with a compiler error
  | 'insmod-hang' // insmod never returns (no timeout, like the real one)
  | 'rdma-connect' // this node's RDMA connects fail (-62)
  | 'ssh-drop' // SSH connections drop mid-command
  | 'guest-boot' // the guest kernel panics during boot
  | 'slow'; // every simulated duration on this node is multiplied

export interface Fault {
  step: FaultStep;
  /** How many times it fires before healing (default: once). */
  times?: number;
  /** For `slow`: the multiplier. For `ssh-drop`: after how many ms of a command. */
  factor?: number;
  afterMs?: number;
}
