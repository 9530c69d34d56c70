import { ActivityFailure, ApplicationFailure, defineQuery, type ActivityOptions, proxyActivities, setCurrentDetails, setHandler, sleep } from '@temporalio/workflow';
import { z } from 'zod';
import type { Activities } from '../activities';
import type { MsgLayerStuckDetails } from '../activities/msglayer';
import { ipv4, nodeName } from '../config/schema';
import { judgeMessagingLayer, type MessagingLayerFailure, type MsgLayerNodeReport } from './commands/msglayer';
import { NON_RETRYABLE_SETUP, parseInput } from './failures';
import { clusterRef, profileHash, runId } from './inputs';
import type { NodeProgress, StepState } from './progress';

/**
 * messagingLayer (a child of the run): ARTIFACT.md step 3 on the first n nodes. Build msg_layer on
 * every node in parallel, insmod in node order 1 s apart (all within the 60 s accept window), wait
 * for every insmod (node 0's returns last), then check lsmod + dmesg everywhere: Ready, n-1 joined.
 * A failure is a non-retryable MessagingLayerFailed whose details say what happened; the parent
 * decides (a reboot cycle and a bounded retry for hang / rdma-error; a wrong origin needs new kernels).
 */

export const messagingLayerInput = z
  .strictObject({
    cluster: clusterRef,
    profileHash,
    runId,
    /** The first n nodes of the profile, in order: node id = position. */
    nodes: z
      .array(z.strictObject({ name: nodeName, rdmaIp: ipv4 }), { error: 'expected a list of { name, rdmaIp } in node order' })
      .min(1, 'expected at least one node')
      .max(256)
      .refine((xs) => new Set(xs.map((x) => x.name)).size === xs.length, 'expected each node at most once')
      .refine((xs) => new Set(xs.map((x) => x.rdmaIp)).size === xs.length, 'expected each rdmaIp at most once'),
    /** Each node's current boot_id (from its last reboot): the insmod job's key. */
    bootIds: z.record(nodeName, z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'expected a boot_id like 0b5f6b2e-...')),
    /** For the build jobs and for each insmod: an insmod not back by then hangs. */
    timeoutSeconds: z.number({ error: 'expected the timeout in seconds (a number)' }).positive('expected a timeout greater than 0 seconds').max(24 * 3600),
  })
  .refine((i) => i.nodes.every((n) => i.bootIds[n.name] !== undefined), { message: 'expected a boot_id for every node', path: ['bootIds'] });

export type MessagingLayerInput = z.input<typeof messagingLayerInput>;

export interface MessagingLayerResult {
  nodes: { node: string; nodeId: number; joined: number[] }[];
}

export type { MessagingLayerFailure, MessagingLayerFailureKind } from './commands/msglayer';

export interface MessagingLayerProgress {
  phase: 'build' | 'insmod' | 'check' | 'done' | 'failed';
  nodes: Record<string, NodeProgress>;
}

export const messagingLayerProgressQuery = defineQuery<MessagingLayerProgress>('progress');

/** The artifact's `sleep 1` between two nodes' insmods (msg_pophype4node.sh). */
const INSMOD_GAP = '1 second';

const NON_RETRYABLE = [...NON_RETRYABLE_SETUP, 'MsgLayerBuildFailed', 'MsgLayerBusy', 'InsmodHang'];

const { checkMsgLayer } = proxyActivities<Activities>({
  startToCloseTimeout: '2 minutes',
  heartbeatTimeout: '30 seconds',
  // Read-only: safe to repeat.
  retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 5, nonRetryableErrorTypes: NON_RETRYABLE },
});

/** The ApplicationFailure an activity failed with, when it is of `type`. */
function failureOf(err: unknown, type: string): ApplicationFailure | undefined {
  return err instanceof ActivityFailure && err.cause instanceof ApplicationFailure && err.cause.type === type ? err.cause : undefined;
}

