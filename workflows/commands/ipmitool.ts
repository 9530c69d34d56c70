/**
 * The one place that turns "power-cycle this node's BMC" into an `ipmitool` argv. Pure: no I/O, so
 * activities (real cluster) and the simulated BMC's tests build the very same command lines.
 *
 * The password is never an argument: `-P <pass>` would be readable by every local user in `ps`,
 * /proc/<pid>/cmdline and process accounting. Instead ipmitool reads it from the environment
 * variable IPMI_PASSWORD (`-E`, the default here: the caller puts the secret in the child's env only)
 * or from a file (`-f <file>`, when `passwordFile` is given). See docs/SIM-BMC.md.
 */

export type IpmiAction = 'status' | 'cycle' | 'off' | 'on' | 'sol';

export interface IpmiTarget {
  /** BMC address: host name or IPv4 (127.0.0.1 for the simulated BMCs). */
  host: string;
  /** RMCP port (623 on real BMCs; each simulated BMC has its own). */
  port: number;
  user: string;
  /** Read the password from this file (`-f`) instead of IPMI_PASSWORD (`-E`). */
  passwordFile?: string;
  /**
   * RMCP+ cipher suite (`-C`). Default 3 (RAKP-HMAC-SHA1 / HMAC-SHA1-96 / AES-CBC-128), which IPMI
   * 2.0 BMCs commonly offer by default; naming it skips ipmitool's "Get Channel Cipher Suites" probe, which
   * ipmi_sim does not answer (it costs ~10 s of retries per call there).
   */
  cipherSuite?: number;
}

/** The environment variable ipmitool's `-E` reads. */
export const IPMI_PASSWORD_ENV = 'IPMI_PASSWORD';

const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const HOST_NAME = /^(?=.{1,253}$)(?![0-9.]+$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
/** IPMI user names are at most 16 bytes; no leading `-` (it would read as an option). */
const BMC_USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}$/;
/** A local file path without whitespace or a leading `-`. */
const FILE_PATH = /^[A-Za-z0-9_.+@/~][A-Za-z0-9_.+@/~-]*$/;

const ACTION_ARGS: Record<IpmiAction, readonly string[]> = {
  status: ['chassis', 'power', 'status'],
  cycle: ['chassis', 'power', 'cycle'],
  off: ['chassis', 'power', 'off'],
  on: ['chassis', 'power', 'on'],
  sol: ['sol', 'activate'],
};

/**
 * argv (without the leading `ipmitool`) for one action against one BMC, e.g.
 * `-I lanplus -C 3 -H echo5-ipmi -p 623 -U ADMIN -E chassis power cycle`.
 * Throws on a value that could be read as an option or shell syntax.
 */
export function ipmitoolArgs(bmc: IpmiTarget, action: IpmiAction): string[] {
  if (!IPV4.test(bmc.host) && !HOST_NAME.test(bmc.host)) throw new Error(`BMC host must be a host name or an IPv4 address, got ${JSON.stringify(bmc.host)}`);
  if (!Number.isInteger(bmc.port) || bmc.port < 1 || bmc.port > 65535) throw new Error(`BMC port must be 1..65535, got ${String(bmc.port)}`);
  if (!BMC_USER.test(bmc.user)) throw new Error(`BMC user must be 1..16 of letters, digits, _ . - (not starting with -), got ${JSON.stringify(bmc.user)}`);
  const suite = bmc.cipherSuite ?? 3;
  if (!Number.isInteger(suite) || suite < 0 || suite > 17) throw new Error(`cipher suite must be 0..17, got ${String(suite)}`);
  if (!Object.hasOwn(ACTION_ARGS, action)) throw new Error(`unknown BMC action ${JSON.stringify(action)}`);
  let password: string[];
  if (bmc.passwordFile !== undefined) {
    if (!FILE_PATH.test(bmc.passwordFile)) throw new Error(`password file path must have no whitespace or leading -, got ${JSON.stringify(bmc.passwordFile)}`);
    password = ['-f', bmc.passwordFile];
  } else {
    password = ['-E'];
  }
  return ['-I', 'lanplus', '-C', String(suite), '-H', bmc.host, '-p', String(bmc.port), '-U', bmc.user, ...password, ...ACTION_ARGS[action]];
}
