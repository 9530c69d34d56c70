import { parseLkvmArgs, QUIRK_ARGC, type LkvmConfig } from '../../sim/tools/vm/lkvmArgs';

/** The argv rules of FragVisor's `lkvm run` (ARTIFACT.md step 4), as sim/tools/vm/lkvmArgs.ts decides them. */

const PARAMS = 'root=/dev/ram rw init=/init2 fstype=ext4 spectre_v2=off nopti pti=off numa=fake=4 percpu_alloc=page -no-kvm-pit-reinjection clocksource=tsc';
const NET = 'mode=tap,vhost=1,guest_ip=10.4.4.222,host_ip=10.4.4.221,guest_mac=00:11:22:33:44:55';
const TAIL = ['-i', '/home/ae/ramdisks/ramdisk_lemp_4php.gz', '-k', '/home/ae/guest-build/arch/x86/boot/bzImage', '-m', '20480', '-c', '4', '-p', PARAMS, '--network', NET];
const run = (...args: string[]) => ['lkvm', 'run', ...args];
/** The artifact's 4-node command line. */
const ARTIFACT = run('-a', '1', '-b', '1', '-x', '1', '-y', '1', '-w', '4', ...TAIL);

function ok(argv: string[]): LkvmConfig {
  const r = parseLkvmArgs(argv);
  if (!r.ok) throw new Error(`expected ${argv.join(' ')} to parse, got: ${r.message}`);
  return r.config;
}

function refused(argv: string[]): { message: string; code: number } {
  const r = parseLkvmArgs(argv);
  if (r.ok) throw new Error(`expected ${argv.join(' ')} to be refused`);
  return r;
}

describe('lkvm run: the artifact command line', () => {
  it('parses into 4 nodes, vCPU i on node i, with its kernel, ramdisk, memory, params and tap network', () => {
    expect(ARTIFACT.length).toBeGreaterThan(QUIRK_ARGC);
    expect(ok(ARTIFACT)).toEqual({
      vcpusPerNode: [1, 1, 1, 1, 0, 0, 0, 0, 0],
      nodes: [0, 1, 2, 3],
      cpus: 4,
      givenCpus: 4,
      givenNodes: 4,
      quirkDropped: [],
      kernel: '/home/ae/guest-build/arch/x86/boot/bzImage',
      initrd: '/home/ae/ramdisks/ramdisk_lemp_4php.gz',
      memMiB: 20480,
      params: PARAMS,
      init: '/init2',
      networks: [{ mode: 'tap', vhost: true, guestIp: '10.4.4.222', hostIp: '10.4.4.221', guestMac: '00:11:22:33:44:55' }],
      disks: [],
      name: undefined,
      crash: undefined,
    });
  });
});

