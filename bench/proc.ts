import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Machine } from './report';

/** Async only: the simulator may run in this process, and a sync child would stall it. */

export const loadavg = (): number[] => os.loadavg().map((x) => Math.round(x * 100) / 100);

export function describeMachine(): Machine {
  const cpus = os.cpus();
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel: os.release(),
    loadAtStart: loadavg(),
    date: new Date().toISOString(),
  };
}

export interface Timed {
  code: number | null;
  stdout: string;
  stderr: string;
  wallMs: number;
  /** User + system time of the child and every descendant it waited for (GNU time). */
  cpuMs: number;
  /** Peak of the summed RSS of the child's process tree, sampled every 20 ms (MiB). */
  treePeakMiB: number;
}

const PAGE = 4096;

/** Summed RSS (bytes) of `root` and its descendants: the kernel's children lists, not a /proc scan (too slow under load). */
async function treeRss(root: number): Promise<number> {
  let total = 0;
  const todo = [root];
  while (todo.length) {
    const p = todo.pop()!;
    const statm = await readFile(`/proc/${p}/statm`, 'utf8').catch(() => '');
    total += Number(statm.split(' ')[1] ?? 0) * PAGE;
    const kids = await readFile(`/proc/${p}/task/${p}/children`, 'utf8').catch(() => '');
    todo.push(...kids.split(' ').filter(Boolean).map(Number));
  }
  return total;
}

/** Runs argv under GNU time, sampling the tree's memory; never throws for a failing command. */
export async function timed(argv: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Timed> {
  if (!existsSync('/usr/bin/time')) throw new Error('/usr/bin/time (Debian package `time`) is needed to measure CPU time');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'ae-bench-time-'));
  const timeFile = path.join(dir, 'time');
  const t0 = performance.now();
  const child = spawn('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, ...argv], { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let peak = 0;
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      if (child.pid) peak = Math.max(peak, await treeRss(child.pid));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  const killer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  const wallMs = performance.now() - t0;
  clearTimeout(killer);
  sampling = false;
  await sampler;
  const [user, sys] = (existsSync(timeFile) ? readFileSync(timeFile, 'utf8') : '').trim().split('\n').pop()?.split(' ').map(Number) ?? [];
  rmSync(dir, { recursive: true, force: true });
  return { code, stdout, stderr, wallMs, cpuMs: ((user ?? NaN) + (sys ?? NaN)) * 1000, treePeakMiB: peak / 2 ** 20 };
}

/** Runs a command, resolving with its exit code and output (for installs and set-up). */
export function run(cmd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', (err) => resolve({ code: null, out: err.message }));
    child.once('close', (code) => resolve({ code, out }));
  });
}

/** Peak RSS (VmHWM, MiB) of a live process. */
export function vmHwmMiB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}
