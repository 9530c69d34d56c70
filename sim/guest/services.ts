import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { SimModel } from '../model/runtime';
import type { Hypervisor } from '../model/schema';
import { openLambdaPort, parseNginxConf, parsePhpFpmPools, phpFpmIncludes } from './conf';
import type { GuestPorts } from './endpoints';
import { OPENLAMBDA_BASE_PORT } from './endpoints';
import type { RunningServer } from './listen';
import { startNginx } from './nginx';
import { startOpenLambdaWorker } from './openLambda';
import type { GuestDaemon, GuestProcesses } from './processes';
import { Timelines } from './timeline';

/**
 * The guest's servers: real (waiting) processes in the guest for ps, kill and taskset, and the
 * model-driven HTTP servers on loopback ports that answer for them. nginx and php-fpm behave like
 * their masters: a killed worker is replaced (with the master's mask, as a fork would have it),
 * a master that goes takes its workers with it, and nginx serves only while it has workers.
 */

export interface ServicesOptions {
  processes: GuestProcesses;
  /** Host path of a guest path (through the guest init's root). */
  hostPath(guestPath: string): string;
  model: SimModel;
  hypervisor: Hypervisor;
  vcpus: number;
  guestIp: string;
  ports: GuestPorts;
}

/** A start refused the way the real server refuses it: the lines it prints and its exit code. */
export interface Refusal {
  error: string;
  code: number;
}

interface Master {
  daemon: GuestDaemon;
  server?: RunningServer;
  workerArgv0: string;
  workerUser: string;
  workerKind: 'nginx-worker' | 'php-worker';
  comm: string;
}

export class GuestServices {
  private readonly timelines = new Timelines();
  private nginx: Master | undefined;
  private php: Master | undefined;
  private readonly ol = new Map<number, { daemon: GuestDaemon; server: RunningServer; path: string }>();
  private stopping = false;

  constructor(private readonly opts: ServicesOptions) {
    opts.processes.onExit((d) => this.onExit(d));
  }

  readFile(guestPath: string): string | undefined {
    try {
      return readFileSync(this.opts.hostPath(guestPath), 'utf8');
    } catch {
      return undefined;
    }
  }

  nginxRunning(): boolean {
    return this.nginx?.daemon.alive === true;
  }

  phpFpmRunning(): boolean {
    return this.php?.daemon.alive === true;
  }

  /** `nginx -c conf`: master and workers with `mask`, the HTTP server on the port `listen` names. */
  async startNginx(conf: string, mask: number): Promise<Refusal | undefined> {
    const text = this.readFile(conf);
    if (text === undefined) return { error: `nginx: [emerg] open() "${conf}" failed (2: No such file or directory)\n`, code: 1 };
    const settings = parseNginxConf(text);
    if (typeof settings === 'string') return { error: `nginx: [emerg] ${settings} in ${conf}\n`, code: 1 };
    if (this.nginxRunning()) {
      const line = `nginx: [emerg] bind() to 0.0.0.0:${settings.listen} failed (98: Address already in use)\n`;
      return { error: `${line.repeat(5)}nginx: [emerg] still could not bind()\n`, code: 1 };
    }
    const { processes } = this.opts;
    const master = await processes.spawn('nginx-master', 'root', 'nginx', `nginx: master process /usr/local/nginx/sbin/nginx -c ${conf}`, mask);
    const entry: Master = { daemon: master, workerArgv0: 'nginx: worker process', workerUser: 'nobody', workerKind: 'nginx-worker', comm: 'nginx' };
    this.nginx = entry;
    const workers = settings.workers === 'auto' ? this.opts.vcpus : settings.workers;
    for (let i = 0; i < workers && master.alive; i++) await this.spawnWorker(entry);
    if (master.alive) {
      entry.server = await this.opts.ports.serve(settings.listen, (port) => startNginx({
        model: this.opts.model,
        hypervisor: this.opts.hypervisor,
        nodes: this.opts.vcpus,
        htmlDir: this.opts.hostPath(settings.root),
        index: settings.index,
        port,
        guestIp: this.opts.guestIp,
        timelines: this.timelines,
        pinning: () => processes.pinning(),
      }));
      if (!master.alive) await this.stopServer(entry);
    }
    return undefined;
  }

