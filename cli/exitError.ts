/** The `ae` exit codes (notes/SESSION3.md): every command means the same by each. */
export const EXIT = { ok: 0, failed: 1, usage: 2, unreachable: 3, notFound: 4 } as const;

/** A failure that ends the command with a given exit code, printed as `ae <command>: <message>` (no usage). */
export class ExitError extends Error {
  override readonly name = 'ExitError';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/** gRPC UNAVAILABLE: the server went away after we connected. */
const GRPC_UNAVAILABLE = 14;

/** The exit code for an error that reached `main`: its own, 3 when Temporal became unreachable, else 1. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof ExitError) return err.exitCode;
  // Required here, on the error path only: loading the Temporal client costs every command, even
  // `ae exec` that never talks to Temporal, ~300 ms of start-up.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { isGrpcServiceError } = require('@temporalio/client') as typeof import('@temporalio/client');
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 4; depth++, e = e.cause) {
    if (isGrpcServiceError(e) && e.code === GRPC_UNAVAILABLE) return EXIT.unreachable;
  }
  return EXIT.failed;
}
