import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PHP_PAGE_BYTES } from '../../sim/guest/php';
import { loadOrCreateKeyPair } from '../../sim/keys';
import { loadModel } from '../../sim/model/load';
import { freePort } from '../../sim/ports';
import { createModel } from '../../sim/model/runtime';
import { abHandler, curlHandler, currentVm, lkvmHandler, qemuHandler, setVmDeps, type KernelIdentity, type VmDeps } from '../../sim/tools/vm';
import { probePort, waitUntil } from '../helpers/sim';
import { call, FakeNode, FakeWorld, type Call } from '../helpers/vmWorld';

/**
 * The VM tools and the guest against a fake World (types.ts): real guest sandbox, real guest sshd
 * (plain OpenSSH through DIR/ssh_config), real ab through the origin's `ab` imitation. The node
 * side (tool channel, messaging layer, kernels) is faked here; simVmChannel covers it for real.
 */

// ---- fixture ----------------------------------------------------------------------------------------

let dir: string;
let world: FakeWorld;
let guestPort: number;
let layerUp = true;
let previousDeps: VmDeps;
const MODEL = createModel(loadModel('default').spec, { seed: 7, timeScale: 0.002 });
const RAMDISKS = '/home/ae/ramdisks';
const GUEST_KERNEL = '/home/ae/guest-build/arch/x86/boot/bzImage';
const HOST_KERNEL = '/home/ae/FragVisor/fragvisor-linux/arch/x86/boot/bzImage';
const PARAMS = 'root=/dev/ram rw init=/init2 fstype=ext4 spectre_v2=off nopti pti=off numa=fake=4 percpu_alloc=page -no-kvm-pit-reinjection clocksource=tsc';
const NET = 'mode=tap,vhost=1,guest_ip=10.4.4.222,host_ip=10.4.4.221,guest_mac=00:11:22:33:44:55';


function lkvmArgv(opts: { nodes?: number; ramdisk?: string; kernel?: string; params?: string } = {}): string[] {
  const flags = ['-a', '-b', '-x', '-y'].slice(0, opts.nodes ?? 4).flatMap((f) => [f, '1']);
  return ['lkvm', 'run', ...flags, '-w', String(opts.nodes ?? 4), '-i', `${RAMDISKS}/${opts.ramdisk ?? 'ramdisk_lemp_4php.gz'}`, '-k', opts.kernel ?? GUEST_KERNEL, '-m', '20480', '-c', '4', '-p', opts.params ?? PARAMS, '--network', NET];
}

/** Runs `command` in the guest with plain OpenSSH (DIR/ssh_config's `guest` block, strict host keys). */
function guestSsh(command: string, input?: string | Buffer): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn('ssh', ['-F', path.join(dir, 'ssh_config'), '-o', 'BatchMode=yes', '-o', 'ConnectTimeout=5', 'guest', command], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin.end(input ?? '');
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}



/** Every node rebooted, stale kvmtool sockets removed: what the orchestrator does between VMs. */
async function rebootCycle(): Promise<void> {
  await Promise.all(world.nodes.map((n) => n.reboot()));
  for (const n of world.nodes) rmSync(n.hostPath('/root/.lkvm'), { recursive: true, force: true });
}

