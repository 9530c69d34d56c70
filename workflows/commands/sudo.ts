/**
 * Root commands on the nodes. Always `sudo -n`: without a terminal a password prompt would wait
 * forever (or until the SSH timeout); -n makes sudo fail at once instead, and we say how to fix it.
 */

/** argv that runs `argv` as root without ever prompting. */
export function asRoot(argv: readonly string[]): string[] {
  return ['sudo', '-n', ...argv];
}

/** What `sudo -n` (and older sudos without a tty) print when the user needs a password. */
const PASSWORD_REQUIRED = /^sudo: (?:a password is required|a terminal is required to read the password|no tty present and no askpass program specified)/m;

/** True when stderr shows sudo refusing because it would have to ask for a password. */
export function sudoPasswordRequired(stderr: string): boolean {
  return PASSWORD_REQUIRED.test(stderr);
}

/** The message for that refusal: which node, and what the operator changes so it never asks. */
export function sudoPasswordRequiredMessage(node: string, user: string | undefined, command: string): string {
  const who = user ?? '<ssh user>';
  return (
    `node ${node}: sudo asks for a password for \`${command}\` (the orchestrator never types passwords). ` +
    `Give the SSH user passwordless sudo on ${node}, e.g. \`echo '${who} ALL=(ALL) NOPASSWD: ALL' | sudo tee /etc/sudoers.d/fragvisor-ae\` ` +
    `(then \`sudo -n true\` over SSH must succeed), and retry`
  );
}
