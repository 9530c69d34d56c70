import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DELEGATE } from '../../sim/tools/types';
import { msgLayerMake, msgLayerNodeIds, msgLayerReady, msgLayerStatus, register, setMsgLayerDeps, type MsgLayerDeps } from '../../sim/tools/msglayer';
import { insmodHandler } from '../../sim/tools/msglayer/insmod';
import { renderModule } from '../../sim/tools/msglayer/ko';
import { lsmodHandler } from '../../sim/tools/msglayer/lsmod';
import { rmmodHandler } from '../../sim/tools/msglayer/rmmod';
import { call, FakeWorld, type Call, type FakeNode } from '../helpers/fakeWorld';
import { ToolRegistry } from '../../sim/tools/registry';

/**
 * The messaging layer's connection rules on an in-memory cluster with a virtual clock: node k
 * connects to 0..k-1 and accepts k+1.. (each accept waits at most 60 s), insmod blocks until all
 * connections are up, and the dmesg lines are exactly the artifact's.
 */

const ECHO = ['10.4.6.15', '10.4.6.14', '10.4.6.10', '10.4.6.11'];
const POP = '4.4.137-pop-hype';
const TREE = '/home/ae/FragVisor/fragvisor-linux';
const KO = 'msg_layer/msg_rdma.ko';

let root: string;
let world: FakeWorld;
let previousDeps: MsgLayerDeps;
/** Which nodes run an origin kernel (default: node0 only). */
let origins: Set<string>;

beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'msglayer-unit-'));
  world = new FakeWorld(root, ECHO, POP);
  origins = new Set(['node0']);
  previousDeps = setMsgLayerDeps({
    bootedKernel: (node) => ({ release: node.kernelRelease, fragvisor: node.kernelRelease.endsWith('-pop-hype'), origin: origins.has(node.name) }),
    treeRelease: () => POP,
    windowFloorMs: 0,
  });
});

afterEach(() => {
  setMsgLayerDeps(previousDeps);
  rmSync(root, { recursive: true, force: true });
});

/** What `make -C msg_layer` would leave on the node (the build itself is tested in msglayerMake.test.ts). */
function installModule(node: FakeNode, ips: readonly string[], release = POP): void {
  const file = node.hostPath(`${TREE}/${KO}`);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, renderModule({ module: 'msg_rdma', ips: [...ips], release, builtIn: `${TREE}/msg_layer` }));
}

const insmod = (node: FakeNode, sudo = true): Call => call(world, node, insmodHandler, ['insmod', KO], { cwd: TREE, sudo });
const rmmod = (node: FakeNode, sudo = true): Call => call(world, node, rmmodHandler, ['rmmod', 'msg_rdma'], { sudo });
const lsmod = (node: FakeNode): Call => call(world, node, lsmodHandler, ['lsmod']);

/** The artifact's dmesg for node `me` of `ips`: the list, Ready, then one joined line per peer. */
function readyLog(ips: readonly string[], me: number): string[] {
  return [
    'popcorn: Loading node configuration...',
    ...ips.map((ip, i) => `popcorn: ${i === me ? '*' : ' '} ${i}: ${ip}`),
    'popcorn: Ready on InfiniBand RDMA',
    ...ips.map((_, i) => i).filter((i) => i !== me).map((i) => `popcorn:    ${i} joined, x86_64`),
  ];
}

const listLog = (ips: readonly string[], me: number) => readyLog(ips, me).slice(0, ips.length + 1);

/** Starts insmod on nodes in `order`, `gapMs` of simulated time apart (the artifact's script sleeps 1 s). */
async function insmodInOrder(order: number[], gapMs = 1000): Promise<Call[]> {
  const calls: Call[] = [];
  for (const [k, i] of order.entries()) {
    if (k > 0) await world.clock.advance(gapMs);
    calls[i] = insmod(world.nodes[i]);
  }
  return calls;
}

