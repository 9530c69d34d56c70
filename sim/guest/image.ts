import { chmodSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { GUEST_TOOLS_DIR } from './sandbox';

/**
 * The ramdisks of the artifact, as the guest's root filesystem sees them (unpacked on top of the
 * guest's tmpfs root by holder.sh at every VM boot: nothing survives a VM). The ramdisk's file name
 * selects the guest (ARTIFACT.md step 4):
 *   ramdisk_lemp_4php.gz               -> lemp: nginx + php-fpm (E1)
 *   ramdisk_for_openlambda200625.gz    -> openlambda: OpenLambda (E2)
 *   ramdisk_NPB_ATC.gz                 -> npb: nginx + NPB binaries + the virtio disk test (E3)
 * Anything else boots a plain guest (sshd and a shell, no services).
 */

export type GuestKind = 'lemp' | 'openlambda' | 'npb' | 'plain';

/**
 * The guest a ramdisk stands for: the simulated checkout's ramdisks are gzipped JSON markers
 * naming their experiment (E1/E2/E3); otherwise the file name decides.
 */
export function guestKindOf(file: string, content?: Buffer): GuestKind {
  if (content) {
    try {
      const marker = JSON.parse(gunzipSync(content).toString('utf8')) as { experiment?: unknown };
      const byExperiment: Record<string, GuestKind> = { E1: 'lemp', E2: 'openlambda', E3: 'npb' };
      if (typeof marker.experiment === 'string' && byExperiment[marker.experiment]) return byExperiment[marker.experiment];
    } catch {
      // not a marker: by name
    }
  }
  return guestKindOfRamdisk(file);
}

export function guestKindOfRamdisk(file: string): GuestKind {
  const name = path.posix.basename(file).toLowerCase();
  if (name.includes('lemp')) return 'lemp';
  if (name.includes('openlambda') || name.includes('open_lambda') || name.includes('open-lambda')) return 'openlambda';
  if (name.includes('npb')) return 'npb';
  return 'plain';
}

export const NGINX_PREFIX = '/usr/local/nginx';
export const NGINX_CONF = `${NGINX_PREFIX}/conf/nginx.conf`;
export const PHP_FPM_CONF = '/etc/php/7.2/fpm/php-fpm.conf';
export const OPENLAMBDA_DIR = '/root/open-lambda';
export const NPB_BIN_DIR = '/root/NPB/bin';
/** Processes whose comm must read like the real server's: links to cat in /.ae-guest/pbin. */
export const DAEMON_COMMS = ['nginx', 'php-fpm7.2', 'ol'] as const;

export interface ImageOptions {
  kind: GuestKind;
  vcpus: number;
  /** NPB kernels the model knows (`ep.B`, ...): one binary each in /root/NPB/bin. */
  npbKernels: readonly string[];
  /** Name of the guest tool channel's socket (see channel.ts). */
  socketName: string;
}

const INIT = `#!/bin/bash
# init of the simulated guest ramdisk: pid 1 until the VM stops. The simulator starts the ramdisk's
# services itself; this only reaps orphans, as every init must.
while read -r _; do :; done
`;

const nginxConf = (index: string) => `# nginx.conf of the simulated guest ramdisk (SIMULATED). The simulator reads worker_processes,
# listen, root and index from here when nginx starts.
user  nobody;
worker_processes  1;

events {
    worker_connections  1024;
}

http {
    include       mime.types;
    default_type  application/octet-stream;
    sendfile        on;
    keepalive_timeout  65;

    server {
        listen       80;
        server_name  localhost;
        root   html;
        index  ${index};

        location ~ \\.php$ {
            fastcgi_pass   127.0.0.1:9000;
            fastcgi_index  index.php;
            fastcgi_param  SCRIPT_FILENAME  $document_root$fastcgi_script_name;
            include        fastcgi_params;
        }
    }
}
`;

const WELCOME = `<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>SIMULATED FragVisor guest.</p>
</body>
</html>
`;

const PHP_FPM = `; php-fpm.conf of the simulated guest ramdisk (SIMULATED)
[global]
pid = /run/php/php7.2-fpm.pid
error_log = /var/log/php7.2-fpm.log
include=/etc/php/7.2/fpm/pool.d/*.conf
`;

/** One worker per vCPU: ARTIFACT.md step 5 pins one php-fpm worker per node. */
const wwwConf = (workers: number) => `; pool of the simulated guest ramdisk (SIMULATED): one worker per vCPU
[www]
user = www-data
group = www-data
listen = 127.0.0.1:9000
pm = static
pm.max_children = ${workers}
`;

/** Writes the ramdisk of `kind` to `imageDir` (emptied first). */
export function writeImage(imageDir: string, opts: ImageOptions): void {
  rmSync(imageDir, { recursive: true, force: true });
  const file = (p: string, text: string, mode = 0o644) => {
    const full = path.join(imageDir, p);
    mkdirSync(path.dirname(full), { recursive: true });
    writeFileSync(full, text);
    chmodSync(full, mode);
  };
  const link = (p: string, target: string) => {
    const full = path.join(imageDir, p);
    mkdirSync(path.dirname(full), { recursive: true });
    symlinkSync(target, full);
  };
  const dir = (p: string, mode = 0o755) => {
    mkdirSync(path.join(imageDir, p), { recursive: true });
    chmodSync(path.join(imageDir, p), mode);
  };

  dir('.');
  file('init', INIT, 0o755);
  file('init2', INIT, 0o755);
  file('.ae-guest/socket', `${opts.socketName}\n`);
  for (const comm of DAEMON_COMMS) link(`.ae-guest/pbin/${comm}`, '/bin/cat');
  dir('run/php');
  // The nodes' sleep (sim/bin/sleep): the artifact's waits in the guest (E3's settle) follow the time scale too.
  file(`${GUEST_TOOLS_DIR.slice(1)}/sleep`, readFileSync(path.join(__dirname, '..', 'bin', 'sleep'), 'utf8'), 0o755);
  file('etc/ae-sim-guest', `kind=${opts.kind}\nvcpus=${opts.vcpus}\n# SIMULATED FragVisor guest\n`);

  if (opts.kind === 'lemp' || opts.kind === 'npb') {
    file(`${NGINX_PREFIX}/conf/nginx.conf`, nginxConf(opts.kind === 'lemp' ? 'web.php index.php index.html index.htm' : 'index.html index.htm'));
    file(`${NGINX_PREFIX}/conf/mime.types`, 'types {\n    text/html  html htm;\n}\n');
    file(`${NGINX_PREFIX}/html/index.html`, WELCOME);
    dir(`${NGINX_PREFIX}/logs`);
    link(`${NGINX_PREFIX}/sbin/nginx`, '/.ae-guest/bin/nginx');
  }
  if (opts.kind === 'lemp') {
    file(PHP_FPM_CONF, PHP_FPM);
    file('etc/php/7.2/fpm/pool.d/www.conf', wwwConf(opts.vcpus));
  }
  if (opts.kind === 'openlambda') {
    link(`${OPENLAMBDA_DIR.slice(1)}/ol`, '/.ae-guest/bin/ol');
  }
  if (opts.kind === 'npb') {
    for (const k of opts.npbKernels) link(`${NPB_BIN_DIR.slice(1)}/${k}`, '/.ae-guest/bin/_shim');
  }
}
