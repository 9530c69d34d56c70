import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import type { NodeResult } from '../../cli/commands/exec';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { spawnAe } from '../helpers/processes';
import { openssh } from '../helpers/sim';

/**
 * `ae exec` as a user runs it (a separate process) on a 4-node simulated cluster over real SSH: the
 * command on every node at once, output grouped by node in profile order, a failing node making the
 * exit non-zero, the JSON shape, quoting, timeouts, and a node whose host key is unknown refused.
 */

jest.setTimeout(120_000);

let stateDir: string;
let sim: SimCluster;
const NODES = ['node0', 'node1', 'node2', 'node3'];

beforeAll(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'ae-exec-test-'));
  sim = await startSimCluster({ nodes: 4, stateDir, rebootDownMs: 300, timeScale: 0, bmc: false });
}, 120_000);

afterAll(async () => {
  await sim?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

async function ae(args: string[]): Promise<{ code: number | null; out: string; ms: number }> {
  const t0 = Date.now();
  const p = spawnAe(args);
  const { code } = await p.exited;
  return { code, out: p.output(), ms: Date.now() - t0 };
}

const bootId = (node: string) => sim.node(node).state.bootId;
const BOOT_ID = 'cat /proc/sys/kernel/random/boot_id';

it('runs on every node, output grouped by node in profile order, exit 0', async () => {
  const r = await ae(['exec', '--cluster', sim.profileFile, '--', BOOT_ID]);
  expect(r.code).toBe(0);
  const headers = [...r.out.matchAll(/^=== (node\d) \(exit 0, \d+ ms\)$/gm)].map((m) => m[1]);
  expect(headers).toEqual(NODES);
  // Each node's own output right under its own header.
  for (const n of NODES) expect(r.out).toMatch(new RegExp(`^=== ${n} \\(exit 0, \\d+ ms\\)\\n${bootId(n)}\\n`, 'm'));
  expect(r.out).toMatch(/\n4 node\(s\): 4 ok\n$/);
});

it('one node failing: its exit code and stderr under it, the others fine, exit 1', async () => {
  const script = `test "$(${BOOT_ID})" != ${bootId('node2')} || { echo broken on purpose >&2; exit 3; }; echo fine`;
  const r = await ae(['exec', '--cluster', sim.profileFile, '--', 'sh', '-c', script]);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/^=== node2 \(exit 3, \d+ ms\)\n--- node2 stderr\nbroken on purpose\n=== node3 \(exit 0, \d+ ms\)\nfine\n/m);
  expect(r.out).toMatch(/^=== node1 \(exit 0, \d+ ms\)\nfine\n/m);
  expect(r.out).toMatch(/\n4 node\(s\): 3 ok, 1 failed \(node2\)\n$/);
});

it('--json with --nodes: [{node, exitCode, stdout, stderr, ms}] in profile order; several words are an argv, quoted', async () => {
  const r = await ae(['exec', '--cluster', sim.profileFile, '--nodes', 'node3,node1', '--json', '--', 'echo', 'a  b', '$HOME', ';', 'ls']);
  expect(r.code).toBe(0);
  const results = JSON.parse(r.out) as NodeResult[];
  expect(results).toEqual(['node1', 'node3'].map((node) => ({ node, exitCode: 0, stdout: 'a  b $HOME ; ls\n', stderr: '', ms: expect.any(Number) })));
});

it('a single word is a shell command line on purpose: pipes and ; work', async () => {
  const r = await ae(['exec', '--cluster', sim.profileFile, '--nodes', 'node0', '--json', '--', 'echo one; echo two | tr a-z A-Z; exit 4']);
  expect(r.code).toBe(1);
  expect(JSON.parse(r.out)).toEqual([{ node: 'node0', exitCode: 4, stdout: 'one\nTWO\n', stderr: '', ms: expect.any(Number) }]);
});

it('--timeout kills a command that runs too long (tail -f: the sim sleeps in no time), and says so', async () => {
  const r = await ae(['exec', '--cluster', sim.profileFile, '--nodes', 'node1', '--timeout', '1s', '--json', '--', 'tail', '-f', '/dev/null']);
  expect(r.code).toBe(1);
  const [node1] = JSON.parse(r.out) as NodeResult[];
  expect(node1).toMatchObject({ node: 'node1', exitCode: null, error: 'node node1: command did not finish within 1000 ms (connecting included); if it had started, it was killed' });
  expect(r.ms).toBeLessThan(30_000);
  expect((await openssh(sim, 'node1', 'pgrep -f "[t]ail -f /dev/null" || echo none')).stdout).toBe('none\n');
});

it('an unknown host key is refused: nothing runs, the message names the key and how to add it', async () => {
  const doc = parseYaml(readFileSync(sim.profileFile, 'utf8')) as { ssh: Record<string, unknown> };
  writeFileSync(path.join(stateDir, 'empty_known_hosts'), '');
  doc.ssh.knownHosts = 'empty_known_hosts';
  const profile = path.join(stateDir, 'unknown-keys.yaml');
  writeFileSync(profile, toYaml(doc));
  const r = await ae(['exec', '--cluster', profile, '--json', '--', 'touch', '/tmp/should-not-exist']);
  expect(r.code).toBe(1);
  const results = JSON.parse(r.out) as NodeResult[];
  expect(results.map((x) => x.node)).toEqual(NODES);
  for (const x of results) {
    expect(x.exitCode).toBeNull();
    expect(x.error).toMatch(new RegExp(`node ${x.node}: host key of .* is not in .*empty_known_hosts .*refusing to connect.*ssh-keyscan`));
  }
  for (const n of NODES) expect((await openssh(sim, n, 'test -e /tmp/should-not-exist; echo $?')).stdout).toBe('1\n');
});

it('usage: an unknown node or a missing command is exit 2 naming the problem', async () => {
  const unknown = await ae(['exec', '--cluster', sim.profileFile, '--nodes', 'node7', '--', 'true']);
  expect(unknown.code).toBe(2);
  expect(unknown.out).toContain('--nodes node7: unknown node(s) node7; the profile has node0, node1, node2, node3');
  const none = await ae(['exec', '--cluster', sim.profileFile]);
  expect(none.code).toBe(2);
  expect(none.out).toContain('expected the command after --');
});
