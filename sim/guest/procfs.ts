import { readdirSync, readFileSync } from 'node:fs';

/**
 * The guest's processes as its own /proc shows them (guest pids), read from the host through the
 * guest init's root: /proc/<init's host pid>/root/proc. Everything here is best effort: a process
 * may exit between two reads.
 */

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  /** Clock ticks since the machine booted (field 22). */
  startTicks: number;
  /** utime + stime, clock ticks. */
  cpuTicks: number;
  vsizeBytes: number;
  rssPages: number;
  tty: number;
}

export const CLOCK_TICKS = 100;

export function parseStat(text: string): ProcStat | undefined {
  const open = text.indexOf('(');
  const close = text.lastIndexOf(')');
  if (open < 0 || close < 0) return undefined;
  const f = text.slice(close + 2).split(' ');
  return {
    pid: Number(text.slice(0, open).trim()),
    comm: text.slice(open + 1, close),
    state: f[0],
    ppid: Number(f[1]),
    tty: Number(f[4]),
    cpuTicks: Number(f[11]) + Number(f[12]),
    startTicks: Number(f[19]),
    vsizeBytes: Number(f[20]),
    rssPages: Number(f[21]),
  };
}

export class GuestProc {
  constructor(readonly procDir: string) {}

  pids(): number[] {
    try {
      return readdirSync(this.procDir)
        .filter((n) => /^\d+$/.test(n))
        .map(Number)
        .sort((a, b) => a - b);
    } catch {
      return [];
    }
  }

  stat(pid: number): ProcStat | undefined {
    const text = this.read(pid, 'stat');
    const st = text === undefined ? undefined : parseStat(text);
    return st && st.state !== 'Z' ? st : undefined;
  }

  /** argv of `pid`; empty for kernel threads and zombies. */
  cmdline(pid: number): string[] {
    const raw = this.read(pid, 'cmdline');
    if (!raw) return [];
    return raw.replace(/\0$/, '').split('\0');
  }

  /** Real uid (as the host sees it). */
  uid(pid: number): number | undefined {
    const m = /^Uid:\s+(\d+)/m.exec(this.read(pid, 'status') ?? '');
    return m ? Number(m[1]) : undefined;
  }

  exists(pid: number): boolean {
    return this.stat(pid) !== undefined;
  }

  private read(pid: number, file: string): string | undefined {
    try {
      return readFileSync(`${this.procDir}/${pid}/${file}`, 'utf8');
    } catch {
      return undefined;
    }
  }
}

/** Host pids of the children of host pid `ppid`. */
export function hostChildren(ppid: number): number[] {
  try {
    const text = readFileSync(`/proc/${ppid}/task/${ppid}/children`, 'utf8').trim();
    return text ? text.split(/\s+/).map(Number) : [];
  } catch {
    // Kernels without CONFIG_PROC_CHILDREN: scan.
  }
  const out: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (parseStat(readFileSync(`/proc/${name}/stat`, 'utf8'))?.ppid === ppid) out.push(Number(name));
    } catch {
      // gone
    }
  }
  return out;
}

/** The pid of host process `hostPid` in its innermost PID namespace (NSpid's last field). */
export function innermostPid(hostPid: number): number | undefined {
  try {
    const m = /^NSpid:\s+([\d\s]+)$/m.exec(readFileSync(`/proc/${hostPid}/status`, 'utf8'));
    return m ? Number(m[1].trim().split(/\s+/).at(-1)) : undefined;
  } catch {
    return undefined;
  }
}

/** Host process `hostPid`'s comm, if it runs. */
export function hostComm(hostPid: number): string | undefined {
  try {
    return readFileSync(`/proc/${hostPid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The machine's boot time (epoch seconds), for ps's START column. */
export function bootTimeSeconds(): number {
  try {
    const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    if (m) return Number(m[1]);
  } catch {
    // fall through
  }
  return Math.floor(Date.now() / 1000);
}
