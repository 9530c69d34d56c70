import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, existsSync, openSync, closeSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { SerialConsole } from './console';
import { CONTROL_CLIENT_SOURCE, controlWrapper } from './controlClient';
import { buildEmu, buildLanConf, passwordProblem } from './lanConf';
import { PowerController, type PowerHooks } from './power';
import { freeUdpPort, waitForPong } from './rmcp';

export { ipmitoolArgs, IPMI_PASSWORD_ENV, type IpmiAction, type IpmiTarget } from '../../workflows/commands/ipmitool';
export type { PowerHooks } from './power';

/**
 * One simulated BMC per simulated node: Debian's real `ipmi_sim` (package openipmi) serving IPMI 2.0
 * (RMCP+, `ipmitool -I lanplus`) on its own 127.0.0.1 UDP port, with chassis power wired back into
 * this process (the node's power hooks) and SOL wired to the node's console log. See docs/SIM-BMC.md.
 */
export interface StartBmcOptions {
  /** Node name; also the BMC's name in ipmi_sim. */
  node: string;
  /** The node's state dir: the BMC keeps its files in `<stateDir>/bmc/` (never in /etc or /var). */
  stateDir: string;
  /** UDP port on 127.0.0.1; default: a free one. */
  port?: number;
  user: string;
  /** File holding the password (first line). Exactly one of passwordFile / passwordEnv. */
  passwordFile?: string;
  /** NAME of the environment variable holding the password. The password itself is never logged. */
  passwordEnv?: string;
  hooks: PowerHooks;
  /** What the node prints on its serial console: appended lines appear in `sol activate`. */
  consoleLogFile?: string;
  /** How long a power-off waits to see whether it is half of a power cycle (default 3000 ms). */
  cycleWindowMs?: number;
  /** The ipmi_sim binary (default: found on PATH). */
  ipmiSimPath?: string;
  log?: (line: string) => void;
}

export interface SimBmc {
  host: '127.0.0.1';
  port: number;
  /** ipmi_sim's pid. */
  pid: number;
  /** Stops ipmi_sim (and waits for it), drops a held power-off, waits for running hooks, cleans up. */
  stop(): Promise<void>;
}

const HOST = '127.0.0.1';
const NODE_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;
/** sockaddr_un.sun_path holds 108 bytes including the NUL. */
const MAX_SOCKET_PATH = 100;
const READY_TIMEOUT_MS = 8000;
/**
 * ipmi_sim sends the `set power 1` of a cycle 1 s after the `set power 0`, plus two runs of the
 * chassis-control program (a node start each, ~0.1 s, more on a loaded machine).
 */
export const DEFAULT_CYCLE_WINDOW_MS = 3000;

