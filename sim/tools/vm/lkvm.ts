import { existsSync, readFileSync, statSync } from 'node:fs';
import { guestKindOf } from '../../guest/image';
import type { ToolHandler, WorldNode } from '../types';
import { runVm } from './boot';
import { vmDeps } from './deps';
import { NODE_FLAGS, parseLkvmArgs } from './lkvmArgs';
import { createLkvmSocket, lkvmSockets } from './lkvmSockets';
import { currentVm, usedNodes } from './vmState';

/**
 * `lkvm` of fragvisor-kvmtool (ARTIFACT.md step 4). `lkvm run ...` on the origin, as root, with the
 * messaging layer up on exactly the VM's nodes and a FragVisor guest kernel, boots the distributed
 * VM and stays in the foreground with its console on stdout while the VM runs. Refusals print
 * kvmtool-style `  Error:` / `  Fatal:` lines. Every `lkvm run` counts as a launch (`lkvm`).
 */

// kvmtool names a VM guest-<pid>; a counter does here.
let vmNameSeq = 1000;

export const lkvmHandler: ToolHandler = async (ctx) => {
  const { argv, node, world } = ctx;
  const out = (text: string) => ctx.stdout.write(text);
  const fatal = (text: string, code = 1) => {
    ctx.stderr.write(`  Fatal: ${text}\n`);
    return code;
  };
  if (argv[1] === 'version' || argv[1] === '--version') {
    out('kvm tool 3.18.0-fragvisor (SIMULATED)\n');
    return 0;
  }
  if (argv.length < 2 || argv[1] === 'help' || argv[1] === '--help') {
    out('\n usage: lkvm [--version] [--debug] [--help] COMMAND [ARGS]\n\n The most commonly used lkvm commands are:\n   run        Start the virtual machine\n   version    Print the version of the kernel tree kvm tools\n\n SIMULATED: only `run` and `version` are imitated.\n');
    return argv.length < 2 ? 1 : 0;
  }
  const parsed = parseLkvmArgs(argv);
  if (!parsed.ok) {
    ctx.stderr.write(parsed.message);
    return parsed.code;
  }
  const cfg = parsed.config;
  node.count('lkvm');
  const deps = vmDeps();

  // kvmtool opens /dev/kvm first thing.
  if (!ctx.sudo) {
    ctx.stderr.write("  Error: '/dev/kvm' could not be opened: Permission denied (run lkvm as root: sudo ./lkvm run ...)\n");
    return 1;
  }
  if (node.index !== 0) return fatal(`${node.name} is node ${node.index}: the distributed VM is launched from the origin (node 0), which runs vCPU 0`);
  const missing = cfg.nodes.filter((i) => i >= world.nodes.length);
  if (missing.length > 0) return fatal(`-${NODE_FLAGS[missing[0]]} asks for node ${missing[0]}, but the cluster has ${world.nodes.length} node(s)`);
  const nodes: WorldNode[] = cfg.nodes.map((i) => world.nodes[i]);

  // kvmtool's IPC: a socket left in /root/.lkvm by an earlier VM stops it on any node.
  for (const n of nodes) {
    const stale = lkvmSockets(n);
    if (stale.length > 0) {
      ctx.stderr.write(`  Error: Socket file ${stale[0]} already exist\n`);
      return fatal(`Failed to start the IPC socket on ${n.name} (node ${n.index}): remove the stale sockets in /root/.lkvm/ on every node`);
    }
  }

  const kernelPath = node.resolve(ctx.cwd, cfg.kernel);
  const kernel = await deps.kernelImage(node, kernelPath);
  if (!kernel) return fatal(`Unable to open kernel ${kernelPath}`);
  if (kernel.flavour !== 'fragvisor') return fatal(`${kernelPath} is not a FragVisor kernel (${kernel.flavour}${kernel.release ? ` ${kernel.release}` : ''}): build the guest kernel from fragvisor-linux`);
  if (kernel.hostKernel === true) return fatal(`${kernelPath} is a FragVisor host kernel (POPHYPE_HOST_KERNEL 1): the guest kernel is built with POPHYPE_HOST_KERNEL 0`);
  const initrdPath = cfg.initrd === undefined ? undefined : node.resolve(ctx.cwd, cfg.initrd);
  if (initrdPath !== undefined && !nodeFileExists(node, initrdPath)) return fatal(`Unable to open initrd ${initrdPath}`);

  const running = currentVm(world);
  if (running) return fatal(`a distributed VM already runs on ${running.nodes.map((n) => n.name).join(', ')}: the VM cannot be restarted while it runs`);
  const used = usedNodes(nodes);
  if (used.length > 0) {
    return fatal(`the VM cannot be restarted: ${used.map((n) => n.name).join(', ')} ran a VM since ${used.length > 1 ? 'they' : 'it'} last booted; reboot every node, reload the messaging layer, then launch again`);
  }
  const layer = deps.msgLayer(world, nodes);
  if (!layer.ready) {
    return fatal(`the Popcorn messaging layer is not up on exactly the VM's nodes (${nodes.map((n) => `${n.index}:${n.name}`).join(' ')})${layer.problems.length ? `: ${layer.problems.join('; ')}` : ''}`);
  }
  // A layer can be up and still unusable: without an origin kernel nobody owns the VM's devices.
  if (layer.problems.length > 0) return fatal(`the Popcorn messaging layer is up, but ${layer.problems.join('; ')}`);

  const name = cfg.name ?? `guest-${vmNameSeq++}`;
  const net = cfg.networks.find((n) => n.mode === 'tap');
  const guestIp = net?.guestIp;
  out(`  # lkvm run -k ${kernelPath} -m ${cfg.memMiB} -c ${cfg.cpus} --name ${name}\n`);
  out(`  # FragVisor (SIMULATED): ${cfg.cpus} vCPU(s), vCPU i on node i: ${nodes.map((n) => `${n.index}:${n.name}`).join(' ')}\n`);
  return runVm({
    world,
    nodes,
    hypervisor: 'fragvisor',
    kind: initrdPath === undefined ? 'plain' : guestKindOf(initrdPath, readNodeFile(node, initrdPath)),
    facts: {
      hypervisor: 'fragvisor',
      kernelRelease: kernel.release ?? '4.4.137-pop-hype-guest',
      params: cfg.params,
      vcpus: nodes.length,
      memMiB: cfg.memMiB,
      nodeIps: nodes.map((n) => n.rdmaIp),
      guestIp: guestIp ?? '192.168.33.15',
      init: cfg.init,
    },
    console: ctx.stdout,
    signal: ctx.signal,
    crash: cfg.crash,
    guestIp,
    deps,
    onStart: () => nodes.forEach((n) => createLkvmSocket(n, name)),
  });
};


/** The content of a node file, if it can be read (small marker files only are read whole). */
export function readNodeFile(node: WorldNode, nodePath: string): Buffer | undefined {
  try {
    const file = node.hostPath(nodePath);
    return statSync(file).size <= 1 << 20 ? readFileSync(file) : undefined;
  } catch {
    return undefined;
  }
}

function nodeFileExists(node: WorldNode, nodePath: string): boolean {
  try {
    return existsSync(node.hostPath(nodePath));
  } catch {
    return false;
  }
}
