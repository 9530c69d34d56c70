import { createHash } from 'node:crypto';

/**
 * ipmi_sim's two input files, built from validated values (pure).
 *
 * lan.conf strings are quoted with no escape mechanism ('...' or "..."), a line may be at most 1023
 * characters, and `$name` outside quotes expands a variable: every value that goes in is checked so
 * that it cannot end its quotes or start another directive.
 */

export interface LanConfInput {
  /** BMC name: names the persistence dir under the state dir (`ipmi_sim/<name>/`). */
  name: string;
  host: string;
  port: number;
  user: string;
  password: string;
  /** Absolute path of the chassis-control program (run through `sh -c`). */
  chassisControl: string;
  /** SOL: ipmi_sim connects to this TCP port on 127.0.0.1 and relays it to `sol activate`. */
  solPort: number;
}

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
const IPV4 = /^(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;
const USER = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}$/;
/** IPMI 2.0 passwords are at most 20 bytes; printable ASCII without quotes, backslash or space. */
const PASSWORD = /^[\x21-\x7e]{1,20}$/;
const PASSWORD_BANNED = /["'\\]/;
/** Shell-safe absolute path (the program string is run by `sh -c` without further quoting). */
const SAFE_PATH = /^\/[A-Za-z0-9_.+@/-]+$/;

function port(p: number, what: string): number {
  if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`${what} must be 1..65535, got ${String(p)}`);
  return p;
}

/** Why a password cannot be used (never echoing it), or null when it can. */
export function passwordProblem(password: string): string | null {
  if (!PASSWORD.test(password)) return 'the BMC password must be 1..20 printable ASCII characters without spaces';
  if (PASSWORD_BANNED.test(password)) return 'the BMC password must not contain quotes or backslashes (ipmi_sim\'s lan.conf cannot escape them)';
  return null;
}

export function buildLanConf(c: LanConfInput): string {
  if (!NAME.test(c.name)) throw new Error(`BMC name must be a letter then letters, digits, _ or -, got ${JSON.stringify(c.name)}`);
  if (!IPV4.test(c.host)) throw new Error(`BMC address must be an IPv4 address, got ${JSON.stringify(c.host)}`);
  if (!USER.test(c.user)) throw new Error(`BMC user must be 1..16 of letters, digits, _ . - (not starting with -), got ${JSON.stringify(c.user)}`);
  const problem = passwordProblem(c.password);
  if (problem) throw new Error(problem);
  if (!SAFE_PATH.test(c.chassisControl) || c.chassisControl.length > 900) {
    throw new Error(`chassis-control path must be an absolute path of letters, digits and _ . + @ / - (at most 900 characters), got ${JSON.stringify(c.chassisControl)}`);
  }
  return [
    '# Written by fragvisor-ae sim/bmc: one simulated BMC. Holds a password: mode 0600.',
    `name "${c.name}"`,
    'set_working_mc 0x20',
    '  startlan 1',
    `    addr ${c.host} ${port(c.port, 'BMC port')}`,
    '    priv_limit admin',
    // IPMI 1.5 auth types; lanplus (RMCP+) authenticates with RAKP whatever these say.
    '    allowed_auths_callback md5',
    '    allowed_auths_user md5',
    '    allowed_auths_operator md5',
    '    allowed_auths_admin md5',
    `    guid ${createHash('md5').update(`fragvisor-ae-bmc:${c.name}`).digest('hex')}`,
    '  endlan',
    `  chassis_control "${c.chassisControl} 0x20"`,
    `  sol "tcp:127.0.0.1:${port(c.solPort, 'SOL port')}" 115200`,
    // No user 1 (anonymous): every session needs the user's password.
    `  user 2 true "${c.user}" "${c.password}" admin 10 md5`,
    '',
  ].join('\n');
}

/** The emulator command file: one BMC at IPMB 0x20, enabled. */
export function buildEmu(): string {
  return ['# Written by fragvisor-ae sim/bmc.', 'mc_setbmc 0x20', 'mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02', 'mc_enable 0x20', ''].join('\n');
}
