import { DELEGATE, type ToolHandler } from '../types';
import { LineRewriter, mapNodeFile, parseUrl, realTool, rewriteUrl, runReal, targetOf, unrewrite } from './guestNet';

/**
 * `ab` on a node: `ab -n 100 -c 10 http://10.4.4.222/` on the origin runs the real ApacheBench
 * from the simulator against the guest's loopback port (same path and query), so the report is
 * genuine ab output; it names the guest again (Benchmarking, Server Hostname and Port) and says
 * SIMULATED above the numbers. Loopback URLs go to the node's own ab; anything else, or the guest
 * from another node or while no VM runs, fails as an unroutable address does.
 */

/** ab options that name a file: [option, written?]. */
const FILE_OPTS = new Map([
  ['-p', false],
  ['-u', false],
  ['-E', false],
  ['-g', true],
  ['-e', true],
]);
/** ab options that take a value (the URL is the argument that is not one of these values). */
const VALUE_OPTS = new Set(['-n', '-c', '-t', '-s', '-b', '-B', '-p', '-u', '-v', '-T', '-C', '-H', '-A', '-P', '-X', '-g', '-e', '-E', '-Z', '-f', '-m', '-l']);

export const abHandler: ToolHandler = async (ctx) => {
  const args = ctx.argv.slice(1);
  const urlAt = findUrl(args);
  const url = urlAt < 0 ? undefined : parseUrl(args[urlAt]);
  if (!url) return DELEGATE;
  const t = targetOf(ctx, ctx.node, url);
  if (t.kind === 'loopback') return DELEGATE;
  const banner = 'This is ApacheBench, Version 2.3 <$Revision: 1807734 $>\nCopyright 1996 Adam Twiss, Zeus Technology Ltd, http://www.zeustech.net/\nLicensed to The Apache Software Foundation, http://www.apache.org/\n\n';
  if (t.kind !== 'guest') {
    ctx.stdout.write(`${banner}Benchmarking ${t.host} (be patient)...`);
    ctx.stderr.write(t.kind === 'refused' ? 'apr_socket_connect(): Connection refused (111)\n' : 'apr_socket_connect(): No route to host (113)\n');
    return 1;
  }
  const ab = realTool('ab');
  if (!ab) {
    ctx.stderr.write('ab: SIMULATED guest: the real ApacheBench (apache2-utils) is not installed where the simulator runs\n');
    return 127;
  }
  const real = [...args];
  real[urlAt] = rewriteUrl(args[urlAt], t);
  for (let i = 0; i < urlAt; i++) {
    const write = FILE_OPTS.get(real[i]);
    if (write === undefined || i + 1 >= urlAt) continue;
    const mapped = mapNodeFile(ctx.node, ctx.cwd, real[i + 1], write);
    if (mapped === undefined) {
      ctx.stderr.write(`ab: Could not open file ${real[i + 1]} for writing: Read-only file system\n`);
      return 1;
    }
    real[++i] = mapped;
  }
  const cwd = mapNodeFile(ctx.node, '/', ctx.cwd, true) ?? mapNodeFile(ctx.node, '/', '/tmp', true)!;
  const simulated = `SIMULATED: ${t.ip}:${t.guestPort} is the simulated FragVisor guest (here 127.0.0.1:${t.port}); its timings follow the performance model\n`;
  const out = new LineRewriter((line) => {
    const fixed = unrewrite(line, [t]);
    if (fixed.startsWith('Benchmarking ')) return `${simulated}${fixed.replace('Benchmarking 127.0.0.1', `Benchmarking ${t.ip}`)}`;
    if (/^Server Hostname:/.test(fixed)) return fixed.replace('127.0.0.1', t.ip);
    if (/^Server Port:\s+\d+$/.test(fixed)) return fixed.replace(/\d+$/, String(t.guestPort));
    if (/^Server Software:/.test(fixed) && !fixed.includes('SIMULATED')) return `${fixed} (SIMULATED)`;
    return fixed;
  });
  const err = new LineRewriter((line) => unrewrite(line, [t]));
  return runReal(ctx, ab, real, cwd, out, err);
};

/** Index of ab's URL argument: the first argument that is neither an option nor an option's value. */
function findUrl(args: readonly string[]): number {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('-')) {
      if (VALUE_OPTS.has(a)) i++;
      continue;
    }
    return i;
  }
  return -1;
}
