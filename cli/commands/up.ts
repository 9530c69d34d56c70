import { parseArgs } from 'node:util';
import { DEFAULT_TEMPORAL_PORT, DEFAULT_UI_PORT, SIM_CLUSTER } from '../../config/constants';
import { defaultDemoInput, runDemo } from '../../workers/demo';
import type { ReproduceClaimsInput } from '../../workflows/inputs';
import { runInputFromArgs } from '../runInput';
import { startLocalStack } from '../../workers/localStack';
import { installRuntime } from '../../workers/runtime';
import { UsageError } from '../usageError';

/**
 * Simulated durations x this in the local stack: a 12-minute -j16 kernel build takes about 14 s, a
 * 2-minute guest boot 2.4 s, so the demo's whole AE takes minutes; and the benchmarks' model times
 * (a 250 ms PHP request: 5 ms, an OpenLambda burst: 17-35 ms) outweigh the simulator's own overhead
 * per request and per process start, so the verdicts follow the model. Measured: at 0.003 they did
 * not (C1 and C3 failed on the default model); at 0.01 C1's 250 ms level was a near thing
 * (FragVisor/GiantVM 1.15, model 1.25) and came out inconclusive in one of two quiet runs.
 */
export const LOCAL_TIME_SCALE = 0.02;

export const usage = `ae up [--no-demo | --demo-input file.json] [--no-webhook] [--model NAME] [--nodes N] [--time-scale ${LOCAL_TIME_SCALE}] [--port ${DEFAULT_TEMPORAL_PORT}] [--ui-port ${DEFAULT_UI_PORT}]
  The local stack (what \`npm start\` runs): a persistent Temporal dev server with its Web UI,
  the simulated cluster (N nodes, default 4), a worker, the CI webhook listener (127.0.0.1:8787,
  AE_WEBHOOK_PORT; --no-webhook skips it), and a demo: the whole reproduceClaims run
  (every experiment, both hypervisors) on the simulated cluster, followed live, ending with the
  claims' verdicts and the report's path. --demo-input runs that reproduceClaims input instead (its
  cluster is always the simulated one). --model picks the simulated guests' performance model
  (config/models: default, where C1-C3 hold; c1-fails, where C1 fails). Stays up until Ctrl-C or SIGTERM, then stops everything it
  started. State lives in .data/ (AE_DATA_DIR overrides).`;

function intOption(name: string, value: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name} must be a whole number in ${min}..${max}, got "${value}"`);
  return n;
}

/** --demo-input file.json, validated here (the stack does not start on a bad one), on the simulated cluster. */
function demoInputFrom(file: string): ReproduceClaimsInput {
  try {
    return runInputFromArgs({ cluster: SIM_CLUSTER, input: file }).config;
  } catch (err) {
    if (err instanceof UsageError) throw new UsageError(err.message.replace(/^--input /gm, '--demo-input '));
    throw err;
  }
}

function scaleOption(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || n > 1000) throw new UsageError(`--time-scale must be a number in 0..1000 (0 = no simulated waiting), got "${value}"`);
  return n;
}

export async function run(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      demo: { type: 'boolean', default: true },
      'no-demo': { type: 'boolean', default: false },
      'demo-input': { type: 'string' },
      'no-webhook': { type: 'boolean', default: false },
      model: { type: 'string' },
      nodes: { type: 'string', default: '4' },
      'time-scale': { type: 'string', default: String(LOCAL_TIME_SCALE) },
      port: { type: 'string', default: String(DEFAULT_TEMPORAL_PORT) },
      'ui-port': { type: 'string', default: String(DEFAULT_UI_PORT) },
    },
    strict: true,
  });
  // The stack prints its own progress; the SDK only speaks up for warnings (AE_LOG_LEVEL=INFO for more).
  installRuntime('WARN');
  const demo = values.demo && !values['no-demo'];
  const demoInput = values['demo-input'] !== undefined ? demoInputFrom(values['demo-input']) : undefined;
  const nodes = intOption('nodes', values.nodes, 1, 64);
  const stack = await startLocalStack({
    nodes,
    webhooks: !values['no-webhook'],
    ...(values.model ? { model: values.model } : {}),
    timeScale: scaleOption(values['time-scale']),
    port: intOption('port', values.port, 1, 65535),
    uiPort: intOption('ui-port', values['ui-port'], 1, 65535),
  });
  console.log(`\nReady. Web UI: ${stack.uiUrl}   Ctrl-C stops everything.`);

  let stopping = false;
  if (demo) {
    runDemo({ address: stack.address, uiUrl: stack.uiUrl, input: demoInput ?? defaultDemoInput(nodes), log: (line) => console.log(line), stream: process.stdout }).catch((err: Error) => {
      if (!stopping) console.error(`Demo: ${err.message}`);
    });
  }
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping the worker, the simulated cluster and the dev server...`);
    stack.stop().then(
      () => console.log('stopped.'),
      (err: Error) => console.error(`stop failed: ${err.message}`),
    );
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  await stack.done;
  if (!stopping) {
    await stack.stop();
    return 1;
  }
  return 0;
}
