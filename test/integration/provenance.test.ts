import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { summarize } from '../../activities/cluster';
import { provenanceActivities, type CollectProvenanceInput, type ProvenanceFile, type ProvenanceBaseline } from '../../activities/provenance';
import { SshPool } from '../../activities/ssh/pool';
import { loadProfile, type LoadedProfile } from '../../config/load';
import { PROJECT_ROOT, runsDir } from '../../config/paths';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { openssh } from '../helpers/sim';
import { thrownFailure } from '../helpers/temporal';

/**
 * collectProvenance on 2 simulated nodes over real SSH, called as a plain function: every node's
 * kernel, boot, CPU, memory and checkout HEADs (compared with what the sim's state and plain OpenSSH
 * say), the origin's tools and the control host's, SIMULATED; GiantVM's tree and qemu when it is
 * measured; a powered-off node recorded as unreachable without failing the activity; a missing lkvm
 * and a kvmtool that is no checkout recorded with the reason; ab asked on a separate client host.
 */

jest.setTimeout(180_000);

const PATHS = { fragvisor: '/home/ae/FragVisor', kernel: '/home/ae/FragVisor/fragvisor-linux', kvmtool: '/home/ae/fragvisor-kvmtool', giantvm: '/home/ae/linux-dsm' };
const PLAN_HASH = '0123456789abcdef';

let stateDir: string;
let sim: SimCluster;
let pool: SshPool;
let loaded: LoadedProfile;
let acts: ReturnType<typeof provenanceActivities>;

const input = (runId: string, baseline?: ProvenanceBaseline): CollectProvenanceInput => ({
  cluster: sim.profileFile,
  profileHash: summarize(loaded).hash,
  runId: `${runId}-${process.pid}`,
  planHash: PLAN_HASH,
  ...(baseline ? { baseline } : {}),
});
const readProvenance = (i: CollectProvenanceInput): ProvenanceFile => JSON.parse(readFileSync(path.join(runsDir(), i.runId, 'provenance.json'), 'utf8')) as ProvenanceFile;

/** HEAD of a checkout on a node, read with plain OpenSSH. */
async function head(node: string, dir: string): Promise<string> {
  const r = await openssh(sim, node, `git -C ${dir} rev-parse HEAD`);
  expect(r).toMatchObject({ code: 0 });
  return r.stdout.trim();
}

/** What a node's entry must say: the sim's own state, this host's CPUs and memory, the HEADs over OpenSSH. */
async function expectedNode(name: string, extra: Record<string, string> = {}) {
  const { state } = sim.node(name);
  const commits: Record<string, { path: string; commit: string }> = {};
  for (const source of ['fragvisor', 'kernel', ...Object.keys(extra)]) {
    const dir = PATHS[source as keyof typeof PATHS];
    commits[source] = { path: dir, commit: await head(name, dir) };
  }
  return {
    node: name,
    origin: name === 'node0',
    reachable: true,
    kernelRelease: state.kernelRelease,
    kernelVersion: sim.node(name).kernelVersion,
    bootId: state.bootId,
    cpu: { model: os.cpus()[0].model, logical: os.cpus().length },
    memory: { totalKiB: os.totalmem() / 1024 },
    commits,
  };
}

beforeAll(async () => {
  stateDir = mkdtempSync(path.join(os.tmpdir(), 'ae-provenance-'));
  sim = await startSimCluster({ nodes: 2, stateDir, timeScale: 0, rebootDownMs: 300 });
  loaded = loadProfile(sim.profileFile);
  pool = new SshPool();
  acts = provenanceActivities({ ssh: pool });
}, 120_000);

afterAll(async () => {
  await pool?.close();
  await sim?.stop();
  if (stateDir) rmSync(stateDir, { recursive: true, force: true });
});

