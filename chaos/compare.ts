import type { PointVerdict, RunSnapshot } from './collect';

/**
 * A faulted run against the unfaulted reference run (same seed, same input): pure functions of
 * what each left behind.
 *
 * Duplicated actions: per node and action, what the faulted run did beyond the reference, minus
 * what the faults that fired require (their documented cures, ALLOWANCES). Benchmark repetitions:
 * raw outputs per measurement key beyond the reference's, minus one per repetition a fault cut
 * (a worker killed, a connection dropped while it ran).
 */

/** The sim's counters of non-idempotent actions, grouped as the results table shows them. */
export const ACTION_GROUPS = {
  'kernel builds': (counter: string) => counter.startsWith('make:'),
  reboots: (counter: string) => counter === 'reboot' || counter === 'power-cycle' || counter === 'bmc:power-cycle',
  insmods: (counter: string) => counter === 'insmod',
  'VM launches': (counter: string) => counter === 'lkvm' || counter === 'qemu',
} as const;
export type ActionGroup = keyof typeof ACTION_GROUPS | 'benchmark repetitions';

/** A sim fault as it fired: its node, its step, and where the run was (`fragvisor E2 messaging layer`). */
export interface FiredFault {
  node: string;
  step: string;
  at: string;
}

/** A fault injected by the driver that may cut a benchmark repetition short: the repetition it cut. */
export interface CutRepetition {
  /** `<hypervisor> <experiment> ...` where it happened. */
  at: string;
  /** The epoch's `current`: `<variant> rep <k>`. */
  measuring?: string;
}

const NODES_OF_EPOCH = ['node0', 'node1', 'node2', 'node3'];

/**
 * What a fired fault's cure may add, per node and counter (rebootNodes, bootCycle, runEpoch):
 * a hung reboot costs that node one BMC power cycle; a hung messaging layer costs every epoch node
 * a reboot and another insmod; a guest that does not boot costs the epoch a fresh boot cycle
 * (reboot, insmod for FragVisor) and another VM launch (lkvm on the origin, qemu on every node).
 */
export function allowances(fired: readonly FiredFault[]): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  const add = (node: string, counter: string, n = 1) => {
    out[node] ??= {};
    out[node][counter] = (out[node][counter] ?? 0) + n;
  };
  for (const f of fired) {
    const fragvisor = !f.at.startsWith('giantvm');
    if (f.step === 'reboot-hang') add(f.node, 'bmc:power-cycle');
    if (f.step === 'insmod-hang') {
      for (const n of NODES_OF_EPOCH) {
        add(n, 'reboot');
        add(n, 'insmod');
      }
    }
    if (f.step === 'guest-boot') {
      for (const n of NODES_OF_EPOCH) {
        add(n, 'reboot');
        if (fragvisor) add(n, 'insmod');
        else add(n, 'qemu');
      }
      if (fragvisor) add('node0', 'lkvm');
    }
  }
  return out;
}

export interface Duplicate {
  group: ActionGroup;
  node?: string;
  counter: string;
  reference: number;
  faulted: number;
  allowed: number;
  /** Beyond the reference and the allowance. */
  extra: number;
}

/** Actions beyond the reference's and the faults' allowance, per node and counter (only those > 0). */
export function duplicatedActions(reference: RunSnapshot['counters'], faulted: RunSnapshot['counters'], allowed: Record<string, Record<string, number>>): Duplicate[] {
  const out: Duplicate[] = [];
  for (const node of Object.keys(faulted).sort()) {
    const counters = new Set([...Object.keys(faulted[node] ?? {}), ...Object.keys(reference[node] ?? {})]);
    for (const counter of [...counters].sort()) {
      const group = (Object.keys(ACTION_GROUPS) as (keyof typeof ACTION_GROUPS)[]).find((g) => ACTION_GROUPS[g](counter));
      if (!group) continue;
      const ref = reference[node]?.[counter] ?? 0;
      const got = faulted[node]?.[counter] ?? 0;
      const allow = allowed[node]?.[counter] ?? 0;
      const extra = got - ref - allow;
      if (extra > 0) out.push({ group, node, counter, reference: ref, faulted: got, allowed: allow, extra });
    }
  }
  return out;
}

/** `fragvisor E3 benchmarks` + `net-4096-local rep 2` -> the measurement key id it was taking. */
export function cutKeyId(cut: CutRepetition, nodeCount: number): string | undefined {
  const at = /^(fragvisor|giantvm) (E\d) benchmarks$/.exec(cut.at);
  const what = /^(\S+) rep (\d+)$/.exec(cut.measuring ?? '');
  if (!at || !what) return undefined;
  return `${at[1]}.${at[2]}.n${nodeCount}.${what[1]}.rep${what[2]}`;
}

