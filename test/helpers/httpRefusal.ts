import { HttpError } from '../../webhook/httpError';

/** `<status> <message>` of the HttpError `run` throws; fails the test if it throws nothing or something else. */
export function refusal(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    if (err instanceof HttpError) return `${err.status} ${err.message}`;
    throw err;
  }
  throw new Error('expected an HttpError');
}
