import { NGINX_PREFIX } from './image';

/**
 * The few settings the simulated servers take from their real configuration files in the guest,
 * so that an orchestrator editing them (one nginx worker for E3, say) gets what it asked for.
 */

export interface NginxSettings {
  /** A number, or 'auto' = one per vCPU. */
  workers: number | 'auto';
  listen: number;
  /** Absolute guest path of the document root. */
  root: string;
  index: string[];
}

const strip = (text: string) => text.replace(/#[^\n]*/g, '');

/** nginx.conf's worker_processes, listen, root and index (the first of each), nginx's defaults otherwise. */
export function parseNginxConf(text: string): NginxSettings | string {
  const body = strip(text);
  const directive = (name: string) => new RegExp(`(?:^|[;{}\\s])${name}\\s+([^;{}]+);`).exec(body)?.[1].trim();
  const wp = directive('worker_processes') ?? '1';
  if (wp !== 'auto' && !/^\d+$/.test(wp)) return `invalid value "${wp}" in "worker_processes" directive`;
  const listenRaw = directive('listen') ?? '80';
  const port = /(?:^|:)(\d+)(?:\s|$)/.exec(listenRaw)?.[1];
  if (!port) return `invalid port in "${listenRaw}" of the "listen" directive`;
  const rootRaw = directive('root') ?? 'html';
  const root = rootRaw.startsWith('/') ? rootRaw : `${NGINX_PREFIX}/${rootRaw}`;
  const index = (directive('index') ?? 'index.html').split(/\s+/).filter(Boolean);
  return { workers: wp === 'auto' ? 'auto' : Number(wp), listen: Number(port), root: root.replace(/\/+$/, ''), index };
}

export interface PhpFpmPool {
  name: string;
  user: string;
  /** Workers started with the master (pm = static: max_children; dynamic: start_servers). */
  workers: number;
}

/** php-fpm.conf and its pool files: `[pool]` sections with user and pm settings. */
export function parsePhpFpmPools(files: readonly string[]): PhpFpmPool[] {
  const pools: PhpFpmPool[] = [];
  for (const text of files) {
    let current: Record<string, string> | undefined;
    let name = '';
    const flush = () => {
      if (!current || name === 'global') return;
      const pm = current.pm ?? 'dynamic';
      const n = (key: string, dflt: number) => (/^\d+$/.test(current![key] ?? '') ? Number(current![key]) : dflt);
      const workers = pm === 'static' ? n('pm.max_children', 5) : pm === 'ondemand' ? 0 : n('pm.start_servers', 2);
      pools.push({ name, user: current.user ?? 'www-data', workers });
    };
    for (const raw of text.split('\n')) {
      const line = raw.replace(/[;#].*$/, '').trim();
      const section = /^\[([^\]]+)\]$/.exec(line);
      if (section) {
        flush();
        name = section[1];
        current = {};
        continue;
      }
      const kv = /^([A-Za-z0-9_.]+)\s*=\s*(.*)$/.exec(line);
      if (kv && current) current[kv[1]] = kv[2].trim();
    }
    flush();
  }
  return pools;
}

/** `include=` lines of php-fpm.conf (globs such as /etc/php/7.2/fpm/pool.d/*.conf). */
export function phpFpmIncludes(text: string): string[] {
  return [...text.matchAll(/^\s*include\s*=\s*(\S+)\s*$/gm)].map((m) => m[1]);
}

/** OpenLambda's worker port from `<path>/config.json`, if it says. */
export function openLambdaPort(configJson: string | undefined): number | undefined {
  if (!configJson) return undefined;
  try {
    const port = Number((JSON.parse(configJson) as { worker_port?: unknown }).worker_port);
    return Number.isInteger(port) && port > 0 && port < 65536 ? port : undefined;
  } catch {
    return undefined;
  }
}
