import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Client } from '@temporalio/client';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startSimCluster, type SimCluster } from '../../sim/cluster';
import { freePort } from '../../sim/ports';
import { SIM_BMC_PASSWORD_ENV } from '../../sim/profile';
import { setMsgLayerDeps } from '../../sim/tools/msglayer';
import { startDevServer, type DevServer } from '../../workers/devServer';
import { findTemporalCli } from '../../workers/temporalCli';
import type { ReproduceClaimsResult } from '../../workflows/reproduceClaims';
import { CLUSTER, PHASE, VERDICT } from '../../workflows/searchAttributes';
import { waitUntil } from '../helpers/sim';
import { startTestWorker, testClient } from '../helpers/temporal';

/**
 * reproduceClaims started the way the README tells a person to: through the real Temporal Web UI (the
 * one the pinned temporal CLI bundles), its Start Workflow form filled in and submitted in headless
 * Chromium (Debian's, driven by playwright-core). A worker in this process runs it on a simulated
 * 4-node cluster at time scale 0; the run completes, and the UI's page of the run shows it completed,
 * the verdicts at the end of its result, its search attributes and its current details.
 */

jest.setTimeout(300_000);

/** Debian's chromium, installed by .ci/run (apt-get install chromium). */
const CHROMIUM = process.env.AE_CHROMIUM ?? '/usr/bin/chromium';
/** This suite's dev server is its own, so the queue needs no unique suffix. */
const TASK_QUEUE = 'fragvisor-ae-ui-test';
const WORKFLOW_ID = 'webui-e2-sim';

let dir: string;
/** Set when a step in the browser failed: the temp dir (its screenshot, the dev server's log) is then kept. */
let keep = false;
let server: DevServer | undefined;
let sim: SimCluster | undefined;
let browser: Browser | undefined;
let worker: { stop(): Promise<void> } | undefined;
let client: Client;
let closeClient: (() => Promise<void>) | undefined;
let restoreMsgLayer: (() => void) | undefined;
const saved = { address: process.env.AE_TEST_TEMPORAL_ADDRESS, bmcPassword: process.env[SIM_BMC_PASSWORD_ENV] };

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name];
  else process.env[name] = value;
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-webui-'));
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: install Debian's chromium (apt-get install chromium; .ci/run does) or set AE_CHROMIUM`);
  // The shared test dev server (test/globalSetup.ts) is headless: this suite starts one with its Web UI.
  const [port, uiPort] = [await freePort(), await freePort()];
  // Each assigned as it comes up, so that afterAll stops whatever started.
  await Promise.all([
    startDevServer({ cliPath: findTemporalCli(), port, uiPort, logFile: path.join(dir, 'temporal.log') }).then((s) => (server = s)),
    startSimCluster({ nodes: 4, stateDir: path.join(dir, 'sim'), rebootDownMs: 300, timeScale: 0 }).then((s) => (sim = s)),
    // --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start.
    chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] }).then((b) => (browser = b)),
  ]);
  process.env[SIM_BMC_PASSWORD_ENV] = readFileSync(sim!.bmcPasswordFile!, 'utf8').trim();
  // The 60 s accept windows last at least this long in real time (timeScale 0): room for the insmods, 1 s apart.
  const previous = setMsgLayerDeps({ windowFloorMs: 8000 });
  restoreMsgLayer = () => setMsgLayerDeps(previous);
  // The helpers' worker and client talk to the Temporal the suite names: here, the one with the UI.
  process.env.AE_TEST_TEMPORAL_ADDRESS = server!.address;
  worker = await startTestWorker(TASK_QUEUE);
  ({ client, close: closeClient } = await testClient());
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await worker?.stop();
  await closeClient?.();
  restoreMsgLayer?.();
  await sim?.stop();
  await server?.stop();
  restoreEnv('AE_TEST_TEMPORAL_ADDRESS', saved.address);
  restoreEnv(SIM_BMC_PASSWORD_ENV, saved.bmcPassword);
  if (keep) console.warn(`webUi: kept ${dir} (screenshots, temporal.log)`);
  else rmSync(dir, { recursive: true, force: true });
});

/** Runs `steps` on a fresh page; on failure keeps a screenshot of it in the suite's temp dir. */
async function withPage(name: string, steps: (page: Page) => Promise<void>): Promise<void> {
  const context = await browser!.newContext({ viewport: { width: 1400, height: 1000 } });
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  try {
    await steps(page);
  } catch (err) {
    keep = true;
    const shot = path.join(dir, `${name}.png`);
    await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
    throw new Error(`${(err as Error).message}\n(the page: ${shot}; the dev server's log: ${path.join(dir, 'temporal.log')})`);
  } finally {
    await context.close();
  }
}

