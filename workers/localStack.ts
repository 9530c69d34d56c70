import path from 'node:path';
import { NativeConnection } from '@temporalio/worker';
import { SIM_CLUSTER, TASK_QUEUE } from '../config/constants';
import { dataDir, simStateDir } from '../config/paths';
import { startSimCluster, type SimCluster } from '../sim/cluster';
import { startDevServer, temporalAnswers, type DevServer } from './devServer';
import { findTemporalCli } from './temporalCli';
import { startWebhookListener } from '../webhook/server';
import { createAeWorker } from './worker';

export interface LocalStackOptions {
  port: number;
  uiPort: number;
  nodes: number;
  /** The simulated cluster's one time-scale knob (simulated durations x this). */
  timeScale: number;
  /** The simulated guests' performance model (config/models name or .yaml path); default `default`. */
  model?: string;
  /** Also run the CI webhook listener (webhook/server.ts). */
  webhooks: boolean;
  log?: (line: string) => void;
}

export interface LocalStack {
  address: string;
  uiUrl: string;
  sim: SimCluster;
  /** Resolves when the worker stops (after stop(), or on a fatal worker error). */
  done: Promise<void>;
  stop(): Promise<void>;
}

/**
 * The embedded default: a persistent dev server (SQLite under .data/, Web UI), the simulated cluster,
 * a worker and the webhook listener (the demo run is workers/demo.ts). Everything it starts, it stops; an already running
 * dev server (e.g. the systemd unit) is reused and left alone.
 */
export async function startLocalStack(opts: LocalStackOptions): Promise<LocalStack> {
  const log = opts.log ?? ((line: string) => console.log(line));
  const data = dataDir();
  const address = `127.0.0.1:${opts.port}`;
  const cleanups: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch((err: Error) => log(`while stopping: ${err.message}`));
  };

  try {
    let server: DevServer | undefined;
    let uiUrl = `http://127.0.0.1:${opts.uiPort}`;
    if (await temporalAnswers(address)) {
      log(`Temporal: reusing the server already answering at ${address}`);
    } else {
      const cliPath = findTemporalCli();
      log(`Temporal: starting the dev server (${path.relative(process.cwd(), cliPath) || cliPath})`);
      server = await startDevServer({
        cliPath,
        port: opts.port,
        uiPort: opts.uiPort,
        dbFile: path.join(data, 'temporal.db'),
        logFile: path.join(data, 'logs', 'temporal.log'),
      });
      cleanups.push(() => server!.stop());
      uiUrl = server.uiUrl ?? uiUrl;
      log(`Temporal: ${address}, Web UI ${uiUrl} (history kept in ${path.join(data, 'temporal.db')})`);
    }

    const sim = await startSimCluster({ nodes: opts.nodes, stateDir: simStateDir(), timeScale: opts.timeScale, ...(opts.model ? { model: opts.model } : {}) });
    cleanups.push(() => sim.stop());
    log(`Simulated cluster: ${sim.nodes.length} nodes, time scale ${opts.timeScale}, model ${opts.model ?? 'default'}, profile ${sim.profileFile} (cluster name "${SIM_CLUSTER}")`);

    const connection = await NativeConnection.connect({ address });
    cleanups.push(() => connection.close());
    const worker = await createAeWorker({ connection, namespace: 'default' });
    const done = worker.run();
    cleanups.push(async () => {
      if (worker.worker.getState() === 'RUNNING') worker.worker.shutdown();
      await done;
    });
    log(`Worker: polling task queue "${TASK_QUEUE}"`);

    if (opts.webhooks) {
      // A busy port or a bad mapping file must not take the stack down: say so and go on without webhooks.
      try {
        const listener = await startWebhookListener({ temporalAddress: address, uiUrl, log });
        cleanups.push(() => listener.close());
        log(`Webhooks: ${listener.url}/webhooks/github and /webhooks/generic (README: Webhooks)`);
      } catch (err) {
        log(`Webhooks: not started: ${(err as Error).message}`);
      }
    }

    return { address, uiUrl, sim, done, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