it('records every node, the sources, the tools and SIMULATED', async () => {
  // The BMCs make ipmitool one of the control host's tools.
  expect(Object.keys(sim.bmcs).sort()).toEqual(['node0', 'node1']);
  const i = input('provenance-all', { kind: 'none' });
  const summary = await acts.collectProvenance(i);
  const sources = { fragvisor: await head('node0', PATHS.fragvisor), kernel: await head('node0', PATHS.kernel), kvmtool: await head('node0', PATHS.kvmtool) };
  expect(summary).toEqual({ file: 'provenance.json', simulated: true, nodes: 2, reachable: 2, unreachable: [], commits: sources });

  const file = readProvenance(i);
  expect(file).toMatchObject({
    simulated: true,
    notice: expect.stringMatching(/^SIMULATED: /),
    runId: i.runId,
    cluster: { name: 'sim', profileFile: sim.profileFile, profileHash: loaded.hash },
    planHash: PLAN_HASH,
    baseline: { kind: 'none' },
    sources: {
      fragvisor: { node: 'node0', path: PATHS.fragvisor, commit: sources.fragvisor },
      kernel: { node: 'node0', path: PATHS.kernel, commit: sources.kernel },
      kvmtool: { node: 'node0', path: PATHS.kvmtool, commit: sources.kvmtool },
    },
  });
  expect(Date.now() - Date.parse(file.collectedAt)).toBeLessThan(60_000);
  // The kernel tree is a repository of its own (a submodule), not FragVisor's HEAD again.
  expect(sources.kernel).not.toBe(sources.fragvisor);
  // cpu: the sim's nodes see this host's /proc/cpuinfo; sockets and cores follow its topology lines.
  const [node0, node1] = file.nodes;
  expect(node0).toMatchObject(await expectedNode('node0', { kvmtool: '' }));
  expect(node1).toEqual({ ...(await expectedNode('node1')), cpu: expect.objectContaining({ logical: os.cpus().length }) });
  expect(node0.reachable && 'cpu' in node0 && node0.cpu.cores).toBeGreaterThanOrEqual(1);

  const { stdout: orchestratorHead } = await promisify(execFile)('git', ['-C', PROJECT_ROOT, 'rev-parse', 'HEAD']);
  const { version } = JSON.parse(readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { version: string };
  expect(file.controlHost.orchestrator).toEqual({ version, path: PROJECT_ROOT, commit: orchestratorHead.trim() });
  expect(file.tools).toEqual([
    { tool: 'lkvm', host: 'node0', version: 'kvm tool 3.18.0-fragvisor (SIMULATED)' },
    { tool: 'ab', host: 'node0', version: expect.stringMatching(/^This is ApacheBench, Version /) },
    { tool: 'node', host: 'control', version: process.version },
    { tool: 'temporal', host: 'control', version: expect.stringMatching(/^temporal version \d/) },
    { tool: 'ipmitool', host: 'control', version: expect.stringMatching(/^ipmitool version \d/) },
  ]);
});

it('with GiantVM measured: the Linux-DSM HEAD and qemu on every node', async () => {
  const i = input('provenance-giantvm', { kind: 'measured' });
  await acts.collectProvenance(i);
  const file = readProvenance(i);
  expect(file.baseline).toEqual({ kind: 'measured' });
  expect(file.sources.giantvm).toEqual({ node: 'node0', path: PATHS.giantvm, commit: await head('node0', PATHS.giantvm) });
  for (const [k, name] of ['node0', 'node1'].entries()) expect(file.nodes[k]).toMatchObject({ commits: { giantvm: { path: PATHS.giantvm, commit: await head(name, PATHS.giantvm) } } });
  expect(file.tools.filter((t) => t.tool === 'qemu-system-x86_64')).toEqual(
    ['node0', 'node1'].map((host) => ({ tool: 'qemu-system-x86_64', host, version: 'QEMU emulator version 2.8.1 (GiantVM, SIMULATED)' })),
  );
});

it('a node that is down is recorded as unreachable, the others as usual; back up, it answers with its new boot', async () => {
  const before = sim.node('node1').state.bootId;
  await sim.node('node1').powerOff();
  const i = input('provenance-down');
  const started = Date.now();
  try {
    const summary = await acts.collectProvenance(i);
    expect(summary).toMatchObject({ nodes: 2, reachable: 1, unreachable: ['node1'] });
  } finally {
    await sim.node('node1').powerOn();
  }
  // Bounded by the profile's connect timeout plus the answer time, not the profile's probe timeout.
  expect(Date.now() - started).toBeLessThan((loaded.profile.ssh.connectTimeoutSeconds + 30) * 1000);
  const file = readProvenance(i);
  expect(file.baseline).toEqual({ kind: 'unknown' });
  expect(file.nodes[0]).toMatchObject({ node: 'node0', reachable: true, bootId: sim.node('node0').state.bootId });
  expect(file.nodes[1]).toEqual({ node: 'node1', origin: false, reachable: false, error: expect.stringContaining('node1') });

  const after = input('provenance-back');
  expect(await acts.collectProvenance(after)).toMatchObject({ reachable: 2, unreachable: [] });
  const back = readProvenance(after).nodes[1];
  expect(back).toMatchObject({ reachable: true, bootId: sim.node('node1').state.bootId });
  expect(sim.node('node1').state.bootId).not.toBe(before);
});

it('a missing lkvm and a kvmtool that is not a checkout are recorded with the reason, not fatal', async () => {
  const away = `mv ${PATHS.kvmtool}/lkvm ${PATHS.kvmtool}/lkvm.away && mv ${PATHS.kvmtool}/.git ${PATHS.kvmtool}/git.away`;
  expect(await openssh(sim, 'node0', away)).toMatchObject({ code: 0 });
  const i = input('provenance-broken');
  try {
    const summary = await acts.collectProvenance(i);
    expect(summary).toMatchObject({ reachable: 2, unreachable: [] });
    expect(summary.commits.kvmtool).toBeUndefined();
  } finally {
    expect(await openssh(sim, 'node0', `mv ${PATHS.kvmtool}/lkvm.away ${PATHS.kvmtool}/lkvm && mv ${PATHS.kvmtool}/git.away ${PATHS.kvmtool}/.git`)).toMatchObject({ code: 0 });
  }
  const file = readProvenance(i);
  expect(file.sources.kvmtool).toEqual({ node: 'node0', path: PATHS.kvmtool, error: `not a git checkout (no ${PATHS.kvmtool}/.git)` });
  expect(file.tools.find((t) => t.tool === 'lkvm')).toEqual({ tool: 'lkvm', host: 'node0', error: expect.stringMatching(/^not installed \(.*lkvm.*\)$/) });
  expect(file.nodes[0]).toMatchObject({ reachable: true, commits: { fragvisor: { commit: expect.stringMatching(/^[0-9a-f]{40}$/) } } });
});

it('with a separate load generator (the profile names a client), ab is asked there and not on the origin', async () => {
  // node1's SSH endpoint stands in for the client host: its key is in the sim's known_hosts.
  const file = path.join(stateDir, 'with-client.yaml');
  const doc = parseYaml(readFileSync(sim.profileFile, 'utf8')) as Record<string, unknown>;
  writeFileSync(file, stringifyYaml({ ...doc, client: { host: '127.0.0.1', port: sim.node('node1').port, user: 'ae' } }));
  const withClient = loadProfile(file);
  const i = { ...input('provenance-client'), cluster: file, profileHash: withClient.hash };
  await acts.collectProvenance(i);
  const tools = readProvenance(i).tools.filter((t) => t.tool === 'ab');
  expect(tools).toEqual([{ tool: 'ab', host: 'client', version: expect.stringMatching(/^This is ApacheBench, Version /) }]);
});

it('refuses a profile that changed under the run', async () => {
  const failure = await thrownFailure(acts.collectProvenance({ ...input('provenance-changed'), profileHash: 'f'.repeat(64) }));
  expect(failure).toMatchObject({ type: 'InvalidConfigError', nonRetryable: true });
});
