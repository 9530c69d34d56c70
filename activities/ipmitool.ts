import { spawn } from 'node:child_process';
import path from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import type { LoadedProfile } from '../config/load';
import type { ClusterNode } from '../config/schema';
import { IPMI_PASSWORD_ENV, ipmitoolArgs, type IpmiAction } from '../workflows/commands/ipmitool';
import { appendStream } from './runStore';

/**
 * The real `ipmitool` on the worker host, against a node's BMC. The password comes from the variable
 * the profile names and reaches ipmitool only as IPMI_PASSWORD in the child's own environment (`-E`),
 * never on a command line or in a message. Always an async child: in a process that also hosts
 * simulated BMCs a synchronous call would stall their event loop (docs/SIM-BMC.md).
 */

export type Bmc = NonNullable<ClusterNode['bmc']>;

export interface IpmiRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Output kept in memory per stream (a SOL capture's full text goes to its log file). */
const MAX_KEPT = 256 * 1024;

/** The password, from the variable named by `bmc.passwordEnv`; a missing one says how to set it. */
export function bmcPassword(loaded: LoadedProfile, node: string, bmc: Bmc, env: NodeJS.ProcessEnv = process.env): string {
  const value = env[bmc.passwordEnv];
  if (value) return value;
  const simHint = loaded.profile.simulated ? ` (the simulated cluster keeps it in a file: export ${bmc.passwordEnv}="$(cat ${path.join(path.dirname(loaded.file), 'bmc_password')})")` : '';
  throw ApplicationFailure.nonRetryable(
    `node ${node}: the BMC password is read from the environment variable ${bmc.passwordEnv} (nodes[].bmc.passwordEnv in ${loaded.file}), ` +
      `which is not set for the worker: set it in the worker's environment, e.g. \`export ${bmc.passwordEnv}=...\`${simHint}, and restart the worker`,
    'BmcPasswordMissing',
    { node, passwordEnv: bmc.passwordEnv },
  );
}

/** argv for `action` against this BMC (password by environment). */
export function bmcArgs(bmc: Bmc, action: IpmiAction): string[] {
  return ipmitoolArgs({ host: bmc.host, port: bmc.port, user: bmc.user }, action);
}

/** Only what ipmitool needs: no other secret of the worker's environment rides along. */
function childEnv(password: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    ...(process.env.LANG ? { LANG: process.env.LANG } : {}),
    [IPMI_PASSWORD_ENV]: password,
  };
}

function notInstalled(err: NodeJS.ErrnoException): unknown {
  if (err.code !== 'ENOENT') return err;
  return ApplicationFailure.nonRetryable('ipmitool is not installed on the worker host: install it (Debian/Ubuntu: apt-get install ipmitool) and restart the worker', 'IpmitoolMissing');
}

interface RunOptions {
  /** Kill the child after this long. */
  timeoutMs: number;
  signal?: AbortSignal;
  /** For `sol activate`: when to end the session (with `~.`, as on a terminal), and where its output goes. */
  session?: { endAfterMs: number; logFile: string };
}

/** Runs ipmitool with `args` and the password in its environment; resolves with its exit and output. */
export function runIpmitool(args: readonly string[], password: string, opts: RunOptions): Promise<IpmiRun> {
  return new Promise((resolve, reject) => {
    const child = spawn('ipmitool', args, { env: childEnv(password), stdio: ['pipe', 'pipe', 'pipe'] });
    const log = opts.session ? appendStream(opts.session.logFile) : undefined;
    let stdout = '';
    let stderr = '';
    const keep = (s: string, d: Buffer) => (s.length < MAX_KEPT ? s + d.toString() : s);
    child.stdout.on('data', (d: Buffer) => {
      stdout = keep(stdout, d);
      log?.write(d);
    });
    child.stderr.on('data', (d: Buffer) => (stderr = keep(stderr, d)));
    const kill = () => child.kill('SIGKILL');
    const timers = [setTimeout(kill, opts.timeoutMs)];
    child.stdin.on('error', () => {}); // EPIPE when ipmitool already exited
    if (opts.session) {
      const end = () => {
        child.stdin.end('~.');
        timers.push(setTimeout(kill, 3000)); // a session that ignores `~.`
      };
      timers.push(setTimeout(end, opts.session.endAfterMs));
    } else {
      child.stdin.end();
    }
    opts.signal?.addEventListener('abort', kill, { once: true });
    let settled = false;
    const done = (settle: () => void) => {
      if (settled) return; // a failed spawn emits 'error' and then 'close'
      settled = true;
      timers.forEach(clearTimeout);
      opts.signal?.removeEventListener('abort', kill);
      if (log) log.end(settle);
      else settle();
    };
    child.once('error', (err) => done(() => reject(notInstalled(err))));
    child.once('close', (code) => done(() => (opts.signal?.aborted ? reject(opts.signal.reason as Error) : resolve({ code, stdout, stderr }))));
  });
}