async function lsmodOut(node: FakeNode): Promise<string | symbol> {
  const c = lsmod(node);
  const rc = await c.done;
  return rc === DELEGATE ? DELEGATE : c.stdout();
}

describe('bringing the layer up', () => {
  it.each([1, 2, 4])('%i node(s) insmod in order, 1 s apart: every insmod returns 0 and logs the artifact lines', async (n) => {
    const ips = ECHO.slice(0, n);
    const nodes = world.nodes.slice(0, n);
    nodes.forEach((node) => installModule(node, ips));
    const calls = await insmodInOrder(nodes.map((_, i) => i));
    await world.clock.advance(200);
    for (const [i, c] of calls.entries()) {
      expect({ node: i, rc: c.result(), stderr: c.stderr() }).toEqual({ node: i, rc: 0, stderr: '' });
      expect(nodes[i].dmesg.lines()).toEqual(readyLog(ips, i));
      expect(nodes[i].counters.insmod).toBe(1);
    }
    expect(msgLayerReady(world, nodes)).toBe(true);
    expect(msgLayerStatus(world, nodes)).toEqual({ ready: true, nodeIds: Object.fromEntries(nodes.map((x, i) => [x.name, i])), origin: 0, problems: [] });
    expect(msgLayerNodeIds(world)).toEqual(Object.fromEntries(nodes.map((x, i) => [x.name, i])));
    expect(await lsmodOut(nodes[0])).toBe('Module                  Size  Used by\nmsg_rdma               45056  0\n');
  });

  it('ready means exactly the given nodes, in node-id order', async () => {
    const ips = ECHO.slice(0, 2);
    world.nodes.slice(0, 2).forEach((node) => installModule(node, ips));
    await insmodInOrder([0, 1]);
    await world.clock.advance(200);
    const [n0, n1, n2] = world.nodes;
    expect(msgLayerReady(world, [n0, n1])).toBe(true);
    expect(msgLayerStatus(world, [n0]).problems).toEqual(['the node list (msg_layer/config.h) has 2 entries for 1 nodes']);
    expect(msgLayerStatus(world, [n1, n0]).problems).toEqual(['node1 is node 1 of the messaging layer, expected 0', 'node0 is node 0 of the messaging layer, expected 1']);
    expect(msgLayerStatus(world, [n0, n1, n2])).toMatchObject({ ready: false, problems: ['node2: msg_rdma is not loaded', 'the node list (msg_layer/config.h) has 2 entries for 3 nodes'] });
  });

  it('insmod blocks until every connection is up: node 0 waits for all the others', async () => {
    world.nodes.forEach((node) => installModule(node, ECHO));
    const calls = await insmodInOrder([0, 1, 2]);
    await world.clock.advance(30_000);
    expect(calls.map((c) => c.result())).toEqual([undefined, undefined, undefined]);
    expect(world.nodes[0].dmesg.lines()).toEqual(listLog(ECHO, 0));
    expect(msgLayerStatus(world, world.nodes).problems).toContain('node1: msg_rdma is still connecting');
    calls[3] = insmod(world.nodes[3]);
    await world.clock.advance(200);
    expect(calls.map((c) => c.result())).toEqual([0, 0, 0, 0]);
  });

  it.each([
    { order: [0, 3, 1, 2], gapMs: 10_000 },
    { order: [0, 2, 1, 3], gapMs: 15_000 },
    { order: [0, 3, 2, 1], gapMs: 1_000 },
  ])('insmods out of order within the window ($order, $gapMs ms apart) all succeed', async ({ order, gapMs }) => {
    world.nodes.forEach((node) => installModule(node, ECHO));
    const calls = await insmodInOrder(order, gapMs);
    await world.clock.advance(500);
    expect(calls.map((c) => c.result())).toEqual([0, 0, 0, 0]);
    for (const [i, node] of world.nodes.entries()) expect([...node.dmesg.lines()].sort()).toEqual(readyLog(ECHO, i).sort());
    expect(msgLayerReady(world, world.nodes)).toBe(true);
  });

  it('a node insmod-ed before node 0 listens is rejected at once (-62)', async () => {
    world.nodes.forEach((node) => installModule(node, ECHO));
    const early = insmod(world.nodes[2]);
    await world.clock.advance(200);
    expect(early.result()).toBe(1);
    expect(early.stderr()).toBe(`insmod: ERROR: could not insert module ${KO}: Invalid parameters\n`);
    expect(world.nodes[2].dmesg.lines()).toEqual([...listLog(ECHO, 2), 'popcorn: Unable to connect, 10.4.6.15 - 0, -62']);
  });
});

