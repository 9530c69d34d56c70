import { ApplicationFailure } from '@temporalio/workflow';
import type { z } from 'zod';
import { describeZodError } from '../config/errors';

/**
 * Validates a workflow's single JSON input. A thrown ZodError would fail the workflow task and retry
 * it forever; a non-retryable ApplicationFailure fails the run at once with a readable message.
 */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown, workflow: string): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const problems = describeZodError(result.error);
  throw ApplicationFailure.nonRetryable(`${workflow}: invalid input: ${problems.join('; ')}`, 'InvalidInput', { problems });
}

/**
 * Failure types no activity retry heals, whatever the step: a bad or changed profile, SSH trust or
 * auth, sudo asking for a password, a malformed remote job. Workflows add their steps' own types.
 */
export const NON_RETRYABLE_SETUP = ['InvalidConfigError', 'HostKeyUnknownError', 'HostKeyChangedError', 'HostKeyRevokedError', 'SshAuthError', 'SudoPasswordRequired', 'InvalidRemoteJobSpec'];
