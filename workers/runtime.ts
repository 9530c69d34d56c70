import { DefaultLogger, Runtime, type LogLevel } from '@temporalio/worker';

const LEVELS: readonly LogLevel[] = ['TRACE', 'DEBUG', 'INFO', 'WARN', 'ERROR'];

/**
 * The SDK's log level for our processes: AE_LOG_LEVEL, else `fallback`. Must run before the first
 * worker or native connection is created (the runtime is installed once per process).
 */
export function installRuntime(fallback: LogLevel, env: NodeJS.ProcessEnv = process.env): void {
  const wanted = env.AE_LOG_LEVEL?.toUpperCase();
  const level = LEVELS.find((l) => l === wanted) ?? fallback;
  Runtime.install({ logger: new DefaultLogger(level) });
}
