import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { format } from 'node:util';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter } from '@temporalio/common';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { createActivities } from '../../activities';
import { summarize } from '../../activities/cluster';
import { SshPool } from '../../activities/ssh/pool';
import { loadProfile } from '../../config/load';
import { runsDir } from '../../config/paths';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { SIM_BMC_PASSWORD_ENV } from '../../sim/profile';
import { setMsgLayerDeps, type MsgLayerDeps } from '../../sim/tools/msglayer';
import { devServerArgs } from '../../workers/devServer';
import { startWebhookListener } from '../../webhook/server';
import { leaseWorkflowId } from '../../workflows/clusterLease';
import type { RebootNodesInput } from '../../workflows/rebootNodes';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import { listExecutions, startTestWorker, testAddress, testClient, uniqueTaskQueue } from '../helpers/temporal';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/**
 * Security checks on one simulated 2-node cluster (time scale 0, real ipmi_sim BMCs) and one worker:
 *
 * - Canaries: the BMC password the sim profile names (AE_SIM_BMC_PASSWORD) and an unrelated variable
 *   hold unique values while real runs use them: a rebootNodes run that logs into a BMC (a node back
 *   on an unexpected kernel gets its serial console captured over IPMI SOL, which authenticates with
 *   the password: the credential path of a power cycle, which would also need a hung reboot and a node
 *   that stays down in real time), a prepare-only reproduceClaims and a dry run. Neither
 *   value may appear in any workflow history (every event, payloads decoded), any run-store file,
 *   anything the sim or the dev server wrote, or anything this process printed.
 * - No payload in those histories is over 256 KiB.
 * - Host keys: a node whose known_hosts entry is missing or wrong is refused before any command runs.
 * - Every listener binds 127.0.0.1 by default: the sim's SSH servers and BMCs, the webhook listener,
 *   the dev server (checked in /proc/net, not just in the URLs they report).
 */

jest.setTimeout(240_000);

const BMC_CANARY = `Cnry${randomBytes(7).toString('hex')}`; // ipmi_sim: 8..20 letters and digits
const ENV_CANARY = `env-canary-${randomBytes(12).toString('hex')}`;
const UNRELATED_ENV = 'AE_TEST_UNRELATED_API_TOKEN';
const CANARIES = [BMC_CANARY, ENV_CANARY];
const MAX_PAYLOAD_BYTES = 256 * 1024;
const PREFIX = `sec-${process.pid}-${Date.now()}-`;
const taskQueue = uniqueTaskQueue('security');

let dir: string;
let sim: SimCluster;
let client: Client;
let closeClient: () => Promise<void>;
let stopWorker: () => Promise<void>;
let previousDeps: MsgLayerDeps | undefined;
const previousEnv = { [SIM_BMC_PASSWORD_ENV]: process.env[SIM_BMC_PASSWORD_ENV], [UNRELATED_ENV]: process.env[UNRELATED_ENV] };
/** Everything this process printed while the runs ran (worker and SDK logs included). */
const printed: string[] = [];
const restorePrinting: (() => void)[] = [];

function capturePrinting(): void {
  for (const stream of [process.stdout, process.stderr]) {
    const write = stream.write.bind(stream);
    stream.write = ((chunk: string | Uint8Array, ...rest: never[]) => {
      printed.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return write(chunk, ...rest);
    }) as typeof stream.write;
    restorePrinting.push(() => (stream.write = write));
  }
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    const spy = jest.spyOn(console, level).mockImplementation((...args: unknown[]) => void printed.push(format(...args)));
    restorePrinting.push(() => spy.mockRestore());
  }
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-security-'));
  const stateDir = path.join(dir, 'sim');
  // The sim keeps a valid password it finds in its state dir: the canary becomes the BMCs' real password.
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(path.join(stateDir, 'bmc_password'), `${BMC_CANARY}\n`, { mode: 0o600 });
  sim = await startSimCluster({ nodes: 2, stateDir, rebootDownMs: 300, timeScale: 0 });
  expect(Object.keys(sim.bmcs)).toEqual(['node0', 'node1']); // ipmi_sim is installed (docs/SIM-BMC.md)
  expect(readFileSync(sim.bmcPasswordFile!, 'utf8').trim()).toBe(BMC_CANARY);
  process.env[SIM_BMC_PASSWORD_ENV] = BMC_CANARY;
  process.env[UNRELATED_ENV] = ENV_CANARY;
  previousDeps = setMsgLayerDeps({ windowFloorMs: 8000 });
  ({ client, close: closeClient } = await testClient());
  ({ stop: stopWorker } = await startTestWorker(taskQueue));
});

