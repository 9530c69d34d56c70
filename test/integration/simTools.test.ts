import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { registerTool } from '../../sim/tools/registry';
import { DELEGATE, type ToolContext } from '../../sim/tools/types';
import { connect, exec, openssh, waitUntil } from '../helpers/sim';

/**
 * The tool channel: a command on a node (sim/bin/<tool> -> _ctl.js -> the node's ctl.sock) runs a
 * handler in the simulator, over real SSH. Exit codes, stderr, stdin, streaming, Ctrl-C, DELEGATE,
 * the dmesg imitation and the World's node paths.
 */

jest.setTimeout(30_000);

let dir: string;
let sim: SimCluster;
const calls: { tool: string; started: boolean; aborted?: string }[] = [];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A tool whose behaviour argv[1] picks. */
async function testTool(ctx: ToolContext): Promise<number> {
  const [, mode, arg] = ctx.argv;
  const call = { tool: mode, started: true } as (typeof calls)[number];
  calls.push(call);
  ctx.signal.addEventListener('abort', () => (call.aborted = String((ctx.signal.reason as Error)?.message ?? 'aborted')));
  switch (mode) {
    case 'exit':
      ctx.stdout.write('out\n');
      ctx.stderr.write('err\n');
      return Number(arg);
    case 'cat':
      for await (const chunk of ctx.stdin) ctx.stdout.write(chunk as Buffer);
      return 0;
    case 'ctx':
      ctx.stdout.write(`${JSON.stringify({ argv: ctx.argv, cwd: ctx.cwd, sudo: ctx.sudo, foo: ctx.env.FOO, node: ctx.node.name, index: ctx.node.index, rdmaIp: ctx.node.rdmaIp })}\n`);
      return 0;
    case 'stream':
      ctx.stdout.write('first\n');
      await sleep(600);
      ctx.stdout.write('second\n');
      return 0;
    case 'big': {
      const chunk = Buffer.alloc(64 * 1024, 'x');
      for (let i = 0; i < 32 && !ctx.signal.aborted; i++) await new Promise((r) => ctx.stdout.write(chunk, r));
      return 0;
    }
    case 'wait':
      ctx.stdout.write('ready\n');
      await new Promise((r) => ctx.signal.addEventListener('abort', r));
      return 0;
    case 'throw':
      throw new Error('boom');
    case 'hostpath':
      ctx.stdout.write(`${ctx.node.hostPath(ctx.node.resolve(ctx.cwd, arg))}\n`);
      return 0;
    default:
      return 2;
  }
}

beforeAll(async () => {
  registerTool('ae-sim-test', testTool);
  // `seq` is answered only with --sim; otherwise the node's real seq runs (DELEGATE).
  registerTool('seq', async (ctx) => {
    if (ctx.argv[1] !== '--sim') return DELEGATE;
    ctx.stdout.write('simulated seq\n');
    return 0;
  });
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-sim-tools-'));
  sim = await startSimCluster({ nodes: 2, stateDir: dir, timeScale: 0, bmc: false });
});