/**
 * Benchmark repetitions run more often than in the reference: `cut` repetitions (a fault hit them
 * while they ran) may run once more each; a dropped connection during an epoch's benchmarks may
 * cost any one repetition of that epoch another attempt.
 */
export function duplicatedRepetitions(reference: Record<string, number>, faulted: Record<string, number>, cut: readonly string[], droppedIn: readonly string[]): { extra: Duplicate[]; rerunByFaults: number } {
  const allowed = new Map<string, number>();
  for (const id of cut) allowed.set(id, (allowed.get(id) ?? 0) + 1);
  const epochAllowance = new Map<string, number>();
  for (const e of droppedIn) epochAllowance.set(e, (epochAllowance.get(e) ?? 0) + 1);
  const extra: Duplicate[] = [];
  let rerunByFaults = 0;
  for (const id of Object.keys(faulted).sort()) {
    const ref = reference[id] ?? 0;
    let over = faulted[id] - ref;
    if (over <= 0) continue;
    const byCut = Math.min(over, allowed.get(id) ?? 0);
    over -= byCut;
    const epoch = id.split('.').slice(0, 2).join('.');
    const byDrop = Math.min(over, epochAllowance.get(epoch) ?? 0);
    epochAllowance.set(epoch, (epochAllowance.get(epoch) ?? 0) - byDrop);
    over -= byDrop;
    rerunByFaults += byCut + byDrop;
    if (over > 0) extra.push({ group: 'benchmark repetitions', counter: id, reference: ref, faulted: faulted[id], allowed: byCut + byDrop, extra: over });
  }
  return { extra, rerunByFaults };
}

/** Metrics that time real work (ab, curl, the wall clock): they vary between any two runs, so only their keys are compared. */
export function wallTimeMetric(keyId: string, metric: string): boolean {
  const [, experiment, , variant] = keyId.split('.');
  if (experiment === 'E1') return true;
  if (experiment === 'E3' && variant.startsWith('net-')) return true;
  return experiment === 'E2' && (metric === 'wallSeconds' || metric === 'curlMaxSeconds');
}

export interface MeasurementDiff {
  missingKeys: string[];
  extraKeys: string[];
  /** Deterministic metrics whose values differ: `key metric: reference -> faulted`. */
  valueDiffs: string[];
  /** Metrics compared by value / by key only. */
  comparedValues: number;
  keyOnly: number;
}

export function compareMeasurements(reference: RunSnapshot['measurements'], faulted: RunSnapshot['measurements']): MeasurementDiff {
  const refKeys = Object.keys(reference).sort();
  const out: MeasurementDiff = {
    missingKeys: refKeys.filter((k) => !(k in faulted)),
    extraKeys: Object.keys(faulted).filter((k) => !(k in reference)).sort(),
    valueDiffs: [],
    comparedValues: 0,
    keyOnly: 0,
  };
  for (const k of refKeys.filter((x) => x in faulted)) {
    const metrics = new Set([...Object.keys(reference[k]), ...Object.keys(faulted[k])]);
    for (const m of metrics) {
      if (wallTimeMetric(k, m)) {
        out.keyOnly++;
        if (!(m in reference[k]) || !(m in faulted[k])) out.valueDiffs.push(`${k} ${m}: present in only one run`);
        continue;
      }
      out.comparedValues++;
      const a = reference[k][m];
      const b = faulted[k][m];
      if (a === undefined || b === undefined || Math.abs(a - b) > 1e-9 * Math.max(1, Math.abs(a))) out.valueDiffs.push(`${k} ${m}: ${a ?? 'absent'} -> ${b ?? 'absent'}`);
    }
  }
  return out;
}

/**
 * A run-store path with what differs between any two runs made generic: the workflow id, Temporal
 * run ids (UUIDs) and the hashes derived from them (remote job keys).
 */
export function genericPath(rel: string, workflowId: string): string {
  return rel
    .split(workflowId)
    .join('<run>')
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/g, '<uuid>')
    .replace(/[0-9a-f]{12,}/g, '<hash>');
}

/** Reference files the faulted run does not have (measurement files, raw outputs, logs, reports), compared as generic paths. */
export function lostArtifacts(reference: { files: readonly string[]; workflowId: string }, faulted: { files: readonly string[]; workflowId: string }): string[] {
  const have = new Map<string, number>();
  for (const f of faulted.files) {
    const g = genericPath(f, faulted.workflowId);
    have.set(g, (have.get(g) ?? 0) + 1);
  }
  const lost: string[] = [];
  for (const f of reference.files) {
    if (f.endsWith('.tmp')) continue;
    const g = genericPath(f, reference.workflowId);
    const left = have.get(g) ?? 0;
    if (left > 0) have.set(g, left - 1);
    else lost.push(f);
  }
  return lost;
}