afterAll(async () => {
  for (const restore of restorePrinting.splice(0)) restore();
  if (previousDeps) setMsgLayerDeps(previousDeps);
  await stopWorker?.();
  await closeClient?.();
  await sim?.stop();
  for (const [key, value] of Object.entries(previousEnv)) {
    if (value === undefined) delete process.env[key];
    else process.env[key] = value;
  }
  rmSync(dir, { recursive: true, force: true });
});

/** Every string and byte array in a value (payload bytes decoded as UTF-8), and every payload's size. */
function walk(value: unknown, out: { texts: string[]; payloadSizes: number[] } = { texts: [], payloadSizes: [] }): typeof out {
  if (typeof value === 'string') out.texts.push(value);
  else if (value instanceof Uint8Array) out.texts.push(Buffer.from(value).toString('utf8'), Buffer.from(value).toString('latin1'));
  else if (Array.isArray(value)) for (const v of value) walk(v, out);
  else if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (o.data instanceof Uint8Array && 'metadata' in o) {
      const meta = Object.values((o.metadata ?? {}) as Record<string, Uint8Array>).reduce((n, v) => n + (v?.byteLength ?? 0), 0);
      out.payloadSizes.push(o.data.byteLength + meta);
    }
    for (const v of Object.values(o)) walk(v, out);
  }
  return out;
}

/** Regular files under `root` (symlinks, sockets and the like skipped). */
function filesUnder(root: string, skip: (file: string) => boolean = () => false): string[] {
  const out: string[] = [];
  const visit = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = path.join(d, name);
      const st = lstatSync(p);
      if (st.isDirectory()) visit(p);
      else if (st.isFile() && !skip(p)) out.push(p);
    }
  };
  if (existsSync(root)) visit(root);
  return out;
}

const leaks = (texts: string[]) => texts.filter((t) => CANARIES.some((c) => t.includes(c)));

