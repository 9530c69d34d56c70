import fs from 'node:fs';
import { utils, type AnyAuthMethod, type ParsedKey } from 'ssh2';
import { SshAuthError, SshIdentityFileError } from './errors';
import { withDecodedKey } from './keySign';
import type { Hop } from './route';
import type { LocalContext } from './sshConfig';

/**
 * Credentials for one hop: the identity files that exist and parse, then ssh-agent when SSH_AUTH_SOCK is
 * set. Files go first so a full agent cannot use up the server's MaxAuthTries before our key is offered.
 * Key material stays in memory here and is never logged or put in an error message.
 */

/** ssh's defaults when no IdentityFile is named, limited to the key types ssh2 can use. */
const DEFAULT_IDENTITIES = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

type Loaded = { ok: true; key: ParsedKey } | { ok: false; problem: string; encrypted?: boolean };

/**
 * Keys already parsed, by path, while the file stays the same (inode, size, times): a pool opens one
 * connection per node, all with the same identity file.
 */
const parsedKeys = new Map<string, { stamp: string; key: ParsedKey }>();
const stampOf = (st: fs.Stats) => `${st.dev}:${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;

function loadKey(file: string): Loaded | undefined {
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return { ok: false, problem: `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  if (!st.isFile()) return { ok: false, problem: 'is not a regular file' };
  // Like ssh's sshkey_perm_ok(): a private key others can read is not trusted to be private.
  if (st.uid === process.getuid?.() && (st.mode & 0o077) !== 0) {
    return { ok: false, problem: `has permissions ${(st.mode & 0o777).toString(8)}, which are too open (chmod 600 it)` };
  }
  const cached = parsedKeys.get(file);
  if (cached?.stamp === stampOf(st)) return { ok: true, key: cached.key };
  let parsed: ReturnType<typeof utils.parseKey>;
  try {
    parsed = utils.parseKey(fs.readFileSync(file));
  } catch (err) {
    return { ok: false, problem: `cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})` };
  }
  if (parsed instanceof Error) {
    const encrypted = /encrypt|passphrase/i.test(parsed.message);
    return encrypted
      ? { ok: false, encrypted, problem: 'is passphrase-protected (load it into ssh-agent with ssh-add)' }
      : { ok: false, problem: 'is not a private key in a format ssh2 supports' };
  }
  const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  if (!key || !key.isPrivateKey()) return { ok: false, problem: 'does not hold a private key' };
  parsedKeys.set(file, { stamp: stampOf(st), key: withDecodedKey(key) });
  return { ok: true, key };
}

/** Auth methods for ssh2's `authHandler`, in the order to try them. */
export function loadCredentials(node: string, hop: Hop, local: LocalContext): AnyAuthMethod[] {
  const agent = local.env?.SSH_AUTH_SOCK || undefined;
  const named = hop.identityFiles.length > 0 ? hop.identityFiles : DEFAULT_IDENTITIES.map((n) => `${local.home}/.ssh/${n}`);
  const files = [...new Set(named)];
  const methods: AnyAuthMethod[] = [];
  for (const file of files) {
    const required = hop.requiredIdentityFiles.includes(file);
    const loaded = loadKey(file);
    if (loaded === undefined) {
      if (required) throw new SshIdentityFileError(`node ${node}: identity file ${file} (ssh.identityFile) does not exist`, node, file);
      continue; // ssh skips missing config/default identities too
    }
    if (!loaded.ok) {
      // An encrypted profile key is fine when the agent holds it; any other problem with it is fatal.
      if (required && !(loaded.encrypted && agent)) throw new SshIdentityFileError(`node ${node}: identity file ${file} ${loaded.problem}`, node, file);
      continue;
    }
    methods.push({ type: 'publickey', username: hop.user, key: loaded.key });
  }
  if (agent) methods.push({ type: 'agent', username: hop.user, agent });
  if (methods.length === 0) {
    throw new SshAuthError(
      `node ${node}: no credentials for ${hop.user}@${hop.hostname}:${hop.port}: no usable identity file (looked at ${files.join(', ')}) and SSH_AUTH_SOCK is not set`,
      node,
    );
  }
  return methods;
}
