import { execFile, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Experiment } from '../../workflows/inputs';
import {
  guestSetupCommands,
  guestStepKey,
  guestSteps,
  maskHex,
  normalizeMask,
  oneNginxWorkerCommand,
  openLambdaCopy,
  parsePresence,
  parsePsAux,
  parseTasksetOutput,
  pinningPlan,
  PinningPlanError,
  roleOf,
  startOlWorkerCommand,
  stopCommand,
  tasksetGetArgv,
  tasksetSetArgv,
  vcpuMask,
  type E3Case,
  type PsProcess,
} from '../../workflows/commands/guest';
import { toCommandLine } from '../../workflows/commands/quote';

/** Guest setup and pinning (ARTIFACT.md step 5): ps aux rows, the pinning plans, taskset's read-back, the command lines. */

const run = promisify(execFile);

// ---- ps aux as procps prints it ----

/** procps-ng 3.3.12 (Ubuntu 18.04, the guest's era): PID right-aligned in 5 columns. */
const HEADER_3312 = 'USER       PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND';
/** procps-ng 3.3.16 and later: PID in 7 columns. */
const HEADER_NEW = 'USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND';

/** A row in procps's aux layout (USER 8 wide, PID right-aligned, VSZ/RSS pushing the rest right when wide). */
function row(user: string, pid: number, command: string, opts: { stat?: string; vsz?: number; rss?: number; tty?: string; start?: string; pidWidth?: number } = {}): string {
  const u = user.length > 8 ? `${user.slice(0, 7)}+` : user.padEnd(8);
  return `${u} ${String(pid).padStart(opts.pidWidth ?? 5)}  0.0  0.1 ${String(opts.vsz ?? 288720).padStart(6)} ${String(opts.rss ?? 9436).padStart(5)} ${(opts.tty ?? '?').padEnd(8)} ${(opts.stat ?? 'S').padEnd(4)} ${(opts.start ?? '10:02').padStart(5)}   0:00 ${command}`;
}

const NGINX_MASTER = 'nginx: master process /usr/local/nginx/sbin/nginx -c /usr/local/nginx/conf/nginx.conf';
const NGINX_WORKER = 'nginx: worker process';
const PHP_MASTER = 'php-fpm: master process (/etc/php/7.2/fpm/php-fpm.conf)';
const PHP_WORKER = 'php-fpm: pool www';

const base = [row('root', 1, '/sbin/init splash', { stat: 'Ss', start: 'Jan10' }), row('root', 2, '[kthreadd]', { vsz: 0, rss: 0 }), row('systemd-network', 612, '/lib/systemd/systemd-networkd', { stat: 'Ss' })];

/** An E1 guest: nginx (master + `workers` workers), php-fpm with `php` workers (pids from 931). */
function lemp(php: number, workers = 1): string {
  return [
    HEADER_3312,
    ...base,
    row('root', 923, NGINX_MASTER, { stat: 'Ss' }),
    ...Array.from({ length: workers }, (_, i) => row('nobody', 924 + i, NGINX_WORKER)),
    row('root', 930, PHP_MASTER, { stat: 'Ss' }),
    ...Array.from({ length: php }, (_, i) => row('www-data', 931 + i, PHP_WORKER)),
    row('root', 1500, 'ps aux', { stat: 'R+', tty: 'pts/0' }),
  ].join('\n');
}

/** An E2 guest: one `ol worker` per directory name, pids from 4000 (as OpenLambda's detached worker shows itself). */
function openLambda(dirs: string[]): string {
  return [HEADER_NEW, ...base, ...dirs.map((d, i) => row('root', 4000 + i, `./ol worker --path=${d}`, { stat: 'Sl', vsz: 1166012, rss: 30240, pidWidth: 7 }))].join('\n');
}

function npb(workers: number): string {
  return [HEADER_3312, ...base, row('root', 700, NGINX_MASTER, { stat: 'Ss' }), ...Array.from({ length: workers }, (_, i) => row('nobody', 701 + i, NGINX_WORKER))].join('\n');
}