  /** `php-fpm7.2 --fpm-config conf`: master (root) and the pools' workers with `mask`. */
  async startPhpFpm(conf: string, mask: number): Promise<Refusal | undefined> {
    const text = this.readFile(conf);
    if (text === undefined) return { error: `ERROR: failed to open configuration file '${conf}': No such file or directory (2)\nERROR: failed to load configuration file '${conf}'\nERROR: FPM initialization failed\n`, code: 78 };
    if (this.phpFpmRunning()) return { error: `ERROR: unable to bind listening socket for address '127.0.0.1:9000': Address already in use (98)\nERROR: FPM initialization failed\n`, code: 78 };
    const files = [text, ...phpFpmIncludes(text).flatMap((glob) => this.globRead(glob))];
    const pools = parsePhpFpmPools(files);
    if (pools.length === 0) return { error: `ERROR: No pool defined. at least one pool section must be specified in config file\nERROR: failed to post process the configuration\nERROR: FPM initialization failed\n`, code: 78 };
    const { processes } = this.opts;
    const master = await processes.spawn('php-master', 'root', 'php-fpm7.2', `php-fpm: master process (${conf})`, mask);
    const pool = pools[0];
    const entry: Master = { daemon: master, workerArgv0: `php-fpm: pool ${pool.name}`, workerUser: pool.user, workerKind: 'php-worker', comm: 'php-fpm7.2' };
    this.php = entry;
    for (let i = 0; i < pool.workers && master.alive; i++) await this.spawnWorker(entry);
    return undefined;
  }

  /**
   * `ol worker --path=P`: its port is config.json's worker_port under P, else 5000 + the number
   * ending P's name (l0 -> 5000, l3 -> 5003), else the first free port from 5000.
   */
  async startOpenLambda(workerPath: string, mask: number): Promise<Refusal | { port: number; pid: number }> {
    const config = this.readFile(`${workerPath}/config.json`);
    const digits = /(\d+)$/.exec(path.posix.basename(workerPath))?.[1];
    let port = openLambdaPort(config) ?? (digits !== undefined ? OPENLAMBDA_BASE_PORT + Number(digits) : undefined);
    if (port === undefined) for (port = OPENLAMBDA_BASE_PORT; this.ol.has(port); port++);
    if (this.ol.has(port)) return { error: `Error: listen tcp :${port}: bind: address already in use\n`, code: 1 };
    const { processes } = this.opts;
    const daemon = await processes.spawn('ol-worker', 'root', 'ol', `ol worker --path=${workerPath}`, mask);
    daemon.port = port;
    const index = port - OPENLAMBDA_BASE_PORT;
    const server = await this.opts.ports.serve(port, (loopback) => startOpenLambdaWorker({
      model: this.opts.model,
      hypervisor: this.opts.hypervisor,
      nodes: this.opts.vcpus,
      port: loopback,
      name: `ol${index >= 0 ? index : port}`,
      timelines: this.timelines,
      mask: () => processes.maskOf(daemon.proc.pid) ?? processes.fullMask,
    }));
    this.ol.set(port, { daemon, server, path: workerPath });
    if (!daemon.alive) await this.stopOl(port);
    return { port, pid: daemon.proc.pid };
  }

  /** The ol worker started with `--path=workerPath`, if it runs. */
  openLambdaWorker(workerPath: string): { port: number; pid: number } | undefined {
    for (const [port, w] of this.ol) if (w.path === workerPath && w.daemon.alive) return { port, pid: w.daemon.proc.pid };
    return undefined;
  }

