import { TASK_QUEUE } from '../../config/constants';
import { freePort } from '../../sim/ports';
import { spawnAe } from '../helpers/processes';
import { startFixtureWorker, testAddress, testClient } from '../helpers/temporal';

/**
 * `ae run` as a user runs it: a separate process against the test dev server. The run itself is a
 * stand-in workflow (test/fixtures/workflows/fakeRun.ts) on task queue fragvisor-ae: this tests the
 * CLI (start, id and link, the live view over the `progress` query, the result, exit codes).
 */

jest.setTimeout(120_000);

const env = () => ({ TEMPORAL_ADDRESS: testAddress(), TEMPORAL_NAMESPACE: 'default', AE_UI_URL: 'http://ui.test' });
const unique = (name: string) => `ae-run-test-${name}-${process.pid}-${Date.now()}`;

async function ae(args: string[], extraEnv: NodeJS.ProcessEnv = env()): Promise<{ code: number | null; out: string }> {
  const p = spawnAe(args, extraEnv);
  const { code } = await p.exited;
  return { code, out: p.output() };
}

describe('ae run before any worker', () => {
  it('exits 2 on a usage mistake, naming the flag, without contacting Temporal', async () => {
    const r = await ae(['run', '--cluster', 'sim', '--node-counts', '2,x'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(r.code).toBe(2);
    expect(r.out).toContain('ae run: --node-counts 2,x: nodeCounts[1]: expected a node count (a number)');
    const id = await ae(['run', '--cluster', 'sim', '--workflow-id', 'a/b'], { TEMPORAL_ADDRESS: '127.0.0.1:1' });
    expect(id.code).toBe(2);
    expect(id.out).toMatch(/ae run: --workflow-id a\/b: expected a workflow id/);
  });

  it('exits 3 when Temporal is not reachable', async () => {
    const r = await ae(['run', '--cluster', 'sim', '--experiments', 'none'], { TEMPORAL_ADDRESS: `127.0.0.1:${await freePort()}` });
    expect(r.code).toBe(3);
    expect(r.out).toMatch(/ae run: cannot reach Temporal at 127\.0\.0\.1:\d+/);
  });

  it('exits 3 when no worker polls the fragvisor-ae queue, and starts nothing', async () => {
    const workflowId = unique('no-worker');
    const r = await ae(['run', '--cluster', 'sim', '--experiments', 'none', '--workflow-id', workflowId]);
    expect(r.code).toBe(3);
    expect(r.out).toContain(`no worker is polling task queue "${TASK_QUEUE}"`);
    const { client, close } = await testClient();
    try {
      await expect(client.workflow.getHandle(workflowId).describe()).rejects.toThrow(/not found/i);
    } finally {
      await close();
    }
  });
});

describe('ae run with a worker', () => {
  let stopWorker: () => Promise<void>;

  beforeAll(async () => {
    ({ stop: stopWorker } = await startFixtureWorker({ taskQueue: TASK_QUEUE, workflowsPath: require.resolve('../fixtures/workflows/fakeRun') }));
  }, 120_000);

  afterAll(async () => {
    await stopWorker?.();
  });

  it('--wait on a pipe: the id and link at once, then only changed lines with time stamps, then the result; exit 0', async () => {
    const workflowId = unique('ok');
    const r = await ae(['run', '--cluster', 'sim', '--experiments', 'none', '--workflow-id', workflowId, '--wait']);
    expect(r.code).toBe(0);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe(`started ${workflowId} on cluster sim`);
    expect(lines[1]).toBe(`  http://ui.test/namespaces/default/workflows/${encodeURIComponent(workflowId)}`);
    const stamped = (re: string) => lines.filter((l) => new RegExp(`^\\d\\d:\\d\\d:\\d\\dZ ${re}$`).test(l));
    expect(stamped('phase: planning  cluster sim \\(SIMULATED\\), stage 1/1 fragvisor/prepare-hosts \\(pending\\)')).toHaveLength(1);
    expect(stamped('phase: prepare hosts  cluster sim \\(SIMULATED\\), fragvisor, stage 1/1 fragvisor/prepare-hosts \\(running\\)')).toHaveLength(1);
    expect(stamped(' {2}node0 {2}host kernel: build {2}running {2}CC kernel/fork\\.o')).toHaveLength(1);
    expect(stamped(' {2}node0 {2}host kernel: build {2}done')).toHaveLength(1);
    // node1 never changed: printed once, not on every poll.
    expect(stamped(' {2}node1 {2}host kernel: build {2}pending')).toHaveLength(1);
    expect(stamped('phase: done .*')).toHaveLength(1);
    // In the order it happened, and the result last.
    const at = (re: RegExp) => lines.findIndex((l) => re.test(l));
    expect(at(/phase: planning/)).toBeLessThan(at(/phase: prepare hosts/));
    expect(at(/phase: prepare hosts/)).toBeLessThan(at(/phase: done/));
    expect(r.out).toContain(`${workflowId} completed:\n{\n  "runId": "${workflowId}",\n  "cluster": "sim"\n}`);
  });

  it('--wait on a run that fails: the failure and exit 1', async () => {
    const workflowId = unique('fail');
    const r = await ae(['run', '--cluster', 'sim', '--experiments', 'none', '--repetitions', '99', '--workflow-id', workflowId, '--wait']);
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/^\d\d:\d\d:\d\dZ error: messaging layer failed on node1$/m);
    expect(r.out).toMatch(/^\d\d:\d\d:\d\dZ {3}node1 {2}messaging layer: insmod {2}failed {2}Unable to connect$/m);
    expect(r.out).toContain(`${workflowId} failed: messaging layer failed on node1`);
  });

  it('--json without --wait: the id, run id and link as JSON; the input the workflow got is the schema\'s; a reused id is refused', async () => {
    const workflowId = unique('json');
    const r = await ae(['run', '--cluster', 'sim', '--experiments', 'E1', '--node-counts', '2', '--workflow-id', workflowId, '--json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { workflowId: string; runId: string; ui: string };
    expect(out).toEqual({ workflowId, runId: expect.stringMatching(/^[0-9a-f-]{36}$/), ui: `http://ui.test/namespaces/default/workflows/${encodeURIComponent(workflowId)}` });
    const { client, close } = await testClient();
    try {
      const handle = client.workflow.getHandle(workflowId);
      const history = await handle.fetchHistory();
      const started = history.events![0].workflowExecutionStartedEventAttributes!;
      const input = JSON.parse(Buffer.from(started.input!.payloads![0].data!).toString()) as Record<string, unknown>;
      expect(input).toEqual({ cluster: 'sim', experiments: ['E1'], nodeCounts: [2], repetitions: 3, hypervisors: ['fragvisor', 'giantvm'], buildJobs: 16, ifBusy: 'wait', dryRun: false });
      expect(started.taskQueue?.name).toBe(TASK_QUEUE);
      await handle.result();
    } finally {
      await close();
    }
    const again = await ae(['run', '--cluster', 'sim', '--workflow-id', workflowId]);
    expect(again.code).toBe(2);
    expect(again.out).toContain(`--workflow-id ${workflowId}: a run with this id exists already`);
  });
});
