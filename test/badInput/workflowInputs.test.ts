import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkflowFailedError, type Client, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { PROJECT_ROOT, runsDir } from '../../config/paths';
import { leaseWorkflowId } from '../../workflows/clusterLease';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import { listExecutions, startTestWorker, testClient, uniqueTaskQueue, workflowExists } from '../helpers/temporal';

type History = Awaited<ReturnType<WorkflowHandle['fetchHistory']>>;

/**
 * Bad-input corpus, part 2: reproduceClaims inputs as the Temporal Web UI's Start Workflow form sends
 * them (any JSON, any workflow id), started for real against the dev server with a real worker. Each
 * must fail at once with a non-retryable failure naming the field and what to write, having started
 * nothing (no activity beyond loading the profile, no child, no lease) and written nothing: no run
 * folder, nothing where a traversing id would point. No node exists behind the profile: a case that
 * got as far as the cluster would fail differently, and slowly.
 */

jest.setTimeout(90_000);

const dir = mkdtempSync(path.join(os.tmpdir(), 'ae-badinput-'));
const MARKER = path.join(dir, 'pwned');
const TAG = `bi${process.pid}x${Date.now()}`;
const PREFIX = `badinput-${TAG}-`;
const taskQueue = uniqueTaskQueue('badinput');
const CLUSTER_NAME = `badinput-${process.pid}`;

/** A valid 2-node profile whose nodes do not exist: enough for validation, loading and a dry run. */
const PROFILE = `name: ${CLUSTER_NAME}
simulated: true
nodes:
  - { name: n0, origin: true, host: 127.0.0.1, port: 9, user: ae, rdmaIp: 10.4.6.10 }
  - { name: n1, host: 127.0.0.1, port: 10, user: ae, rdmaIp: 10.4.6.11 }
paths: { fragvisor: /home/ae/FragVisor, kernelTree: /home/ae/FragVisor/fragvisor-linux, kvmtool: /home/ae/fragvisor-kvmtool, ramdisks: /home/ae/ramdisks }
guest: { ip: 10.4.4.222, hostIp: 10.4.4.221, mac: "00:11:22:33:44:55", ssh: { host: 127.0.0.1, port: 11, user: root } }
ssh: { knownHosts: known_hosts, configFile: ssh_config }
`;
const profile = path.join(dir, 'cluster.yaml');
const hostileProfile = path.join(dir, 'hostile.yaml');
const twoOrigins = path.join(dir, 'two-origins.yaml');

interface Case {
  name: string;
  /** The Start Workflow form's Input; `undefined` = the form's Input left empty (no argument at all). */
  input: unknown;
  /** A workflow id of its own (default: PREFIX + the case's index). */
  workflowId?: string;
  /** The failure that ends the run: its type and what its message says (field and fix). */
  type: 'InvalidInput';
  says: RegExp;
  /** Refused only once the profile was read (the input does not fit the cluster): one loadClusterProfile, nothing else. */
  afterLoad?: true;
  /** Refused once the files it names were looked at (resumeFrom's run, the baseline file): the profile read, then that check. */
  afterFileCheck?: true;
  /** Paths (relative to the run store) a traversing value would create: must not exist afterwards. */
  escapes?: string[];
}

const TOP_LEVEL = /^reproduceClaims: invalid input: \(top level\): expected one JSON object with at least "cluster", e\.g\. \{"cluster":"sim"\}$/;

