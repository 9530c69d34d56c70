import { DELEGATE, type ToolHandler } from '../types';
import { LineRewriter, mapNodeFile, parseUrl, realTool, rewriteUrl, runReal, targetOf, unrewrite, type Target } from './guestNet';

/**
 * `curl` on a node, for the OpenLambda workers of E2 (`curl -d '1' 10.4.4.222:5000/run/process`):
 * guest URLs become the guest's loopback ports and the real curl runs from the simulator; file
 * options are mapped into the node (writes only where the node may write). Loopback URLs go to the
 * node's own curl; any other address fails with curl's "No route to host" (exit 7).
 */

/** curl options with a value: [option, kind of value]. */
const VALUE_OPTS = new Map<string, 'plain' | 'read' | 'write' | 'data' | 'cookie'>([
  ...['-d', '--data', '--data-raw', '--data-binary', '--data-urlencode', '--data-ascii'].map((o) => [o, 'data'] as const),
  ...['-o', '--output', '-c', '--cookie-jar', '-D', '--dump-header', '--trace', '--trace-ascii', '--stderr'].map((o) => [o, 'write'] as const),
  ...['-T', '--upload-file', '-K', '--config', '--cacert', '-E', '--cert', '--key'].map((o) => [o, 'read'] as const),
  ['-b', 'cookie'],
  ['--cookie', 'cookie'],
  ...['-H', '--header', '-X', '--request', '-u', '--user', '-w', '--write-out', '-m', '--max-time', '--connect-timeout', '-A', '--user-agent', '-e', '--referer', '-F', '--form', '-x', '--proxy', '-r', '--range', '--retry', '--retry-delay', '--retry-max-time', '--resolve', '--interface', '-C', '--continue-at', '-Y', '-y', '-z', '--max-filesize', '--limit-rate'].map((o) => [o, 'plain'] as const),
]);

export const curlHandler: ToolHandler = async (ctx) => {
  const args = [...ctx.argv.slice(1)];
  const guests: Extract<Target, { kind: 'guest' }>[] = [];
  let anyUrl = false;
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const kind = VALUE_OPTS.get(a);
    if (kind !== undefined) {
      if (i + 1 >= args.length) break;
      const v = args[++i];
      const file = kind === 'read' || kind === 'write' ? v : (kind === 'data' || kind === 'cookie') && v.startsWith('@') && v !== '@-' ? v.slice(1) : kind === 'cookie' && !v.includes('=') ? v : undefined;
      if (file !== undefined && file !== '-') {
        const mapped = mapNodeFile(ctx.node, ctx.cwd, file, kind === 'write' || kind === 'cookie');
        if (mapped === undefined) {
          ctx.stderr.write(`curl: (23) Failure writing output to destination: ${file}: Read-only file system\n`);
          return 23;
        }
        args[i] = v.startsWith('@') && kind !== 'read' && kind !== 'write' ? `@${mapped}` : mapped;
      }
      continue;
    }
    if (a.startsWith('-')) continue;
    const url = parseUrl(a);
    if (!url) continue;
    anyUrl = true;
    const t = targetOf(ctx, ctx.node, url);
    if (t.kind === 'loopback') continue;
    if (t.kind !== 'guest') {
      ctx.stderr.write(`curl: (7) Failed to connect to ${t.host} port ${t.port} after 0 ms: ${t.kind === 'refused' ? 'Connection refused' : 'No route to host'}\n`);
      return 7;
    }
    guests.push(t);
    args[i] = rewriteUrl(a, t);
  }
  if (!anyUrl || guests.length === 0) return DELEGATE;
  const curl = realTool('curl');
  if (!curl) {
    ctx.stderr.write('curl: SIMULATED guest: the real curl is not installed where the simulator runs\n');
    return 127;
  }
  const cwd = mapNodeFile(ctx.node, '/', ctx.cwd, true) ?? mapNodeFile(ctx.node, '/', '/tmp', true)!;
  return runReal(ctx, curl, args, cwd, new LineRewriter((l) => unrewrite(l, guests)), new LineRewriter((l) => unrewrite(l, guests)));
};
