import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { StringDecoder } from 'node:string_decoder';
import { parseArgs } from 'node:util';
import { runsDir } from '../../config/paths';
import { withTemporal } from '../client';
import { EXIT, ExitError } from '../exitError';
import { describeRun, isOpen, runIdArg } from '../runs';
import { UsageError } from '../usageError';

export const usage = `ae logs <runId> [--node N] [--follow] [--json]
  Prints the run's step logs from the run store (<runs>/<runId>/logs/<node>/<step>.log: every step's
  output, build logs, VM consoles), grouped by node and step, with a header per file.
  --node N     only node N's logs (guest: the guest VM's)
  --follow     keep printing what is appended (and new files) until the run closes, or Ctrl-C
  --json       one JSON object per log line: {"node","file","line"}
  The run store is read on this host: ${'`'}runs/${'`'} in the project, or AE_RUNS_DIR. Logs live on the
  worker's host; run ae logs there (or share the folder and point AE_RUNS_DIR at it).
  exit codes: 0 ok, 2 usage, 3 Temporal unreachable (--follow), 4 no such run folder or node`;

/** How often --follow looks at the files, and how often it asks Temporal whether the run has closed. */
const POLL_MS = 300;
const CHECK_MS = 1500;
/** A line this long without a newline is emitted as it is (--json never holds more in memory). */
const MAX_LINE = 64 * 1024;

export interface LogFile {
  node: string;
  /** Relative to the run folder: `logs/node0/fragvisor.source-sync.log`. */
  relative: string;
  size: number;
}

const natural = new Intl.Collator('en', { numeric: true }).compare;

/** Node by node (node2 before node10), each node's files by name. */
export function sortLogFiles(files: readonly LogFile[]): LogFile[] {
  return [...files].sort((a, b) => natural(a.node, b.node) || natural(a.relative, b.relative));
}

/** The header before a file's lines (tail's). */
export const fileHeader = (relative: string): string => `==> ${relative} <==`;

const NODE = /^[A-Za-z0-9][A-Za-z0-9_.:@+-]{0,199}$/;

async function walk(dir: string, rel: string, node: string, out: LogFile[]): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const relative = `${rel}/${e.name}`;
    if (e.isDirectory()) await walk(path.join(dir, e.name), relative, node, out);
    else if (e.isFile()) {
      const st = await stat(path.join(dir, e.name)).catch(() => undefined);
      if (st) out.push({ node, relative, size: st.size });
    }
  }
}