afterAll(async () => {
  await sim?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the tool channel', () => {
  it('forwards argv, cwd, env and sudo, and returns exit codes with stdout and stderr apart', async () => {
    expect(await openssh(sim, 'node1', 'ae-sim-test exit 7')).toEqual({ code: 7, stdout: 'out\n', stderr: 'err\n' });
    expect(await openssh(sim, 'node0', 'ae-sim-test exit 0; echo "rc=$?"')).toMatchObject({ code: 0, stdout: 'out\nrc=0\n' });
    const r = await openssh(sim, 'node1', 'cd /tmp && FOO="a b" ae-sim-test ctx "x y" && sudo ae-sim-test ctx');
    const [plain, root] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(plain).toEqual({ argv: ['ae-sim-test', 'ctx', 'x y'], cwd: '/tmp', sudo: false, foo: 'a b', node: 'node1', index: 1, rdmaIp: '10.4.6.11' });
    expect(root).toMatchObject({ sudo: true, cwd: '/tmp' });
    // A handler that throws: its message on stderr, exit 1.
    expect(await openssh(sim, 'node0', 'ae-sim-test throw')).toEqual({ code: 1, stdout: '', stderr: 'ae-sim-test: boom\n' });
  });

  it('feeds stdin only to a handler that reads it, and streams output as it comes', async () => {
    expect(await openssh(sim, 'node0', 'printf "line1\\nline2\\n" | ae-sim-test cat')).toMatchObject({ code: 0, stdout: 'line1\nline2\n' });
    // A tool that never reads stdin leaves it to the next reader, like insmod or make would.
    expect(await openssh(sim, 'node0', 'printf "a\\nb\\n" | { ae-sim-test exit 0 >/dev/null 2>&1; cat; }')).toMatchObject({ code: 0, stdout: 'a\nb\n' });
    const client = await connect(sim, sim.node('node0'));
    try {
      let firstAt = 0;
      const started = Date.now();
      const r = await exec(client, 'ae-sim-test stream', (ch) => ch.once('data', () => (firstAt = Date.now())));
      expect(r).toMatchObject({ code: 0, stdout: 'first\nsecond\n' });
      expect(Date.now() - started).toBeGreaterThanOrEqual(600);
      expect(firstAt - started).toBeLessThan(Date.now() - started - 300);
    } finally {
      client.end();
    }
    // Large output keeps its bytes and order; a reader that goes away stops the handler (SIGPIPE: 141).
    expect(await openssh(sim, 'node1', 'ae-sim-test big | wc -c')).toMatchObject({ code: 0, stdout: `${32 * 64 * 1024}\n` });
    expect(await openssh(sim, 'node1', 'ae-sim-test big | head -c 5; echo " ${PIPESTATUS[0]}"')).toMatchObject({ code: 0, stdout: 'xxxxx 141\n' });
  });

  it('aborts the handler when the client dies: Ctrl-C, kill -9, the node going down', async () => {
    const node = sim.node('node0');
    const client = await connect(sim, node);
    try {
      const before = calls.length;
      const r = await exec(client, 'ae-sim-test wait', (ch, out) => {
        void waitUntil('the handler to start', () => out().includes('ready')).then(() => ch.signal('INT'));
      });
      expect(r.signal).toBe('SIGINT');
      await waitUntil('the handler to see the abort', () => calls[before].aborted !== undefined, 5000);
      expect(calls[before].aborted).toMatch(/went away/);

      const n = calls.length;
      const killed = await exec(client, 'mkfifo /tmp/ready; ae-sim-test wait > /tmp/ready & pid=$!; read -r _ < /tmp/ready; kill -9 $pid; wait $pid; echo "rc=$?"');
      expect(killed.stdout).toBe('rc=137\n');
      await waitUntil('the killed client\'s handler to abort', () => calls[n]?.aborted !== undefined, 5000);
    } finally {
      client.end();
    }
    // The node going down aborts what runs on it.
    const n = calls.length;
    const hanging = openssh(sim, 'node1', 'ae-sim-test wait');
    await waitUntil('the handler to start on node1', () => calls.length > n);
    await sim.node('node1').reboot();
    expect((await hanging).code).toBe(255);
    await waitUntil('the handler to abort', () => calls[n].aborted !== undefined, 5000);
    expect(calls[n].aborted).toMatch(/node1 went down|went away/);
  });

  it('DELEGATE runs the real tool (a generated wrapper first on PATH), with its exit code', async () => {
    expect(await openssh(sim, 'node0', 'command -v seq; seq 3; seq --sim')).toMatchObject({ code: 0, stdout: '/home/.ae-sim/tools/seq\n1\n2\n3\nsimulated seq\n' });
    const bad = await openssh(sim, 'node0', 'seq --no-such-option');
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/seq: unrecognized option/);
    // A tool nobody answers and the node lacks: command not found, as bash says it.
    expect(await openssh(sim, 'node0', '"$AE_SIM_NODE_BIN" /home/.ae-sim/bin/_ctl.js no-such-tool-here; echo "rc=$?"')).toEqual({ code: 0, stdout: 'rc=127\n', stderr: 'no-such-tool-here: command not found\n' });
  });
});