describe('lkvm run: per-node flags, -w and -c', () => {
  it.each([
    ['-a -b (2 nodes)', ['-a', '1', '-b', '1', '-w', '2'], [0, 1]],
    ['-a only (1 node)', ['-a', '1', '-w', '1'], [0]],
    ['-a -b -x (3 nodes)', ['-a', '1', '-b', '1', '-x', '1', '-w', '3'], [0, 1, 2]],
    ['all nine node flags', ['-a', '1', '-b', '1', '-x', '1', '-y', '1', '-z', '1', '-q', '1', '-r', '1', '-s', '1', '-t', '1', '-w', '9'], [0, 1, 2, 3, 4, 5, 6, 7, 8]],
    ['a gap (-x 0)', ['-a', '1', '-b', '1', '-x', '0', '-y', '1', '-w', '4'], [0, 1, 3]],
    ['attached values (-a1 -b1)', ['-a1', '-b1', '-w', '2'], [0, 1]],
    ['flags in another order', ['-y', '1', '-x', '1', '-b', '1', '-a', '1', '-w', '4'], [0, 1, 2, 3]],
  ])('%s -> nodes %p', (_name, flags, nodes) => {
    const cfg = ok(run(...flags, ...TAIL));
    expect(cfg.nodes).toEqual(nodes);
    expect(cfg.cpus).toBe(nodes.length);
  });

  it.each([
    ['-w larger than the flags', ['-a', '1', '-b', '1', '-w', '4'], 2],
    ['-w smaller than the flags', ['-a', '1', '-b', '1', '-x', '1', '-y', '1', '-w', '1'], 4],
    ['no -w at all', ['-a', '1', '-b', '1', '-x', '1'], 3],
    ['-w 0', ['-a', '1', '-b', '1', '-w', '0'], 2],
  ])('-w is ignored: %s', (_name, flags, nodes) => {
    expect(ok(run(...flags, ...TAIL)).nodes).toHaveLength(nodes);
  });

  it.each([
    ['-c 1 with 4 nodes', '1', 4],
    ['-c 8 with 4 nodes', '8', 4],
    ['--cpus=2 with 4 nodes', '--cpus=2', 4],
  ])('-c is overwritten with the sum: %s', (_name, c, sum) => {
    const tail = [...TAIL];
    if (c.startsWith('--')) tail.splice(tail.indexOf('-c'), 2, c);
    else tail[tail.indexOf('-c') + 1] = c;
    const cfg = ok(run('-a', '1', '-b', '1', '-x', '1', '-y', '1', ...tail));
    expect(cfg.cpus).toBe(sum);
    expect(cfg.givenCpus).toBe(Number(c.replace('--cpus=', '')));
  });

  it.each([
    ['two vCPUs on a node', ['-a', '2', '-b', '1'], /one vCPU per node/],
    ['a negative count', ['-a', '1', '-b', '-1'], /one vCPU per node/],
    ['no vCPU anywhere', ['-w', '4'], /no vCPU on any node/],
    ['no vCPU on the origin', ['-b', '1', '-x', '1'], /node 0 \(the origin, -a\) runs no vCPU/],
  ])('refuses %s (Fatal, exit 1)', (_name, flags, message) => {
    const r = refused(run(...flags, ...TAIL));
    expect(r.code).toBe(1);
    expect(r.message).toMatch(/^ {2}Fatal: /);
    expect(r.message).toMatch(message);
  });

  it.each([
    ['a non-numeric count', ['-a', 'one'], /switch `a' expects a numerical value/],
    ['an unknown switch', ['-a', '1', '-j', '1'], /Unknown switch `j'/],
    ['an unknown long option', ['-a', '1', '--frobnicate'], /Unknown option: frobnicate/],
    ['a flag without its value', ['-a'], /switch `a' requires a value/],
  ])('refuses %s with kvmtool usage (exit 129)', (_name, flags, message) => {
    const r = refused(run(...flags));
    expect(r.code).toBe(129);
    expect(r.message).toMatch(message);
    expect(r.message).toContain('usage: lkvm run [<options>] [<kernel image>]');
  });
});

describe('lkvm run: the quirk (argc > 12 with -a/-b last)', () => {
  it.each([
    ['-a -b at the very end', [...TAIL, '-x', '1', '-y', '1', '-a', '1', '-b', '1'], ['-a', '-b'], 'refused'],
    ['-b at the very end', ['-a', '1', ...TAIL, '-x', '1', '-y', '1', '-b', '1'], ['-b'], [0, 2, 3]],
    ['-b -a at the very end', ['-x', '1', ...TAIL, '-b', '1', '-a', '1'], ['-b', '-a'], 'refused'],
  ])('%s', (_name, args, dropped, nodes) => {
    const argv = run(...args);
    expect(argv.length).toBeGreaterThan(QUIRK_ARGC);
    const r = parseLkvmArgs(argv);
    if (nodes === 'refused') {
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.message).toMatch(new RegExp(`node 0 \\(the origin, -a\\) runs no vCPU.*\\(${dropped.join(' ')} at the end of a long command line were ignored\\)`));
    } else {
      expect(r.ok && r.config.quirkDropped).toEqual(dropped);
      expect(r.ok && r.config.nodes).toEqual(nodes);
    }
  });

  it.each([
    ['-a -b first (the artifact order)', run('-a', '1', '-b', '1', '-x', '1', '-y', '1', ...TAIL)],
    ['-a -b last but argc <= 12', run('-k', 'bz', '-i', 'rd.gz', '-p', 'root=/dev/ram', '-a', '1', '-b', '1')],
    ['-a -b in the middle', run('-x', '1', '-a', '1', '-b', '1', '-y', '1', ...TAIL)],
    ['-y last', run('-a', '1', '-b', '1', '-x', '1', ...TAIL, '-y', '1')],
  ])('keeps every flag: %s', (_name, argv) => {
    const cfg = ok(argv);
    expect(cfg.quirkDropped).toEqual([]);
    expect(cfg.nodes[0]).toBe(0);
    expect(cfg.nodes).toContain(1);
  });
});

describe('lkvm run: kernel, params, network', () => {
  it('refuses a command line without -k: the default would be the host kernel', () => {
    const tail = [...TAIL];
    tail.splice(tail.indexOf('-k'), 2);
    const r = refused(run('-a', '1', '-b', '1', ...tail));
    expect(r.code).toBe(1);
    expect(r.message).toMatch(/Fatal: no guest kernel \(-k <bzImage>\).*POPHYPE_HOST_KERNEL 0/);
  });

  it('takes a positional kernel image as kvmtool does', () => {
    expect(ok(run('-a', '1', '-i', 'rd.gz', '-p', 'root=/dev/ram', '/boot/bzImage')).kernel).toBe('/boot/bzImage');
  });

  it.each([
    ['console=ttyS0', `${PARAMS} console=ttyS0`, /console=ttyS0/],
    ['console=ttyS1,115200', `${PARAMS} console=ttyS1,115200`, /console=ttyS0/],
    ['no root=', 'rw init=/init2', /VFS: Unable to mount root fs.*root=\(none\)/],
    ['root=/dev/sda1', 'root=/dev/sda1 rw', /VFS: Unable to mount root fs.*root=\/dev\/sda1/],
  ])('a guest that will crash: %s', (_name, params, crash) => {
    const tail = [...TAIL];
    tail[tail.indexOf('-p') + 1] = params;
    expect(ok(run('-a', '1', '-b', '1', ...tail)).crash).toMatch(crash);
  });

  it.each([
    ['console=hvc0 is fine', `${PARAMS} console=hvc0`, undefined],
    ['root=/dev/ram0 is fine', 'root=/dev/ram0 rw', undefined],
  ])('%s', (_name, params, crash) => {
    const tail = [...TAIL];
    tail[tail.indexOf('-p') + 1] = params;
    expect(ok(run('-a', '1', ...tail)).crash).toBe(crash);
  });

  it('crashes without a ramdisk (-i): root=/dev/ram has nothing to mount', () => {
    const tail = [...TAIL];
    tail.splice(tail.indexOf('-i'), 2);
    expect(ok(run('-a', '1', ...tail)).crash).toMatch(/no initrd/);
  });

  it('takes init= from the params, /init otherwise (the OpenLambda ramdisk)', () => {
    const tail = [...TAIL];
    tail[tail.indexOf('-p') + 1] = PARAMS.replace(' init=/init2', '');
    expect(ok(run('-a', '1', ...tail)).init).toBe('/init');
  });

  it.each([
    ['an unknown mode', 'mode=bridge', /Unknown network mode bridge/],
    ['an unknown key', 'mode=tap,colour=blue', /Unknown network parameter colour/],
    ['a bad guest_ip', 'mode=tap,guest_ip=10.4.4.999', /Unable to parse guest_ip address/],
    ['a bad guest_mac', 'mode=tap,guest_mac=00:11:22', /Unable to parse guest_mac address/],
  ])('refuses --network with %s', (_name, net, message) => {
    const tail = [...TAIL];
    tail[tail.indexOf('--network') + 1] = net;
    expect(refused(run('-a', '1', ...tail)).message).toMatch(message);
  });

  it('refuses other lkvm commands than run', () => {
    expect(refused(['lkvm', 'stop', '--all']).message).toMatch(/only `lkvm run` is simulated/);
  });
});
