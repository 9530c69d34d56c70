/**
 * Remote jobs: anything on a node that takes longer than a few seconds (kernel builds, installs,
 * insmod) runs detached from the SSH session that started it, in its own session and process group,
 * with output to a log file and its exit code to a file, under a stable key. Starting is idempotent
 * (same key: the running or finished job is found, never a second copy), so a retried activity
 * after an SSH drop or a worker crash reattaches and follows the same log from where it was.
 */

export interface RemoteJobSpec {
  /** Stable key: [A-Za-z0-9][A-Za-z0-9_.-]* (at most 128). Same key = same job on that node. */
  key: string;
  /** The command as argv (never a shell string built from values); quoted with toCommandLine. */
  argv: readonly string[];
  /** Working directory on the node (absolute, safe characters only). */
  cwd?: string;
  /** Run as root through `sudo -n` (a password prompt is a non-retryable SudoPasswordRequired failure). */
  sudo?: boolean;
  /** Bytes written to the job's stdin (e.g. a config.h); kept in the job dir, not in any payload. */
  stdin?: string;
  /**
   * When the job under this key was lost (the node rebooted under it, or it vanished without an exit
   * code), start it afresh instead of throwing RemoteJobLostError. Default false: the caller decides.
   */
  restartLost?: boolean;
}

export interface RemoteJobResult {
  key: string;
  exitCode: number;
  /** Log copy in the run store, relative to the run folder. */
  log: string;
  logBytes: number;
  /** Last lines of the log (at most ~40 lines / 4 KiB), for error messages and reports. */
  tail: string[];
  /** True when this call found the job already started (running or finished) instead of starting it. */
  reattached: boolean;
  /** Wall time of the job on the node, from its own start and end stamps (ms). */
  durationMs: number;
}