/** The log files of a run (of one node), sorted; none when there is no logs/ yet. */
export async function listLogs(runFolder: string, node?: string): Promise<LogFile[]> {
  const logs = path.join(runFolder, 'logs');
  const nodes = node !== undefined ? [node] : (await readdir(logs, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => e.name);
  const files: LogFile[] = [];
  for (const n of nodes) await walk(path.join(logs, n), `logs/${n}`, n, files);
  return sortLogFiles(files);
}

/** Writes byte ranges of the files to stdout: raw with a header per file, or as JSON lines. */
class Printer {
  private current?: string;
  private atLineStart = true;
  private readonly partial = new Map<string, { decoder: StringDecoder; rest: string }>();
  constructor(
    private readonly runFolder: string,
    private readonly json: boolean,
  ) {}

  private async write(text: string | Buffer): Promise<void> {
    if (!process.stdout.write(text)) await once(process.stdout, 'drain');
  }

  /** The header in text mode, when the output switches to another file. */
  private async header(f: LogFile): Promise<void> {
    if (this.json || this.current === f.relative) return;
    await this.write(`${this.atLineStart ? '' : '\n'}${this.current === undefined ? '' : '\n'}${fileHeader(f.relative)}\n`);
    this.current = f.relative;
    this.atLineStart = true;
  }

  private async lines(f: LogFile, text: string, final: boolean): Promise<void> {
    const p = this.partial.get(f.relative)!;
    const parts = (p.rest + text).split('\n');
    p.rest = parts.pop()!;
    if (final || p.rest.length >= MAX_LINE) {
      if (p.rest !== '') parts.push(p.rest);
      p.rest = '';
    }
    for (const line of parts) await this.write(`${JSON.stringify({ node: f.node, file: f.relative, line })}\n`);
  }

  /** Streams bytes [from, to) of the file (never the whole file in memory). */
  async copy(f: LogFile, from: number, to: number): Promise<void> {
    await this.header(f);
    if (to <= from) return;
    if (this.json && !this.partial.has(f.relative)) this.partial.set(f.relative, { decoder: new StringDecoder('utf8'), rest: '' });
    for await (const chunk of createReadStream(path.join(this.runFolder, f.relative), { start: from, end: to - 1 }) as AsyncIterable<Buffer>) {
      if (this.json) await this.lines(f, this.partial.get(f.relative)!.decoder.write(chunk), false);
      else {
        await this.write(chunk);
        this.atLineStart = chunk[chunk.length - 1] === 0x0a;
      }
    }
  }

  /** The end: what is left of unterminated lines. */
  async flush(files: readonly LogFile[]): Promise<void> {
    if (!this.json) {
      if (!this.atLineStart) await this.write('\n');
      return;
    }
    for (const f of files) if (this.partial.has(f.relative)) await this.lines(f, this.partial.get(f.relative)!.decoder.end(), true);
  }
}

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { node: { type: 'string' }, follow: { type: 'boolean', default: false }, json: { type: 'boolean', default: false } },
    allowPositionals: true,
    strict: true,
  });
  const id = runIdArg(positionals);
  const node = values.node;
  if (node !== undefined && (!NODE.test(node) || node.includes('..'))) throw new UsageError(`--node ${JSON.stringify(node)}: expected a node name from the profile (or guest)`);
  const runFolder = path.join(runsDir(), id);
  if (!(await stat(runFolder).then((s) => s.isDirectory(), () => false))) {
    throw new ExitError(
      `no run folder ${runFolder}: a run's logs live in the run store on the host of the worker that ran it (runs/ in the project, or AE_RUNS_DIR there); run ae logs on that host, or point AE_RUNS_DIR here at the same folder`,
      EXIT.notFound,
    );
  }
  const printer = new Printer(runFolder, values.json);
  const offsets = new Map<string, number>();
  let seen: LogFile[] = [];
  /** Prints what is new since the last pass; every file gets its header on the first. */
  const pass = async () => {
    seen = await listLogs(runFolder, node);
    for (const f of seen) {
      let from = offsets.get(f.relative);
      if (from !== undefined && f.size < from) {
        console.error(`ae logs: ${f.relative} was truncated; printing it from the start`);
        from = 0;
      }
      if (from === undefined || f.size > from) await printer.copy(f, from ?? 0, f.size);
      offsets.set(f.relative, f.size);
    }
  };

  if (!values.follow) {
    await pass();
    await printer.flush(seen);
    if (seen.length > 0) return 0;
    if (node === undefined) {
      console.error(`ae logs: no step logs yet in ${path.join(runFolder, 'logs')}`);
      return 0;
    }
    const nodes = (await listLogs(runFolder)).map((f) => f.node);
    throw new ExitError(`no logs for node ${node} in ${path.join(runFolder, 'logs')} (nodes with logs: ${[...new Set(nodes)].join(', ') || 'none yet'})`, EXIT.notFound);
  }

  return withTemporal(async (t) => {
    let stopped = false;
    let wake = () => {};
    const onSigint = () => {
      stopped = true;
      wake();
    };
    process.once('SIGINT', onSigint);
    try {
      let closed: string | undefined;
      let checked = 0;
      for (;;) {
        await pass();
        if (closed !== undefined || stopped) break;
        await new Promise<void>((r) => {
          const timer = setTimeout(r, POLL_MS);
          wake = () => {
            clearTimeout(timer);
            r();
          };
        });
        if (Date.now() - checked >= CHECK_MS) {
          checked = Date.now();
          try {
            const d = await describeRun(t, id);
            if (!isOpen(d)) closed = d.status.name;
          } catch (err) {
            if (!(err instanceof ExitError && err.exitCode === EXIT.notFound)) throw err;
            closed = 'not in Temporal: nothing more will be written';
          }
        }
      }
      await printer.flush(seen);
      if (closed !== undefined) console.error(`ae logs: run ${id} has closed (${closed})`);
      return 0;
    } finally {
      process.removeListener('SIGINT', onSigint);
    }
  });
}
