import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Document, parse as parseYaml } from 'yaml';
import { parseProfile, type LoadedProfile } from '../config/load';
import { clustersDir } from '../config/paths';
import { SIM_CLUSTER } from '../config/constants';
import { NODE_USER } from './sandbox';

/** Where the shared defaults of the simulated cluster live (another part of the project owns it). */
export const SIM_TEMPLATE = (): string => path.join(clustersDir(), 'sim.yaml');

/** Used when the template is missing (or lacks a section). */
const FALLBACK = {
  description: 'Simulated FragVisor testbed: SSH servers on 127.0.0.1 that imitate the echo cluster. Every number measured on it is labelled SIMULATED.',
  paths: {
    fragvisor: '/home/ae/FragVisor',
    kernelTree: '/home/ae/FragVisor/fragvisor-linux',
    kvmtool: '/home/ae/fragvisor-kvmtool',
    ramdisks: '/home/ae/ramdisks',
  },
  guest: { ip: '10.4.4.222', hostIp: '10.4.4.221', mac: '00:11:22:33:44:55', ssh: { host: '127.0.0.1', port: 2222, user: 'root' } },
};

export interface SimProfileNode {
  name: string;
  port: number;
  /** The node's simulated BMC (UDP port on 127.0.0.1), when it has one. */
  bmcPort?: number;
}

/** The BMC account of every simulated node; its password is in DIR/bmc_password. */
export const SIM_BMC_USER = 'ADMIN';
/** NAME of the variable the profile tells the orchestrator to read the BMC password from. */
export const SIM_BMC_PASSWORD_ENV = 'AE_SIM_BMC_PASSWORD';

export interface SimProfileInput {
  nodes: SimProfileNode[];
  /** Placeholder SSH port of the guest (the guest imitation comes later). */
  guestSshPort: number;
  /** Directory the profile is written to: its relative SSH paths resolve against it. */
  dir: string;
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

function readTemplate(file: string): Obj {
  if (!existsSync(file)) return {};
  let raw: unknown;
  try {
    raw = parseYaml(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new Error(`${file}: the simulated cluster's template is not valid YAML: ${(err as Error).message}`);
  }
  if (!isObj(raw)) throw new Error(`${file}: the simulated cluster's template must be a YAML mapping`);
  return raw;
}

/**
 * The live profile of the simulated cluster: shared defaults from the template (paths, guest,
 * ssh settings, timeouts, description, per-index rdmaIp), nodes and SSH files from the running sim.
 * Returns the YAML text and the validated profile (validated exactly as `--cluster sim` loads it).
 */
/** The InfiniBand address of each of `count` simulated nodes: the template's, else 10.4.6.(10+i), never twice. */
export function simRdmaIps(count: number, templateFile = SIM_TEMPLATE()): string[] {
  const template = readTemplate(templateFile);
  const templateNodes = Array.isArray(template.nodes) ? template.nodes.filter(isObj) : [];
  const usedIps = new Set<string>();
  return Array.from({ length: count }, (_, i) => {
    const fromTemplate = templateNodes[i];
    let rdmaIp = typeof fromTemplate?.rdmaIp === 'string' && !usedIps.has(fromTemplate.rdmaIp) ? fromTemplate.rdmaIp : `10.4.6.${10 + i}`;
    for (let k = 10 + i; usedIps.has(rdmaIp); k++) rdmaIp = `10.4.6.${k % 250}`;
    usedIps.add(rdmaIp);
    return rdmaIp;
  });
}

/** The paths the checkout lives at (template's `paths`, else the defaults). */
export function simPaths(templateFile = SIM_TEMPLATE()): typeof FALLBACK.paths {
  const template = readTemplate(templateFile);
  return isObj(template.paths) ? { ...FALLBACK.paths, ...(template.paths as Partial<typeof FALLBACK.paths>) } : FALLBACK.paths;
}

export function buildSimProfile(input: SimProfileInput, templateFile = SIM_TEMPLATE()): { yaml: string; loaded: LoadedProfile } {
  const template = readTemplate(templateFile);
  const ips = simRdmaIps(input.nodes.length, templateFile);
  const nodes = input.nodes.map((n, i) => ({
    name: n.name,
    ...(i === 0 ? { origin: true } : {}),
    host: '127.0.0.1',
    port: n.port,
    user: NODE_USER,
    rdmaIp: ips[i],
    ...(n.bmcPort !== undefined ? { bmc: { host: '127.0.0.1', port: n.bmcPort, user: SIM_BMC_USER, passwordEnv: SIM_BMC_PASSWORD_ENV } } : {}),
  }));
  const guest = isObj(template.guest) ? template.guest : FALLBACK.guest;
  const guestSsh = isObj(guest.ssh) ? guest.ssh : FALLBACK.guest.ssh;
  const ssh = isObj(template.ssh) ? template.ssh : {};
  const profile: Obj = {
    name: SIM_CLUSTER,
    description: typeof template.description === 'string' ? template.description.trim() : FALLBACK.description,
    simulated: true,
    nodes,
    paths: isObj(template.paths) ? template.paths : FALLBACK.paths,
    guest: { ...guest, ssh: { ...guestSsh, host: '127.0.0.1', port: input.guestSshPort } },
    ssh: { ...ssh, identityFile: 'id_ed25519', knownHosts: 'known_hosts', configFile: 'ssh_config' },
    ...(isObj(template.timeouts) ? { timeouts: template.timeouts } : {}),
  };

  const doc = new Document(profile);
  const mac = doc.getIn(['guest', 'mac'], true) as { type?: string } | undefined;
  if (mac && typeof mac === 'object') mac.type = 'QUOTE_DOUBLE';
  doc.commentBefore = [
    ' The live profile of the simulated cluster, written by the simulator (sim/cluster.ts) at every start:',
    ' edits are overwritten. Shared defaults come from config/clusters/sim.yaml; nodes, ports and the SSH',
    ' files (relative to this directory) come from the running simulator. Use it with `--cluster sim`.',
    ...(input.nodes.some((n) => n.bmcPort !== undefined)
      ? [` The simulated BMCs (user ${SIM_BMC_USER}) share one password, in ${path.join(input.dir, 'bmc_password')}:`, `   export ${SIM_BMC_PASSWORD_ENV}="$(cat ${path.join(input.dir, 'bmc_password')})"`]
      : []),
  ].join('\n');
  const yaml = doc.toString({ lineWidth: 0 });
  const file = path.join(input.dir, 'cluster.yaml');
  const source = existsSync(templateFile) ? `${file} (generated from the template ${templateFile})` : file;
  const loaded = parseProfile(yaml, source, input.dir);
  return { yaml, loaded: { ...loaded, file } };
}
