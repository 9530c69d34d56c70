'use strict';
// Client of the simulated guest's tool channel (sim/guest/channel.ts): forwards one tool call (its
// name, argv, cwd and pids) to the simulator over an abstract unix socket, prints what comes back
// and exits with the tool's code. Run by the guest's tool shims as
// `/.ae-guest/node /.ae-guest/bin/_guestctl.js <tool> [args...]`. Plain CommonJS: no build step.
const net = require('node:net');
const fs = require('node:fs');
const { spawnSync } = require('node:child_process');

const [tool, ...args] = process.argv.slice(2);
let name;
try {
  name = fs.readFileSync('/.ae-guest/socket', 'utf8').trim();
} catch {
  process.stderr.write(`${tool}: not inside the simulated guest (no /.ae-guest/socket)\n`);
  process.exit(127);
}
for (const s of [process.stdout, process.stderr]) s.on('error', () => process.exit(141));

const sock = net.connect({ path: `\0${name}` });
let buf = Buffer.alloc(0);
let done = false;
sock.on('connect', () => {
  sock.write(`${JSON.stringify({ tool, args, cwd: process.cwd(), pid: process.pid, ppid: process.ppid })}\n`);
});
sock.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  while (buf.length >= 5) {
    const len = buf.readUInt32BE(1);
    if (buf.length < 5 + len) break;
    const type = String.fromCharCode(buf[0]);
    const payload = buf.subarray(5, 5 + len);
    buf = buf.subarray(5 + len);
    if (type === 'o') process.stdout.write(payload);
    else if (type === 'e') process.stderr.write(payload);
    else if (type === 'x') finish(Number(payload.toString()));
    else if (type === 'd') delegate(JSON.parse(payload.toString()));
  }
});
sock.on('error', (err) => {
  if (done) return;
  process.stderr.write(`${tool}: the simulated guest does not answer (${err.code || err.message})\n`);
  finish(126);
});
sock.on('close', () => {
  if (!done) finish(255);
});

function finish(code) {
  done = true;
  process.exitCode = code;
  sock.destroy();
}

// The simulator does not imitate this call: run the real tool in its place.
function delegate(call) {
  done = true;
  sock.destroy();
  const r = spawnSync(call.path, call.args, { stdio: 'inherit' });
  if (r.error) {
    process.stderr.write(`${tool}: ${r.error.message}\n`);
    process.exit(127);
  }
  if (r.signal) process.kill(process.pid, r.signal);
  process.exit(r.status === null ? 1 : r.status);
}