describe('failures', () => {
  it('a node too late for the 60 s window: the others time out silently, the late one cannot connect (-62)', async () => {
    world.nodes.forEach((node) => installModule(node, ECHO));
    const calls = await insmodInOrder([0, 1, 2]);
    await world.clock.advance(59_000);
    expect(calls.map((c) => c.result())).toEqual([undefined, undefined, undefined]);
    await world.clock.advance(2_000); // node 2 connected at 2.1 s: every accept of node 3 ends at 62.1 s
    expect(calls.map((c) => c.result())).toEqual([1, 1, 1]);
    for (const i of [0, 1, 2]) {
      expect(calls[i].stderr()).toBe(`insmod: ERROR: could not insert module ${KO}: Invalid parameters\n`);
      expect(world.nodes[i].dmesg.lines()).toEqual(listLog(ECHO, i)); // __accept_client prints nothing
    }
    await world.clock.advance(10_000);
    const late = insmod(world.nodes[3]);
    await world.clock.advance(200);
    expect(late.result()).toBe(1);
    expect(world.nodes[3].dmesg.lines()).toEqual([...listLog(ECHO, 3), 'popcorn: Unable to connect, 10.4.6.15 - 0, -62']);
    expect(await lsmodOut(world.nodes[0])).toBe(DELEGATE);
    expect(msgLayerReady(world, world.nodes)).toBe(false);
  });

  it('own IP missing from the list: "My IP is not listed", Invalid parameters, at once', async () => {
    const ips = [ECHO[0], ECHO[2], ECHO[3]];
    installModule(world.nodes[1], ips);
    const c = insmod(world.nodes[1]);
    await world.clock.settle();
    expect(c.result()).toBe(1);
    expect(c.stderr()).toBe(`insmod: ERROR: could not insert module ${KO}: Invalid parameters\n`);
    expect(world.nodes[1].dmesg.lines()).toEqual([
      'popcorn: Loading node configuration...',
      'popcorn:   0: 10.4.6.15',
      'popcorn:   1: 10.4.6.10',
      'popcorn:   2: 10.4.6.11',
      'popcorn: My IP is not listed in the node configuration',
    ]);
    expect(await lsmodOut(world.nodes[1])).toBe(DELEGATE);
  });

  it('without sudo: Operation not permitted, nothing logged', async () => {
    installModule(world.nodes[0], ECHO);
    const c = insmod(world.nodes[0], false);
    expect(await c.done).toBe(1);
    expect(c.stderr()).toBe(`insmod: ERROR: could not insert module ${KO}: Operation not permitted\n`);
    expect(world.nodes[0].dmesg.lines()).toEqual([]);
  });

  it('a module built for another kernel: Invalid module format, with the vermagic line', async () => {
    installModule(world.nodes[1], ECHO, '4.15.0-213-generic');
    const c = insmod(world.nodes[1]);
    expect(await c.done).toBe(1);
    expect(c.stderr()).toBe(`insmod: ERROR: could not insert module ${KO}: Invalid module format\n`);
    expect(world.nodes[1].dmesg.lines()).toEqual(["msg_rdma: version magic '4.15.0-213-generic SMP mod_unload modversions ' should be '4.4.137-pop-hype SMP mod_unload modversions '"]);
  });

  it('a non-FragVisor kernel that matches the release: Unknown symbol in module', async () => {
    world.nodes[0].kernelRelease = '4.4.137';
    installModule(world.nodes[0], ECHO, '4.4.137');
    const c = insmod(world.nodes[0]);
    expect(await c.done).toBe(1);
    expect(c.stderr()).toBe(`insmod: ERROR: could not insert module ${KO}: Unknown symbol in module\n`);
    expect(world.nodes[0].dmesg.lines()).toEqual(['msg_rdma: Unknown symbol pcn_kmsg_set_transport (err 0)']);
  });

  it('fault insmod-hang: insmod never returns, the module stays half-loaded until a reboot', async () => {
    world.nodes.forEach((node) => installModule(node, ECHO));
    world.addFault('node1', { step: 'insmod-hang' });
    const calls = await insmodInOrder([0, 1, 2, 3]);
    await world.clock.advance(3_600_000);
    expect(calls[1].result()).toBeUndefined();
    expect(world.nodes[1].dmesg.lines()).toEqual([...listLog(ECHO, 1), 'Unhandled client event 7']);
    expect(calls.map((c) => c.result())).toEqual([1, undefined, 1, 1]);
    expect(world.nodes[2].dmesg.lines().at(-1)).toBe('popcorn: Unable to connect, 10.4.6.15 - 0, -62');

    const again = insmod(world.nodes[1]);
    expect(await again.done).toBe(1);
    expect(again.stderr()).toBe(`insmod: ERROR: could not insert module ${KO}: File exists\n`);
    const rm = rmmod(world.nodes[1]);
    expect(await rm.done).toBe(1);
    expect(rm.stderr()).toBe('rmmod: ERROR: could not remove module msg_rdma: Device or resource busy\n');
    expect(await lsmodOut(world.nodes[1])).toContain('msg_rdma');
    expect(msgLayerStatus(world, [world.nodes[1]]).problems).toContain('node1: msg_rdma is hung in its init (only a reboot clears it)');

    calls[1].abort(); // Ctrl-C: the client ends, the module does not
    expect(await calls[1].done).toBe(130);
    expect(await lsmodOut(world.nodes[1])).toContain('msg_rdma');

    world.nodes[1].reboot();
    expect(await lsmodOut(world.nodes[1])).toBe(DELEGATE);
    expect(world.nodes[1].dmesg.lines()).toEqual([]);
  });

  it('fault rdma-connect: that node cannot connect (-62); the nodes waiting for it time out', async () => {
    world.nodes.forEach((node) => installModule(node, ECHO));
    world.addFault('node2', { step: 'rdma-connect' });
    const calls = await insmodInOrder([0, 1, 2, 3]);
    await world.clock.advance(200);
    expect(calls[2].result()).toBe(1);
    expect(world.nodes[2].dmesg.lines()).toEqual([...listLog(ECHO, 2), 'popcorn: Unable to connect, 10.4.6.15 - 0, -62']);
    await world.clock.advance(70_000);
    expect(calls.map((c) => c.result())).toEqual([1, 1, 1, 1]);
    expect(world.nodes[3].dmesg.lines().at(-1)).toBe('popcorn: Unable to connect, 10.4.6.15 - 0, -62');
  });

  it.each([
    { what: 'an address no node has', ips: ['10.4.6.99', ECHO[0]] },
    { what: 'a node that is down', ips: [ECHO[1], ECHO[0]] },
  ])('connecting to $what: address resolution errs, the connect never completes (Unhandled client event 1)', async ({ ips }) => {
    installModule(world.nodes[0], ips);
    world.nodes[1].up = false;
    const c = insmod(world.nodes[0]);
    await world.clock.advance(5_000);
    expect(world.nodes[0].dmesg.lines()).toEqual(listLog(ips, 1));
    await world.clock.advance(600_000);
    expect(c.result()).toBeUndefined();
    expect(world.nodes[0].dmesg.lines()).toEqual([...listLog(ips, 1), 'Unhandled client event 1']);
    c.abort();
    expect(await c.done).toBe(130);
  });

  it('a node built with a longer list waits for a node that never comes; the layer is not ready', async () => {
    world.nodes.forEach((node, i) => installModule(node, i === 3 ? [...ECHO, '10.4.6.12'] : ECHO));
    const calls = await insmodInOrder([0, 1, 2, 3]);
    await world.clock.advance(200);
    expect(calls.map((c) => c.result())).toEqual([0, 0, 0, undefined]);
    expect(msgLayerStatus(world, world.nodes).problems).toContain('the nodes were built with different node lists (msg_layer/config.h)');
    await world.clock.advance(60_000);
    expect(calls[3].result()).toBe(1);
    expect(msgLayerReady(world, world.nodes)).toBe(false);
  });

  it('nodes with the same IPs in another order: both think they are node 0 and both time out', async () => {
    installModule(world.nodes[0], [ECHO[0], ECHO[1]]);
    installModule(world.nodes[1], [ECHO[1], ECHO[0]]);
    const calls = await insmodInOrder([0, 1]);
    await world.clock.advance(61_000);
    expect(calls.map((c) => c.result())).toEqual([1, 1]);
    expect(world.nodes[1].dmesg.lines()).toEqual(['popcorn: Loading node configuration...', 'popcorn: * 0: 10.4.6.14', 'popcorn:   1: 10.4.6.15']);
  });
});

