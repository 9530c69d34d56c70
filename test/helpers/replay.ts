import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';

/** Recorded histories of one whole reproduceClaims and its children (scripts/recordHistories.ts). */
export const REPLAY_FIXTURES_DIR = path.resolve(__dirname, '../fixtures/histories');

/**
 * The recording runs on the task queue the replay worker will have: the SDK names it
 * `<replayName>-<n>`, n counting the replay workers this process made (0 for the first), and the
 * workflow sees it (the cluster lease's id is per task queue), so it must match for the replay.
 */
export const REPLAY_NAME = 'ae-replay';
export const REPLAY_TASK_QUEUE = `${REPLAY_NAME}-0`;

export interface ReplayFixture {
  workflowId: string;
  /** The history as `historyToJSON` writes it. */
  history: unknown;
}

export function loadReplayFixtures(): { file: string; fixture: ReplayFixture }[] {
  return readdirSync(REPLAY_FIXTURES_DIR)
    .filter((f) => f.endsWith('.json.gz'))
    .sort()
    .map((file) => ({ file, fixture: JSON.parse(gunzipSync(readFileSync(path.join(REPLAY_FIXTURES_DIR, file))).toString('utf8')) as ReplayFixture }));
}