  killOpenLambda(workerPath: string): void {
    for (const w of this.ol.values()) if (w.path === workerPath) w.daemon.proc.kill('SIGTERM');
  }

  killNginx(signal: NodeJS.Signals = 'SIGTERM'): boolean {
    if (!this.nginx?.daemon.alive) return false;
    this.nginx.daemon.proc.kill(signal);
    return true;
  }

  killPhpFpm(): void {
    if (this.php?.daemon.alive) this.php.daemon.proc.kill('SIGTERM');
  }

  /** Resolves when php-fpm's master is gone or `signal` aborts (php-fpm -F in the foreground). */
  untilPhpFpmStops(signal: AbortSignal): Promise<void> {
    const master = this.php?.daemon;
    return master ? untilOr(master.proc.exited, signal) : Promise.resolve();
  }

  /** Resolves when the ol worker of `workerPath` is gone or `signal` aborts (`ol worker` without -d). */
  untilOpenLambdaStops(workerPath: string, signal: AbortSignal): Promise<void> {
    const w = [...this.ol.values()].find((x) => x.path === workerPath && x.daemon.alive);
    return w ? untilOr(w.daemon.proc.exited, signal) : Promise.resolve();
  }

  /** Stops every server (the guest is going away). */
  async stopAll(): Promise<void> {
    this.stopping = true;
    const servers = [this.nginx?.server, ...[...this.ol.values()].map((w) => w.server)];
    await Promise.all(servers.map((s) => s?.stop()));
  }

  private async spawnWorker(master: Master): Promise<void> {
    const { processes } = this.opts;
    const mask = processes.maskOf(master.daemon.proc.pid) ?? processes.fullMask;
    const worker = await processes.spawn(master.workerKind, master.workerUser, master.comm, master.workerArgv0, mask);
    // The master went while this worker was being forked: the worker goes too.
    if (!master.daemon.alive || this.stopping) worker.proc.kill('SIGKILL');
  }

  private onExit(d: GuestDaemon): void {
    if (this.stopping) return;
    const master = d.kind.startsWith('nginx') ? this.nginx : d.kind.startsWith('php') ? this.php : undefined;
    if (d.kind === 'nginx-master' || d.kind === 'php-master') {
      if (master?.daemon !== d) return;
      for (const w of this.opts.processes.alive(master.workerKind)) w.proc.kill('SIGKILL');
      void this.stopServer(master);
    } else if (d.kind === 'nginx-worker' || d.kind === 'php-worker') {
      if (master?.daemon.alive) void this.spawnWorker(master).catch(() => {});
    } else if (d.kind === 'ol-worker' && d.port !== undefined && this.ol.get(d.port)?.daemon === d) {
      void this.stopOl(d.port);
    }
  }

  private async stopServer(master: Master): Promise<void> {
    const server = master.server;
    master.server = undefined;
    await server?.stop();
  }

  private async stopOl(port: number): Promise<void> {
    const w = this.ol.get(port);
    this.ol.delete(port);
    await w?.server.stop();
  }

  /** Contents of the files a php-fpm include glob names (`dir/*.conf` or one file). */
  private globRead(glob: string): string[] {
    const dir = path.posix.dirname(glob);
    const base = path.posix.basename(glob);
    if (!base.includes('*')) {
      const t = this.readFile(glob);
      return t === undefined ? [] : [t];
    }
    const re = new RegExp(`^${base.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    let names: string[] = [];
    try {
      names = readdirSync(this.opts.hostPath(dir)).filter((n) => re.test(n)).sort();
    } catch {
      return [];
    }
    return names.flatMap((n) => {
      const t = this.readFile(`${dir}/${n}`);
      return t === undefined ? [] : [t];
    });
  }
}

function untilOr(done: Promise<void>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const onAbort = () => resolve();
    signal.addEventListener('abort', onAbort, { once: true });
    void done.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    });
  });
}
