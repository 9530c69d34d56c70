/**
 * Typed outcomes of a remote job that are not results. A non-zero exit is a result (RemoteJobResult);
 * these are the cases where there is no exit code to report, or where sudo refused to run the command.
 * `details` is plain data for Temporal failure details (never the log itself, only its last lines).
 */

interface JobFacts {
  node: string;
  key: string;
  /** Last lines of the log copied so far. */
  tail: string[];
  /** Log bytes copied to the run store. */
  logBytes: number;
}

abstract class RemoteJobError extends Error {
  readonly node: string;
  readonly key: string;
  readonly tail: string[];
  readonly logBytes: number;
  constructor(message: string, facts: JobFacts) {
    super(message);
    ({ node: this.node, key: this.key, tail: this.tail, logBytes: this.logBytes } = facts);
  }
  get details(): Record<string, unknown> {
    return { node: this.node, key: this.key, tail: this.tail, logBytes: this.logBytes };
  }
}

const lastLines = (tail: readonly string[], n = 5) => (tail.length === 0 ? '(empty log)' : tail.slice(-n).join('\n'));

/** The job ran past its timeout; its process group on the node was killed (unless `killed` is false). */
export class RemoteJobTimeoutError extends RemoteJobError {
  override readonly name = 'RemoteJobTimeoutError';
  constructor(
    facts: JobFacts,
    readonly timeoutMs: number,
  ) {
    super(`node ${facts.node}: remote job ${facts.key} did not finish within ${timeoutMs} ms; its process group was killed. Last lines:\n${lastLines(facts.tail)}`, facts);
  }
}

/**
 * The job ended without an exit code: the node rebooted under it (`rebooted`), its process is gone
 * without having written one (`vanished`), its folder on the node is gone (`missing`), or someone
 * else killed it (`killed:<why>`). Whether to run it again is the caller's call (spec.restartLost).
 */
export class RemoteJobLostError extends RemoteJobError {
  override readonly name = 'RemoteJobLostError';
  constructor(
    facts: JobFacts,
    readonly reason: string,
  ) {
    const why: Record<string, string> = {
      rebooted: 'the node rebooted while it ran',
      vanished: 'its process is gone without an exit code',
      missing: 'its folder on the node is gone',
    };
    super(`node ${facts.node}: remote job ${facts.key} was lost: ${why[reason] ?? reason}. Last lines:\n${lastLines(facts.tail)}`, facts);
  }
  override get details(): Record<string, unknown> {
    return { ...super.details, reason: this.reason };
  }
}

/** `sudo -n` wanted a password: no retry can type one. Maps to the non-retryable failure type `SudoPasswordRequired`. */
export class SudoPasswordRequiredError extends RemoteJobError {
  override readonly name = 'SudoPasswordRequired';
  constructor(
    facts: JobFacts,
    readonly command: string,
    user: string | undefined,
  ) {
    const who = user ?? '<the SSH user>';
    super(
      `node ${facts.node}: remote job ${facts.key}: \`sudo -n ${command}\` needs a password, and nobody is there to type one ` +
        `(${facts.tail.find((l) => l.startsWith('sudo: ')) ?? lastLines(facts.tail, 1)}). Fix: on ${facts.node}, give ${who} a NOPASSWD ` +
        `sudoers rule for that command, e.g. \`${who} ALL=(root) NOPASSWD: <full path of ${command}>\` in /etc/sudoers.d/fragvisor-ae ` +
        `(edit with visudo), then test it there with \`sudo -n true\` (or \`sudo -n -l ${command}\` for a rule limited to that command).`,
      facts,
    );
  }
  override get details(): Record<string, unknown> {
    return { ...super.details, command: this.command };
  }
}

/** A malformed spec is a bug in the calling code: non-retryable failure type `InvalidRemoteJobSpec`. */
export class InvalidRemoteJobSpecError extends Error {
  override readonly name = 'InvalidRemoteJobSpec';
  readonly details: Record<string, unknown>;
  constructor(message: string, key: string) {
    super(message);
    this.details = { key };
  }
}
