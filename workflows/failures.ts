import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';

/**
 * Validates a workflow's single JSON input. A thrown ZodError would fail the workflow task and retry
 * it forever; a non-retryable ApplicationFailure fails the run at once with a readable message.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, workflow: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => `${i.path.length ? i.path.join('.') : 'input'}: ${i.message}`);
  throw ApplicationFailure.nonRetryable(`${workflow}: invalid input: ${problems.join('; ')}`, 'InvalidInput', { problems });
}
