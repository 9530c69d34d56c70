import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { SimCluster } from '../sim/cluster';
import type { Measurement } from '../workflows/commands/bench';
import { measurementKeyId } from '../workflows/commands/bench';

/** What a finished (or given-up) run left behind, as the comparison reads it. */
export interface RunSnapshot {
  /** Per node, the sim's counters of its actions (make:all, reboot, insmod, lkvm, ...). */
  counters: Record<string, Record<string, number>>;
  /** Every file in the run store, relative to the run folder. */
  files: string[];
  /** results.json's measurements: metrics by measurement key id. */
  measurements: Record<string, Record<string, number>>;
  /** Raw benchmark outputs (one per attempt of a repetition) by measurement key id. */
  rawAttempts: Record<string, number>;
  verdicts: Record<string, string>;
  /** claims.json's compared points per claim: which metric each point's verdict turned on. */
  points: Record<string, PointVerdict[]>;
}

/** One compared point of a claim, as much of it as the comparison needs. */
export interface PointVerdict {
  label: string;
  metric: string;
  /** Measurement key ids of both sides. */
  keys: string[];
  verdict: string;
}

/** Every file under `dir`, relative, sorted. */
export function listFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel))) {
      const r = rel ? `${rel}/${name}` : name;
      if (statSync(path.join(dir, r)).isDirectory()) walk(r);
      else out.push(r);
    }
  };
  walk('');
  return out.sort();
}

/**
 * The measurement key id a raw output belongs to: raw/<hypervisor>/<experiment>-n<count>/<variant>.rep<k>.try<a>[.<n>].txt
 * (activities/bench.ts createRaw).
 */
export function rawKeyId(rel: string): string | undefined {
  const m = /^raw\/([^/]+)\/(E\d)-n(\d+)\/(.+)\.rep(\d+)\.try\d+(?:\.\d+)?\.txt$/.exec(rel);
  if (!m) return undefined;
  return measurementKeyId({ hypervisor: m[1] as Measurement['key']['hypervisor'], experiment: m[2] as Measurement['key']['experiment'], nodeCount: Number(m[3]), variant: m[4], repetition: Number(m[5]) });
}

export function countRawAttempts(files: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of files) {
    const id = rawKeyId(f);
    if (id) out[id] = (out[id] ?? 0) + 1;
  }
  return out;
}

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function snapshot(runDir: string, sim: SimCluster, verdicts: Record<string, string>): RunSnapshot {
  const files = listFiles(runDir);
  const results = readJson<{ measurements: Measurement[] }>(path.join(runDir, 'results.json'));
  const measurements = Object.fromEntries((results?.measurements ?? []).map((m) => [measurementKeyId(m.key), m.metrics]));
  const counters = Object.fromEntries(sim.nodes.map((n) => [n.name, { ...sim.world.node(n.name).counters }]));
  const claims = readJson<{ claims: { id: string; points: PointVerdict[] }[] }>(path.join(runDir, 'claims.json'));
  const points = Object.fromEntries((claims?.claims ?? []).map((c) => [c.id, c.points.map(({ label, metric, keys, verdict }) => ({ label, metric, keys, verdict }))]));
  return { counters, files, measurements, rawAttempts: countRawAttempts(files), verdicts, points };
}
