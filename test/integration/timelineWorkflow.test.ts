import { randomUUID } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { spansQuery, timelineWorkflow } from '../fixtures/workflows/timeline';
import { startFixtureWorker, testClient, uniqueTaskQueue } from '../helpers/temporal';

/**
 * The timeline recorder in real workflow code on the dev server. With no workflow cache every
 * workflow task replays the history from the start, and a query on the closed run replays it once
 * more: the spans come out the same each time only if the recorder's clock is workflow time.
 */

jest.setTimeout(120_000);

const MS = 700;

it('spans follow workflow time: the result and a replay after the run agree, and durations cover the activities and the timer', async () => {
  const taskQueue = uniqueTaskQueue('timeline');
  const worker = await startFixtureWorker({
    taskQueue,
    workflowsPath: require.resolve('../fixtures/workflows/timeline'),
    activities: { pause: (ms: number) => delay(ms) },
    maxCachedWorkflows: 0,
  });
  const { client, close } = await testClient();
  try {
    const handle = await client.workflow.start(timelineWorkflow, { taskQueue, workflowId: `timeline-${randomUUID()}`, args: [MS] });
    const spans = await handle.result();
    expect(spans.map((s) => [s.key, s.what, s.outcome])).toEqual([
      ['build', 'build', 'ok'],
      ['reboot', 'reboot', 'ok'],
      ['epoch', 'epoch', undefined],
    ]);
    const t = (iso: string | undefined) => Date.parse(iso!);
    const [build, reboot, epoch] = spans;
    expect(t(build.end) - t(build.start)).toBeGreaterThanOrEqual(MS);
    expect(t(reboot.end) - t(reboot.start)).toBeGreaterThanOrEqual(MS);
    expect(t(reboot.start)).toBeGreaterThanOrEqual(t(build.end));
    expect(t(epoch.start)).toBeGreaterThanOrEqual(t(reboot.end));
    expect(epoch.end).toBeUndefined();
    const described = await handle.describe();
    expect(t(build.start)).toBeGreaterThanOrEqual(described.startTime.getTime());
    expect(t(epoch.start)).toBeLessThanOrEqual(described.closeTime!.getTime());

    // A replay, well after the run: real time would give other spans.
    await delay(1000);
    expect(await handle.query(spansQuery)).toEqual(spans);
  } finally {
    await close();
    await worker.stop();
  }
});