/** The node's last lines from an InsmodHang / MsgLayerBusy failure. */
function stuckLines(f: ApplicationFailure): string[] {
  return (f.details?.[0] as MsgLayerStuckDetails | undefined)?.lines ?? [f.message];
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** Settles at once, so a rejection while the workflow still sleeps between insmods is never unhandled. */
function settle<T>(p: Promise<T>): Promise<Settled<T>> {
  return p.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

export async function messagingLayer(rawInput: MessagingLayerInput): Promise<MessagingLayerResult> {
  const input = parseInput(messagingLayerInput, rawInput, 'messagingLayer');
  const { cluster, profileHash, nodes, timeoutSeconds } = input;
  const common = { cluster, profileHash, runId: input.runId };
  const n = nodes.length;
  const progress: MessagingLayerProgress = { phase: 'build', nodes: {} };
  setHandler(messagingLayerProgressQuery, () => progress);
  const step = (node: string, name: string, state: StepState, detail?: string) => {
    progress.nodes[node] = { step: `messaging layer: ${name}`, state, ...(detail ? { detail } : {}) };
  };
  const phase = (p: MessagingLayerProgress['phase'], details: string) => {
    progress.phase = p;
    setCurrentDetails(`**Messaging layer** on ${n} node(s) (${nodes.map((x) => x.name).join(', ')}): ${details}`);
  };
  const fail = (failure: MessagingLayerFailure): never => {
    phase('failed', `${failure.kind} on ${failure.nodes.join(', ')}`);
    throw ApplicationFailure.create({
      type: 'MessagingLayerFailed',
      nonRetryable: true,
      message: `messaging layer on ${n} node(s): ${failure.kind} on ${failure.nodes.join(', ')}:\n  ${failure.lines.join('\n  ')}`,
      details: [failure],
    });
  };

  const jobProxy: ActivityOptions = {
    startToCloseTimeout: (timeoutSeconds + 60) * 1000,
    // followRemoteJob heartbeats its log offset: a dead worker is noticed and the retry reattaches.
    heartbeatTimeout: '30 seconds',
  };
  const { buildMsgLayer } = proxyActivities<Activities>({
    ...jobProxy,
    // Build jobs are keyed by this workflow execution: a retry reattaches, never builds twice at once.
    retry: { initialInterval: '1 second', maximumInterval: '10 seconds', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
  });
  const { insmodMsgLayer } = proxyActivities<Activities>({
    ...jobProxy,
    // Keyed by (run, node, boot_id): a retry after an SSH drop or a worker crash reattaches to the same insmod.
    retry: { initialInterval: '1 second', maximumInterval: '5 seconds', maximumAttempts: 3, nonRetryableErrorTypes: NON_RETRYABLE },
  });

  // 1. Build everywhere, in parallel.
  phase('build', 'config.h, make clean, make');
  const ips = nodes.map((x) => x.rdmaIp);
  const builds = await Promise.all(
    nodes.map(async (x) => {
      step(x.name, 'build', 'running');
      const r = await settle(buildMsgLayer({ ...common, node: x.name, ips, timeoutSeconds }));
      step(x.name, 'build', r.ok ? 'done' : 'failed');
      return r;
    }),
  );
  // A node whose earlier load still hangs (rmmod: busy) needs a reboot: no insmod anywhere, straight to the checks.
  const stuck = new Map<string, string[]>();
  for (const [i, b] of builds.entries()) {
    const busy = b.ok ? undefined : failureOf(b.error, 'MsgLayerBusy');
    if (busy) stuck.set(nodes[i].name, stuckLines(busy));
    else if (!b.ok) throw b.error;
  }

  // 2. insmod in node order, 1 s apart; each blocks until its connections are up.
  const insmods: Promise<Settled<Awaited<ReturnType<typeof insmodMsgLayer>>>>[] = [];
  if (stuck.size === 0) {
    phase('insmod', 'insmod in node order');
    for (const [i, x] of nodes.entries()) {
      if (i > 0) await sleep(INSMOD_GAP);
      step(x.name, 'insmod', 'running');
      insmods.push(
        settle(insmodMsgLayer({ ...common, node: x.name, bootId: input.bootIds[x.name], timeoutSeconds })).then((r) => {
          step(x.name, 'insmod', r.ok && r.value.exitCode === 0 ? 'done' : 'failed', r.ok ? `exit ${r.value.exitCode}` : 'no return');
          return r;
        }),
      );
    }
  }
  const loaded = await Promise.all(insmods);

  // 3. Check every node, whatever the insmods said: dmesg tells why.
  phase('check', 'lsmod + dmesg on every node');
  const checks = await Promise.all(nodes.map((x) => checkMsgLayer({ ...common, node: x.name, expectedPeers: n - 1 })));
  const reports: MsgLayerNodeReport[] = nodes.map((x, i) => {
    const r = loaded.at(i);
    const report: MsgLayerNodeReport = { node: x.name, index: i, check: checks[i] };
    const hung = stuck.get(x.name);
    if (hung) report.hung = hung;
    else if (r?.ok) report.insmod = { exitCode: r.value.exitCode, tail: r.value.tail };
    else if (r) {
      const hang = failureOf(r.error, 'InsmodHang');
      // Anything but a hang (no passwordless sudo, a changed profile, an unreachable node) is no verdict on the layer.
      if (!hang) throw r.error;
      report.hung = stuckLines(hang);
    }
    step(x.name, 'check', checks[i].ok ? 'done' : 'failed', checks[i].ok ? `node ${checks[i].nodeId}, joined ${checks[i].joined.join(', ') || 'none'}` : checks[i].lines.at(-1));
    return report;
  });

  const verdict = judgeMessagingLayer(reports);
  if (!verdict.ok) return fail(verdict.failure);
  phase('done', `ready, each node joined by ${n - 1}`);
  return { nodes: verdict.nodes };
}
