'use strict';
// The node side of the simulator's tool channel (fragvisor-ae, sim/tools/server.ts): run by the thin
// wrappers in this directory as `/usr/bin/node _ctl.js <tool> [args...]`. Forwards argv, cwd and the
// environment over the node's control socket, streams the handler's stdout/stderr back, feeds it
// stdin only if it asks, and exits with its code. If the simulator says "delegate", runs the
// system's real tool instead (PATH without the imitation dirs). Dying (Ctrl-C, kill) closes the
// socket, which aborts the handler. Node built-ins only; the wire format is in sim/tools/protocol.ts.
const net = require('node:net');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const SOCKET = process.env.AE_SIM_CTL_SOCKET || '/home/.ae-sim/state/ctl.sock';
const IMITATION_DIRS = new Set(['/home/.ae-sim/bin', '/home/.ae-sim/tools']);
const tool = process.argv[2];
const args = process.argv.slice(3);

function die(message, code) {
  process.stderr.write(`${tool || '_ctl.js'}: ${message}\n`, () => process.exit(code));
}

function frame(type, payload) {
  const body = payload === undefined ? Buffer.alloc(0) : Buffer.isBuffer(payload) ? payload : Buffer.from(payload);
  const head = Buffer.alloc(5);
  head.write(type, 0, 'latin1');
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

// A closed reader (`make | head -1`): behave like a process killed by SIGPIPE, as the shell sees it.
for (const s of [process.stdout, process.stderr]) {
  s.on('error', (err) => {
    if (err.code === 'EPIPE') process.exit(141);
  });
}

/** The real tool: the first executable named `tool` on PATH outside the imitation dirs. */
function realTool(pathVar) {
  for (const dir of pathVar.split(':')) {
    if (!dir || IMITATION_DIRS.has(path.resolve(dir))) continue;
    const candidate = path.join(dir, tool);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/**
 * Runs the real tool like system(3) would: the caller's terminal signals go to it, we mirror its
 * end. An imitation that is its own fallback (kmod, bind-mounted over the real tool) names itself
 * in AE_SIM_FALLBACK and gets AE_SIM_DELEGATED=<tool> so that it does not call us again. PATH stays
 * as it is: what the real tool runs must still see the node's imitations.
 */
function delegate() {
  const fallback = process.env.AE_SIM_FALLBACK;
  const pathVar = (process.env.PATH || '/usr/bin:/bin').split(':').filter((d) => d && !IMITATION_DIRS.has(path.resolve(d))).join(':');
  const real = fallback || realTool(pathVar);
  if (!real) return die('command not found', 127);
  const env = { ...process.env, AE_SIM_DELEGATED: tool };
  delete env.AE_SIM_FALLBACK;
  const child = spawn(real, args, { stdio: 'inherit', env });
  // Terminal signals reach the whole process group, the child included: do not die before it.
  for (const sig of ['SIGINT', 'SIGQUIT']) process.on(sig, () => {});
  // A signal meant for this pid only (kill PID) is passed on.
  for (const sig of ['SIGTERM', 'SIGHUP']) process.on(sig, () => child.kill(sig));
  child.on('error', (err) => die(err.message, 126));
  child.on('exit', (code, signal) => {
    if (code !== null) return process.exit(code);
    for (const sig of ['SIGINT', 'SIGQUIT', 'SIGTERM', 'SIGHUP']) process.removeAllListeners(sig);
    process.kill(process.pid, signal);
    setTimeout(() => process.exit(128 + (require('node:os').constants.signals[signal] || 1)), 100);
  });
}

if (!tool) die('usage: _ctl.js <tool> [args...]', 2);

const sock = net.createConnection(SOCKET);
let buf = Buffer.alloc(0);
let ended = false;

sock.on('connect', () => {
  const header = { v: 1, tool, argv: [tool, ...args], cwd: process.cwd(), env: { ...process.env } };
  sock.write(frame('h', JSON.stringify(header)));
});

function sendStdin() {
  process.stdin.on('data', (d) => sock.write(frame('i', d)));
  process.stdin.on('end', () => sock.write(frame('z')));
  process.stdin.on('error', () => sock.write(frame('z')));
}

function finish(code) {
  ended = true;
  sock.destroy();
  let pending = 2;
  const done = () => --pending === 0 && process.exit(code);
  process.stdout.write('', done);
  process.stderr.write('', done);
}

function onFrame(type, payload) {
  if (type === 'o' || type === 'e') {
    const out = type === 'o' ? process.stdout : process.stderr;
    if (!out.write(payload)) {
      sock.pause();
      out.once('drain', () => sock.resume());
    }
  } else if (type === 'w') sendStdin();
  else if (type === 'x') finish(Number(payload.toString()) || 0);
  else if (type === 'd') {
    ended = true;
    sock.destroy();
    delegate();
  }
}

sock.on('data', (chunk) => {
  buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
  while (!ended && buf.length >= 5) {
    const len = buf.readUInt32BE(1);
    if (buf.length < 5 + len) break;
    const type = String.fromCharCode(buf[0]);
    const payload = buf.subarray(5, 5 + len);
    buf = buf.subarray(5 + len);
    onFrame(type, payload);
  }
});

sock.on('error', (err) => {
  if (ended) return;
  ended = true;
  die(`cannot reach the simulator's tool channel (${SOCKET}): ${err.code || err.message}`, 1);
});

sock.on('close', () => {
  if (ended) return;
  ended = true;
  die('the simulator closed the tool channel (is the node going down?)', 1);
});