const cases: Case[] = [
  // Not an object.
  { name: 'no input at all', input: undefined, type: 'InvalidInput', says: TOP_LEVEL },
  { name: 'a string', input: 'sim', type: 'InvalidInput', says: TOP_LEVEL },
  { name: 'null', input: null, type: 'InvalidInput', says: TOP_LEVEL },
  { name: 'a list', input: [{ cluster: profile }], type: 'InvalidInput', says: TOP_LEVEL },
  // cluster.
  { name: 'cluster missing', input: { experiments: [] }, type: 'InvalidInput', says: /cluster: / },
  { name: 'cluster a number', input: { cluster: 42 }, type: 'InvalidInput', says: /cluster: expected a cluster profile name like "sim" or "echo", or a path to a \.yaml profile/ },
  { name: 'cluster empty', input: { cluster: '' }, type: 'InvalidInput', says: /cluster: expected a cluster profile name like "sim" or "echo"/ },
  { name: 'cluster with ;', input: { cluster: 'echo;reboot' }, type: 'InvalidInput', says: /cluster: expected a profile name \(letters, digits, - and _\) or a path ending in \.yaml without spaces or shell characters/ },
  { name: 'cluster with $()', input: { cluster: `$(touch ${MARKER}).yaml` }, type: 'InvalidInput', says: /cluster: expected a profile name .* without spaces or shell characters/ },
  { name: 'cluster /etc/passwd', input: { cluster: '/etc/passwd' }, type: 'InvalidInput', says: /cluster: expected a profile name .* or a path ending in \.yaml/ },
  { name: 'unknown cluster', input: { cluster: `nosuch-${TAG}` }, type: 'InvalidInput', afterLoad: true, says: /^reproduceClaims: invalid input: cluster: no profile at .*nosuch-.*\.yaml; expected one of .*echo.*sim.* or a path to a \.yaml profile$/ },
  { name: 'cluster a traversing path', input: { cluster: `../../${TAG}/x.yaml` }, type: 'InvalidInput', afterLoad: true, says: /^reproduceClaims: invalid input: cluster: no profile at \/.*x\.yaml; expected one of / },
  { name: 'cluster a hostile profile', input: { cluster: hostileProfile }, type: 'InvalidInput', afterLoad: true, says: /invalid cluster profile:\n {2}paths\.fragvisor: expected a path of letters, digits, "\/" and _ \. \+ @ - only/ },
  { name: 'cluster with two origins', input: { cluster: twoOrigins }, type: 'InvalidInput', afterLoad: true, says: /nodes\[1\]\.origin: expected exactly one origin node; n0 \(nodes\[0\]\) and n1 \(nodes\[1\]\) are marked origin/ },
  // Unknown fields.
  { name: 'unknown field (typo)', input: { cluster: profile, experiment: ['E1'] }, type: 'InvalidInput', says: /experiment: unknown field/ },
  { name: 'unknown field (a secret)', input: { cluster: profile, bmcPassword: 'hunter2' }, type: 'InvalidInput', says: /bmcPassword: unknown field/ },
  // experiments, nodeCounts, repetitions, hypervisors.
  { name: 'experiments a string', input: { cluster: profile, experiments: 'E1' }, type: 'InvalidInput', says: /experiments: expected a list like \["E1","E3"\] \(\[\] prepares the cluster only\)/ },
  { name: 'unknown experiment', input: { cluster: profile, experiments: ['E4'] }, type: 'InvalidInput', says: /experiments\[0\]: expected one of E1, E2, E3/ },
  { name: 'experiment twice', input: { cluster: profile, experiments: ['E1', 'E1'] }, type: 'InvalidInput', says: /experiments: expected each experiment at most once/ },
  { name: 'nodeCounts a number', input: { cluster: profile, nodeCounts: 4 }, type: 'InvalidInput', says: /nodeCounts: expected a list of node counts like \[2, 4\]/ },
  { name: 'nodeCounts with a string', input: { cluster: profile, nodeCounts: ['2'] }, type: 'InvalidInput', says: /nodeCounts\[0\]: expected a node count \(a number\)/ },
  { name: 'nodeCounts 0', input: { cluster: profile, nodeCounts: [0] }, type: 'InvalidInput', says: /nodeCounts\[0\]: expected at least 1 node/ },
  { name: 'nodeCounts absurd', input: { cluster: profile, nodeCounts: [100000] }, type: 'InvalidInput', says: /nodeCounts\[0\]: expected a value of at most 256/ },
  { name: 'nodeCounts empty', input: { cluster: profile, nodeCounts: [] }, type: 'InvalidInput', says: /nodeCounts: expected at least one node count, e\.g\. \[4\]/ },
  { name: 'nodeCounts larger than the cluster', input: { cluster: profile, nodeCounts: [2, 8] }, type: 'InvalidInput', says: new RegExp(`nodeCounts: expected at most 2 nodes \\(the profile ${CLUSTER_NAME} has 2\\), got 8`), afterLoad: true },
  { name: 'default nodeCounts on a 2-node cluster', input: { cluster: profile, dryRun: true }, type: 'InvalidInput', says: new RegExp(`nodeCounts: expected at most 2 nodes \\(the profile ${CLUSTER_NAME} has 2\\), got 4`), afterLoad: true },
  { name: 'repetitions a string', input: { cluster: profile, repetitions: '3' }, type: 'InvalidInput', says: /repetitions: expected a number of repetitions/ },
  { name: 'repetitions 0', input: { cluster: profile, repetitions: 0 }, type: 'InvalidInput', says: /repetitions: expected a value of at least 1/ },
  { name: 'repetitions 1.5', input: { cluster: profile, repetitions: 1.5 }, type: 'InvalidInput', says: /repetitions: expected a whole number of repetitions/ },
  { name: 'unknown hypervisor', input: { cluster: profile, hypervisors: ['kvm'] }, type: 'InvalidInput', says: /hypervisors\[0\]: expected one of fragvisor, giantvm/ },
  { name: 'no hypervisor', input: { cluster: profile, hypervisors: [] }, type: 'InvalidInput', says: /hypervisors: expected at least one hypervisor/ },
  { name: 'buildJobs negative', input: { cluster: profile, buildJobs: -1 }, type: 'InvalidInput', says: /buildJobs: expected a value of at least 1/ },
  { name: 'dryRun "yes"', input: { cluster: profile, dryRun: 'yes' }, type: 'InvalidInput', says: /dryRun: expected true or false/ },
  // Commits, baseline, resumeFrom: values that reach commands and paths.
  { name: 'kernelCommit HEAD', input: { cluster: profile, kernelCommit: 'HEAD' }, type: 'InvalidInput', says: /kernelCommit: expected a git commit hash: 7 to 40 lower-case hex digits/ },
  { name: 'kernelCommit with $()', input: { cluster: profile, kernelCommit: `$(touch ${MARKER})` }, type: 'InvalidInput', says: /kernelCommit: expected a git commit hash/ },
  { name: 'baseline with shell characters', input: { cluster: profile, baseline: `x;touch ${MARKER}.yaml` }, type: 'InvalidInput', says: /baseline: expected a path ending in \.yaml or \.json, without spaces or shell characters/ },
  { name: 'baseline with $()', input: { cluster: profile, baseline: '$(id).json' }, type: 'InvalidInput', says: /baseline: expected a path ending in \.yaml or \.json, without spaces or shell characters/ },
  { name: 'baseline not yaml or json', input: { cluster: profile, baseline: '/etc/passwd' }, type: 'InvalidInput', says: /baseline: expected a path ending in \.yaml or \.json/ },
  { name: 'baseline with giantvm only', input: { cluster: profile, hypervisors: ['giantvm'], baseline: 'config/baselines/x.yaml' }, type: 'InvalidInput', says: /baseline: a baseline file replaces measuring GiantVM, so it needs fragvisor in hypervisors/ },
  { name: 'resumeFrom ../x', input: { cluster: profile, resumeFrom: `../${TAG}-x` }, type: 'InvalidInput', says: /resumeFrom: expected a workflow id of letters, digits and _ \. : @ \+ - \(no "\/", spaces or "\.\."\)/, escapes: [`../${TAG}-x`] },
  { name: 'resumeFrom ..', input: { cluster: profile, resumeFrom: '..' }, type: 'InvalidInput', says: /resumeFrom: expected a workflow id/ },
  { name: 'resumeFrom a..b', input: { cluster: profile, resumeFrom: `a..${TAG}` }, type: 'InvalidInput', says: /resumeFrom: expected a workflow id without "\.\."/ },
  { name: 'resumeFrom an absolute path', input: { cluster: profile, resumeFrom: `/tmp/${TAG}` }, type: 'InvalidInput', says: /resumeFrom: expected a workflow id of letters/, escapes: [`/tmp/${TAG}`] },
  { name: 'resumeFrom a run that does not exist', input: { cluster: profile, resumeFrom: `nosuch-${TAG}` }, type: 'InvalidInput', afterFileCheck: true, says: /^resumeFrom: no run nosuch-\S+ in the run store .*; give the workflow id of an earlier run/ },
  { name: 'baseline file missing', input: { cluster: profile, baseline: `/tmp/${TAG}-missing.yaml` }, type: 'InvalidInput', afterFileCheck: true, says: /^baseline: \/tmp\/\S+-missing\.yaml: cannot read it on the worker host \(ENOENT\)/ },
  { name: 'baseline file missing, in a dry run', input: { cluster: profile, baseline: `/tmp/${TAG}-missing.yaml`, dryRun: true }, type: 'InvalidInput', afterFileCheck: true, says: /^baseline: .*cannot read it/ },
  { name: 'resumeFrom a number', input: { cluster: profile, resumeFrom: 7 }, type: 'InvalidInput', says: /resumeFrom: expected the workflow id of an earlier run \(a string\)/ },
  // Benchmark and claim knobs.
  { name: 'bench unknown knob', input: { cluster: profile, bench: { abRequests: 10, turbo: true } }, type: 'InvalidInput', says: /bench\.turbo: unknown field/ },
  { name: 'claims with a negative budget', input: { cluster: profile, claims: { timeBudgetMinutes: -1 } }, type: 'InvalidInput', says: /claims\.timeBudgetMinutes: expected a time budget of at least 0 minutes/ },
  // The workflow id names the run's folder.
  { name: 'workflow id with ../', input: { cluster: profile, experiments: [], nodeCounts: [2], dryRun: true }, workflowId: `../${TAG}-escape`, type: 'InvalidInput', says: /the workflow id "\.\.\/.*-escape" names the run's folder in the run store: use letters, digits and _ \. : @ \+ - only/, escapes: [`../${TAG}-escape`] },
  { name: 'workflow id with / and ..', input: { cluster: profile, experiments: [], nodeCounts: [2], dryRun: true }, workflowId: `${PREFIX}a/../../${TAG}-up`, type: 'InvalidInput', says: /names the run's folder in the run store/, escapes: [`../${TAG}-up`] },
  { name: 'workflow id with a space', input: { cluster: profile, experiments: [], nodeCounts: [2], dryRun: true }, workflowId: `${PREFIX}with space`, type: 'InvalidInput', says: /names the run's folder in the run store/ },
  { name: 'workflow id with $()', input: { cluster: profile, experiments: [], nodeCounts: [2], dryRun: true }, workflowId: `${PREFIX}$(touch ${MARKER})`, type: 'InvalidInput', says: /names the run's folder in the run store/ },
];

let client: Client;
let closeClient: () => Promise<void>;
let stopWorker: () => Promise<void>;
const outcomes = new Map<number, { err: unknown; history: History; workflowId: string }>();
const idOf = (i: number) => cases[i].workflowId ?? `${PREFIX}${i}`;

/** The innermost ApplicationFailure (a workflow's own, or the one an activity failed it with). */
function rootFailure(err: unknown): ApplicationFailure | undefined {
  let found: ApplicationFailure | undefined;
  for (let e = err as { cause?: unknown } | undefined; e; e = e.cause as { cause?: unknown } | undefined) if (e instanceof ApplicationFailure) found = e;
  return found;
}

beforeAll(async () => {
  writeFileSync(profile, PROFILE);
  writeFileSync(hostileProfile, PROFILE.replace('fragvisor: /home/ae/FragVisor,', `fragvisor: "/home/ae/$(touch ${MARKER})",`));
  writeFileSync(twoOrigins, PROFILE.replace('name: n1,', 'name: n1, origin: true,'));
  ({ client, close: closeClient } = await testClient());
  ({ stop: stopWorker } = await startTestWorker(taskQueue));
  // All at once: each fails in its first workflow task (or first activity), so the corpus costs about one run.
  await Promise.all(
    cases.map(async (c, i) => {
      const workflowId = idOf(i);
      const handle = await client.workflow.start('reproduceClaims', { taskQueue, workflowId, args: c.input === undefined ? [] : [c.input as never], workflowExecutionTimeout: '1 minute' });
      const err = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      outcomes.set(i, { err, history: await handle.fetchHistory(), workflowId });
    }),
  );
});

afterAll(async () => {
  await stopWorker?.();
  await closeClient?.();
  rmSync(dir, { recursive: true, force: true });
});

describe('reproduceClaims refuses bad input from the Web UI at once, starting and writing nothing', () => {
  it.each(cases.map((c, i) => ({ ...c, i })))('$name -> $type', ({ i, type, says, afterLoad, afterFileCheck, escapes }) => {
    const { err, history, workflowId } = outcomes.get(i)!;
    expect(err).toBeInstanceOf(WorkflowFailedError);
    const failure = rootFailure(err);
    expect(failure).toBeDefined();
    expect({ type: failure!.type, nonRetryable: failure!.nonRetryable }).toEqual({ type, nonRetryable: true });
    expect(failure!.message).toMatch(says);

    const events = history.events ?? [];
    const activities = events.flatMap((e) => (e.activityTaskScheduledEventAttributes ? [e.activityTaskScheduledEventAttributes.activityType?.name] : []));
    // At most the profile was read, once (a non-retryable failure is not retried)...
    expect(activities).toEqual(afterFileCheck ? ['loadClusterProfile', 'checkInputFiles'] : afterLoad ? ['loadClusterProfile'] : []);
    expect(events.filter((e) => e.activityTaskStartedEventAttributes).map((e) => e.activityTaskStartedEventAttributes!.attempt)).toEqual(activities.map(() => 1));
    expect(events.some((e) => e.startChildWorkflowExecutionInitiatedEventAttributes || e.signalExternalWorkflowExecutionInitiatedEventAttributes)).toBe(false);
    // ...and it failed at once: in the first workflow task (the one after the read, if any), never a failed task retried.
    expect(events.filter((e) => e.workflowTaskFailedEventAttributes)).toHaveLength(0);
    expect(events.filter((e) => e.workflowTaskCompletedEventAttributes)).toHaveLength(activities.length + 1);

    // Nothing in the run store for it, and nothing where a traversing value points.
    if (!workflowId.includes('/')) expect(existsSync(path.join(runsDir(), workflowId))).toBe(false);
    for (const escape of escapes ?? []) expect(existsSync(path.resolve(runsDir(), escape))).toBe(false);
    expect(existsSync(MARKER)).toBe(false);
  });

  it('started nothing else: no child, no lease, no run folder; only the runs themselves exist', async () => {
    const listed = (await listExecutions(client, `TaskQueue = '${taskQueue}'`)).map((w) => w.workflowId);
    expect(listed.sort()).toEqual(cases.map((_, i) => idOf(i)).sort());
    const prefixed = (await listExecutions(client, `WorkflowId STARTS_WITH '${PREFIX}'`)).map((w) => w.workflowId);
    expect(prefixed.sort()).toEqual(cases.map((_, i) => idOf(i)).filter((id) => id.startsWith(PREFIX)).sort());
    expect(await workflowExists(client, leaseWorkflowId(taskQueue, CLUSTER_NAME))).toBe(false);
    const entries = (d: string) => (existsSync(d) ? readdirSync(d) : []);
    expect(entries(runsDir()).filter((d) => d.includes(TAG))).toEqual([]);
    expect(entries(path.dirname(runsDir())).filter((d) => d.includes(TAG))).toEqual([]);
    expect(existsSync(path.join(PROJECT_ROOT, 'runs', `${PREFIX}0`))).toBe(false);
  });

  it('control: a good dry run (experiments: []) on the same profile and worker completes, writing only input.json and plan.json', async () => {
    const workflowId = `${PREFIX}control`;
    const result = (await client.workflow.execute('reproduceClaims', { taskQueue, workflowId, args: [{ cluster: profile, experiments: [], nodeCounts: [2], hypervisors: ['fragvisor'], dryRun: true }] })) as ReproduceClaimsResult;
    expect(result).toMatchObject({ runId: workflowId, cluster: CLUSTER_NAME, dryRun: true, runDir: path.join(runsDir(), workflowId) });
    expect(readdirSync(result.runDir).sort()).toEqual(['input.json', 'plan.json']);
    expect(await workflowExists(client, leaseWorkflowId(taskQueue, CLUSTER_NAME))).toBe(false);
  });
});
