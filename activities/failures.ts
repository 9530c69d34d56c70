import { ApplicationFailure } from '@temporalio/common';
import { InvalidConfigError } from '../config/errors';
import { InvalidRemoteJobSpecError, SudoPasswordRequiredError } from './remoteJob/errors';
import { toActivityFailure as sshFailure } from './ssh/errors';

/** Errors that can never heal by retrying become non-retryable failures with their own type. */
export function asActivityFailure(err: unknown): unknown {
  if (err instanceof InvalidConfigError) return ApplicationFailure.nonRetryable(err.message, 'InvalidConfigError', { problems: err.problems });
  // Types 'SudoPasswordRequired' and 'InvalidRemoteJobSpec': no retry types a password or fixes the calling code.
  if (err instanceof SudoPasswordRequiredError || err instanceof InvalidRemoteJobSpecError) return ApplicationFailure.nonRetryable(err.message, err.name, err.details);
  return sshFailure(err);
}

/** Wraps an activity body so its errors are classified once, in one place. */
export async function classified<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw asActivityFailure(err);
  }
}
