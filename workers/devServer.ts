import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Connection } from '@temporalio/client';
import { SEARCH_ATTRIBUTES } from '../config/constants';

export interface DevServerOptions {
  cliPath: string;
  port: number;
  /** Web UI port; omitted means headless. */
  uiPort?: number;
  ip?: string;
  /** SQLite file that keeps workflow history across restarts; omitted means in memory. */
  dbFile?: string;
  logFile: string;
  /** Extra `--dynamic-config-value KEY=JSON` pairs. */
  dynamicConfig?: Record<string, unknown>;
  readyTimeoutMs?: number;
}

export interface DevServer {
  address: string;
  uiUrl?: string;
  pid: number;
  stop(): Promise<void>;
}

/** `temporal server start-dev` arguments, with the project's search attributes registered. */
export function devServerArgs(opts: DevServerOptions): string[] {
  const ip = opts.ip ?? '127.0.0.1';
  const args = ['server', 'start-dev', '--ip', ip, '--port', String(opts.port), '--log-level', 'warn'];
  if (opts.uiPort === undefined) args.push('--headless');
  else args.push('--ui-port', String(opts.uiPort), '--ui-ip', ip, '--ui-disable-news-fetch');
  if (opts.dbFile) args.push('--db-filename', opts.dbFile);
  for (const name of Object.values(SEARCH_ATTRIBUTES)) args.push('--search-attribute', `${name}=Keyword`);
  for (const [key, value] of Object.entries(opts.dynamicConfig ?? {})) args.push('--dynamic-config-value', `${key}=${JSON.stringify(value)}`);
  return args;
}

/** True when a Temporal frontend answers at `address`. */
export async function temporalAnswers(address: string, timeoutMs = 2000): Promise<boolean> {
  let connection: Connection | undefined;
  try {
    connection = await Connection.connect({ address, connectTimeout: timeoutMs });
    await connection.workflowService.getSystemInfo({});
    return true;
  } catch {
    return false;
  } finally {
    await connection?.close().catch(() => undefined);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Starts the dev server as a child that dies with us (setpriv --pdeathsig, where available), and
 * waits until its frontend answers.
 */
export async function startDevServer(opts: DevServerOptions): Promise<DevServer> {
  const ip = opts.ip ?? '127.0.0.1';
  const address = `${ip}:${opts.port}`;
  mkdirSync(path.dirname(opts.logFile), { recursive: true });
  if (opts.dbFile) mkdirSync(path.dirname(opts.dbFile), { recursive: true });
  const log = createWriteStream(opts.logFile, { flags: 'a' });
  const args = devServerArgs(opts);
  const [cmd, argv] = existsSync('/usr/bin/setpriv')
    ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', opts.cliPath, ...args]]
    : [opts.cliPath, args];
  const child: ChildProcess = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  let exited: number | null | undefined;
  const exit = new Promise<void>((resolve) =>
    child.once('exit', (code) => {
      exited = code;
      resolve();
    }),
  );

  const stop = async () => {
    if (exited === undefined) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exit;
      clearTimeout(killer);
    }
    log.end();
  };

  const deadline = Date.now() + (opts.readyTimeoutMs ?? 60_000);
  while (!(await temporalAnswers(address))) {
    if (exited !== undefined) {
      await stop();
      throw new Error(`the Temporal dev server exited with code ${exited} before it was ready; see ${opts.logFile}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`the Temporal dev server did not answer at ${address} within ${(opts.readyTimeoutMs ?? 60_000) / 1000}s; see ${opts.logFile}`);
    }
    await sleep(250);
  }
  return {
    address,
    uiUrl: opts.uiPort === undefined ? undefined : `http://${ip}:${opts.uiPort}`,
    pid: child.pid ?? -1,
    stop,
  };
}
