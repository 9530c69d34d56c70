import { startGuest, type Guest } from '../../guest/guest';
import type { GuestKind } from '../../guest/image';
import { guestSshPort } from '../../guest/sshd';
import type { Hypervisor } from '../../model/schema';
import type { World, WorldNode } from '../types';
import { publishGuestRoutes } from './guestNet';
import { earlyBoot, lateBoot, loginBanner, panic, stamp, type ConsoleFacts } from './console';
import type { VmDeps } from './deps';
import { nodeVmUse, vmBoard, type VmRecord } from './vmState';

/**
 * The life of one distributed VM, shared by lkvm (FragVisor) and the GiantVM qemu: the boot
 * console, the boot time (about 2 minutes of model time, ARTIFACT.md step 4), the guest from then
 * on, and its death: the launcher killed, any of its nodes going down, or the guest powering off.
 * A `guest-boot` fault on any of its nodes (or a crashing command line) panics the kernel instead:
 * the guest never answers and the launcher exits non-zero. Whatever ends it, its nodes keep the
 * mark that they ran a VM until they reboot.
 */

/** Model time from `lkvm run` to the guest's sshd answering. */
export const BOOT_MODEL_MS = 120_000;

export interface VmLaunch {
  world: World;
  /** vCPU k runs on nodes[k]. */
  nodes: readonly WorldNode[];
  hypervisor: Hypervisor;
  kind: GuestKind;
  facts: ConsoleFacts;
  /** Where the boot console goes (the launcher's stdout). */
  console: { write(text: string): void };
  /** The launcher going away (kill, Ctrl-C, its node going down) kills the VM. */
  signal: AbortSignal;
  /** Set when the kernel is bound to panic during boot (from the command line). */
  crash?: string;
  /** undefined = not reachable from the host (no tap network). */
  guestIp?: string;
  deps: VmDeps;
  /** Called once the VM is registered (before its boot), e.g. to leave kvmtool's sockets on its nodes. */
  onStart?(vm: VmRecord): void;
}

type Death = { how: 'killed' } | { how: 'node-down'; node: WorldNode } | { how: 'poweroff' | 'reboot' };

export async function runVm(l: VmLaunch): Promise<number> {
  const { world, nodes } = l;
  const board = vmBoard(world);
  const id = board.nextId++;
  const deathCtl = new AbortController();
  let death: Death | undefined;
  let guest: Guest | undefined;
  let unpublishRoutes: (() => void) | undefined;
  const die = (d: Death) => {
    if (death) return;
    death = d;
    record.phase = 'dead';
    deathCtl.abort(new Error('the VM died'));
  };
  const record: VmRecord = {
    id,
    hypervisor: l.hypervisor,
    nodes,
    guestIp: l.guestIp ?? '',
    phase: 'booting',
    kill: () => die({ how: 'killed' }),
  };
  board.current = record;
  board.launches++;
  for (const n of nodes) Object.assign(nodeVmUse(n), { vmId: id, hypervisor: l.hypervisor });
  for (const n of nodes) n.on('down', () => die({ how: 'node-down', node: n }));
  const onAbort = () => die({ how: 'killed' });
  l.signal.addEventListener('abort', onAbort, { once: true });
  if (l.signal.aborted) onAbort();
  l.onStart?.(record);

  const say = (lines: string[]) => l.console.write(lines.map((x) => `${x}\n`).join(''));
  const slow = Math.max(1, ...nodes.map((n) => world.fault(n.name, 'slow')?.factor ?? 1));
  const bootMs = BOOT_MODEL_MS * slow;
  const bootSeconds = bootMs / 1000;
  const failing = l.crash ?? (nodes.some((n) => world.fault(n.name, 'guest-boot') !== undefined) ? 'BUG: unable to handle kernel paging request at ffff880000000000 (guest-boot fault)' : undefined);

  try {
    say(earlyBoot(l.facts));
    if (failing) {
      await world.sleep(bootMs * 0.3, deathCtl.signal);
      say(panic(bootSeconds * 0.3, failing));
      record.phase = 'dead';
      say(['  # KVM session ended abnormally.']);
      return 1;
    }
    await world.sleep(bootMs * 0.6, deathCtl.signal);
    say(lateBoot(l.facts, bootSeconds));
    await world.sleep(bootMs * 0.4, deathCtl.signal);
    guest = await startGuest({
      kind: l.kind,
      hypervisor: l.hypervisor,
      vcpus: nodes.length,
      memMiB: l.facts.memMiB,
      model: l.deps.model(world),
      stateDir: l.deps.stateDir(world),
      sshPort: guestSshPort(l.deps.stateDir(world)),
      guestIp: l.facts.guestIp,
      init: l.facts.init,
      onPowerOff: (how) => die({ how }),
    });
    record.guest = guest;
    if (l.guestIp) unpublishRoutes = publishGuestRoutes(nodes[0], l.guestIp, guest.ports);
    if (!death) {
      record.phase = 'running';
      say(loginBanner(l.facts, bootSeconds, `127.0.0.1:${guest.ssh.port}`));
      await new Promise<void>((resolve) => deathCtl.signal.addEventListener('abort', () => resolve(), { once: true }));
    }
  } catch (err) {
    if (!death) {
      say([`  Fatal: the simulated guest could not start: ${(err as Error).message}`]);
      die({ how: 'killed' });
      return 1;
    }
  } finally {
    record.phase = 'dead';
    l.signal.removeEventListener('abort', onAbort);
    unpublishRoutes?.();
    await guest?.stop();
  }
  return farewell(death, say);
}

function farewell(death: Death | undefined, say: (lines: string[]) => void): number {
  switch (death?.how) {
    case 'poweroff':
      say([`${stamp(0)} reboot: Power down`, '  # KVM session ended normally.']);
      return 0;
    case 'reboot':
      say([`${stamp(0)} reboot: Restarting system`, '  # KVM session ended normally. (a FragVisor VM cannot be restarted: reboot every node first)']);
      return 0;
    case 'node-down':
      say([
        `${stamp(0)} popcorn: node ${death.node.index} (${death.node.rdmaIp}) is gone`,
        ...panic(0, `Popcorn: lost vCPU ${death.node.index} with ${death.node.name}`),
        '  # KVM session ended abnormally.',
      ]);
      return 1;
    default:
      return 137;
  }
}