it('starts reproduceClaims from the Start Workflow form; the run completes and its page shows Completed, the verdicts and the search attributes', async () => {
  // The README's example for the local stack, on this suite's simulated cluster: E2 measured on FragVisor,
  // GiantVM's figures from the example baseline file (a path on the worker host: this process).
  const input = { cluster: sim!.profileFile, experiments: ['E2'], hypervisors: ['fragvisor'], baseline: 'config/baselines/example-giantvm.yaml' };

  await withPage('start', async (page) => {
    await page.goto(`${server!.uiUrl}/namespaces/default/workflows`);
    await page.getByRole('link', { name: 'Start Workflow' }).click();
    await page.getByLabel('Workflow ID').fill(WORKFLOW_ID);
    await page.getByLabel('Task Queue').fill(TASK_QUEUE);
    await page.getByLabel('Workflow Type').fill('reproduceClaims');
    // Leaving the task queue field makes the UI look for its workers: this suite's one.
    await page.getByText('Task Queue is Active').waitFor();
    const data = page.getByRole('textbox', { name: 'Data' });
    await data.fill(JSON.stringify(input));
    // Leaving the editor pretty-prints the JSON, which moves the button down: blur first, then click.
    await data.blur();
    expect(JSON.parse(await data.innerText())).toEqual(input);
    expect(await page.getByLabel('json/plain').isChecked()).toBe(true);
    await page.getByRole('button', { name: 'Start Workflow' }).click();
    await page.getByRole('link', { name: 'Workflow started successfully' }).click();
    await page.waitForURL(new RegExp(`/workflows/${WORKFLOW_ID}/[0-9a-f-]{36}/`));
  });

  const handle = client.workflow.getHandle(WORKFLOW_ID);
  const described = await handle.describe();
  expect({ type: described.type, taskQueue: described.taskQueue }).toEqual({ type: 'reproduceClaims', taskQueue: TASK_QUEUE });
  let timer: NodeJS.Timeout | undefined;
  const result = (await Promise.race([
    handle.result(),
    new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${WORKFLOW_ID} did not complete within 180 s`)), 180_000))),
  ]).finally(() => clearTimeout(timer))) as ReproduceClaimsResult;
  expect(result.prepared[0].kernels.map((k) => k.release)).toEqual(Array(4).fill('4.4.137-pop-hype'));
  expect(result.measurements).toBeGreaterThan(0);
  expect(result.verdicts?.map((v) => v.id)).toEqual(['C1', 'C2', 'C3']);
  const verdicts = result.verdicts!;
  // What the server recorded, to compare with what the UI shows.
  const attributes = (await handle.describe()).typedSearchAttributes;
  expect(attributes.get(PHASE)).toBe('done');
  const recorded = { [PHASE.name]: 'done', [CLUSTER.name]: attributes.get(CLUSTER), [VERDICT.name]: attributes.get(VERDICT) };
  expect(recorded[CLUSTER.name]).toBe('sim');
  expect(recorded[VERDICT.name]).toMatch(/^(pass|fail|inconclusive)$/);

  await withPage('run', async (page) => {
    await page.goto(`${server!.uiUrl}/namespaces/default/workflows/${WORKFLOW_ID}/${described.runId}/history`);
    await page.getByTestId('execution-status').filter({ hasText: 'Completed' }).waitFor();
    // The result's editor draws only the lines in view: the verdicts are at its end.
    const result = page.locator('h3', { hasText: /^Result$/ }).locator('xpath=..').locator('.cm-scroller');
    let shown = '';
    await waitUntil(
      'the verdicts at the end of the result',
      async () => {
        await result.evaluate((e) => (e.scrollTop = e.scrollHeight));
        shown = await result.innerText();
        return shown.includes('"verdicts"');
      },
      30_000,
      250,
    );
    for (const v of verdicts) expect(shown).toContain(`"id": "${v.id}",\n      "verdict": "${v.verdict}"`);

    await page.getByRole('tab', { name: 'Search Attributes' }).click();
    await page.getByText(`"${PHASE.name}": "done"`).waitFor();
    const shownAttributes = await page.locator('main').innerText();
    for (const [name, value] of Object.entries(recorded)) expect(shownAttributes).toContain(`"${name}": "${value}"`);

    // The workflow's current details, where the UI shows them.
    await page.getByRole('tab', { name: 'User Metadata' }).click();
    // The UI renders them as markdown in a frame of their own: read every frame's text.
    const details = verdicts.map((v) => `${v.id} ${v.verdict}`).join(', ');
    await waitUntil(
      'the current details',
      async () => (await Promise.all(page.frames().map((f) => f.locator('body').innerText().catch(() => '')))).some((t) => t.includes(`done: ${details}; report `)),
      30_000,
      250,
    );
  });
});
