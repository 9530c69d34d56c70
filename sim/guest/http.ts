import { assertNodes } from '../model/model';
import type { SimModel } from '../model/runtime';
import type { Hypervisor } from '../model/schema';
import { startNginx } from './nginx';
import { startOpenLambdaWorker } from './openLambda';
import { artifactPinning, type GuestPinning } from './pinning';
import type { RunningServer } from './listen';
import { Timelines } from './timeline';

export interface GuestHttpOptions {
  model: SimModel;
  hypervisor: Hypervisor;
  /** Nodes of the distributed VM (one vCPU each). */
  nodes: number;
  /** Serve nginx (+ php-fpm) from this html dir. */
  nginx?: { htmlDir: string; port?: number; index?: readonly string[]; guestIp?: string };
  /** One `ol worker` per port (0 = any free port); worker i reads openLambdaWorkers[i]'s mask. */
  openLambdaPorts?: readonly number[];
  /** The guest state's current affinity masks; defaults to the artifact's pinning. */
  pinning?: () => GuestPinning;
}

export interface GuestHttp {
  nginxPort?: number;
  openLambdaPorts: number[];
  stop(): Promise<void>;
}

/**
 * The HTTP side of one simulated guest: nginx with php-fpm and/or OpenLambda workers, all on
 * 127.0.0.1, sharing one set of vCPU timelines (servers pinned to the same vCPU share its time).
 */
export async function startGuestHttp(opts: GuestHttpOptions): Promise<GuestHttp> {
  assertNodes(opts.nodes);
  const pinning = opts.pinning ?? (() => artifactPinning(opts.nodes));
  const timelines = new Timelines();
  const common = { model: opts.model, hypervisor: opts.hypervisor, nodes: opts.nodes, timelines };
  const started: RunningServer[] = [];
  try {
    let nginxPort: number | undefined;
    if (opts.nginx) {
      const nginx = await startNginx({ ...common, ...opts.nginx, pinning });
      started.push(nginx);
      nginxPort = nginx.port;
    }
    const openLambdaPorts: number[] = [];
    for (const [i, port] of (opts.openLambdaPorts ?? []).entries()) {
      // A worker whose mask the guest state does not know runs where the artifact pins it.
      const mask = () => pinning().openLambdaWorkers[i] ?? 1 << i;
      const worker = await startOpenLambdaWorker({ ...common, port, mask, name: `ol${i}` });
      started.push(worker);
      openLambdaPorts.push(worker.port);
    }
    return { nginxPort, openLambdaPorts, stop: () => stopAll(started) };
  } catch (err) {
    await stopAll(started);
    throw err;
  }
}

async function stopAll(servers: readonly RunningServer[]): Promise<void> {
  await Promise.all(servers.map((s) => s.stop()));
}
