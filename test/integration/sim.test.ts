import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadProfile } from '../../config/load';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { generateParsable } from '../../sim/keys';
import { connect, exec, nodeProcessesMatching, openssh, probePort, processAlive, waitUntil } from '../helpers/sim';

/**
 * The simulated testbed over real SSH: plain OpenSSH (through the generated ssh_config, strict host
 * key checking) and ssh2. Nodes run real bash in sandboxes that must never touch this machine.
 */

const DOWN_MS = 700;
const PROBE = 'cat /proc/sys/kernel/random/boot_id; uname -r; cat /proc/uptime; test -d /home/ae/FragVisor && echo yes || echo no';
const BOOT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let stateDir: string;
let sim: SimCluster;
const holders: number[] = [];
const hostHelpers: ChildProcess[] = [];
const tempDirs: string[] = [];

const hostBootId = () => readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
const sha = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
/** The holders (pid 1 of each node) as the host sees them, for the no-leftovers check. */
const rememberHolders = () => sim.nodes.forEach((n) => holders.push(...n.processes().filter((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('holder.sh'))));

beforeAll(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-test-'));
  tempDirs.push(stateDir);
  sim = await startSimCluster({ nodes: 2, stateDir, rebootDownMs: DOWN_MS });
  rememberHolders();
});

afterAll(async () => {
  await sim?.stop();
  for (const h of hostHelpers) h.kill('SIGKILL');
  // Nothing of any node survives the simulator.
  for (const pid of holders) expect(processAlive(pid)).toBe(false);
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});

describe('simulated cluster files', () => {
  it('writes a valid `sim` profile, a client key, known_hosts and an ssh_config', () => {
    const { profile } = loadProfile(sim.profileFile);
    expect(profile).toMatchObject({ name: 'sim', simulated: true, paths: { fragvisor: '/home/ae/FragVisor' }, guest: { ip: '10.4.4.222', hostIp: '10.4.4.221', mac: '00:11:22:33:44:55' } });
    // A BMC per node where ipmi_sim is installed (CI installs it; simBmc.test.ts drives them).
    const bmc = (name: string) => (sim.bmcs[name] ? { bmc: { host: '127.0.0.1', port: sim.bmcs[name].port, user: 'ADMIN', passwordEnv: 'AE_SIM_BMC_PASSWORD' } } : {});
    expect(profile.nodes).toEqual([
      { name: 'node0', origin: true, host: '127.0.0.1', port: sim.node('node0').port, user: 'ae', rdmaIp: '10.4.6.10', ...bmc('node0') },
      { name: 'node1', origin: false, host: '127.0.0.1', port: sim.node('node1').port, user: 'ae', rdmaIp: '10.4.6.11', ...bmc('node1') },
    ]);
    expect(profile.ssh.identityFile).toBe(path.join(stateDir, 'id_ed25519'));
    expect(profile.ssh.knownHosts).toBe(path.join(stateDir, 'known_hosts'));
    expect(profile.ssh.configFile).toBe(path.join(stateDir, 'ssh_config'));
    expect(statSync(sim.identityFile).mode & 0o777).toBe(0o600);
    const knownHosts = readFileSync(sim.knownHostsFile, 'utf8').trim().split('\n');
    expect(knownHosts).toEqual(sim.nodes.map((n) => `[127.0.0.1]:${n.port} ${n.hostPublicKey.split(' ').slice(0, 2).join(' ')}`));
    expect(readFileSync(sim.sshConfigFile, 'utf8')).toContain(`Host node1\n  HostName 127.0.0.1\n  Port ${sim.node('node1').port}\n  User ae\n`);
  });
});

