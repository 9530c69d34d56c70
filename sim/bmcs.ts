import { randomInt } from 'node:crypto';
import { accessSync, chmodSync, constants, existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { startBmc, type SimBmc } from './bmc/bmc';
import type { SimNode } from './node';
import { SIM_BMC_USER } from './profile';
import { writeFileAtomic } from './state';
import type { SimWorldNode } from './world';

/**
 * One simulated BMC per node (docs/SIM-BMC.md: the real ipmi_sim, driven by the real ipmitool),
 * wired to the node's power: `chassis power cycle` is a hard power cycle that also revives a node
 * hung in a reboot; `sol activate` shows the node's console log. All BMCs share one generated
 * password, kept in DIR/bmc_password (0600).
 */

export const BMC_PASSWORD_FILE = 'bmc_password';

/** The ipmi_sim binary, if installed. */
export function findIpmiSim(): string | undefined {
  for (const dir of [...(process.env.PATH ?? '').split(':'), '/usr/sbin', '/usr/bin', '/usr/local/bin', '/usr/local/sbin']) {
    if (!dir) continue;
    const p = path.join(dir, 'ipmi_sim');
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // next
    }
  }
  return undefined;
}

/** The password file, generated on first use (IPMI passwords: at most 20 printable characters). */
export function bmcPasswordFile(stateDir: string): string {
  const file = path.join(stateDir, BMC_PASSWORD_FILE);
  if (!existsSync(file) || !/^[A-Za-z0-9]{8,20}$/.test(readFileSync(file, 'utf8').trim())) {
    const alphabet = 'ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789';
    const password = Array.from({ length: 16 }, () => alphabet[randomInt(alphabet.length)]).join('');
    writeFileAtomic(file, `${password}\n`, 0o600);
  }
  chmodSync(file, 0o600);
  return file;
}

export interface NodeBmcOptions {
  ipmiSim: string;
  passwordFile: string;
  /** The port this node's BMC had in the last run (reused when free). */
  port?: number;
  log: (line: string) => void;
}

/** Starts the BMC of one node; a saved port that is taken now is given up for a free one. */
export async function startNodeBmc(sim: SimNode, node: SimWorldNode, opts: NodeBmcOptions): Promise<SimBmc> {
  const hooks = {
    powerOff: () => {
      node.count('bmc:power-off');
      return sim.powerOff();
    },
    powerOn: () => {
      node.count('bmc:power-on');
      return sim.powerOn();
    },
    powerCycle: () => {
      node.count('bmc:power-cycle');
      return sim.powerCycle();
    },
    status: (): 'on' | 'off' => (sim.state.power === 'off' || sim.state.power === 'stopped' ? 'off' : 'on'),
  };
  const base = { node: sim.name, stateDir: sim.nodeDir, user: SIM_BMC_USER, passwordFile: opts.passwordFile, hooks, consoleLogFile: node.kmsg.consoleFile, ipmiSimPath: opts.ipmiSim, log: opts.log };
  if (opts.port !== undefined) {
    try {
      return await startBmc({ ...base, port: opts.port });
    } catch {
      // taken by something else since the last run
    }
  }
  return startBmc(base);
}
