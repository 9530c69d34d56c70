import { guestKindOf } from '../../guest/image';
import type { ToolContext, ToolHandler, World, WorldNode } from '../types';
import { runVm } from './boot';
import { readNodeFile } from './lkvm';
import { vmDeps } from './deps';
import { parseQemuArgs, type QemuConfig } from './qemuArgs';
import { currentVm, usedNodes } from './vmState';

/**
 * GiantVM's `qemu-system-x86_64` (the baseline of the claims): one instance per node, each
 * blocking until all instances named by iplist have joined (like the messaging layer), then the
 * guest boots with hypervisor = giantvm for the performance model; its console goes to the
 * stdout of the instance with start=0. Needs GiantVM's Linux-DSM host kernel booted on every node.
 * The sim runs it as the paper compares it: one vCPU per node (n = 1, start = position, -smp =
 * number of nodes). An instance killed before the VM starts leaves; once it runs, any instance
 * going (or its node) kills the VM, which like FragVisor's cannot be restarted without a reboot
 * of its nodes. Every instance counts as a `qemu` launch.
 */

interface Member {
  position: number;
  node: WorldNode;
  ctx: ToolContext;
  cfg: QemuConfig;
}

interface Formation {
  key: string;
  size: number;
  members: Map<number, Member>;
  started: boolean;
  /** Resolves with the VM's exit code once it ran; undefined until every instance joined. */
  done?: Promise<number>;
  joined: () => void;
  allJoined: Promise<void>;
}

function formationOf(world: World): { current?: Formation } {
  return world.shared('giantvm-formation', () => ({}) as { current?: Formation });
}

function newFormation(key: string, size: number): Formation {
  let joined!: () => void;
  const allJoined = new Promise<void>((r) => (joined = r));
  return { key, size, members: new Map(), started: false, joined, allJoined };
}

export const qemuHandler: ToolHandler = async (ctx) => {
  const { node, world } = ctx;
  const fail = (text: string) => {
    ctx.stderr.write(`qemu-system-x86_64: ${text}\n`);
    return 1;
  };
  if (ctx.argv[1] === '--version' || ctx.argv[1] === '-version') {
    ctx.stdout.write('QEMU emulator version 2.8.1 (GiantVM, SIMULATED)\n');
    return 0;
  }
  const parsed = parseQemuArgs(ctx.argv.slice(1));
  if (!parsed.ok) {
    ctx.stderr.write(parsed.message);
    return 1;
  }
  const cfg = parsed.config;
  node.count('qemu');
  const deps = vmDeps();
  if (!cfg.kvm) return fail('GiantVM needs KVM: add --enable-kvm');
  if (!ctx.sudo) {
    ctx.stderr.write('Could not access KVM kernel module: Permission denied\n');
    return fail('failed to initialize KVM: Permission denied');
  }
  if (!cfg.irqchipOff) return fail('GiantVM needs -machine kernel-irqchip=off (its DSM cannot share an in-kernel irqchip)');
  const booted = deps.bootedKernel(node);
  if (booted.flavour !== 'giantvm') return fail(`-local-cpu: ${node.name} runs ${booted.release ?? node.kernelRelease}, not GiantVM's Linux-DSM host kernel (boot it on every node first)`);
  const position = cfg.iplist.indexOf(node.rdmaIp);
  if (position < 0) return fail(`-local-cpu: this host (${node.rdmaIp}) is not in iplist "${cfg.iplist.join(' ')}"`);
  if (cfg.localCpus !== 1 || cfg.start !== position || cfg.smp !== cfg.iplist.length) {
    return fail(`-local-cpu ${cfg.localCpus},start=${cfg.start}: the sim runs GiantVM with one vCPU per node: -smp ${cfg.iplist.length} and -local-cpu 1,start=${position} on this node (position ${position} of iplist)`);
  }
  const nodes = cfg.iplist.map((ip) => world.nodeByRdmaIp(ip));
  const running = currentVm(world);
  if (running) return fail(`a distributed VM already runs on ${running.nodes.map((n) => n.name).join(', ')}`);
  if (usedNodes([node]).length > 0) return fail(`${node.name} ran a VM since it last booted: the VM cannot be restarted; reboot every node first`);
  if (position === 0) {
    if (!cfg.kernel) return fail('no -kernel: give the guest bzImage');
    if (!(await deps.kernelImage(node, node.resolve(ctx.cwd, cfg.kernel)))) return fail(`could not load kernel '${cfg.kernel}': No such file or directory`);
  }

  const key = JSON.stringify([cfg.smp, cfg.memMiB, cfg.iplist]);
  const holder = formationOf(world);
  if (!holder.current || holder.current.started) holder.current = newFormation(key, cfg.iplist.length);
  const f = holder.current;
  if (f.key !== key) return fail(`-local-cpu: the instances disagree (-smp, -m or iplist differ from the ${f.members.size} instance(s) already waiting)`);
  if (f.members.has(position)) return fail(`-local-cpu: an instance for position ${position} (${node.name}) is already waiting`);
  f.members.set(position, { position, node, ctx, cfg });
  ctx.stderr.write(`GiantVM (SIMULATED): ${node.name} joined as vCPU ${position}; ${f.size - f.members.size} more instance(s) to go\n`);

  if (f.members.size === f.size) {
    f.started = true;
    f.done = launch(world, f, nodes as WorldNode[]);
    f.joined();
  } else {
    const left = await Promise.race([f.allJoined.then(() => false), aborted(ctx.signal).then(() => true)]);
    if (left && !f.started) {
      f.members.delete(position);
      return 130;
    }
  }
  return f.done!;
};

function launch(world: World, f: Formation, nodes: WorldNode[]): Promise<number> {
  const origin = f.members.get(0)!;
  const anyGone = new AbortController();
  for (const m of f.members.values()) {
    const onAbort = () => anyGone.abort(new Error(`the qemu instance on ${m.node.name} went away`));
    if (m.ctx.signal.aborted) onAbort();
    else m.ctx.signal.addEventListener('abort', onAbort, { once: true });
  }
  const cfg = origin.cfg;
  const initrd = cfg.initrd === undefined ? undefined : origin.node.resolve(origin.ctx.cwd, cfg.initrd);
  const init = cfg.append.split(/\s+/).find((w) => w.startsWith('init='))?.slice(5) || '/init';
  const guestIp = '10.4.4.222';
  return runVm({
    world,
    nodes,
    hypervisor: 'giantvm',
    kind: initrd === undefined ? 'plain' : guestKindOf(initrd, readNodeFile(origin.node, initrd)),
    facts: { hypervisor: 'giantvm', kernelRelease: '4.4.137-guest', params: cfg.append, vcpus: nodes.length, memMiB: cfg.memMiB, nodeIps: nodes.map((n) => n.rdmaIp), guestIp, init },
    console: origin.ctx.stdout,
    signal: anyGone.signal,
    guestIp: cfg.tap ? guestIp : undefined,
    deps: vmDeps(),
  });
}

function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
}
