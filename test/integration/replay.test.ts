import { Worker } from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import { loadReplayFixtures, REPLAY_NAME, type ReplayFixture } from '../helpers/replay';

/**
 * Runs in flight survive a deploy: the recorded histories of a whole reproduceClaims and every
 * workflow it started (test/fixtures/histories, `npm run record:histories`) replay against today's
 * workflow code. A change that would make a worker fail the open runs it picks up (an activity
 * added, removed or reordered, a child renamed) fails here first; guard it with patched(), or, when
 * no run can be open, record the histories again.
 */

jest.setTimeout(120_000);

const bundle = () => ({ workflowBundle: { codePath: process.env.AE_WORKFLOW_BUNDLE! } });
const fixtures = loadReplayFixtures();

it('the fixtures are a whole run: the top-level workflow, the host kernels, the guest kernel, every epoch with its reboots and messaging layers', () => {
  const types = new Set(fixtures.map(({ fixture }) => workflowType(fixture)));
  expect([...types].sort()).toEqual(['buildGuestKernel', 'clusterLease', 'installHostKernel', 'messagingLayer', 'rebootNodes', 'reproduceClaims', 'runEpoch']);
  expect(fixtures.length).toBeGreaterThanOrEqual(20);
});

// First in this file: the replay worker's task queue must be the recording's (test/helpers/replay.ts).
it('every recorded history replays against the current workflow code', async () => {
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ ...bundle(), replayName: REPLAY_NAME }, fixtures.map(({ fixture }) => fixture))) {
    replayed++;
    if (result.error) failures.push(`${result.workflowId}: ${result.error.name}: ${result.error.message.slice(0, 400)}`);
  }
  expect(failures).toEqual([]);
  expect(replayed).toBe(fixtures.length);
});

it('a history the code no longer matches (an activity it never schedules) is a nondeterminism error', async () => {
  const epoch = fixtures.find(({ fixture }) => workflowType(fixture) === 'runEpoch')!.fixture;
  const tampered = JSON.parse(JSON.stringify(epoch.history).replace('"activityType":{"name":"launchVm"}', '"activityType":{"name":"launchSomethingElse"}')) as unknown;
  expect(JSON.stringify(tampered)).toContain('launchSomethingElse');
  await expect(Worker.runReplayHistory(bundle(), tampered, epoch.workflowId)).rejects.toBeInstanceOf(DeterminismViolationError);
});

function workflowType(f: ReplayFixture): string {
  const events = (f.history as { events: { workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }[] }).events;
  return events[0].workflowExecutionStartedEventAttributes?.workflowType?.name ?? '?';
}
