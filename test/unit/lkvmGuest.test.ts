import { gzipSync } from 'node:zlib';
import { openLambdaPort, parseNginxConf, parsePhpFpmPools, phpFpmIncludes } from '../../sim/guest/conf';
import { guestKindOf } from '../../sim/guest/image';
import { parseStat } from '../../sim/guest/procfs';
import { parseSize, summary } from '../../sim/guest/tools/dd';
import { parse as parseMask, toList } from '../../sim/guest/tools/taskset';
import { parseQemuArgs } from '../../sim/tools/vm/qemuArgs';

/** Pure pieces of the simulated guest and of GiantVM's qemu argv. */

describe('taskset masks and lists', () => {
  it.each([
    ['0x1', false, 0x1],
    ['2', false, 0x2],
    ['0xf', false, 0xf],
    ['FF', false, 0xff],
    ['0-3', true, 0xf],
    ['1', true, 0x2],
    ['0,2-3', true, 0xd],
    ['zz', false, undefined],
    ['0x', false, undefined],
    ['3-1', true, undefined],
    ['a', true, undefined],
  ])('%p (list: %p) -> %p', (text, list, mask) => {
    expect(parseMask(text, list)).toBe(mask);
  });

  it.each([
    [0xf, '0-3'],
    [0x2, '1'],
    [0xd, '0,2-3'],
    [0x5, '0,2'],
  ])('mask %p is the list %p', (mask, list) => {
    expect(toList(mask)).toBe(list);
  });
});

describe('dd', () => {
  it.each([
    ['512', 512],
    ['4k', 4096],
    ['1M', 1048576],
    ['1MB', 1_000_000],
    ['2G', 2 * 1024 ** 3],
    ['1x', undefined],
  ])('size %p = %p', (text, bytes) => {
    expect(parseSize(text)).toBe(bytes);
  });

  it.each([
    [1073741824, 2.5, '1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.5 s, 429 MB/s'],
    [104857600, 0.25, '104857600 bytes (105 MB, 100 MiB) copied, 0.25 s, 419 MB/s'],
    [512, 0.001, '512 bytes copied, 0.001 s, 512 kB/s'],
  ])('summary of %p bytes in %p s', (bytes, seconds, line) => {
    expect(summary(bytes, seconds)).toBe(line);
  });
});

describe('server configuration read by the guest', () => {
  it('reads worker_processes, listen, root and index from nginx.conf (comments ignored)', () => {
    const conf = 'user nobody;\n# worker_processes 8;\nworker_processes  2;\nhttp { server { listen 0.0.0.0:8080; root /srv/www/; index web.php index.html; } }\n';
    expect(parseNginxConf(conf)).toEqual({ workers: 2, listen: 8080, root: '/srv/www', index: ['web.php', 'index.html'] });
    expect(parseNginxConf('worker_processes auto;')).toEqual({ workers: 'auto', listen: 80, root: '/usr/local/nginx/html', index: ['index.html'] });
    expect(parseNginxConf('worker_processes many;')).toMatch(/invalid value "many"/);
  });

  it('reads php-fpm pools: static = max_children, dynamic = start_servers, ondemand = 0', () => {
    const main = '[global]\npid = /run/php.pid\ninclude=/etc/php/7.2/fpm/pool.d/*.conf\n';
    expect(phpFpmIncludes(main)).toEqual(['/etc/php/7.2/fpm/pool.d/*.conf']);
    expect(parsePhpFpmPools([main, '[www]\nuser = www-data\npm = static\npm.max_children = 4\n', '[b]\npm = dynamic\npm.start_servers = 3 ; comment\n', '[c]\npm = ondemand\n'])).toEqual([
      { name: 'www', user: 'www-data', workers: 4 },
      { name: 'b', user: 'www-data', workers: 3 },
      { name: 'c', user: 'www-data', workers: 0 },
    ]);
  });

  it("reads OpenLambda's worker_port", () => {
    expect(openLambdaPort('{"worker_port": "5003"}')).toBe(5003);
    expect(openLambdaPort('{}')).toBeUndefined();
    expect(openLambdaPort('not json')).toBeUndefined();
  });
});

describe('which guest a ramdisk boots', () => {
  const marker = (experiment: string) => gzipSync(Buffer.from(JSON.stringify({ simulated: true, experiment })));
  it.each([
    ['ramdisk_lemp_4php.gz', undefined, 'lemp'],
    ['ramdisk_for_openlambda200625.gz', undefined, 'openlambda'],
    ['ramdisk_NPB_ATC.gz', undefined, 'npb'],
    ['initrd.img', undefined, 'plain'],
    ['renamed.gz', marker('E1'), 'lemp'],
    ['renamed.gz', marker('E2'), 'openlambda'],
    ['renamed.gz', marker('E3'), 'npb'],
    ['ramdisk_NPB_ATC.gz', Buffer.from('not gzip'), 'npb'],
  ])('%p (content %#) -> %p', (name, content, kind) => {
    expect(guestKindOf(`/home/ae/ramdisks/${name}`, content)).toBe(kind);
  });
});

it('parses /proc/<pid>/stat with spaces and parentheses in comm', () => {
  const line = '42 (nginx: (x) y) S 1 42 42 0 -1 4194560 0 0 0 0 3 4 0 0 20 0 1 0 12345 4460544 800 18446744073709551615';
  expect(parseStat(line)).toMatchObject({ pid: 42, comm: 'nginx: (x) y', state: 'S', ppid: 1, cpuTicks: 7, startTicks: 12345, vsizeBytes: 4460544, rssPages: 800 });
});

describe("GiantVM's qemu argv", () => {
  const base = ['-kernel', 'bz', '-initrd', 'rd.gz', '-append', 'root=/dev/ram', '-netdev', 'tap,id=n0', '-nographic', '-machine', 'kernel-irqchip=off', '-smp', '4', '-m', '32G', '--enable-kvm'];
  it('parses the per-node form', () => {
    const r = parseQemuArgs([...base, '-local-cpu', '1,start=2,iplist="10.4.6.10 10.4.6.11 10.4.6.12 10.4.6.13"']);
    expect(r).toEqual({
      ok: true,
      config: { smp: 4, memMiB: 32768, kvm: true, irqchipOff: true, localCpus: 1, start: 2, iplist: ['10.4.6.10', '10.4.6.11', '10.4.6.12', '10.4.6.13'], kernel: 'bz', initrd: 'rd.gz', append: 'root=/dev/ram', tap: true },
    });
  });

  it.each([
    ['no -local-cpu', [...base], /needs -local-cpu/],
    ['a malformed -local-cpu', [...base, '-local-cpu', '1,iplist=a'], /expected <n>,start=<i>,iplist=/],
    ['bad -smp', ['-smp', 'x', '-local-cpu', '1,start=0,iplist=a'], /Invalid SMP CPUs x/],
    ['an option without its value', ['-m'], /-m requires an argument/],
  ])('refuses %s', (_name, args, message) => {
    const r = parseQemuArgs(args);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(message);
  });

  it('sees kernel-irqchip left on, and KVM from -machine accel=kvm', () => {
    const r = parseQemuArgs(['-machine', 'pc,accel=kvm', '-local-cpu', '1,start=0,iplist=a']);
    expect(r.ok && r.config).toMatchObject({ kvm: true, irqchipOff: false, tap: false });
  });
});