describe('origin kernels', () => {
  it('no origin: the layer comes up with a warning, and the status has no origin', async () => {
    origins = new Set();
    world.nodes.forEach((node) => installModule(node, ECHO));
    const calls = await insmodInOrder([0, 1, 2, 3]);
    await world.clock.advance(200);
    expect(calls.map((c) => c.result())).toEqual([0, 0, 0, 0]);
    expect(world.nodes[0].dmesg.lines()).toEqual([...listLog(ECHO, 0), 'popcorn: Ready on InfiniBand RDMA', 'popcorn: No origin node', ...readyLog(ECHO, 0).slice(6)]);
    const status = msgLayerStatus(world, world.nodes);
    expect(status).toMatchObject({ ready: true, origin: undefined });
    expect(status.problems).toEqual(['no node runs an origin kernel (CONFIG_POPCORN_ORIGIN_NODE)']);
  });

  it('two origins: connected, but "Duplicate origin" and never Ready', async () => {
    origins = new Set(['node0', 'node2']);
    world.nodes.forEach((node) => installModule(node, ECHO));
    const calls = await insmodInOrder([0, 1, 2, 3]);
    await world.clock.advance(200);
    expect(calls.map((c) => c.result())).toEqual([0, 0, 0, 0]);
    for (const [i, node] of world.nodes.entries()) expect(node.dmesg.lines()).toEqual([...listLog(ECHO, i), 'popcorn: Duplicate origin: nodes 0, 2']);
    expect(msgLayerReady(world, world.nodes)).toBe(false);
    expect(msgLayerStatus(world, world.nodes).origin).toBeUndefined();
  });
});