describe('commands over SSH', () => {
  it("answers the orchestrator's probe from node state, over plain OpenSSH", async () => {
    const node = sim.node('node0');
    const r = await openssh(sim, 'node0', PROBE);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    const [bootId, release, uptime, tree] = r.stdout.trim().split('\n');
    expect(bootId).toMatch(BOOT_ID);
    expect(bootId).toBe(node.state.bootId);
    expect(bootId).not.toBe(hostBootId());
    expect(release).toBe('4.15.0-213-generic');
    const seconds = Number(uptime.split(' ')[0]);
    expect(seconds).toBeGreaterThanOrEqual(0);
    expect(seconds).toBeLessThanOrEqual((Date.now() - node.state.bootedAt.getTime()) / 1000 + 1);
    expect(tree).toBe('yes'); // the generated FragVisor checkout (simKernel.test.ts)
    const who = await openssh(sim, 'node1', 'uname -n; hostname; uname -a; echo $HOME $USER; pwd; echo $AE_SIM_NODE');
    expect(who.stdout.split('\n')).toEqual([
      'node1',
      'node1',
      expect.stringMatching(/^Linux node1 4\.15\.0-213-generic #\S+ SMP .* GNU\/Linux$/),
      '/home/ae ae',
      '/home/ae',
      'node1',
      '',
    ]);
  });

  it('reports real exit codes, stderr on the extended channel, and streams output as it comes', async () => {
    expect(await openssh(sim, 'node1', 'echo out; echo err >&2; exit 7')).toEqual({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    const client = await connect(sim, sim.node('node0'));
    try {
      expect(await exec(client, 'echo out; echo err >&2; exit 3')).toMatchObject({ code: 3, stdout: 'out\n', stderr: 'err\n' });
      expect(await exec(client, 'no-such-command-here')).toMatchObject({ code: 127, stderr: expect.stringContaining('command not found') });
      let firstAt = 0;
      const started = Date.now();
      const streamed = await exec(client, 'echo first; sleep 1; echo second', (ch) => ch.once('data', () => (firstAt = Date.now())));
      expect(streamed).toMatchObject({ code: 0, stdout: 'first\nsecond\n' });
      expect(firstAt - started).toBeLessThan(800);
      expect(await exec(client, 'head -c 3', (ch) => ch.end('abcdef'))).toMatchObject({ code: 0, stdout: 'abc' });
      // pty-req and env requests are accepted (a pty merges stderr into the output; only LANG/LC_*/TZ pass).
      const withPty = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve, reject) =>
        client.exec('echo "$TERM $LANG ${FOO:-unset}"; echo err >&2', { pty: { term: 'xterm' }, env: { LANG: 'C.UTF-8', FOO: 'x' } }, (err, ch) => {
          if (err) return reject(err);
          let stdout = '';
          let stderr = '';
          ch.on('data', (d: Buffer) => (stdout += d.toString()));
          ch.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
          ch.on('close', (code: number) => resolve({ code, stdout, stderr }));
        }),
      );
      expect(withPty).toEqual({ code: 0, stdout: 'xterm C.UTF-8 unset\nerr\n', stderr: '' });
    } finally {
      client.end();
    }
  });

  it('delivers client signals to the command and kills its process group when the channel closes', async () => {
    const node = sim.node('node0');
    const client = await connect(sim, node);
    try {
      const trapped = await exec(client, 'trap "echo got-int; exit 42" INT; echo ready; while :; do sleep 0.05; done', (ch, out) => {
        const timer = setInterval(() => {
          if (out().includes('ready')) {
            clearInterval(timer);
            ch.signal('INT');
          }
        }, 20);
      });
      expect(trapped).toMatchObject({ code: 42, stdout: 'ready\ngot-int\n' });

      const killed = await exec(client, 'exec sleep 1001', (ch) => {
        void waitUntil('sleep 1001 to run', () => nodeProcessesMatching(node, 'sleep 1001').length > 0).then(() => ch.signal('KILL'));
      });
      expect(killed.signal).toBe('SIGKILL'); // the wire says KILL; ssh2 adds the prefix

      // A signal that arrives before the command leads its own session (right as the channel opens)
      // is delivered once it does, never dropped: dropping it left the command running forever.
      for (let i = 0; i < 10; i++) {
        const early = await exec(client, 'exec sleep 1001', (ch) => ch.signal('KILL'));
        expect(early.signal).toBe('SIGKILL');
      }

      await new Promise<void>((resolve, reject) => {
        client.exec('echo started; sleep 1002 & sleep 1003', (err, ch) => {
          if (err) return reject(err);
          ch.once('data', () => {
            ch.close();
            resolve();
          });
        });
      });
      await waitUntil('the closed channel\'s processes to die', () => nodeProcessesMatching(node, 'sleep 100').length === 0, 5000);

      // Like sshd, every command leads its own session: `$$` is its process group, so the SSH
      // layer's fallback (`kill -KILL -- -<pgid>` on a second channel) works.
      let pgid = '';
      const victim = exec(client, 'echo "$$ $(ps -o pgid=,sid= -p $$)"; sleep 1004 & sleep 1005', (_ch, out) => {
        void waitUntil('the pgid line', () => out().includes('\n')).then(async () => {
          const [pid, group, session] = out().trim().split(/\s+/);
          expect([group, session]).toEqual([pid, pid]);
          pgid = group;
          expect(await exec(client, `kill -KILL -- -${pgid}`)).toMatchObject({ code: 0 });
        });
      });
      expect((await victim).signal).toBe('SIGKILL');
      expect(Number(pgid)).toBeGreaterThan(1);
      await waitUntil('the killed group to be gone', () => nodeProcessesMatching(node, 'sleep 100').length === 0, 5000);
    } finally {
      client.end();
    }
  });

  it("refuses an 11th session on one connection, as sshd's MaxSessions 10 does, and frees a closed one's place", async () => {
    const client = await connect(sim, sim.node('node1'));
    try {
      const running = Array.from({ length: 10 }, () => exec(client, 'sleep 1; echo done'));
      await expect(exec(client, 'true')).rejects.toMatchObject({ message: expect.stringContaining('Channel open failure'), reason: 2 });
      expect((await Promise.all(running)).map((r) => r.stdout)).toEqual(Array(10).fill('done\n'));
      expect(await exec(client, 'echo again')).toMatchObject({ code: 0, stdout: 'again\n' });
    } finally {
      client.end();
    }
  });

  it('accepts only user ae with the sim key', async () => {
    const node = sim.node('node1');
    const before = node.stats.authFailures;
    await expect(connect(sim, node, { username: 'root' })).rejects.toThrow(/authentication methods failed/);
    const stranger = generateParsable(); // ssh2's own generator now and then makes a key its parser refuses
    await expect(connect(sim, node, { privateKey: stranger.private })).rejects.toThrow(/authentication methods failed/);
    expect(node.stats.authFailures).toBeGreaterThanOrEqual(before + 2);
    const shell = await openssh(sim, 'node1', '');
    expect(shell.code).not.toBe(0);
  });
});

describe('reboot', () => {
  it('`sudo reboot`: connections drop, SSH is refused while down, the node comes back with a new boot_id, detached jobs are gone', async () => {
    const node = sim.node('node1');
    const before = node.state;
    const reboots = node.stats.reboots;
    // A detached job that a plain process-group kill would miss, and an open connection.
    expect(await openssh(sim, 'node1', 'setsid nohup sleep 1000 >/dev/null 2>&1 </dev/null & echo started')).toMatchObject({ code: 0, stdout: 'started\n' });
    const [detached] = nodeProcessesMatching(node, 'sleep 1000');
    expect(detached).toBeDefined();
    const idle = await connect(sim, node);
    const idleClosed = new Promise<void>((resolve) => idle.once('close', () => resolve()));
    idle.on('error', () => {});

    const rebootCmd = await openssh(sim, 'node1', 'sudo reboot; echo "reboot returned $?"');
    expect(rebootCmd.code).toBe(255); // the connection went away under the command
    expect(rebootCmd.stdout).not.toContain('reboot returned');
    await idleClosed;
    expect(node.up).toBe(false);
    expect(await probePort(node.port)).toBe('refused');
    expect((await openssh(sim, 'node1', 'true')).stderr).toMatch(/Connection refused/);
    expect(processAlive(detached)).toBe(false);

    await waitUntil('node1 to come back', () => node.up, 10_000);
    const after = node.state;
    expect(node.stats.reboots).toBe(reboots + 1);
    expect(after.bootId).toMatch(BOOT_ID);
    expect(after.bootId).not.toBe(before.bootId);
    expect(after.bootedAt.getTime()).toBeGreaterThan(before.bootedAt.getTime());
    const [bootId, release, uptime] = (await openssh(sim, 'node1', PROBE)).stdout.split('\n');
    expect([bootId, release]).toEqual([after.bootId, '4.15.0-213-generic']);
    expect(Number(uptime.split(' ')[0])).toBeLessThan(5);
    expect(nodeProcessesMatching(node, 'sleep 1000')).toEqual([]);
    rememberHolders();
  });

  it('boots the kernel installed since the last boot, and an API reboot waits for the node', async () => {
    const node = sim.node('node0');
    expect(await openssh(sim, 'node0', 'echo 4.4.137-pop-hype > "$AE_SIM_STATE/next_kernel_release"')).toMatchObject({ code: 0 });
    expect(node.state.nextKernelRelease).toBe('4.4.137-pop-hype');
    expect((await openssh(sim, 'node0', 'uname -r')).stdout).toBe('4.15.0-213-generic\n');
    const started = Date.now();
    await node.reboot();
    expect(Date.now() - started).toBeGreaterThanOrEqual(DOWN_MS);
    expect(node.state).toMatchObject({ up: true, kernelRelease: '4.4.137-pop-hype', nextKernelRelease: null });
    const r = await openssh(sim, 'node0', 'uname -r; uname -v');
    expect(r.stdout).toMatch(/^4\.4\.137-pop-hype\n#1 SMP \w{3} \w{3} \d+ \d\d:\d\d:\d\d UTC \d{4}\n$/);
    rememberHolders();
  });
});

describe('safety: a node never touches the host', () => {
  it('reboot, insmod, writes to /root, /tmp, /var/tmp, /dev/shm, kill -1 and hostname stay inside the node', async () => {
    const node = sim.node('node0');
    const marker = `ae-sim-safety-${process.pid}-${Date.now()}`;
    const hostFacts = () => ({
      bootId: hostBootId(),
      hostname: os.hostname(),
      modules: existsSync('/proc/modules') ? readFileSync('/proc/modules', 'utf8') : 'none',
      lsmod: spawnSync('lsmod', { encoding: 'utf8' }).stdout ?? 'none',
      systemctl: existsSync('/usr/bin/systemctl') ? sha('/usr/bin/systemctl') : 'none',
      root: readdirSync('/root').sort(),
    });
    const before = hostFacts();
    // A host process of the same unprivileged user the node's commands run as.
    const hostSleeper = sim.sandboxMode === 'root' ? spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', 'sleep', '60']) : spawn('sleep', ['60']);
    hostHelpers.push(hostSleeper);

    const tries = await openssh(
      sim,
      'node0',
      [
        '/sbin/reboot; echo "sbin-reboot=$?"',
        '/usr/sbin/reboot; echo "usr-sbin-reboot=$?"',
        'systemctl reboot; echo "systemctl=$?"',
        'insmod /tmp/x.ko; echo "insmod=$?"',
        'echo junk > /tmp/x.ko; sudo insmod /tmp/x.ko; echo "insmod-junk=$?"',
        'printf "#ae-sim-module\\n" > /tmp/msg_rdma.ko; sudo insmod /tmp/msg_rdma.ko; echo "insmod-sim=$?"; lsmod | tail -n +2',
        'sudo touch /root/owned; echo "root=$?"',
        `echo data > /tmp/${marker}; echo data > /var/tmp/${marker}; echo data > /dev/shm/${marker}; echo "tmp=$?"`,
        'echo x > /etc/ae-sim-owned 2>/dev/null; echo "etc=$?"',
        'sudo hostname owned 2>/dev/null; echo "hostname=$(hostname)"',
        'kill -9 -1; echo "kill=$?"',
      ].join('\n'),
    );
    expect(tries.code).toBe(0);
    expect(tries.stdout).toContain('sbin-reboot=1');
    expect(tries.stdout).toContain('usr-sbin-reboot=1');
    expect(tries.stdout).toContain('systemctl=1');
    expect(tries.stderr).toContain('Interactive authentication required');
    expect(tries.stdout).toContain('insmod=1');
    expect(tries.stderr).toContain('insmod: ERROR: could not load module /tmp/x.ko: No such file or directory');
    expect(tries.stdout).toContain('insmod-junk=1');
    expect(tries.stderr).toContain('Invalid module format');
    expect(tries.stdout).toMatch(/insmod-sim=0\nmsg_rdma\s+\d+\s+0\n/);
    expect(tries.stdout).toContain('root=0');
    expect(tries.stdout).toContain('tmp=0');
    expect(tries.stdout).toMatch(/etc=[1-9]/);
    expect(tries.stdout).toContain('hostname=node0');
    expect(node.stats.reboots).toBe(1); // only the API reboot of the previous test
    // What the node wrote landed in its sandbox.
    expect(existsSync(path.join(stateDir, 'nodes/node0/fs/root/owned'))).toBe(true);
    expect(readFileSync(path.join(stateDir, 'nodes/node0/fs/tmp', marker), 'utf8')).toBe('data\n');

    const bootId = node.state.bootId;
    const reboot = await openssh(sim, 'node0', 'sudo reboot');
    expect(reboot.code).toBe(255);
    await waitUntil('node0 to come back', () => node.up && node.state.bootId !== bootId, 10_000);
    expect(node.stats.reboots).toBe(2);
    // A boot unloads modules and empties /tmp, like on the real nodes.
    expect(await openssh(sim, 'node0', 'lsmod | tail -n +2; ls -A /tmp /dev/shm')).toMatchObject({ code: 0, stdout: '/dev/shm:\n\n/tmp:\n' });
    expect(existsSync(path.join(stateDir, 'nodes/node0/fs/root/owned'))).toBe(true);

    expect(hostFacts()).toEqual(before);
    expect(existsSync('/root/owned')).toBe(false);
    for (const dir of ['/tmp', '/var/tmp', '/dev/shm']) expect(existsSync(path.join(dir, marker))).toBe(false);
    expect(existsSync('/etc/ae-sim-owned')).toBe(false);
    expect(hostSleeper.exitCode).toBeNull();
    expect(processAlive(hostSleeper.pid!)).toBe(true);
    rememberHolders();
  });
});

describe('persistence', () => {
  it('a restarted simulator keeps host keys, ports, boot ids and kernels, and leaves no process behind', async () => {
    const knownHosts = readFileSync(sim.knownHostsFile, 'utf8');
    const states = sim.nodes.map((n) => ({ port: n.port, bootId: n.state.bootId, kernel: n.state.kernelRelease }));
    const oldHolders = [...holders];
    await sim.stop();
    for (const pid of oldHolders) expect(processAlive(pid)).toBe(false);
    for (const s of states) expect(await probePort(s.port)).toBe('refused');

    sim = await startSimCluster({ nodes: 2, stateDir, rebootDownMs: DOWN_MS });
    rememberHolders();
    expect(readFileSync(sim.knownHostsFile, 'utf8')).toBe(knownHosts);
    expect(sim.nodes.map((n) => ({ port: n.port, bootId: n.state.bootId, kernel: n.state.kernelRelease }))).toEqual(states);
    expect(states[0].kernel).toBe('4.4.137-pop-hype');
    // Plain OpenSSH with StrictHostKeyChecking=yes against the known_hosts of the previous run.
    const r = await openssh(sim, 'node0', 'cat /proc/sys/kernel/random/boot_id; uname -r');
    expect(r).toMatchObject({ code: 0, stdout: `${states[0].bootId}\n4.4.137-pop-hype\n` });
  });

  it('refuses a second simulator on the same state dir', async () => {
    const second = startSimCluster({ nodes: 2, stateDir });
    second.then((s) => s.stop(), () => {}).catch(() => {});
    await expect(second).rejects.toThrow(/already runs from/);
  });
});

describe('ae sim up', () => {
  it('prints the nodes and files, serves SSH, and stops cleanly on SIGTERM', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-cli-'));
    tempDirs.push(dir);
    writeFileSync(path.join(dir, 'run.js'), `require('tsx/cjs');\nrequire(${JSON.stringify(path.resolve(__dirname, '../../cli/commands/sim.ts'))}).run(process.argv.slice(2)).then((c) => { process.exitCode = c; });\n`);
    const child = spawn(process.execPath, [path.join(dir, 'run.js'), 'up', '--nodes', '1', '--state-dir', path.join(dir, 'sim'), '--json'], {
      cwd: path.resolve(__dirname, '../..'),
      env: { ...process.env, NODE_PATH: path.resolve(__dirname, '../../node_modules') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    hostHelpers.push(child);
    let out = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    await waitUntil('ae sim up to print its JSON', () => out.includes('"nodes"'), 20_000);
    const info = JSON.parse(out.split('\n').find((l) => l.startsWith('{'))!) as { sshConfigFile: string; nodes: { name: string; port: number; bootId: string }[] };
    expect(info.nodes).toEqual([expect.objectContaining({ name: 'node0', port: expect.any(Number), bootId: expect.stringMatching(BOOT_ID), kernelRelease: '4.15.0-213-generic' })]);
    const r = await new Promise<string>((resolve) =>
      spawn('ssh', ['-F', info.sshConfigFile, '-o', 'BatchMode=yes', 'node0', 'cat /proc/sys/kernel/random/boot_id'])
        .stdout.setEncoding('utf8')
        .on('data', (d: string) => resolve(d.trim())),
    );
    expect(r).toBe(info.nodes[0].bootId);
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(out).toContain('stopped.');
    expect(await probePort(info.nodes[0].port)).toBe('refused');
    expect(existsSync(path.join(dir, 'sim', 'sim.pid'))).toBe(false);
  });
});
