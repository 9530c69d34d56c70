import type { GuestToolCall, GuestToolResult } from '../channel';
import { NGINX_CONF, PHP_FPM_CONF } from '../image';
import { notFound, resolveGuestPath, type GuestRuntime } from './context';

/**
 * The guest's server programs: nginx and php-fpm7.2 (E1, E3) and OpenLambda's `ol` (E2). Each
 * starts its (waiting) processes and model-driven HTTP server through GuestServices, with the
 * caller's CPU mask (so `taskset 0x1 nginx ...` starts master and workers on vCPU 0).
 */

const NGINX_VERSION = 'nginx version: nginx/1.14.0 (SIMULATED)\n';

export async function nginxTool(call: GuestToolCall, guest: GuestRuntime): Promise<GuestToolResult> {
  if (guest.kind !== 'lemp' && guest.kind !== 'npb') return notFound(call);
  let conf = NGINX_CONF;
  let signal: string | undefined;
  let test = false;
  const args = call.args;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const value = () => (i + 1 < args.length ? args[++i] : undefined);
    if (a === '-c') {
      const v = value();
      if (v === undefined) return fail(call, 'nginx: option "-c" requires file name\n');
      conf = resolveGuestPath(call.cwd, v);
    } else if (a === '-s') {
      signal = value();
      if (signal === undefined) return fail(call, 'nginx: option "-s" requires parameter\n');
    } else if (a === '-g' || a === '-p') {
      if (value() === undefined) return fail(call, `nginx: option "${a}" requires parameter\n`);
    } else if (a === '-t' || a === '-T') test = true;
    else if (a === '-v' || a === '-V') {
      call.stderr.write(NGINX_VERSION);
      return 0;
    } else if (a === '-q') continue;
    else if (a === '-h' || a === '-?') {
      call.stderr.write(`${NGINX_VERSION}Usage: nginx [-?hvVtTq] [-s signal] [-c filename] [-p prefix] [-g directives]\n`);
      return 0;
    } else return fail(call, `nginx: invalid option: "${a.replace(/^-/, '')}"\n`);
  }
  if (test) {
    if (guest.services.readFile(conf) === undefined) return fail(call, `nginx: [emerg] open() "${conf}" failed (2: No such file or directory)\nnginx: configuration file ${conf} test failed\n`);
    call.stderr.write(`nginx: the configuration file ${conf} syntax is ok\nnginx: configuration file ${conf} test is successful\n`);
    return 0;
  }
  if (signal !== undefined) {
    if (!['stop', 'quit', 'reopen', 'reload'].includes(signal)) return fail(call, `nginx: invalid option: "-s ${signal}"\n`);
    if (!guest.services.nginxRunning()) return fail(call, 'nginx: [error] open() "/usr/local/nginx/logs/nginx.pid" failed (2: No such file or directory)\n');
    if (signal === 'stop' || signal === 'quit') guest.services.killNginx(signal === 'stop' ? 'SIGTERM' : 'SIGQUIT');
    return 0;
  }
  const refused = await guest.services.startNginx(conf, guest.processes.maskOf(call.pid) ?? guest.processes.fullMask);
  return refused ? fail(call, refused.error, refused.code) : 0;
}

export async function phpFpmTool(call: GuestToolCall, guest: GuestRuntime): Promise<GuestToolResult> {
  if (guest.kind !== 'lemp') return notFound(call);
  let conf = PHP_FPM_CONF;
  let foreground = false;
  let test = false;
  const args = call.args;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a === '-y' || a === '--fpm-config') {
      if (i + 1 >= args.length) return fail(call, `Usage: php-fpm7.2 [-n] [-e] [-h] [-i] [-m] [-v] [-t] [-p <prefix>] [-g <pid>] [-c <file>] [-d foo[=bar]] [-y <file>] [-D] [-F [-O]]\n`, 64);
      conf = resolveGuestPath(call.cwd, args[++i]);
    } else if (a.startsWith('--fpm-config=')) conf = resolveGuestPath(call.cwd, a.slice('--fpm-config='.length));
    else if (a === '-F' || a === '--nodaemonize') foreground = true;
    else if (a === '-D' || a === '--daemonize' || a === '-R' || a === '--allow-to-run-as-root' || a === '-O' || a === '--force-stderr') continue;
    else if (a === '-t' || a === '--test') test = true;
    else if (a === '-v' || a === '--version') {
      call.stdout.write('PHP 7.2.24-0ubuntu0.18.04.6 (fpm-fcgi) (SIMULATED)\n');
      return 0;
    } else if (a === '-c' || a === '-d' || a === '-p' || a === '-g') i++;
    else return fail(call, `php-fpm7.2: unrecognized option '${a}'\n`, 64);
  }
  if (test) {
    if (guest.services.readFile(conf) === undefined) return fail(call, `ERROR: failed to open configuration file '${conf}': No such file or directory (2)\n`, 78);
    call.stderr.write(`NOTICE: configuration file ${conf} test is successful\n\n`);
    return 0;
  }
  const refused = await guest.services.startPhpFpm(conf, guest.processes.maskOf(call.pid) ?? guest.processes.fullMask);
  if (refused) return fail(call, refused.error, refused.code);
  if (!foreground) return 0;
  // -F: php-fpm stays in the foreground; killing it (Ctrl-C, the session closing) stops it.
  await guest.services.untilPhpFpmStops(call.signal);
  if (call.signal.aborted) guest.services.killPhpFpm();
  return 0;
}

/** OpenLambda's CLI: `ol worker --path=DIR [-d]` and `ol kill --path=DIR`. */
export async function olTool(call: GuestToolCall, guest: GuestRuntime): Promise<GuestToolResult> {
  if (guest.kind !== 'openlambda') return notFound(call);
  const [cmd, ...rest] = call.args;
  let dir: string | undefined;
  let detach = false;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (a.startsWith('--path=') || a.startsWith('-path=')) dir = a.slice(a.indexOf('=') + 1);
    else if (a === '--path' || a === '-path' || a === '-p') dir = rest[++i];
    else if (a === '-d' || a === '--detach') detach = true;
    else return fail(call, `Incorrect Usage: flag provided but not defined: ${a}\n`);
  }
  if (cmd !== 'worker' && cmd !== 'kill') {
    call.stderr.write(`ol: SIMULATED OpenLambda knows \`ol worker --path=DIR [-d]\` and \`ol kill --path=DIR\`${cmd ? `, not \`ol ${cmd}\`` : ''}\n`);
    return 1;
  }
  const path = resolveGuestPath(call.cwd, dir ?? 'default-ol');
  if (cmd === 'kill') {
    const w = guest.services.openLambdaWorker(path);
    if (!w) return fail(call, `Error: no worker running for ${path}\n`);
    guest.services.killOpenLambda(path);
    call.stdout.write(`Kill worker process with PID ${w.pid}\n`);
    return 0;
  }
  const started = await guest.services.startOpenLambda(path, guest.processes.maskOf(call.pid) ?? guest.processes.fullMask);
  if ('error' in started) return fail(call, started.error, started.code);
  call.stdout.write(`using existing OL directory at ${path}\nStarting worker: pid=${started.pid}, port=${started.port}, log=${path}/worker.out (SIMULATED)\n`);
  if (detach) return 0;
  await guest.services.untilOpenLambdaStops(path, call.signal);
  if (call.signal.aborted) guest.services.killOpenLambda(path);
  return 0;
}

function fail(call: GuestToolCall, message: string, code = 1): number {
  call.stderr.write(message);
  return code;
}
