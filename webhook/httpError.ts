/** A request the listener refuses: the status, a message for the caller, and any headers it needs (Allow, Retry-After). */
export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}