/** The claims whose verdict differs, each with `C2: inconclusive -> pass`. */
function changedClaims(reference: Record<string, string>, faulted: Record<string, string>): { id: string; text: string }[] {
  const ids = [...new Set([...Object.keys(reference), ...Object.keys(faulted)])].sort();
  return ids.filter((id) => reference[id] !== faulted[id]).map((id) => ({ id, text: `${id}: ${reference[id] ?? 'none'} -> ${faulted[id] ?? 'none'}` }));
}

export function verdictDiffs(reference: Record<string, string>, faulted: Record<string, string>): string[] {
  return changedClaims(reference, faulted).map((d) => d.text);
}

/**
 * The metrics a claim's verdict changed on, when every point whose verdict changed was judged on real
 * timings (wallTimeMetric): two unfaulted runs differ there too, so such a change is the machine's
 * noise, not a fault's doing. Undefined when any other point changed, a point is only on one side,
 * or no point changed at all (the claim's gaps did).
 */
export function changedOnTimingsOnly(reference: readonly PointVerdict[] = [], faulted: readonly PointVerdict[] = []): string[] | undefined {
  const before = new Map(reference.map((p) => [p.label, p]));
  const after = new Map(faulted.map((p) => [p.label, p]));
  const labels = [...new Set([...before.keys(), ...after.keys()])];
  const changed = labels.filter((l) => before.get(l)?.verdict !== after.get(l)?.verdict);
  if (changed.length === 0) return undefined;
  const onTimings = changed.every((l) => {
    const p = before.get(l);
    return p !== undefined && after.has(l) && p.keys.length > 0 && wallTimeMetric(p.keys[0], p.metric);
  });
  return onTimings ? [...new Set(changed.map((l) => before.get(l)!.metric))] : undefined;
}

export interface RunInput {
  label: string;
  workflowId: string;
  status: 'completed' | 'failed' | 'stuck';
  error?: string;
  durationMs: number;
  snapshot: RunSnapshot;
  injected: { kind: string; actual: string; node?: string; measuring?: string }[];
  fired: FiredFault[];
  /** Sim faults armed that never fired; planned faults the run ended before. */
  unfired?: string[];
  notInjected?: string[];
}

export interface RunComparison {
  label: string;
  workflowId: string;
  finished: boolean;
  status: RunInput['status'];
  error?: string;
  faults: { workerKills: number; killPhases: string[]; serverRestarts: number; simFaultsFired: string[]; simFaultsUnfired: string[]; notInjected: string[]; other: string[] };
  verdicts: Record<string, string>;
  /** No verdict differs, but for changes on real timings only (listed in verdictDiffs all the same). */
  verdictsSame: boolean;
  verdictDiffs: string[];
  /** Of verdictDiffs, those that changed on real timings only. */
  timingFlips: string[];
  measurements: MeasurementDiff;
  duplicates: Duplicate[];
  duplicatedCount: number;
  rerunByFaults: number;
  lost: string[];
  addedSeconds: number;
}

const NODE_COUNT = 4;

