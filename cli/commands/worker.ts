import { parseArgs } from 'node:util';
import { TASK_QUEUE } from '../../config/constants';
import { installRuntime } from '../../workers/runtime';
import { createAeWorker } from '../../workers/worker';

export const usage = `ae worker [--task-queue NAME]
  Runs a worker on task queue "${TASK_QUEUE}" against the configured Temporal (TEMPORAL_ADDRESS,
  TEMPORAL_NAMESPACE, ... or the local dev server). Stops cleanly on Ctrl-C / SIGTERM.`;

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { 'task-queue': { type: 'string', default: TASK_QUEUE } }, strict: true });
  const taskQueue = values['task-queue'];
  installRuntime('INFO');
  const worker = await createAeWorker({ taskQueue });
  console.log(`worker polling task queue "${taskQueue}"`);
  await worker.run();
  return 0;
}