describe('canary secrets', () => {
  const histories = new Map<string, History>();
  const runIds: string[] = [];

  beforeAll(async () => {
    capturePrinting();
    const summary = summarize(loadProfile(sim.profileFile));
    expect(summary.nodes.map((n) => n.bmcEndpoint?.passwordEnv)).toEqual([SIM_BMC_PASSWORD_ENV, SIM_BMC_PASSWORD_ENV]);

    // A run that logs into a BMC: node1 comes back on its own kernel, not the one asked for.
    const rebootId = `${PREFIX}bmc`;
    runIds.push(rebootId);
    const rebootInput: RebootNodesInput = {
      cluster: sim.profileFile,
      profileHash: summary.hash,
      runId: rebootId,
      nodes: ['node1'],
      bmcNodes: ['node1'],
      expectedRelease: { node1: '4.4.137-pop-hype-canary' },
      reason: 'security canary',
      timeouts: { reboot: 20, operator: 20 },
    };
    const rebooted = await client.workflow.execute('rebootNodes', { taskQueue, workflowId: rebootId, args: [rebootInput] }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(rebooted).toBeInstanceOf(WorkflowFailedError);
    const failure = (rebooted as WorkflowFailedError).cause as ApplicationFailure;
    // A console line only when ipmitool's SOL session logged in (with the canary) and ended cleanly.
    expect(failure.message).toMatch(/runs kernel .*, expected 4\.4\.137-pop-hype-canary[\s\S]*\n {2}serial console[: ].*logs\/node1\/console\.log in the run store/);

    // A prepare-only run (builds, installs, reboots, the messaging layer) and a dry run.
    const cheap = [
      { id: `${PREFIX}prepare`, input: { cluster: sim.profileFile, experiments: [], nodeCounts: [2], hypervisors: ['fragvisor'], buildJobs: 2 } },
      { id: `${PREFIX}dry`, input: { cluster: sim.profileFile, nodeCounts: [2], dryRun: true } },
    ];
    for (const { id, input } of cheap) {
      runIds.push(id);
      const result = (await client.workflow.execute('reproduceClaims', { taskQueue, workflowId: id, args: [input] })) as ReproduceClaimsResult;
      expect(result.runId).toBe(id);
    }

    // Every workflow these runs started: children share the run's id prefix; the lease is the one outside it.
    const keyOf = (w: { workflowId: string; runId: string }) => `${w.workflowId}\n${w.runId}`;
    const ids = new Set((await listExecutions(client, `WorkflowId STARTS_WITH '${PREFIX}'`)).map(keyOf));
    const byQueue = new Set((await listExecutions(client, `TaskQueue = '${taskQueue}'`)).map(keyOf));
    expect([...byQueue].filter((k) => !ids.has(k)).map((k) => k.split('\n')[0])).toEqual([leaseWorkflowId(taskQueue, 'sim')]);
    for (const key of byQueue) {
      const [workflowId, runId] = key.split('\n');
      histories.set(key, await client.workflow.getHandle(workflowId, runId).fetchHistory());
    }
  });

  afterAll(() => {
    for (const restore of restorePrinting.splice(0)) restore();
  });

  it('the check finds a canary in an encoded payload (it can fail)', () => {
    const payload = defaultPayloadConverter.toPayload({ password: BMC_CANARY });
    expect(leaks(walk({ events: [{ input: { payloads: [payload] } }] }).texts)).not.toEqual([]);
  });

  it('the runs started children and the lease: the histories cover the whole run', () => {
    const ids = [...histories.keys()].map((k) => k.split('\n')[0]);
    expect(ids).toEqual(expect.arrayContaining([`${PREFIX}bmc`, `${PREFIX}prepare`, `${PREFIX}dry`, `${PREFIX}prepare/fragvisor/host-kernel/node0`, `${PREFIX}prepare/fragvisor/host-kernel/node1`, leaseWorkflowId(taskQueue, 'sim')]));
    expect(ids.length).toBeGreaterThanOrEqual(8);
  });

  it('appears in no workflow history (every event, every payload decoded)', () => {
    for (const [key, history] of histories) {
      const { texts } = walk(history);
      expect(texts.length).toBeGreaterThan(0);
      expect({ workflow: key.split('\n')[0], leaks: leaks(texts) }).toEqual({ workflow: key.split('\n')[0], leaks: [] });
    }
  });

  it('no payload in those histories is over 256 KiB', () => {
    const sizes = [...histories.values()].flatMap((h) => walk(h).payloadSizes);
    expect(sizes.length).toBeGreaterThan(50);
    expect(Math.max(...sizes)).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
  });

  it('appears in no run-store file (logs, consoles, plans, records)', () => {
    const files = runIds.flatMap((id) => filesUnder(path.join(runsDir(), id)));
    expect(files.map((f) => path.relative(runsDir(), f))).toEqual(
      expect.arrayContaining([`${PREFIX}bmc/logs/node1/console.log`, `${PREFIX}prepare/input.json`, `${PREFIX}prepare/plan.json`, `${PREFIX}prepare/run.json`, `${PREFIX}dry/plan.json`]),
    );
    expect(files.filter((f) => leaks([readFileSync(f, 'latin1')]).length > 0)).toEqual([]);
  });

  it('appears in nothing the sim, its nodes or the dev server wrote, except the password file it is read from', () => {
    const files = filesUnder(sim.stateDir, (f) => f === sim.bmcPasswordFile);
    expect(files.length).toBeGreaterThan(20);
    // Remote jobs' logs on the nodes (the kernel builds) are among them.
    expect(files.some((f) => f.includes(`${path.sep}.fragvisor-ae${path.sep}jobs${path.sep}`))).toBe(true);
    expect(files.filter((f) => lstatSync(f).size < 64 * 1024 * 1024 && leaks([readFileSync(f, 'latin1')]).length > 0)).toEqual([]);
    const serverLog = path.join(process.env.AE_TEST_DIR!, 'temporal.log');
    expect(leaks([readFileSync(serverLog, 'latin1')])).toEqual([]);
  });

  it('appears in nothing this process printed (worker and SDK logs)', () => {
    // The worker's own log lines were captured (the refused kernel, the failed reboot run).
    expect(printed.join('')).toMatch(/WrongKernel/);
    expect(leaks(printed)).toEqual([]);
  });
});

describe('unknown host keys are refused before anything runs', () => {
  let pool: SshPool;
  beforeAll(() => (pool = new SshPool()));
  afterAll(() => pool.close());

  /** The sim's profile with its own known_hosts file (`lines`), written next to it so relative paths still resolve. */
  function profileWithKnownHosts(name: string, lines: string[]): string {
    writeFileSync(path.join(sim.stateDir, `known_hosts.${name}`), lines.map((l) => `${l}\n`).join(''));
    const doc = parseYaml(readFileSync(sim.profileFile, 'utf8')) as { ssh: Record<string, unknown> };
    doc.ssh.knownHosts = `known_hosts.${name}`;
    const file = path.join(sim.stateDir, `cluster-${name}.yaml`);
    writeFileSync(file, toYaml(doc));
    return file;
  }

  const known = () => readFileSync(sim.knownHostsFile, 'utf8').trim().split('\n');
  const port0 = () => sim.node('node0').port;
  const marker = () => path.join(sim.node('node0').homeDir, 'ae', 'hostkey-marker');

  it.each([
    {
      name: 'changed',
      // node0's endpoint listed with node1's key: what a man in the middle (or a reinstalled node) looks like.
      lines: () => {
        const [n0, n1] = [known().find((l) => l.startsWith(`[127.0.0.1]:${port0()} `))!, known().find((l) => !l.startsWith(`[127.0.0.1]:${port0()} `))!];
        return [`${n0.split(' ')[0]} ${n1.split(' ').slice(1).join(' ')}`, n1];
      },
      type: 'HostKeyChangedError',
      says: () => new RegExp(`^node node0: HOST KEY CHANGED for 127\\.0\\.0\\.1:${port0()}: the server offered SHA256:\\S+, which does not match .*known_hosts\\.changed line 1; refusing to connect .*ssh-keygen -R`),
    },
    {
      name: 'unknown',
      lines: () => known().filter((l) => !l.startsWith(`[127.0.0.1]:${port0()} `)),
      type: 'HostKeyUnknownError',
      says: () => new RegExp(`^node node0: host key of 127\\.0\\.0\\.1:${port0()} is not in .*known_hosts\\.unknown \\(server offered SHA256:\\S+\\); refusing to connect\\. Check that fingerprint out of band`),
    },
  ])('$name key: the activity fails non-retryably ($type), saying what to do; no command ran', async ({ name, lines, type, says }) => {
    const file = profileWithKnownHosts(name, lines());
    const loaded = loadProfile(file);
    const commands = sim.node('node0').stats.commands;
    const acts = createActivities({ ssh: pool });
    const err = await acts.probeNode({ cluster: file, node: 'node0', profileHash: loaded.hash }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApplicationFailure);
    expect({ type: (err as ApplicationFailure).type, nonRetryable: (err as ApplicationFailure).nonRetryable }).toEqual({ type, nonRetryable: true });
    expect((err as Error).message).toMatch(says());
    const node0 = loaded.profile.nodes[0];
    await expect(pool.exec({ node: 'node0', host: node0.host, port: node0.port, user: node0.user }, loaded.profile.ssh, 'touch ~/hostkey-marker', { timeoutMs: 10_000 })).rejects.toMatchObject({ name: type });
    expect(sim.node('node0').stats.commands).toBe(commands);
    expect(existsSync(marker())).toBe(false);
  });

  it('control: with the right known_hosts the same command runs', async () => {
    const loaded = loadProfile(sim.profileFile);
    const node0 = loaded.profile.nodes[0];
    const r = await pool.exec({ node: 'node0', host: node0.host, port: node0.port, user: node0.user }, loaded.profile.ssh, 'touch ~/hostkey-marker', { timeoutMs: 10_000 });
    expect(r.exitCode).toBe(0);
    expect(existsSync(marker())).toBe(true);
  });
});

/** The rows of /proc/net/<file>, split into fields (local address is [1], state [3], inode [9]). */
function procNet(file: string): string[][] {
  return readFileSync(`/proc/net/${file}`, 'utf8')
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/));
}