export function compareRun(reference: RunInput, run: RunInput): RunComparison {
  const kills = run.injected.filter((f) => f.kind === 'worker-kill');
  // A repetition a kill or a restart caught in flight; an epoch whose benchmarks lost a connection.
  const cut = run.injected.filter((f) => f.kind === 'worker-kill' || f.kind === 'server-restart').flatMap((f) => cutKeyId({ at: f.actual, measuring: f.measuring }, NODE_COUNT) ?? []);
  const droppedIn = run.fired.filter((f) => f.step === 'ssh-drop').flatMap((f) => {
    const m = /^(fragvisor|giantvm) (E\d) /.exec(f.at);
    return m ? [`${m[1]}.${m[2]}`] : [];
  });
  const counters = duplicatedActions(reference.snapshot.counters, run.snapshot.counters, allowances(run.fired));
  const reps = duplicatedRepetitions(reference.snapshot.rawAttempts, run.snapshot.rawAttempts, cut, droppedIn);
  const duplicates = [...counters, ...reps.extra];
  const claimDiffs = changedClaims(reference.snapshot.verdicts, run.snapshot.verdicts).map(({ id, text }) => {
    const metrics = changedOnTimingsOnly(reference.snapshot.points[id], run.snapshot.points[id]);
    return { text: metrics ? `${text} (on real timings only: ${metrics.join(', ')})` : text, onTimings: metrics !== undefined };
  });
  return {
    label: run.label,
    workflowId: run.workflowId,
    finished: run.status === 'completed',
    status: run.status,
    ...(run.error ? { error: run.error } : {}),
    faults: {
      workerKills: kills.length,
      killPhases: kills.map((k) => k.actual),
      serverRestarts: run.injected.filter((f) => f.kind === 'server-restart').length,
      simFaultsFired: run.fired.map((f) => `${f.step} ${f.node} (${f.at})`),
      simFaultsUnfired: run.unfired ?? [],
      notInjected: run.notInjected ?? [],
      other: run.injected.filter((f) => f.kind === 'worker-exited').map((f) => `${f.kind} at ${f.actual}`),
    },
    verdicts: run.snapshot.verdicts,
    verdictsSame: claimDiffs.every((d) => d.onTimings) && Object.keys(run.snapshot.verdicts).length > 0,
    verdictDiffs: claimDiffs.map((d) => d.text),
    timingFlips: claimDiffs.filter((d) => d.onTimings).map((d) => d.text),
    measurements: compareMeasurements(reference.snapshot.measurements, run.snapshot.measurements),
    duplicates,
    duplicatedCount: duplicates.reduce((s, d) => s + d.extra, 0),
    rerunByFaults: reps.rerunByFaults,
    lost: lostArtifacts({ files: reference.snapshot.files, workflowId: reference.workflowId }, { files: run.snapshot.files, workflowId: run.workflowId }),
    addedSeconds: Math.round((run.durationMs - reference.durationMs) / 1000),
  };
}

export interface Totals {
  runs: number;
  finished: number;
  verdictsSame: number;
  /** Claims whose verdict changed on real timings only, over all runs (counted as same). */
  timingFlips: number;
  measurementsSame: number;
  workerKills: number;
  killPhases: Record<string, number>;
  serverRestarts: number;
  simFaultsFired: Record<string, number>;
  simFaultsUnfired: number;
  duplicated: number;
  duplicatedByGroup: Record<string, number>;
  rerunByFaults: number;
  lost: number;
  addedSeconds: number;
  targetsMet: boolean;
}

/** The kill's phase category: `fragvisor E2 benchmarks` -> E2, `giantvm E1 reboot` -> reboot. */
export function killCategory(actual: string): string {
  if (/prepare hosts$/.test(actual)) return 'prepare';
  if (/ (reboot|messaging layer)$/.test(actual)) return actual.replace(/^\S+ E\d /, '');
  const m = / (E\d) /.exec(actual);
  return m ? m[1] : actual;
}

export function totals(runs: readonly RunComparison[]): Totals {
  const tally = (xs: string[]) => xs.reduce<Record<string, number>>((acc, x) => ({ ...acc, [x]: (acc[x] ?? 0) + 1 }), {});
  const byGroup: Record<string, number> = {};
  for (const d of runs.flatMap((r) => r.duplicates)) byGroup[d.group] = (byGroup[d.group] ?? 0) + d.extra;
  const t: Totals = {
    runs: runs.length,
    finished: runs.filter((r) => r.finished).length,
    verdictsSame: runs.filter((r) => r.verdictsSame).length,
    timingFlips: runs.reduce((s, r) => s + r.timingFlips.length, 0),
    measurementsSame: runs.filter((r) => r.measurements.missingKeys.length + r.measurements.extraKeys.length + r.measurements.valueDiffs.length === 0).length,
    workerKills: runs.reduce((s, r) => s + r.faults.workerKills, 0),
    killPhases: tally(runs.flatMap((r) => r.faults.killPhases.map(killCategory))),
    serverRestarts: runs.reduce((s, r) => s + r.faults.serverRestarts, 0),
    simFaultsFired: tally(runs.flatMap((r) => r.faults.simFaultsFired.map((f) => f.split(' ')[0]))),
    simFaultsUnfired: runs.reduce((s, r) => s + r.faults.simFaultsUnfired.length, 0),
    duplicated: runs.reduce((s, r) => s + r.duplicatedCount, 0),
    duplicatedByGroup: byGroup,
    rerunByFaults: runs.reduce((s, r) => s + r.rerunByFaults, 0),
    lost: runs.reduce((s, r) => s + r.lost.length, 0),
    addedSeconds: runs.reduce((s, r) => s + r.addedSeconds, 0),
    targetsMet: false,
  };
  t.targetsMet = t.finished === t.runs && t.verdictsSame === t.runs && t.duplicated === 0 && t.lost === 0;
  return t;
}