function findExecutable(name: string): string | null {
  for (const dir of (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(':').concat(['/usr/sbin', '/usr/bin'])) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  return null;
}

function readPassword(opts: StartBmcOptions): string {
  if ((opts.passwordFile === undefined) === (opts.passwordEnv === undefined)) {
    throw new Error(`BMC ${opts.node}: give exactly one of passwordFile and passwordEnv`);
  }
  let password: string | undefined;
  if (opts.passwordEnv !== undefined) {
    if (!ENV_NAME.test(opts.passwordEnv)) throw new Error(`BMC ${opts.node}: passwordEnv must be the NAME of an environment variable`);
    password = process.env[opts.passwordEnv];
    if (password === undefined || password === '') throw new Error(`BMC ${opts.node}: environment variable ${opts.passwordEnv} (the BMC password) is not set`);
  } else {
    password = readFileSync(opts.passwordFile!, 'utf8').split(/\r?\n/)[0];
  }
  const problem = passwordProblem(password);
  if (problem) throw new Error(`BMC ${opts.node}: ${problem}`);
  return password;
}

/** The control socket: ipmi_sim's chassis-control program sends one JSON line and reads the reply. */
function controlServer(socketPath: string, power: PowerController, log: (line: string) => void): Promise<net.Server> {
  const server = net.createServer((sock) => {
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('error', () => undefined);
    sock.on('data', (d: string) => {
      buf += d;
      if (buf.length > 4096) sock.destroy();
    });
    sock.on('end', () => {
      let reply;
      try {
        const req = JSON.parse(buf) as { args?: unknown };
        const args = Array.isArray(req.args) ? req.args.map(String) : [];
        reply = power.handle(args);
        log(`chassis control: ${args.join(' ')} -> ${reply.code === 0 ? 'ok' : `error ${reply.code}`}${reply.out ? ` ${reply.out.trim()}` : ''}`);
      } catch {
        reply = { out: 'bad request\n', code: 1 };
      }
      sock.end(JSON.stringify(reply) + '\n');
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(socketPath, () => resolve(server));
  });
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

async function tail(file: string, bytes = 2000): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.slice(-bytes).trim();
}

export async function startBmc(opts: StartBmcOptions): Promise<SimBmc> {
  if (!NODE_NAME.test(opts.node)) throw new Error(`BMC node name must be a letter then letters, digits, _ or -, got ${JSON.stringify(opts.node)}`);
  const log = (line: string) => opts.log?.(`bmc ${opts.node}: ${line}`);
  const password = readPassword(opts);
  const ipmiSim = opts.ipmiSimPath ?? findExecutable('ipmi_sim');
  if (!ipmiSim) throw new Error('ipmi_sim not found on PATH: install Debian package openipmi (apt-get install openipmi ipmitool)');

  const dir = path.resolve(opts.stateDir, 'bmc');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await chmod(dir, 0o700);
  // ipmi_sim persists users (and would then ignore lan.conf's password), SEL and SDRs here: start clean.
  const simState = path.join(dir, 'ipmi_sim-state');
  await rm(simState, { recursive: true, force: true });
  await mkdir(simState, { mode: 0o700 });

  let socketDir: string | null = null;
  let socketPath = path.join(dir, 'ctl.sock');
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    socketDir = await mkdtemp(path.join(os.tmpdir(), 'fvbmc-'));
    socketPath = path.join(socketDir, 'ctl.sock');
  }
  await rm(socketPath, { force: true });

  const clientPath = path.join(dir, 'chassis-control.cjs');
  const wrapperPath = path.join(dir, 'chassis-control');
  await writeFile(clientPath, CONTROL_CLIENT_SOURCE, { mode: 0o600 });
  await writeFile(wrapperPath, controlWrapper(process.execPath, clientPath, socketPath), { mode: 0o700 });
  const lanConf = path.join(dir, 'lan.conf');
  const emu = path.join(dir, 'bmc.emu');
  await writeFile(emu, buildEmu(), { mode: 0o600 });
  const simLog = path.join(dir, 'ipmi_sim.log');
  await writeFile(simLog, '', { mode: 0o600 });

  const power = new PowerController({ hooks: opts.hooks, cycleWindowMs: opts.cycleWindowMs ?? DEFAULT_CYCLE_WINDOW_MS, log });
  const console_ = new SerialConsole(opts.consoleLogFile);
  let control: net.Server | null = null;
  let child: ChildProcess | null = null;

  const cleanup = async () => {
    if (child) {
      const c = child;
      if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
      if (!(await waitExit(c, 3000))) {
        c.kill('SIGKILL');
        await waitExit(c, 3000);
      }
    }
    await power.stop();
    if (control) {
      const s = control;
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
    await console_.close();
    await rm(lanConf, { force: true });
    await rm(socketPath, { force: true });
    if (socketDir) await rm(socketDir, { recursive: true, force: true });
  };

  try {
    control = await controlServer(socketPath, power, log);
    const solPort = await console_.start();
    for (let attempt = 1; ; attempt++) {
      const port = opts.port ?? (await freeUdpPort());
      // Holds the password: 0600 in a 0700 dir, and deleted as soon as ipmi_sim has read it.
      await writeFile(lanConf, buildLanConf({ name: opts.node, host: HOST, port, user: opts.user, password, chassisControl: wrapperPath, solPort }), { mode: 0o600 });
      await chmod(lanConf, 0o600);
      const args = ['-c', lanConf, '-f', emu, '-s', simState, '-n'];
      // setpriv --pdeathsig: ipmi_sim dies with us even if we are SIGKILLed.
      const [cmd, argv] = existsSync('/usr/bin/setpriv') ? ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', ipmiSim, ...args]] : [ipmiSim, args];
      const out = openSync(simLog, 'a', 0o600);
      try {
        // Only what ipmi_sim and the chassis-control program need: no secrets from our environment.
        child = spawn(cmd, argv, { cwd: dir, stdio: ['ignore', out, out], env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LANG: 'C' } });
      } finally {
        closeSync(out);
      }
      const c = child;
      const exited = () => c.exitCode !== null || c.signalCode !== null;
      c.once('error', (err) => log(`ipmi_sim: ${err.message}`));
      const ready = await waitForPong(HOST, port, { timeoutMs: READY_TIMEOUT_MS, isDone: exited });
      if (ready) {
        await rm(lanConf, { force: true });
        log(`ipmi_sim (pid ${c.pid}) serving IPMI on ${HOST}:${port} (lanplus), SOL console on tcp ${HOST}:${solPort}`);
        c.once('exit', (code, signal) => log(`ipmi_sim exited (${code ?? signal})`));
        let stopping: Promise<void> | null = null;
        const stop = () =>
          (stopping ??= cleanup().then(() => log('stopped')));
        return { host: HOST, port, pid: c.pid!, stop };
      }
      if (!exited()) c.kill('SIGKILL');
      await waitExit(c, 3000);
      child = null;
      const why = await tail(simLog);
      if (opts.port !== undefined || attempt >= 3) throw new Error(`BMC ${opts.node}: ipmi_sim did not answer on ${HOST}:${port} (log ${simLog}):\n${why}`);
      log(`ipmi_sim did not come up on port ${port}, trying another: ${why.split('\n').pop() ?? ''}`);
    }
  } catch (err) {
    await cleanup();
    throw err;
  }
}