describe('parsePsAux', () => {
  it('reads every column of procps rows, commands with spaces, long user names and wide VSZ', () => {
    const ps = parsePsAux(`${lemp(2)}\n${row('root', 4000, './ol worker --path=l0', { stat: 'Sl', vsz: 1166012, rss: 30240 })}\n`);
    expect(ps.find((p) => p.pid === 923)).toEqual({
      user: 'root',
      pid: 923,
      cpu: 0,
      mem: 0.1,
      vszKb: 288720,
      rssKb: 9436,
      tty: '?',
      stat: 'Ss',
      start: '10:02',
      time: '0:00',
      command: NGINX_MASTER,
      line: row('root', 923, NGINX_MASTER, { stat: 'Ss' }),
    });
    expect(ps.find((p) => p.pid === 612)).toMatchObject({ user: 'systemd+', command: '/lib/systemd/systemd-networkd' });
    expect(ps.find((p) => p.pid === 1)).toMatchObject({ start: 'Jan10', command: '/sbin/init splash' });
    expect(ps.find((p) => p.pid === 4000)).toMatchObject({ vszKb: 1166012, rssKb: 30240, stat: 'Sl', command: './ol worker --path=l0' });
    expect(ps.find((p) => p.pid === 1500)).toMatchObject({ tty: 'pts/0', stat: 'R+', command: 'ps aux' });
    expect(ps.map((p) => p.pid)).toEqual([1, 2, 612, 923, 924, 930, 931, 932, 1500, 4000]);
  });

  it.each([
    ['procps-ng 3.3.12', HEADER_3312],
    ['procps-ng 3.3.16+', HEADER_NEW],
  ])('accepts the %s header', (_name, header) => {
    expect(parsePsAux(`${header}\n${row('root', 1, '/init')}\n`)).toHaveLength(1);
  });

  it.each([
    ['ps -ef', 'UID          PID    PPID  C STIME TTY          TIME CMD\nroot           1       0  0 10:00 ?        00:00:00 /init\n', /expected procps's `ps aux` header/],
    ['plain ps', '    PID TTY          TIME CMD\n      1 ?        00:00:00 init2\n', /expected procps's `ps aux` header/],
    ['nothing', '', /expected procps's `ps aux` header.*got ""/],
    ['a garbled row', `${HEADER_NEW}\nroot  notapid 0.0 0.0 1 1 ? S 10:00 0:00 x\n`, /unexpected `ps aux` row: "root  notapid/],
  ])('refuses %s', (_name, text, message) => {
    expect(() => parsePsAux(text)).toThrow(message);
  });
});

describe('roleOf', () => {
  const proc = (command: string, stat = 'S'): PsProcess => parsePsAux(`${HEADER_NEW}\n${row('root', 10, command, { stat })}`)[0];
  it.each([
    [NGINX_MASTER, { role: 'nginx-master' }],
    ['nginx: master process nginx -c /usr/local/nginx/conf/nginx.conf', { role: 'nginx-master' }],
    [NGINX_WORKER, { role: 'nginx-worker' }],
    [PHP_MASTER, { role: 'php-fpm-master' }],
    [PHP_WORKER, { role: 'php-fpm-worker' }],
    ['php-fpm: pool lemp', { role: 'php-fpm-worker' }],
    ['./ol worker --path=l0', { role: 'ol-worker', olDir: 'l0' }],
    ['ol worker --path=/root/open-lambda/l3', { role: 'ol-worker', olDir: 'l3' }],
    ['/root/open-lambda/ol worker --path l2/', { role: 'ol-worker', olDir: 'l2' }],
    ['./ol worker --path=l1 -d', { role: 'ol-worker', olDir: 'l1' }],
    ['grep --color=auto nginx: worker process', undefined],
    ['./ol kill --path=l0', undefined],
    ['bash -c ps aux', undefined],
    ['/usr/local/nginx/sbin/nginx -c /usr/local/nginx/conf/nginx.conf', undefined],
  ])('%s', (command, role) => {
    expect(roleOf(proc(command))).toEqual(role);
  });

  it('a zombie is nothing: it cannot be pinned', () => {
    expect(roleOf(proc(NGINX_WORKER, 'Z'))).toBeUndefined();
  });
});

// ---- the pinning plan ----

const plan = (experiment: Experiment, n: number, c: E3Case | undefined, ps: string) => pinningPlan(experiment, n, c, parsePsAux(ps)).map((p) => `${p.pid} ${p.what} ${maskHex(p.mask)}`);

describe('pinningPlan', () => {
  it.each([
    [1, ['923 nginx master 0x1', '924 nginx worker 0x1', '931 php-fpm worker 0 0x1']],
    [2, ['923 nginx master 0x1', '924 nginx worker 0x1', '931 php-fpm worker 0 0x1', '932 php-fpm worker 1 0x2']],
    [4, ['923 nginx master 0x1', '924 nginx worker 0x1', '931 php-fpm worker 0 0x1', '932 php-fpm worker 1 0x2', '933 php-fpm worker 2 0x4', '934 php-fpm worker 3 0x8']],
  ])('E1 at %i node(s): nginx on vCPU 0, php-fpm worker i on vCPU i', (n, pins) => {
    expect(plan('E1', n, undefined, lemp(n))).toEqual(pins);
  });

  it('E1: every nginx worker goes to vCPU 0; php-fpm workers by pid, whatever order ps lists them in', () => {
    const shuffled = [HEADER_3312, row('www-data', 940, PHP_WORKER), row('root', 923, NGINX_MASTER), row('www-data', 935, PHP_WORKER), row('nobody', 925, NGINX_WORKER), row('nobody', 924, NGINX_WORKER)].join('\n');
    expect(plan('E1', 2, undefined, shuffled)).toEqual(['923 nginx master 0x1', '924 nginx worker 0x1', '925 nginx worker 0x1', '935 php-fpm worker 0 0x1', '940 php-fpm worker 1 0x2']);
  });

  it.each([
    [1, ['4000 ol worker l0 0x1']],
    [2, ['4000 ol worker l0 0x1', '4001 ol worker l1 0x2']],
    [4, ['4000 ol worker l0 0x1', '4001 ol worker l1 0x2', '4002 ol worker l2 0x4', '4003 ol worker l3 0x8']],
  ])('E2 at %i node(s): ol worker lN on vCPU N', (n, pins) => {
    expect(plan('E2', n, undefined, openLambda(Array.from({ length: n }, (_, i) => `l${i}`)))).toEqual(pins);
  });

  it('E2: by directory, not by pid order', () => {
    expect(plan('E2', 2, undefined, openLambda(['l1', 'l0']))).toEqual(['4001 ol worker l0 0x1', '4000 ol worker l1 0x2']);
  });

  it.each([
    [1, 'local', ['700 nginx master 0x1', '701 nginx worker 0x1']],
    [2, 'local', ['700 nginx master 0x1', '701 nginx worker 0x1']],
    [4, 'local', ['700 nginx master 0x1', '701 nginx worker 0x1']],
    [2, 'delegated', ['700 nginx master 0x1', '701 nginx worker 0x2']],
    [4, 'delegated', ['700 nginx master 0x1', '701 nginx worker 0x2']],
    [4, undefined, ['700 nginx master 0x1', '701 nginx worker 0x1']],
  ] as const)('E3 at %i node(s), %s', (n, c, pins) => {
    expect(plan('E3', n, c, npb(1))).toEqual(pins);
  });

  const failure = (f: () => unknown): PinningPlanError => {
    try {
      f();
    } catch (err) {
      if (err instanceof PinningPlanError) return err;
      throw err;
    }
    throw new Error('expected a PinningPlanError');
  };

  it.each([
    ['E1, 3 php-fpm workers for 4 nodes', 'E1', 4, undefined, lemp(3), ['expected 4 php-fpm workers (one per node, 4 nodes), found 3 (pid 931, 932, 933)']],
    ['E1, 4 php-fpm workers for 2 nodes', 'E1', 2, undefined, lemp(4), ['expected 2 php-fpm workers (one per node, 2 nodes), found 4 (pid 931, 932, 933, 934)']],
    ['E1, nothing started', 'E1', 1, undefined, [HEADER_3312, ...base].join('\n'), ['expected 1 nginx master, found 0', 'expected at least 1 nginx worker, found none', 'expected 1 php-fpm workers (one per node, 1 node), found 0']],
    ['E3, two nginx workers', 'E3', 2, 'local', npb(2), ['expected 1 nginx worker (worker_processes 1), found 2 (pid 701, 702)']],
    ['E3, delegated on one node', 'E3', 1, 'delegated', npb(1), ['the delegated case puts the nginx worker on vCPU 1 (node 1): it needs at least 2 nodes, got 1']],
    ['E2, l3 missing', 'E2', 4, undefined, openLambda(['l0', 'l1', 'l2']), ['expected 1 ol worker --path=l3, found 0']],
    ['E2, l1 twice and an l4', 'E2', 2, undefined, openLambda(['l0', 'l1', 'l1', 'l4']), ['expected 1 ol worker --path=l1, found 2 (pid 4001, 4002)', 'expected no other ol worker, found l4 (pid 4003)']],
  ] as const)('%s', (_name, experiment, n, c, ps, problems) => {
    const err = failure(() => pinningPlan(experiment, n, c, parsePsAux(ps)));
    expect(err.problems).toEqual(problems);
    expect(err.message).toBe(problems.join('; '));
    // The evidence: the server rows ps showed, as it showed them.
    expect(err.rows).toEqual(parsePsAux(ps).filter((p) => roleOf(p)).map((p) => p.line));
  });

  it('zombie workers do not count', () => {
    const ps = `${lemp(1)}\n${row('www-data', 990, '[php-fpm7.2] <defunct>', { stat: 'Z' })}\n${row('www-data', 991, PHP_WORKER, { stat: 'Z' })}`;
    expect(plan('E1', 1, undefined, ps)).toEqual(['923 nginx master 0x1', '924 nginx worker 0x1', '931 php-fpm worker 0 0x1']);
  });

  it.each([0, -1, 1.5, 32, NaN])('refuses %p nodes', (n) => {
    expect(() => pinningPlan('E1', n, undefined, [])).toThrow(/the node count must be a whole number 1\.\.31/);
  });
});

// ---- taskset ----

describe('taskset', () => {
  it('sets and reads back by pid', () => {
    expect(toCommandLine(tasksetSetArgv(4, 933))).toBe('taskset -p 0x4 933');
    expect(toCommandLine(tasksetSetArgv(1, 923))).toBe('taskset -p 0x1 923');
    expect(toCommandLine(tasksetGetArgv(933))).toBe('taskset -p 933');
  });

  it.each([
    ['a read', "pid 933's current affinity mask: 4\n", { pid: 933, current: '0x4' }],
    ['a change', "pid 933's current affinity mask: f\npid 933's new affinity mask: 4\n", { pid: 933, current: '0xf', new: '0x4' }],
    ['upper case, leading zeros', "pid 7's current affinity mask: 0F\n", { pid: 7, current: '0xf' }],
    ['a wide machine', "pid 7's current affinity mask: ff,ffffffff\n", { pid: 7, current: '0xffffffffff' }],
  ])('parses %s', (_name, out, parsed) => {
    expect(parseTasksetOutput(out)).toEqual(parsed);
  });

  it.each([
    ['an error', "taskset: failed to get pid 99999's affinity: No such process\n", /expected util-linux taskset's "pid N's current affinity mask: M"/],
    ['a cpu list', "pid 7's current affinity list: 0-3\n", /expected util-linux taskset's/],
    ['two pids', "pid 7's current affinity mask: 1\npid 8's new affinity mask: 2\n", /taskset reported two pids \(7 and 8\)/],
  ])('refuses %s', (_name, out, message) => {
    expect(() => parseTasksetOutput(out)).toThrow(message);
  });

  it.each([
    ['0x1', '0x1'],
    ['1', '0x1'],
    ['0x08', '0x8'],
    ['F', '0xf'],
    ['0', '0x0'],
    ['00,00000002', '0x2'],
  ])('normalizes %s to %s', (text, mask) => {
    expect(normalizeMask(text)).toBe(mask);
  });

  it('the plan writes masks in the read-back form, so they compare as strings', () => {
    for (let i = 0; i < 31; i++) expect(normalizeMask(maskHex(vcpuMask(i)))).toBe(maskHex(vcpuMask(i)));
    expect(maskHex(vcpuMask(30))).toBe('0x40000000');
  });

  it('refuses a mask that is not hex', () => {
    expect(() => normalizeMask('0-3')).toThrow('not a hex CPU mask: "0-3"');
  });
});

// ---- setup command lines ----

describe('guestSetupCommands', () => {
  const STOP_NGINX_PHP =
    "pkill -x nginx; pkill -x php-fpm7.2; n=0; while pgrep -x nginx >/dev/null || pgrep -x php-fpm7.2 >/dev/null; do n=$((n+1)); if [ \"$n\" -gt 100 ]; then echo 'fragvisor-ae: nginx, php-fpm7.2 still running 10 s after pkill' >&2; ps aux >&2; exit 1; fi; sleep 0.1; done";

  it('E1: kill nginx and php-fpm, nginx -c, php-fpm --fpm-config (forking itself)', () => {
    expect(guestSetupCommands('E1', 4)).toEqual([STOP_NGINX_PHP, 'nginx -c /usr/local/nginx/conf/nginx.conf', 'php-fpm7.2 --fpm-config /etc/php/7.2/fpm/php-fpm.conf --daemonize']);
  });

  it('E3: nginx restarted with one worker', () => {
    expect(guestSetupCommands('E3', 2)).toEqual([
      STOP_NGINX_PHP.replace('pkill -x php-fpm7.2; ', '').replace(' || pgrep -x php-fpm7.2 >/dev/null', '').replace('nginx, php-fpm7.2 still', 'nginx still'),
      "sed -i -E 's/^([[:space:]]*worker_processes)[[:space:]]+[^;]*;/\\1 1;/' /usr/local/nginx/conf/nginx.conf",
      'nginx -c /usr/local/nginx/conf/nginx.conf',
    ]);
  });

  it('E2: one ol worker per node, each started on its vCPU from the OpenLambda directory', () => {
    const cmds = guestSetupCommands('E2', 4);
    expect(cmds[0]).toMatch(/^pkill -x ol; n=0; while pgrep -x ol >\/dev\/null; do/);
    expect(cmds.slice(1)).toEqual([
      'cd /root/open-lambda && taskset 0x1 ./ol worker --path=l0 -d',
      'cd /root/open-lambda && taskset 0x2 ./ol worker --path=l1 -d',
      'cd /root/open-lambda && taskset 0x4 ./ol worker --path=l2 -d',
      'cd /root/open-lambda && taskset 0x8 ./ol worker --path=l3 -d',
    ]);
    expect(startOlWorkerCommand(0)).toBe(cmds[1]);
  });

  it.each(['E1', 'E2', 'E3'] as const)('%s lines are valid shell', async (e) => {
    for (const line of guestSetupCommands(e, 4)) await expect(run('bash', ['-n', '-c', line])).resolves.toBeDefined();
  });

  it('oneNginxWorkerCommand leaves exactly `worker_processes 1;` and touches nothing else', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'guest-nginx-'));
    try {
      const conf = path.join(dir, 'nginx.conf');
      for (const [before, after] of [
        ['user  nobody;\nworker_processes  4;\n#worker_processes 8;\nevents {\n    worker_connections  1024;\n}\n', 'user  nobody;\nworker_processes 1;\n#worker_processes 8;\nevents {\n    worker_connections  1024;\n}\n'],
        ['  worker_processes auto;\n', '  worker_processes 1;\n'],
        ['worker_processes 1;\n', 'worker_processes 1;\n'],
        ['events {}\n', 'events {}\n'],
      ]) {
        writeFileSync(conf, before);
        await run('bash', ['-c', oneNginxWorkerCommand(conf)]);
        expect(readFileSync(conf, 'utf8')).toBe(after);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('stopCommand kills every process of that name and returns once they are gone; none running is fine', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'guest-stop-'));
    // A program with a name of its own (comm), so pkill -x touches nothing else on this machine.
    const name = `aestop${process.pid % 100000}`;
    const prog = path.join(dir, name);
    copyFileSync('/bin/sleep', prog);
    const children = [0, 1].map(() => spawn(prog, ['300'], { stdio: 'ignore' }));
    try {
      await new Promise((r) => setTimeout(r, 200));
      expect((await run('pgrep', ['-x', name])).stdout.trim().split('\n')).toHaveLength(2);
      await run('bash', ['-c', stopCommand([name])]);
      await expect(run('pgrep', ['-x', name])).rejects.toMatchObject({ code: 1 });
      await expect(run('bash', ['-c', stopCommand([name])])).resolves.toBeDefined();
    } finally {
      for (const c of children) c.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('openLambdaCopy', () => {
  it('copies the origin tree next to the FragVisor checkout into /root/open-lambda', () => {
    expect(openLambdaCopy({ fragvisor: '/home/ae/FragVisor' })).toEqual({
      source: '/home/ae/open-lambda',
      sourceCheck: 'test -x /home/ae/open-lambda/ol && echo present || echo absent',
      tar: 'tar -C /home/ae/open-lambda -cf - .',
      untar: 'mkdir -p /root/open-lambda && tar -xf - --no-same-owner -C /root/open-lambda && test -x /root/open-lambda/ol',
      guestCheck: 'test -x /root/open-lambda/ol && echo present || echo absent',
    });
  });

  it.each([
    ['present\n', true],
    ['absent\n', false],
  ])('reads %j', (out, present) => expect(parsePresence(out)).toBe(present));

  it('refuses anything else', () => {
    expect(() => parsePresence('bash: test: command not found\n')).toThrow('expected "present" or "absent"');
  });
});

// ---- the plan ----

describe('guestSteps', () => {
  const hosts = (steps: ReturnType<typeof guestSteps>) => new Set(steps.map((s) => JSON.stringify(s.host)));

  it('E1: setup then one pin step, in the guest, with the exact setup lines', () => {
    const steps = guestSteps({ experiment: 'E1', nodeCount: 4 });
    expect(steps.map((s) => s.key)).toEqual(['fragvisor/epoch-E1-n4/guest/setup', 'fragvisor/epoch-E1-n4/guest/pin']);
    expect(hosts(steps)).toEqual(new Set([JSON.stringify({ guest: true })]));
    expect(steps[0].commands).toEqual(guestSetupCommands('E1', 4));
    expect(steps[1].commands).toEqual([
      'ps aux',
      'taskset -p 0x1 <pid of nginx master>',
      'taskset -p 0x1 <pid of each nginx worker>',
      'taskset -p 0x1 <pid of php-fpm worker 0>',
      'taskset -p 0x2 <pid of php-fpm worker 1>',
      'taskset -p 0x4 <pid of php-fpm worker 2>',
      'taskset -p 0x8 <pid of php-fpm worker 3>',
      'taskset -p <pid>  # for every pid above',
    ]);
    expect(steps[1].note).toMatch(/PinningFailed/);
  });

  it('E3: both cases unless one is named, the worker on vCPU 1 when delegated', () => {
    const both = guestSteps({ experiment: 'E3', nodeCount: 2, hypervisor: 'giantvm' });
    expect(both.map((s) => s.key)).toEqual(['giantvm/epoch-E3-n2/guest/setup', 'giantvm/epoch-E3-n2/guest/pin-local', 'giantvm/epoch-E3-n2/guest/pin-delegated']);
    expect(both[1].commands.slice(1, 3)).toEqual(['taskset -p 0x1 <pid of nginx master>', 'taskset -p 0x1 <pid of the nginx worker>']);
    expect(both[2].commands.slice(1, 3)).toEqual(['taskset -p 0x1 <pid of nginx master>', 'taskset -p 0x2 <pid of the nginx worker>']);
    expect(guestSteps({ experiment: 'E3', nodeCount: 2, case: 'delegated' }).map((s) => s.key)).toEqual(['fragvisor/epoch-E3-n2/guest/setup', 'fragvisor/epoch-E3-n2/guest/pin-delegated']);
  });

  it('E2: the copy from the origin, the worker starts, the pinning', () => {
    const steps = guestSteps({ experiment: 'E2', nodeCount: 2, paths: { fragvisor: '/home/ae/FragVisor' } });
    expect(steps.map((s) => s.key)).toEqual(['fragvisor/epoch-E2-n2/guest/copy-openlambda', 'fragvisor/epoch-E2-n2/guest/setup', 'fragvisor/epoch-E2-n2/guest/pin']);
    expect(steps[0].commands).toEqual([openLambdaCopy({ fragvisor: '/x/y' }).untar]);
    expect(steps[0].note).toContain('`tar -C /home/ae/open-lambda -cf - .`');
    expect(steps[1].title).toContain('ports 5000..5001');
    expect(steps[1].commands).toEqual(guestSetupCommands('E2', 2));
    expect(steps[2].commands.slice(1, 3)).toEqual(['taskset -p 0x1 <pid of ol worker l0>', 'taskset -p 0x2 <pid of ol worker l1>']);
    expect(guestSteps({ experiment: 'E2', nodeCount: 1 })[0].note).toContain('the tree `open-lambda` next to the FragVisor checkout');
  });

  it('keys are unique across experiments, node counts and hypervisors', () => {
    const keys = (['fragvisor', 'giantvm'] as const).flatMap((hypervisor) =>
      (['E1', 'E2', 'E3'] as const).flatMap((experiment) => [1, 2, 4].flatMap((nodeCount) => guestSteps({ experiment, nodeCount, hypervisor }).map((s) => s.key))),
    );
    expect(new Set(keys).size).toBe(keys.length);
    expect(guestStepKey('fragvisor', 'E1', 1, 'setup')).toBe(keys[0]);
  });
});
