import type { GuestToolCall, GuestToolResult } from '../channel';
import { bootTimeSeconds, CLOCK_TICKS, type ProcStat } from '../procfs';
import type { GuestRuntime } from './context';

/**
 * ps of the simulated guest, in procps-ng's layouts for `ps aux`, `ps -ef` and plain `ps`/`ps -e`,
 * from the guest's /proc with the users the real servers run as (every guest process is really
 * root of the guest's user namespace). The tool client shows as the tool it stands for. Other
 * option sets go to the real ps (which shows root for everything).
 */

interface Row {
  st: ProcStat;
  user: string;
  args: string;
  comm: string;
}

const AUX = new Set(['aux', '-aux', 'axu', 'uax', 'au', 'ax', '-ax']);
const EF = new Set(['-ef', '-fe', '-eF', '-Af', '-fA']);
const E = new Set(['-e', '-A', 'ax', '-ax']);

export async function psTool(call: GuestToolCall, guest: GuestRuntime): Promise<GuestToolResult> {
  const args = call.args;
  const key = args.join(' ');
  const layout = args.length === 0 ? 'short' : AUX.has(key) && key.includes('u') ? 'aux' : EF.has(key) ? 'ef' : E.has(key) ? 'short-all' : undefined;
  if (!layout) return { delegate: '/bin/ps', args };
  const rows = collect(guest);
  const shown = layout === 'short' ? rows.filter((r) => r.st.pid === call.pid || isAncestor(rows, r.st.pid, call.pid)) : rows;
  const btime = bootTimeSeconds();
  const now = Date.now() / 1000;
  const out: string[] = [];
  if (layout === 'aux') {
    out.push('USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND');
    const memKb = guest.memMiB * 1024;
    for (const r of shown) {
      const started = btime + r.st.startTicks / CLOCK_TICKS;
      const cpu = Math.min(99.9, ((r.st.cpuTicks / CLOCK_TICKS) / Math.max(1, now - started)) * 100);
      const rssKb = r.st.rssPages * 4;
      out.push(
        `${r.user.padEnd(8)} ${String(r.st.pid).padStart(7)} ${cpu.toFixed(1).padStart(4)} ${((rssKb / memKb) * 100).toFixed(1).padStart(4)} ` +
          `${String(Math.round(r.st.vsizeBytes / 1024)).padStart(6)} ${String(rssKb).padStart(5)} ${'?'.padEnd(8)} ${r.st.state.padEnd(4)} ` +
          `${clock(started).padStart(5)} ${cpuTime(r.st.cpuTicks, false).padStart(6)} ${r.args}`,
      );
    }
  } else if (layout === 'ef') {
    out.push('UID          PID    PPID  C STIME TTY          TIME CMD');
    for (const r of shown) {
      const started = btime + r.st.startTicks / CLOCK_TICKS;
      out.push(`${r.user.padEnd(8)} ${String(r.st.pid).padStart(7)} ${String(r.st.ppid).padStart(7)}  0 ${clock(started).padStart(5)} ${'?'.padEnd(8)} ${cpuTime(r.st.cpuTicks, true).padStart(8)} ${r.args}`);
    }
  } else {
    out.push('    PID TTY          TIME CMD');
    for (const r of shown) out.push(`${String(r.st.pid).padStart(7)} ${'?'.padEnd(8)} ${cpuTime(r.st.cpuTicks, true).padStart(8)} ${r.comm}`);
  }
  call.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

function collect(guest: GuestRuntime): Row[] {
  const rows: Row[] = [];
  for (const pid of guest.proc.pids()) {
    const st = guest.proc.stat(pid);
    if (!st) continue;
    let argv = guest.proc.cmdline(pid);
    let comm = st.comm;
    // The tool client and shims stand for the tool they run.
    const tool = argv[0] === '/.ae-guest/node' && argv[1]?.endsWith('_guestctl.js') ? argv.slice(2) : /bash$/.test(argv[0] ?? '') && argv[1]?.startsWith('/.ae-guest/bin/') ? [argv[1].slice('/.ae-guest/bin/'.length), ...argv.slice(2)] : undefined;
    if (tool?.[0]) {
      argv = tool;
      comm = tool[0].split('/').pop()!.slice(0, 15);
    }
    const user = guest.processes.daemon(pid)?.user ?? 'root';
    rows.push({ st, user, comm, args: argv.length > 0 ? argv.join(' ') : `[${st.comm}]` });
  }
  return rows;
}

function isAncestor(rows: readonly Row[], ancestor: number, pid: number): boolean {
  const byPid = new Map(rows.map((r) => [r.st.pid, r]));
  for (let p = byPid.get(pid)?.st.ppid; p !== undefined && p > 0; p = byPid.get(p)?.st.ppid) if (p === ancestor) return true;
  return false;
}

function clock(epochSeconds: number): string {
  const d = new Date(epochSeconds * 1000);
  return `${String(d.getHours()).padStart(2, '0')}:${String(d.getMinutes()).padStart(2, '0')}`;
}

/** `m:ss` (ps aux) or `hh:mm:ss` (ps -ef, ps). */
function cpuTime(ticks: number, long: boolean): string {
  const s = Math.floor(ticks / CLOCK_TICKS);
  if (long) return `${String(Math.floor(s / 3600)).padStart(2, '0')}:${String(Math.floor(s / 60) % 60).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
