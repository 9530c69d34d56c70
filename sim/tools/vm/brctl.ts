import type { ToolHandler } from '../types';
import { currentVm } from './vmState';

/**
 * bridge-utils' `brctl` on a simulated node, as far as ARTIFACT.md step 4 goes: `brctl addif br0 tap0`
 * once the VM's launcher has created its tap. Every node has the bridge br0 (the testbed's static
 * network setup). tap0 exists on the origin while a VM with a tap network boots or runs (lkvm
 * `--network mode=tap`, qemu `-netdev tap`) and goes with it, so a new VM's tap0 is on no bridge
 * yet. Messages and exit codes are bridge-utils'; every successful addif counts as `brctl:addif`.
 * Nothing else of brctl is imitated.
 */

const BRIDGE = 'br0';
const TAP = 'tap0';

export const brctlHandler: ToolHandler = async ({ argv, node, world, sudo, stderr }) => {
  const fail = (text: string) => {
    stderr.write(`${text}\n`);
    return 1;
  };
  const [, command, bridge, iface] = argv;
  if (command !== 'addif' || bridge === undefined || iface === undefined || argv.length > 4) {
    return fail(`SIMULATED brctl: only \`brctl addif <bridge> <interface>\` is imitated (got \`${argv.join(' ')}\`)`);
  }
  const vm = currentVm(world);
  const tapUp = vm !== undefined && vm.nodes[0] === node && vm.guestIp !== '';
  if (iface !== TAP || !tapUp) return fail(`interface ${iface} does not exist!`);
  if (bridge !== BRIDGE) return fail(`bridge ${bridge} does not exist!`);
  if (!sudo) return fail(`can't add ${iface} to bridge ${bridge}: Operation not permitted`);
  const bridged = node.volatile('brctl', (): { vmId?: number } => ({}));
  if (bridged.vmId === vm.id) return fail(`device ${iface} is already a member of a bridge; can't enslave it to bridge ${bridge}.`);
  bridged.vmId = vm.id;
  node.count('brctl:addif');
  return 0;
};
