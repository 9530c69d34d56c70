import { formatTimestamp, type KmsgEntry } from '../kmsg';
import { asSimWorldNode } from '../world';
import type { ToolContext, ToolHandler } from './types';

/**
 * `dmesg` on a simulated node: the node's own kernel ring buffer (sim/kmsg.ts), never the host's,
 * printed as util-linux 2.31 (Ubuntu 18.04) prints it. Reading needs no root there
 * (kernel.dmesg_restrict=0); clearing does.
 */

const USAGE = `
Usage:
 dmesg [options]

Display or control the kernel ring buffer.

Options:
 -C, --clear                 clear the kernel ring buffer
 -c, --read-clear            read and clear all messages
 -H, --human                 human readable output
 -k, --kernel                display kernel messages
 -L, --color[=<when>]        colorize messages (auto, always or never)
 -l, --level <list>          restrict output to defined levels
 -P, --nopager               do not pipe output into a pager
 -T, --ctime                 show human-readable timestamp (may be inaccurate!)
 -t, --notime                don't show any timestamp with messages
 -w, --follow                wait for new messages
 -x, --decode                decode facility and level to readable string

 -h, --help                  display this help and exit
 -V, --version               output version information and exit
`;

interface Opts {
  clear: boolean;
  print: boolean;
  time: 'rel' | 'ctime' | 'none';
  follow: 'no' | 'all' | 'new';
}

/** Parses the options; a string is an error message for stderr. */
function parse(args: string[]): Opts | { help: true } | { version: true } | string {
  const o: Opts = { clear: false, print: true, time: 'rel', follow: 'no' };
  const takesValue = new Set(['-l', '--level', '-f', '--facility', '-s', '--buffer-size', '-n', '--console-level', '-F', '--file', '--time-format']);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('--')) {
      const name = a.split('=')[0];
      if (takesValue.has(name)) {
        if (!a.includes('=')) i++;
        continue;
      }
      switch (name) {
        case '--clear': o.clear = true; o.print = false; break;
        case '--read-clear': o.clear = true; break;
        case '--ctime': o.time = 'ctime'; break;
        case '--notime': o.time = 'none'; break;
        case '--follow': o.follow = 'all'; break;
        case '--follow-new': o.follow = 'new'; break;
        case '--help': return { help: true };
        case '--version': return { version: true };
        case '--human': case '--kernel': case '--color': case '--nopager': case '--decode': case '--raw': case '--userspace': break;
        default: return `dmesg: unrecognized option '${a}'\nTry 'dmesg --help' for more information.\n`;
      }
      continue;
    }
    if (!a.startsWith('-') || a === '-') return `dmesg: bad usage\nTry 'dmesg --help' for more information.\n`;
    for (let k = 1; k < a.length; k++) {
      const c = a[k];
      if ('lfsnF'.includes(c)) {
        if (k === a.length - 1) i++;
        break;
      }
      switch (c) {
        case 'C': o.clear = true; o.print = false; break;
        case 'c': o.clear = true; break;
        case 'T': o.time = 'ctime'; break;
        case 't': o.time = 'none'; break;
        case 'w': o.follow = 'all'; break;
        case 'W': o.follow = 'new'; break;
        case 'h': return { help: true };
        case 'V': return { version: true };
        case 'H': case 'k': case 'L': case 'P': case 'x': case 'r': case 'u': break;
        default: return `dmesg: invalid option -- '${c}'\nTry 'dmesg --help' for more information.\n`;
      }
    }
  }
  return o;
}

function format(e: KmsgEntry, o: Opts, bootedAtMs: number): string {
  if (o.time === 'none') return `${e.text}\n`;
  if (o.time === 'rel') return `${formatTimestamp(e.t)}${e.text}\n`;
  const d = new Date(bootedAtMs + e.t * 1000);
  const [wd, mon, day, year] = d.toDateString().split(' ');
  return `[${wd} ${mon} ${Number(day)} ${d.toTimeString().slice(0, 8)} ${year}] ${e.text}\n`;
}

export const dmesgHandler: ToolHandler = async (ctx: ToolContext) => {
  const o = parse(ctx.argv.slice(1));
  if (typeof o === 'string') {
    ctx.stderr.write(o);
    return 1;
  }
  if ('help' in o) {
    ctx.stdout.write(USAGE);
    return 0;
  }
  if ('version' in o) {
    ctx.stdout.write('dmesg from util-linux 2.31.1\n');
    return 0;
  }
  const sim = asSimWorldNode(ctx.node);
  const entries: readonly KmsgEntry[] = sim ? sim.kmsg.all() : ctx.node.dmesg.lines().map((text) => ({ t: 0, text }));
  const bootedAtMs = sim ? sim.sim.state.bootedAt.getTime() : Date.now();
  if (o.clear && !ctx.sudo) {
    ctx.stderr.write('dmesg: klogctl failed: Operation not permitted\n');
    return 1;
  }
  if (o.print && o.follow !== 'new') ctx.stdout.write(entries.map((e) => format(e, o, bootedAtMs)).join(''));
  if (o.clear) sim?.kmsg.clear();
  if (o.follow === 'no' || !sim) return 0;
  // -w: new messages as they come, until the caller goes away (Ctrl-C) or the node goes down.
  await new Promise<void>((resolve) => {
    const stop = sim.kmsg.follow((e) => ctx.stdout.write(format(e, o, bootedAtMs)));
    const done = () => {
      stop();
      resolve();
    };
    if (ctx.signal.aborted) done();
    else ctx.signal.addEventListener('abort', done, { once: true });
  });
  return 130;
};