describe('rmmod and reloading', () => {
  async function bringUp(): Promise<void> {
    world.nodes.forEach((node) => installModule(node, ECHO));
    const calls = await insmodInOrder([0, 1, 2, 3]);
    await world.clock.advance(200);
    expect(calls.map((c) => c.result())).toEqual([0, 0, 0, 0]);
  }

  it('rmmod removes the module (by name or by path); a second rmmod says it is not loaded', async () => {
    await bringUp();
    const byPath = call(world, world.nodes[2], rmmodHandler, ['rmmod', `${TREE}/${KO}`], { sudo: true });
    expect(await byPath.done).toBe(0);
    expect(world.nodes[2].counters.rmmod).toBe(1);
    expect(await lsmodOut(world.nodes[2])).toBe(DELEGATE);
    expect(msgLayerReady(world, world.nodes)).toBe(false);
    expect(msgLayerStatus(world, world.nodes).problems).toEqual(['node2: msg_rdma is not loaded']);
    const again = rmmod(world.nodes[2]);
    expect(await again.done).toBe(1);
    expect(again.stderr()).toBe('rmmod: ERROR: Module msg_rdma is not currently loaded\n');
    const notRoot = rmmod(world.nodes[1], false);
    expect(await notRoot.done).toBe(1);
    expect(notRoot.stderr()).toBe('rmmod: ERROR: could not remove module msg_rdma: Operation not permitted\n');
    expect(await call(world, world.nodes[0], rmmodHandler, ['rmmod', 'nvme']).done).toBe(DELEGATE);
  });

  it('rmmod everywhere, then insmod everywhere again: up again, the new lines appended', async () => {
    await bringUp();
    for (const node of world.nodes) expect(await rmmod(node).done).toBe(0);
    const calls = await insmodInOrder([0, 1, 2, 3]);
    await world.clock.advance(200);
    expect(calls.map((c) => c.result())).toEqual([0, 0, 0, 0]);
    for (const [i, node] of world.nodes.entries()) expect(node.dmesg.lines()).toEqual([...readyLog(ECHO, i), ...readyLog(ECHO, i)]);
    expect(msgLayerReady(world, world.nodes)).toBe(true);
  });

  it('one node reloaded alone cannot rejoin: the others accept no more (-62 after the window)', async () => {
    await bringUp();
    expect(await rmmod(world.nodes[3]).done).toBe(0);
    const c = insmod(world.nodes[3]);
    await world.clock.advance(59_000);
    expect(c.result()).toBeUndefined();
    await world.clock.advance(2_000);
    expect(c.result()).toBe(1);
    expect(world.nodes[3].dmesg.lines().at(-1)).toBe('popcorn: Unable to connect, 10.4.6.15 - 0, -62');
  });

  it('a reboot drops the module and its connections; after rebooting every node it comes up again', async () => {
    await bringUp();
    world.nodes[1].reboot();
    expect(msgLayerStatus(world, world.nodes).problems).toEqual(['node1: msg_rdma is not loaded']);
    world.nodes.forEach((n, i) => i !== 1 && n.reboot());
    world.nodes.forEach((node) => installModule(node, ECHO)); // the .ko lives in /home: it survives
    const calls = await insmodInOrder([0, 1, 2, 3]);
    await world.clock.advance(200);
    expect(calls.map((c) => c.result())).toEqual([0, 0, 0, 0]);
    for (const [i, node] of world.nodes.entries()) expect(node.dmesg.lines()).toEqual(readyLog(ECHO, i));
  });

  it("lsmod lists msg_rdma first, then the modules sim/bin/kmod recorded", async () => {
    world.nodes.slice(0, 1).forEach((node) => installModule(node, ECHO.slice(0, 1)));
    const modules = world.nodes[0].hostPath('/home/.ae-sim/state/modules');
    mkdirSync(path.dirname(modules), { recursive: true });
    writeFileSync(modules, 'dummy 1234 0\n');
    insmod(world.nodes[0]);
    await world.clock.advance(200);
    expect(await lsmodOut(world.nodes[0])).toBe('Module                  Size  Used by\nmsg_rdma               45056  0\ndummy                   1234  0\n');
  });

  it('other modules are not ours', async () => {
    expect(await call(world, world.nodes[0], insmodHandler, ['insmod', '/home/ae/other.ko'], { sudo: true }).done).toBe(DELEGATE);
    expect(await call(world, world.nodes[0], insmodHandler, ['insmod'], { sudo: true }).done).toBe(DELEGATE);
    expect(await lsmodOut(world.nodes[0])).toBe(DELEGATE);
  });
});

describe('registration', () => {
  it('registers make (msg_layer only, asked before later make handlers), insmod, rmmod and lsmod', () => {
    const registry = new ToolRegistry();
    register(registry);
    expect(registry.names()).toEqual(['insmod', 'lsmod', 'make', 'rmmod']);
    expect(registry.handlers('make')).toEqual([msgLayerMake]);
    expect(registry.handlers('insmod')).toEqual([insmodHandler]);
  });
});
