import type { World } from '../types';
import { msgLayerDeps } from './deps';
import { CM_EVENT, lines } from './dmesg';
import type { Instance, Rendezvous } from './rendezvous';
import { sleep, waitFor } from './wait';

/**
 * The module's init (rdma.c init_kmsg_rdma / __establish_connections), imitated: listen, sleep
 * 100 ms, connect to every lower node id in order, accept every higher one in order (each accept
 * waits at most 60 s), then Ready. Runs "in the kernel": independent of the insmod process.
 */

/** -ETIME: what the artifact's logs show for a connection that does not come. */
export const ETIME = -62;
/** __accept_client: wait_for_completion_io_timeout(..., 60 * HZ). Also bounds a client's wait for an accept (IB CM retries). */
export const CONNECT_WINDOW_MS = 60_000;
const ADDR_RESOLVE_TIMEOUT_MS = 5_000;
const LISTEN_SETTLE_MS = 100;

export type InitResult = 'ok' | 'einval' | 'hung' | 'gone';

type ConnectResult = { ret: 0 } | { ret: number; step: string } | { hang: number };

export async function moduleInit(world: World, rv: Rendezvous, inst: Instance): Promise<InitResult> {
  try {
    return await establish(world, rv, inst);
  } catch (err) {
    if (inst.life.signal.aborted) return 'gone';
    throw err;
  }
}

function fail(rv: Rendezvous, inst: Instance): InitResult {
  inst.end('failed');
  rv.notify();
  return 'einval';
}

function hang(rv: Rendezvous, inst: Instance, event: number): InitResult {
  inst.log(lines.unhandledClientEvent(event));
  inst.phase = 'hung';
  rv.notify();
  return 'hung';
}

async function establish(world: World, rv: Rendezvous, inst: Instance): Promise<InitResult> {
  const signal = inst.life.signal;
  inst.log(lines.loading());
  // identify_myself stars every entry equal to our address (duplicates too).
  const myIp = inst.nid >= 0 ? inst.table[inst.nid] : undefined;
  inst.table.forEach((ip, i) => inst.log(lines.entry(ip === myIp, i, ip)));
  if (inst.nid < 0) {
    inst.log(lines.notListed());
    return fail(rv, inst);
  }
  // Faults are read once per insmod (World.fault counts firings).
  const hangs = world.fault(inst.node.name, 'insmod-hang') !== undefined;
  inst.brokenRdma = world.fault(inst.node.name, 'rdma-connect') !== undefined;

  inst.listening = true;
  rv.notify();
  await sleep(world, LISTEN_SETTLE_MS, signal);
  // Node 0 has no client connections; the fault still shows the same way there (our choice).
  if (hangs) return hang(rv, inst, CM_EVENT.UNREACHABLE);

  for (let j = 0; j < inst.nid; j++) {
    const r = await connect(world, rv, inst, j);
    if ('hang' in r) return hang(rv, inst, r.hang);
    if (r.ret !== 0) {
      inst.log(lines.unable('step' in r ? r.step : 'connect', inst.table[j], r.ret));
      return fail(rv, inst);
    }
  }
  const floorMs = msgLayerDeps().windowFloorMs;
  for (let j = inst.nid + 1; j < inst.table.length; j++) {
    const came = await waitFor(world, rv, () => inst.requests.get(j)?.live === true, { simMs: CONNECT_WINDOW_MS, floorMs, signal });
    if (!came) return fail(rv, inst); // the real __accept_client returns -ETIMEDOUT silently
    inst.links.set(j, inst.requests.get(j) as Instance);
    rv.notify();
  }
  return finish(rv, inst);
}

async function connect(world: World, rv: Rendezvous, inst: Instance, j: number): Promise<ConnectResult> {
  const signal = inst.life.signal;
  const peerNode = world.nodeByRdmaIp(inst.table[j]);
  if (!peerNode?.up) {
    // Nobody answers ARP for it: RDMA_CM_EVENT_ADDR_ERROR, which the client handler does not handle.
    await sleep(world, ADDR_RESOLVE_TIMEOUT_MS, signal);
    return { hang: CM_EVENT.ADDR_ERROR };
  }
  const server = rv.live(peerNode.name);
  // Not listening (not loaded, or failed): the CM rejects the request.
  if (inst.brokenRdma || !server?.listening || server.brokenRdma) return { ret: ETIME, step: 'connect' };
  const me = inst.nid;
  if (me <= server.nid || me >= server.table.length || server.requests.get(me)?.live) return { ret: ETIME, step: 'connect' };
  server.requests.set(me, inst);
  rv.notify();
  const floorMs = msgLayerDeps().windowFloorMs;
  const accepted = await waitFor(world, rv, () => server.links.get(me) === inst || !server.live, { simMs: CONNECT_WINDOW_MS, floorMs, signal });
  if (!accepted || server.links.get(me) !== inst || !server.live) {
    if (server.requests.get(me) === inst) server.requests.delete(me);
    return { ret: ETIME, step: 'connect' };
  }
  inst.links.set(j, server);
  rv.notify();
  return { ret: 0 };
}

/** All connections up: node info exchange, origin check, Ready, and the `joined` lines. */
function finish(rv: Rendezvous, inst: Instance): InitResult {
  inst.phase = 'up';
  const members = [inst, ...inst.links.values()];
  if (members.every((m) => m.kernel.origin !== undefined)) {
    const origins = members.filter((m) => m.kernel.origin).map((m) => m.nid).sort((a, b) => a - b);
    if (origins.length > 1) {
      inst.problem = 'duplicate-origin';
      inst.log(lines.duplicateOrigin(origins));
      rv.notify();
      return 'ok';
    }
    if (origins.length === 0) inst.problem = 'no-origin';
  }
  inst.ready = true;
  inst.log(lines.ready());
  if (inst.problem === 'no-origin') inst.log(lines.noOrigin());
  // Our order (the real one is racy): a node logs its own Ready first, then each peer as it joins.
  for (const [, peer] of [...inst.links].sort(([a], [b]) => a - b)) {
    if (!peer.live || !peer.ready || ![...peer.links.values()].includes(inst)) continue;
    inst.log(lines.joined(peer.nid));
    peer.log(lines.joined(inst.nid));
  }
  rv.notify();
  return 'ok';
}