function writeKernel(node: FakeNode, p: string, id: KernelIdentity): void {
  mkdirSync(path.dirname(node.hostPath(p)), { recursive: true });
  writeFileSync(node.hostPath(p), JSON.stringify(id));
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-simvm-'));
  guestPort = await freePort();
  writeFileSync(path.join(dir, 'sim.json'), JSON.stringify({ guestSshPort: guestPort }));
  loadOrCreateKeyPair(path.join(dir, 'id_ed25519'), 'ae-sim-client');
  writeFileSync(path.join(dir, 'known_hosts'), '');
  writeFileSync(path.join(dir, 'ssh_config'), '# test\n');
  world = new FakeWorld([0, 1, 2, 3].map((i) => new FakeNode(`node${i}`, i, `10.4.6.${10 + i}`, path.join(dir, 'nodes', `node${i}`, 'fs'))));
  const origin = world.nodes[0];
  for (const r of ['ramdisk_lemp_4php.gz', 'ramdisk_NPB_ATC.gz', 'ramdisk_for_openlambda200625.gz']) {
    mkdirSync(origin.hostPath(RAMDISKS), { recursive: true });
    writeFileSync(origin.hostPath(`${RAMDISKS}/${r}`), 'ramdisk');
  }
  writeKernel(origin, GUEST_KERNEL, { flavour: 'fragvisor', hostKernel: false, release: '4.4.137-pop-hype-guest' });
  writeKernel(origin, HOST_KERNEL, { flavour: 'fragvisor', hostKernel: true, release: '4.4.137-pop-hype' });
  previousDeps = setVmDeps({
    model: () => MODEL,
    stateDir: () => dir,
    msgLayer: (_w, nodes) => ({ ready: layerUp && nodes.length > 0, problems: layerUp ? [] : nodes.map((n) => `${n.name}: msg_rdma is not loaded`) }),
    kernelImage: (node, p) => {
      try {
        return JSON.parse(readFileSync(node.hostPath(p), 'utf8')) as KernelIdentity;
      } catch {
        return undefined;
      }
    },
  });
});

afterAll(async () => {
  currentVm(world)?.kill('test over');
  await waitUntil('the VM to end', () => currentVm(world) === undefined, 20_000).catch(() => {});
  await new Promise((r) => setTimeout(r, 200));
  setVmDeps(previousDeps);
  rmSync(dir, { recursive: true, force: true });
});

// ---- refusals --------------------------------------------------------------------------------------

