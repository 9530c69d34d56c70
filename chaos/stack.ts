import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { startSimCluster, type SimCluster } from '../sim/cluster';
import { freePort } from '../sim/ports';
import { SIM_BMC_PASSWORD_ENV } from '../sim/profile';
import { setMsgLayerDeps } from '../sim/tools/msglayer';
import { startDevServer, type DevServer } from '../workers/devServer';
import { findTemporalCli } from '../workers/temporalCli';
import { bundleWorkflows } from '../workers/workflowBundle';

/**
 * What the chaos runs run on, all owned by this process and stopped by it: one workflow bundle; per
 * lane a Temporal dev server on its own port and SQLite file (restartable in place); per run an
 * `ae worker` process (SIGKILLable, restartable; it dies with us through setpriv's pdeathsig) and a
 * fresh simulated cluster in this process (its counters are what we read).
 */

const AE_BIN = path.resolve(__dirname, '../bin/ae.js');

/** The profile timeouts a chaos run uses (seconds): a hung step is declared hung in seconds, not minutes. */
export const CHAOS_TIMEOUTS = { reboot: 15, messagingLayer: 20, vmBoot: 30 };

export interface ChaosServer {
  address: string;
  /** Stops the server and starts it again on the same port and SQLite file; resolves once it answers (ms it was away). */
  restart(): Promise<number>;
  stop(): Promise<void>;
}

/** A dev server of one lane: a restart hits only the run of that lane. */
export async function startChaosServer(dir: string): Promise<ChaosServer> {
  const port = await freePort();
  mkdirSync(dir, { recursive: true });
  const opts = { cliPath: findTemporalCli(), port, dbFile: path.join(dir, 'temporal.db'), logFile: path.join(dir, 'temporal.log') };
  let server: DevServer = await startDevServer(opts);
  return {
    address: server.address,
    async restart() {
      const t0 = Date.now();
      await server.stop();
      server = await startDevServer(opts);
      return Date.now() - t0;
    },
    stop: () => server.stop(),
  };
}

/** The workflow bundle, built once: a restarted worker polls in a second instead of bundling again. */
export async function writeWorkflowBundle(dir: string): Promise<string> {
  const file = path.join(dir, 'workflow-bundle.js');
  writeFileSync(file, await bundleWorkflows());
  return file;
}

export interface WorkerProcess {
  pid: number;
  /** Set when it exited without us killing it (e.g. it gave up on a restarted server). */
  exitedOnItsOwn(): boolean;
  sigkill(): Promise<void>;
  stop(): Promise<void>;
}

export interface WorkerEnv {
  address: string;
  taskQueue: string;
  bundle: string;
  runsDir: string;
  logFile: string;
  bmcPassword?: string;
}

/** `ae worker` as a process of its own; resolves once it polls. */
export async function startWorkerProcess(env: WorkerEnv): Promise<WorkerProcess> {
  const argv = [process.execPath, AE_BIN, 'worker', '--task-queue', env.taskQueue];
  const [cmd, args] = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', ...argv]] : [argv[0], argv.slice(1)];
  const child: ChildProcess = spawn(cmd, args, {
    env: {
      ...process.env,
      TEMPORAL_ADDRESS: env.address,
      AE_WORKFLOW_BUNDLE: env.bundle,
      AE_RUNS_DIR: env.runsDir,
      // A killed worker's cached workflows move on after 2 s instead of the SDK's 10 s.
      AE_STICKY_QUEUE_TIMEOUT: '2s',
      AE_LOG_LEVEL: 'WARN',
      ...(env.bmcPassword ? { [SIM_BMC_PASSWORD_ENV]: env.bmcPassword } : {}),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  mkdirSync(path.dirname(env.logFile), { recursive: true });
  const log = createWriteStream(env.logFile, { flags: 'a' });
  let killed = false;
  let exited = false;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code, signal) => {
      exited = true;
      log.write(`--- worker ${child.pid} exited (${code ?? signal})${killed ? '' : ' ON ITS OWN'}\n`);
      resolve();
    }),
  );
  const ready = new Promise<void>((resolve, reject) => {
    let out = '';
    const onData = (d: Buffer) => {
      log.write(d);
      if (out.length < 10_000) out += d.toString();
      if (/worker polling task queue/.test(out)) resolve();
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    void exit.then(() => reject(new Error(`the worker exited before it polled:\n${out}`)));
  });
  await ready;
  const kill = async (signal: NodeJS.Signals) => {
    killed = true;
    if (!exited) child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
    await exit;
    clearTimeout(timer);
  };
  return {
    pid: child.pid!,
    exitedOnItsOwn: () => exited && !killed,
    sigkill: () => kill('SIGKILL'),
    stop: () => kill('SIGTERM'),
  };
}

export interface ChaosSim {
  sim: SimCluster;
  /** The sim's profile with CHAOS_TIMEOUTS: what the runs name as their cluster. */
  profile: string;
  bmcPassword?: string;
}

/** A fresh simulated 4-node cluster in `stateDir` (a run must not find the kernels of the one before). */
export async function startChaosSim(stateDir: string, opts: { seed: number; timeScale: number; nodes: number; name: string; log: (line: string) => void }): Promise<ChaosSim> {
  const sim = await startSimCluster({ nodes: opts.nodes, stateDir, rebootDownMs: 3000, timeScale: opts.timeScale, seed: opts.seed, log: opts.log });
  const doc = parseYaml(readFileSync(sim.profileFile, 'utf8')) as { name: string; timeouts: Record<string, number> };
  Object.assign(doc.timeouts, CHAOS_TIMEOUTS);
  // Its own name, so its cluster lease is its own: runs on different sims may overlap.
  doc.name = opts.name;
  const profile = path.join(stateDir, 'cluster-chaos.yaml');
  writeFileSync(profile, toYaml(doc));
  return { sim, profile, ...(sim.bmcPasswordFile ? { bmcPassword: readFileSync(sim.bmcPasswordFile, 'utf8').trim() } : {}) };
}

/**
 * The messaging layer's 60 s accept windows at a small time scale last this long in real time:
 * room for the insmods over SSH, one after the other, on a busy 2-core machine.
 */
export function setChaosMsgLayerFloor(): void {
  setMsgLayerDeps({ windowFloorMs: 8000 });
}