describe('sleep', () => {
  // The artifact's waits (a second or more) follow the time scale; polls stay real, and at time scale 0
  // (this sim's, the tests') every sleep is real: tests hold processes with it.
  it.each([
    ['sleep 3', 0.01, 0, 900],
    ['sleep 1m 5', 0.01, 0, 1500],
    ['sleep 0.3', 0.01, 300, 2000],
    ['sleep 1', 0, 1000, 3000],
  ])('%s on a node at time scale %p takes %p..%p ms', async (command, scale, atLeast, below) => {
    const r = await openssh(sim, 'node0', `export AE_SIM_TIME_SCALE=${scale}; t0=$(date +%s%N); ${command}; echo $(( ($(date +%s%N) - t0) / 1000000 ))`);
    expect(r.code).toBe(0);
    const ms = Number(r.stdout.trim());
    expect(ms).toBeGreaterThanOrEqual(atLeast);
    expect(ms).toBeLessThan(below);
  });

  it("runs with the cluster's time scale and leaves what it does not understand to the real sleep, errors included", async () => {
    expect(await openssh(sim, 'node0', 'echo "$AE_SIM_TIME_SCALE"; command -v sleep')).toMatchObject({ code: 0, stdout: '0\n/home/.ae-sim/bin/sleep\n' });
    expect(await openssh(sim, 'node0', 'sleep 2x')).toMatchObject({ code: 1, stderr: expect.stringMatching(/sleep: invalid time interval .2x./) });
  });
});

describe('node paths (World.hostPath)', () => {
  it("maps the node's own directories and follows symlinks as the node sees them, never onto the host", async () => {
    const hostFs = path.join(dir, 'nodes', 'node0', 'fs');
    const r = await openssh(sim, 'node0', ['ae-sim-test hostpath ~/x', 'cd /tmp && ae-sim-test hostpath y', 'ae-sim-test hostpath /home/.ae-sim/state/node.json', 'ln -sfn /tmp ~/to-tmp && ae-sim-test hostpath ~/to-tmp/z'].join(' && '));
    expect(r.stdout.split('\n')).toEqual([path.join(hostFs, 'home/ae/x'), path.join(hostFs, 'tmp/y'), path.join(dir, 'nodes/node0/state/node.json'), path.join(hostFs, 'tmp/z'), '']);
    for (const p of ['/etc/passwd', '/home/.ae-sim/bin/make', '~/to-etc/passwd']) {
      const bad = await openssh(sim, 'node0', `ln -sfn /etc ~/to-etc; ae-sim-test hostpath ${p}`);
      expect(bad).toMatchObject({ code: 1, stderr: expect.stringMatching(/read-only file system on simulated node node0/) });
    }
  });
});

describe('dmesg', () => {
  it("prints the node's own ring buffer (SIMULATED first), clears it as root only, and follows it", async () => {
    const r = await openssh(sim, 'node0', 'dmesg | head -2; /usr/bin/dmesg | head -1');
    const [first, second, shadowed] = r.stdout.split('\n');
    expect(first).toMatch(/^\[ {4}0\.000000\] SIMULATED node node0: /);
    expect(second).toMatch(/^\[ {4}0\.000000\] Linux version 4\.15\.0-213-generic /);
    expect(shadowed).toBe(first); // the host's own dmesg is shadowed too
    sim.world.node('node0').dmesg.append('popcorn: hello from the test');
    expect((await openssh(sim, 'node0', 'dmesg | tail -1; dmesg -t | tail -1')).stdout).toMatch(/^\[ *\d+\.\d{6}\] popcorn: hello from the test\npopcorn: hello from the test\n$/);
    expect(await openssh(sim, 'node0', 'dmesg -C')).toEqual({ code: 1, stdout: '', stderr: 'dmesg: klogctl failed: Operation not permitted\n' });
    expect(await openssh(sim, 'node0', 'sudo dmesg -C && dmesg | wc -l')).toMatchObject({ code: 0, stdout: '0\n' });
    expect(await openssh(sim, 'node0', 'dmesg --bogus')).toMatchObject({ code: 1, stderr: expect.stringContaining("unrecognized option '--bogus'") });

    const client = await connect(sim, sim.node('node0'));
    try {
      const followed = exec(client, 'dmesg -w', (ch, out) => {
        void (async () => {
          await sleep(300);
          sim.world.node('node0').dmesg.append('popcorn: Ready on InfiniBand RDMA');
          await waitUntil('the followed line', () => out().includes('Ready'));
          ch.signal('INT');
        })();
      });
      expect((await followed).stdout).toMatch(/\] popcorn: Ready on InfiniBand RDMA\n$/);
    } finally {
      client.end();
    }
  });
});