/** Local addresses (hex) of the sockets listening on `port` (TCP LISTEN, or bound UDP), v4 and v6. */
function listeners(port: number, proto: 'tcp' | 'udp'): string[] {
  const hexPort = port.toString(16).toUpperCase().padStart(4, '0');
  return [proto, `${proto}6`].flatMap((file) =>
    procNet(file)
      .filter(([, local, , state]) => local.endsWith(`:${hexPort}`) && (proto === 'udp' || state === '0A'))
      .map(([, local]) => `${file} ${local.split(':')[0]}`),
  );
}

/** Whether /proc/<pid> is `temporal server start-dev --port <port>` (processes may vanish while we look). */
function isDevServer(pid: string, port: number): boolean {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmd.includes('start-dev') && cmd[cmd.indexOf('--port') + 1] === String(port);
  } catch {
    return false;
  }
}

function socketInode(fd: string): string[] {
  try {
    const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(fd));
    return m ? [m[1]] : [];
  } catch {
    return [];
  }
}

const LOOPBACK = 'tcp 0100007F';

describe('services bind loopback by default', () => {
  it('the sim nodes\' SSH servers', () => {
    for (const node of sim.nodes) expect(listeners(node.port, 'tcp')).toEqual([LOOPBACK]);
  });

  it('the sim BMCs (ipmi_sim, UDP)', () => {
    for (const bmc of Object.values(sim.bmcs)) {
      expect(bmc.host).toBe('127.0.0.1');
      expect(listeners(bmc.port, 'udp')).toEqual(['udp 0100007F']);
    }
  });

  it('the webhook listener, with no host configured', async () => {
    const listener = await startWebhookListener({ port: 0, client, env: {}, log: () => {} });
    try {
      expect(listener.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(listeners(Number(new URL(listener.url).port), 'tcp')).toEqual([LOOPBACK]);
    } finally {
      await listener.close();
    }
  });

  it('the dev server: its arguments (as `ae up` builds them) and every port the running one listens on', () => {
    const args = devServerArgs({ cliPath: 'temporal', port: 7233, uiPort: 8233, logFile: '/dev/null' });
    expect(args[args.indexOf('--ip') + 1]).toBe('127.0.0.1');
    expect(args[args.indexOf('--ui-ip') + 1]).toBe('127.0.0.1');
    const port = Number(testAddress().split(':').pop());
    expect(listeners(port, 'tcp')).toEqual([LOOPBACK]);
    // Its other services (history, matching, HTTP): every listening socket the process holds.
    const pid = readdirSync('/proc').find((p) => /^\d+$/.test(p) && isDevServer(p, port));
    expect(pid).toBeDefined();
    const inodes = new Set(readdirSync(`/proc/${pid}/fd`).flatMap((fd) => socketInode(`/proc/${pid}/fd/${fd}`)));
    const listening = ['tcp', 'tcp6'].flatMap((file) =>
      procNet(file)
        .filter((f) => f[3] === '0A' && inodes.has(f[9]))
        .map((f) => `${file} ${f[1].split(':')[0]}`),
    );
    expect(listening.length).toBeGreaterThanOrEqual(2);
    expect(new Set(listening)).toEqual(new Set([LOOPBACK]));
  });
});
