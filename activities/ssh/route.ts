import os from 'node:os';
import type { SshSettings } from '../../config/schema';
import { fileConfigSource } from './configFiles';
import { SshConfigError } from './errors';
import { resolveSshConfig, SshConfigSyntaxError, type ConfigSource, type LocalContext } from './sshConfig';

/**
 * From (target, settings) to the list of SSH hops to open: jump hosts first, the target last. Profile
 * values act like ssh's command-line options (-l -p -i -J); the rest comes from settings.configFile.
 */

export interface SshTarget {
  node: string;
  host: string;
  port?: number;
  user?: string;
}

export interface Hop {
  /** The name as given (profile host, jump spec or ssh_config alias). */
  alias: string;
  /** Address to connect to and to look up in known_hosts. */
  hostname: string;
  port: number;
  user: string;
  identityFiles: string[];
  /** Identity files that came from the profile: these must exist, config ones are skipped if absent. */
  requiredIdentityFiles: string[];
}

/** A connection chain may not be longer than this (stops ProxyJump loops in a config). */
const MAX_HOPS = 8;

export function localContext(): LocalContext {
  const info = os.userInfo();
  return { home: os.homedir(), user: info.username, uid: info.uid, hostname: os.hostname(), env: process.env };
}

interface JumpSpec {
  user?: string;
  host: string;
  port?: number;
}

/** Parses one `[user@]host[:port]` (or `ssh://...`, `[v6]:port`) element of a ProxyJump list. */
export function parseJumpSpec(spec: string): JumpSpec {
  const m = /^(?:ssh:\/\/)?(?:([^@\s]+)@)?(\[[0-9A-Fa-f:.]+\]|[^:@/\s[\]]+)(?::(\d{1,5}))?\/?$/.exec(spec);
  const port = m?.[3] === undefined ? undefined : Number(m[3]);
  if (!m || (port !== undefined && (port < 1 || port > 65535))) {
    throw new SshConfigSyntaxError(`bad jump host "${spec}": expected [user@]host[:port]`);
  }
  const host = m[2].startsWith('[') ? m[2].slice(1, -1) : m[2];
  return { ...(m[1] === undefined ? {} : { user: m[1] }), host, ...(port === undefined ? {} : { port }) };
}

function resolveChain(
  alias: string,
  cli: { user?: string; port?: number; proxyJump?: string },
  settings: SshSettings,
  source: ConfigSource,
  local: LocalContext,
  depth: number,
): Hop[] {
  if (depth > MAX_HOPS) throw new SshConfigSyntaxError(`more than ${MAX_HOPS} jump hosts (a ProxyJump loop?) while resolving ${alias}`);
  const required = settings.identityFile ? [settings.identityFile] : [];
  const r = resolveSshConfig(alias, { configFile: settings.configFile, source, local, cli: { ...cli, identityFiles: required } });
  if (r.proxyCommand !== undefined) {
    throw new SshConfigSyntaxError(`${settings.configFile} sets ProxyCommand for ${alias}; only ProxyJump is supported (or set ssh.jumpHost)`);
  }
  // Command-line identity files come first in the resolved list, already expanded.
  const requiredIdentityFiles = r.identityFiles.slice(0, required.length);
  const hop: Hop = { alias, hostname: r.hostname, port: r.port, user: r.user, identityFiles: r.identityFiles, requiredIdentityFiles };
  if (r.proxyJump === undefined) return [hop];
  // `-J a,b,c` means: reach c through `-J a,b`, then the destination through c (ssh.c builds it that way).
  const specs = r.proxyJump.split(',');
  const last = parseJumpSpec(specs[specs.length - 1]);
  const rest = specs.slice(0, -1).join(',');
  const before = resolveChain(last.host, { user: last.user, port: last.port, ...(rest ? { proxyJump: rest } : {}) }, settings, source, local, depth + 1);
  if (before.length + 1 > MAX_HOPS) throw new SshConfigSyntaxError(`more than ${MAX_HOPS} hops to reach ${alias}`);
  return [...before, hop];
}

/** The hops to open for a target, first to last. Config problems become SshConfigError naming the node. */
export function planRoute(target: SshTarget, settings: SshSettings, source: ConfigSource = fileConfigSource, local: LocalContext = localContext()): Hop[] {
  try {
    return resolveChain(target.host, { user: target.user, port: target.port, proxyJump: settings.jumpHost }, settings, source, local, 0);
  } catch (err) {
    if (err instanceof SshConfigSyntaxError) throw new SshConfigError(`node ${target.node}: ${err.message}`, target.node);
    throw err;
  }
}