describe('lkvm refuses', () => {
  it.each([
    ['without sudo', () => call(world, lkvmHandler, world.nodes[0], lkvmArgv(), { sudo: false }), /'\/dev\/kvm' could not be opened: Permission denied/],
    ['on another node than the origin', () => call(world, lkvmHandler, world.nodes[1], lkvmArgv()), /node1 is node 1: the distributed VM is launched from the origin/],
    ['a missing kernel', () => call(world, lkvmHandler, world.nodes[0], lkvmArgv({ kernel: '/home/ae/nope/bzImage' })), /Fatal: Unable to open kernel \/home\/ae\/nope\/bzImage/],
    ['a host kernel (POPHYPE_HOST_KERNEL 1)', () => call(world, lkvmHandler, world.nodes[0], lkvmArgv({ kernel: HOST_KERNEL })), /is a FragVisor host kernel \(POPHYPE_HOST_KERNEL 1\)/],
    ['a missing ramdisk', () => call(world, lkvmHandler, world.nodes[0], lkvmArgv({ ramdisk: 'nope.gz' })), /Fatal: Unable to open initrd \/home\/ae\/ramdisks\/nope.gz/],
  ])('%s', async (_name, start, message) => {
    const c = start();
    expect(await c.done).toBe(1);
    expect(c.stderr()).toMatch(message);
    expect(currentVm(world)).toBeUndefined();
  });

  it('without the messaging layer on exactly its nodes', async () => {
    layerUp = false;
    try {
      const c = call(world, lkvmHandler, world.nodes[0], lkvmArgv());
      expect(await c.done).toBe(1);
      expect(c.stderr()).toMatch(/Fatal: the Popcorn messaging layer is not up on exactly the VM's nodes \(0:node0 1:node1 2:node2 3:node3\): node0: msg_rdma is not loaded/);
    } finally {
      layerUp = true;
    }
  });

  it("with a stale socket in a node's /root/.lkvm, with kvmtool's error", async () => {
    const stale = world.nodes[2].hostPath('/root/.lkvm/guest-4242.sock');
    mkdirSync(path.dirname(stale), { recursive: true });
    writeFileSync(stale, '');
    const c = call(world, lkvmHandler, world.nodes[0], lkvmArgv());
    expect(await c.done).toBe(1);
    expect(c.stderr()).toMatch(/ {2}Error: Socket file \/root\/.lkvm\/guest-4242.sock already exist\n {2}Fatal: Failed to start the IPC socket on node2/);
    rmSync(stale);
  });

  it('counts every `lkvm run` as a launch', () => {
    expect(world.nodes[0].counters.lkvm).toBeGreaterThanOrEqual(6);
  });
});

// ---- the LEMP guest ----------------------------------------------------------------------------

describe('a FragVisor VM with the LEMP ramdisk', () => {
  let vm: Call;
  let launches: number;

  beforeAll(async () => {
    launches = world.nodes[0].counters.lkvm ?? 0;
    vm = call(world, lkvmHandler, world.nodes[0], lkvmArgv());
    await vm.waitFor(/guest login:/);
  });

  it('streams a Linux boot console marked SIMULATED, and stays in the foreground', async () => {
    expect(vm.stdout()).toMatch(/^ {2}# lkvm run -k \/home\/ae\/guest-build\/arch\/x86\/boot\/bzImage -m 20480 -c 4 --name guest-\d+\n/);
    expect(vm.stdout()).toContain('Linux version 4.4.137-pop-hype-guest (SIMULATED)');
    expect(vm.stdout()).toContain(`Command line: ${PARAMS}`);
    expect(vm.stdout()).toContain('smp: Brought up 4 nodes, 4 CPUs');
    expect(vm.stdout()).toContain(`SIMULATED: the guest is up; ssh root@10.4.4.222 is answered at 127.0.0.1:${guestPort}`);
    expect(world.nodes[0].counters.lkvm).toBe(launches + 1);
    const state = await Promise.race([vm.done, new Promise((r) => setTimeout(() => r('running'), 100))]);
    expect(state).toBe('running');
    for (const n of world.nodes) expect(existsSync(n.hostPath('/root/.lkvm'))).toBe(true);
  });

  it('answers on its SSH endpoint as root, over plain OpenSSH with strict host keys', async () => {
    const r = await guestSsh('id -un; hostname; pwd; cat /etc/ae-sim-guest | head -2');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    expect(r.stdout).toBe('root\nguest\n/root\nkind=lemp\nvcpus=4\n');
    expect(readFileSync(path.join(dir, 'known_hosts'), 'utf8')).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${guestPort} ssh-ed25519 `, 'm'));
    const json = JSON.parse(readFileSync(path.join(dir, 'guest.json'), 'utf8'));
    expect(json).toMatchObject({ simulated: true, guestIp: '10.4.4.222', hypervisor: 'fragvisor', ssh: { host: '127.0.0.1', port: guestPort, user: 'root' } });
    expect(Object.keys(json.openLambdaPorts)).toEqual(['5000', '5001', '5002', '5003']);
    expect(await probePort(json.http)).toBe('open');
  });

  it("follows the model's time scale in sleep: the artifact's 3 s settle takes 6 ms at 0.002", async () => {
    const r = await guestSsh('command -v sleep; t0=$(date +%s%N); sleep 3; echo $(( ($(date +%s%N) - t0) / 1000000 ))');
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const [where, ms] = r.stdout.trim().split('\n');
    expect(where).toBe('/.ae-guest/tools/sleep');
    expect(Number(ms)).toBeLessThan(900);
  });

  it('shows nginx (master root, one worker nobody) and php-fpm (one worker per vCPU, www-data) in ps aux', async () => {
    const r = await guestSsh('ps aux');
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toBe('USER         PID %CPU %MEM    VSZ   RSS TTY      STAT START   TIME COMMAND');
    const rows = (re: RegExp) => lines.filter((l) => re.test(l));
    expect(rows(/^root +\d+ .* nginx: master process \/usr\/local\/nginx\/sbin\/nginx -c \/usr\/local\/nginx\/conf\/nginx.conf$/)).toHaveLength(1);
    expect(rows(/^nobody +\d+ .* nginx: worker process$/)).toHaveLength(1);
    expect(rows(/^root +\d+ .* php-fpm: master process \(\/etc\/php\/7.2\/fpm\/php-fpm.conf\)$/)).toHaveLength(1);
    expect(rows(/^www-data +\d+ .* php-fpm: pool www$/)).toHaveLength(4);
    expect(rows(/ ps aux$/)).toHaveLength(1);
    // Real processes: pgrep sees them by name.
    const pgrep = await guestSsh('pgrep -c nginx; pgrep -c php-fpm7.2');
    expect(pgrep.stdout).toBe('2\n5\n');
    const ef = (await guestSsh('ps -ef')).stdout.split('\n');
    expect(ef[0]).toBe('UID          PID    PPID  C STIME TTY          TIME CMD');
    expect(ef.filter((l) => /^nobody +\d+ +\d+ +0 \d\d:\d\d \? +00:00:00 nginx: worker process$/.test(l))).toHaveLength(1);
    const short = (await guestSsh('ps -e')).stdout;
    expect(short).toMatch(/^ {4}PID TTY {10}TIME CMD\n/);
    expect(short).toMatch(/^ +1 \? +00:00:00 init2$/m);
    expect(short).toMatch(/^ +\d+ \? +00:00:00 php-fpm7\.2$/m);
    expect(short).toMatch(/^ +\d+ \? +00:00:00 ps$/m);
  });

  it('sets and reads CPU affinity with taskset -p, as util-linux prints it', async () => {
    const pid = (await guestSsh("ps aux | grep 'nginx: worker' | grep -v grep | awk '{print $2}'")).stdout.trim();
    expect(pid).toMatch(/^\d+$/);
    const set = await guestSsh(`taskset -p 0x2 ${pid}`);
    expect(set).toMatchObject({ code: 0, stdout: `pid ${pid}'s current affinity mask: f\npid ${pid}'s new affinity mask: 2\n` });
    expect((await guestSsh(`taskset -p ${pid}`)).stdout).toBe(`pid ${pid}'s current affinity mask: 2\n`);
    expect((await guestSsh(`taskset -cp ${pid}`)).stdout).toBe(`pid ${pid}'s current affinity list: 1\n`);
    const bad = await guestSsh(`taskset -p 0x10 ${pid}`);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toBe(`taskset: failed to set pid ${pid}'s affinity: Invalid argument\n`);
    const none = await guestSsh('taskset -p 99999');
    expect(none.stderr).toBe("taskset: failed to get pid 99999's affinity: No such process\n");
    // The launch form: the command runs with the mask, and so do its children.
    const launched = await guestSsh('taskset 0x4 bash -c \'taskset -p $$; nproc; bash -c "taskset -p \\$\\$"\'');
    expect(launched.stdout).toMatch(/^pid (\d+)'s current affinity mask: 4\n1\npid \d+'s current affinity mask: 4\n$/);
  });

  it("restarts nginx and php-fpm as step 5 does, one worker each pinned, and serves the files copied in over SSH with real ab's output", async () => {
    const restart = await guestSsh('pkill nginx; pkill php-fpm; sleep 0.3; nginx -c /usr/local/nginx/conf/nginx.conf && php-fpm7.2 --fpm-config /etc/php/7.2/fpm/php-fpm.conf & wait; ps aux');
    expect(restart.code).toBe(0);
    const workers = restart.stdout.split('\n').filter((l) => /php-fpm: pool www$/.test(l)).map((l) => l.split(/\s+/)[1]);
    expect(workers).toHaveLength(4);
    const pins = workers.map((pid, i) => `taskset -p 0x${(1 << i).toString(16)} ${pid} >/dev/null`).join(' && ');
    expect((await guestSsh(pins)).code).toBe(0);

    const page = Buffer.alloc(1024, 'x');
    expect((await guestSsh('cat > /usr/local/nginx/html/index.html && sync', page)).code).toBe(0);
    const ab = call(world, abHandler, world.nodes[0], ['ab', '-n', '100', '-c', '10', 'http://10.4.4.222/']);
    expect(await ab.done).toBe(0);
    const out = ab.stdout();
    expect(out).toMatch(/^This is ApacheBench, Version 2\.3/);
    expect(out).toMatch(/^SIMULATED: 10\.4\.4\.222:80 is the simulated FragVisor guest \(here 127\.0\.0\.1:\d+\)/m);
    expect(out).toMatch(/^Server Software: +nginx\/1\.14\.0 \(SIMULATED\)$/m);
    expect(out).toMatch(/^Server Hostname: +10\.4\.4\.222$/m);
    expect(out).toMatch(/^Server Port: +80$/m);
    expect(out).toMatch(/^Document Path: +\/$/m);
    expect(out).toMatch(/^Document Length: +1024 bytes$/m);
    expect(out).toMatch(/^Complete requests: +100$/m);
    expect(out).toMatch(/^Failed requests: +0$/m);
    expect(out).toMatch(/^Requests per second: +[\d.]+ \[#\/sec\] \(mean\)$/m);

    // web.php comes first in this ramdisk's index: the LEMP benchmark page.
    expect((await guestSsh('cat > /usr/local/nginx/html/web.php', '<?php // work: 25ms\n')).code).toBe(0);
    const php = call(world, abHandler, world.nodes[0], ['ab', '-n', '20', '-c', '4', 'http://10.4.4.222/']);
    expect(await php.done).toBe(0);
    expect(php.stdout()).toMatch(new RegExp(`^Document Length: +${PHP_PAGE_BYTES} bytes$`, 'm'));
    expect(php.stdout()).toMatch(/^Failed requests: +0$/m);
  });

  it('reaches the guest only from the origin, and never leaves this machine', async () => {
    const other = call(world, abHandler, world.nodes[1], ['ab', '-n', '1', 'http://10.4.4.222/']);
    expect(await other.done).toBe(1);
    expect(other.stderr()).toBe('apr_socket_connect(): No route to host (113)\n');
    const elsewhere = call(world, curlHandler, world.nodes[0], ['curl', '-s', 'http://10.9.9.9/']);
    expect(await elsewhere.done).toBe(7);
    expect(elsewhere.stderr()).toMatch(/No route to host/);
    const curl = call(world, curlHandler, world.nodes[0], ['curl', '-s', '-o', '/dev/null', '-w', '%{http_code}', '10.4.4.222/index.html']);
    expect(await curl.done).toBe(0);
    expect(curl.stdout()).toBe('200');
  });

  it('times dd on the virtio disk by the model, origin vs remote vCPU', async () => {
    const local = await guestSsh('dd if=/dev/zero of=/dev/vda bs=1M count=100');
    expect(local.code).toBe(0);
    expect(local.stderr).toMatch(/^SIMULATED: \/dev\/vda write time from the performance model \(fragvisor, vCPU 0, local\)\n100\+0 records in\n100\+0 records out\n104857600 bytes \(105 MB, 100 MiB\) copied, [\d.]+ s, [\d.]+ MB\/s\n$/);
    const remote = await guestSsh('taskset 0x2 dd if=/dev/vda of=/dev/null bs=1M count=10');
    expect(remote.stderr).toMatch(/vCPU 1, delegated to the origin/);
    expect((await guestSsh('echo hi | dd of=/tmp/x 2>/dev/null; cat /tmp/x')).stdout).toBe('hi\n');
  });

  it('refuses a second VM while this one runs', async () => {
    const again = call(world, lkvmHandler, world.nodes[0], lkvmArgv());
    expect(await again.done).toBe(1);
    expect(again.stderr()).toMatch(/Socket file \/root\/.lkvm\/guest-\d+.sock already exist/);
    for (const n of world.nodes) rmSync(n.hostPath('/root/.lkvm'), { recursive: true, force: true });
    const third = call(world, lkvmHandler, world.nodes[0], lkvmArgv());
    expect(await third.done).toBe(1);
    expect(third.stderr()).toMatch(/a distributed VM already runs on node0, node1, node2, node3: the VM cannot be restarted while it runs/);
  });

  it('dies with a node that goes down, and the guest with it', async () => {
    await world.nodes[2].reboot();
    expect(await vm.done).toBe(1);
    expect(vm.stdout()).toMatch(/popcorn: node 2 \(10\.4\.6\.12\) is gone[\s\S]*Kernel panic[\s\S]* {2}# KVM session ended abnormally\.\n$/);
    await waitUntil('the guest sshd to go', async () => (await probePort(guestPort)) === 'refused', 20_000);
    expect(existsSync(path.join(dir, 'guest.json'))).toBe(false);
  });

  it('cannot be restarted until every node of it rebooted', async () => {
    for (const n of world.nodes) rmSync(n.hostPath('/root/.lkvm'), { recursive: true, force: true });
    const again = call(world, lkvmHandler, world.nodes[0], lkvmArgv());
    expect(await again.done).toBe(1);
    expect(again.stderr()).toMatch(/Fatal: the VM cannot be restarted: node0, node1, node3 ran a VM since they last booted; reboot every node/);
  });
});

// ---- the other guests, faults and endings --------------------------------------------------------

describe('after a reboot cycle', () => {
  beforeEach(() => rebootCycle());

  it('boots the NPB guest: NPB kernels and nginx, timed per pinned vCPU; killing lkvm kills the VM', async () => {
    const vm = call(world, lkvmHandler, world.nodes[0], lkvmArgv({ nodes: 2, ramdisk: 'ramdisk_NPB_ATC.gz' }));
    await vm.waitFor(/guest login:/);
    const r = await guestSsh('ls /root/NPB/bin | head -3; /root/NPB/bin/ep.B | grep -E "SIMULATED: run|Time in seconds"; taskset 0x2 /root/NPB/bin/ep.B | grep SIMULATED: | head -1; pgrep -c nginx');
    expect(r.stdout).toMatch(/^bt\.B\ncg\.B\nep\.B\n SIMULATED: run time from the performance model \(fragvisor, vCPU 0 of 2\)\n Time in seconds += +[\d.]+\n SIMULATED: run time from the performance model \(fragvisor, vCPU 1 of 2\)\n2\n$/);
    vm.abort();
    await vm.done;
    await waitUntil('the guest sshd to go', async () => (await probePort(guestPort)) === 'refused', 20_000);
    expect(currentVm(world)).toBeUndefined();
  });

  it('guest-boot fault: a kernel panic on the console, lkvm exits non-zero, the guest never answers', async () => {
    world.faults.push({ node: 'node1', step: 'guest-boot', times: 1 });
    const vm = call(world, lkvmHandler, world.nodes[0], lkvmArgv());
    expect(await vm.done).toBe(1);
    expect(vm.stdout()).toMatch(/Kernel panic - not syncing: Fatal exception/);
    expect(vm.stdout()).not.toContain('guest login:');
    expect(await probePort(guestPort)).toBe('refused');
    // It counts as a VM that ran: the nodes need their reboot.
    for (const n of world.nodes) rmSync(n.hostPath('/root/.lkvm'), { recursive: true, force: true });
    const again = call(world, lkvmHandler, world.nodes[0], lkvmArgv());
    expect(await again.done).toBe(1);
    expect(again.stderr()).toMatch(/the VM cannot be restarted/);
  });

  it('console=ttyS0 crashes the guest', async () => {
    const vm = call(world, lkvmHandler, world.nodes[0], lkvmArgv({ params: `${PARAMS} console=ttyS0` }));
    expect(await vm.done).toBe(1);
    expect(vm.stdout()).toMatch(/console=ttyS0\)\n.*Kernel panic/);
  });

  it('OpenLambda guest: ol workers on ports 5000.., pinned with taskset, answering POST /run over curl', async () => {
    const vm = call(world, lkvmHandler, world.nodes[0], lkvmArgv({ nodes: 2, ramdisk: 'ramdisk_for_openlambda200625.gz', params: PARAMS.replace(' init=/init2', '') }));
    await vm.waitFor(/guest login:/);
    const start = await guestSsh('cd /root/open-lambda && taskset 0x1 ./ol worker --path=l0 -d && taskset 0x2 ol worker --path=l1 -d && ps aux | grep "ol worker" | grep -v grep');
    expect(start.code).toBe(0);
    expect(start.stdout).toMatch(/port=5000[\s\S]*port=5001/);
    const pid1 = /pid=(\d+), port=5001/.exec(start.stdout)![1];
    expect((await guestSsh(`taskset -p ${pid1}`)).stdout).toBe(`pid ${pid1}'s current affinity mask: 2\n`);
    const post = call(world, curlHandler, world.nodes[0], ['curl', '-s', '-d', '1', '10.4.4.222:5001/run/process']);
    expect(await post.done).toBe(0);
    expect(JSON.parse(post.stdout())).toMatchObject({ lambda: 'process', input: 1, simulated: true });
    const poweroff = await guestSsh('poweroff');
    expect(poweroff.code === 0 || poweroff.code === 255).toBe(true);
    expect(await vm.done).toBe(0);
    expect(vm.stdout()).toContain('# KVM session ended normally.');
  });

  it('GiantVM: qemu on every node waits for all instances, needs the Linux-DSM kernel, boots the guest as giantvm', async () => {
    const qemu = (i: number) => ['qemu-system-x86_64', '-kernel', GUEST_KERNEL, '-initrd', `${RAMDISKS}/ramdisk_lemp_4php.gz`, '-append', PARAMS, '-netdev', 'tap,id=n0', '-nographic', '-machine', 'kernel-irqchip=off', '-smp', '2', '-m', '20480', '--enable-kvm', '-local-cpu', `1,start=${i},iplist="10.4.6.10 10.4.6.11"`];
    const refused = call(world, qemuHandler, world.nodes[0], qemu(0));
    expect(await refused.done).toBe(1);
    expect(refused.stderr()).toMatch(/not GiantVM's Linux-DSM host kernel/);
    for (const n of world.nodes) n.kernelRelease = '4.8.10-dsm';
    try {
      const first = call(world, qemuHandler, world.nodes[0], qemu(0));
      const state = await Promise.race([first.done, new Promise((r) => setTimeout(() => r('waiting'), 200))]);
      expect(state).toBe('waiting');
      expect(currentVm(world)).toBeUndefined();
      const second = call(world, qemuHandler, world.nodes[1], qemu(1));
      await first.waitFor(/guest login:/);
      expect(first.stdout()).toContain('GiantVM, kernel-irqchip=off');
      expect(JSON.parse(readFileSync(path.join(dir, 'guest.json'), 'utf8')).hypervisor).toBe('giantvm');
      const ps = await guestSsh('pgrep -c php-fpm7.2; ps aux; cat /etc/ae-sim-guest');
      if (!/^3\n/.test(ps.stdout)) console.log(first.stdout(), first.stderr(), second.stderr());
      expect(ps.stdout).toMatch(/^3\n/);
      second.abort();
      expect(await first.done).toBe(137);
      await waitUntil('the guest sshd to go', async () => (await probePort(guestPort)) === 'refused', 20_000);
      expect(world.nodes[0].counters.qemu).toBe(2); // the refused one and the one that ran
      expect(world.nodes[1].counters.qemu).toBe(1);
    } finally {
      for (const n of world.nodes) n.kernelRelease = '4.4.137-pop-hype';
    }
  });
});

