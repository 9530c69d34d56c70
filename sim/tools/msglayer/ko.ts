import { existsSync, readFileSync } from 'node:fs';

/**
 * The simulated msg_rdma.ko: a text file whose first line is the marker every imitation module
 * carries (sim/bin/kmod accepts only such files), then what `make` compiled in: the node list from
 * config.h and the kernel release the tree was configured for (its vermagic).
 */
export const MODULE_NAME = 'msg_rdma';
const MARKER = '#ae-sim-module';

export interface ModuleImage {
  module: typeof MODULE_NAME;
  /** ip_addresses[] exactly as written in config.h. */
  ips: string[];
  /** `uname -r` of the kernel the module was built against. */
  release: string;
  /** Node path of the msg_layer directory it was built in. */
  builtIn: string;
}

export const vermagic = (release: string): string => `${release} SMP mod_unload modversions `;

export function renderModule(image: ModuleImage): string {
  return `${MARKER} ${MODULE_NAME}\n${JSON.stringify(image)}\n`;
}

/** The image in `hostFile`; undefined when the file is missing or is not a simulated msg_rdma.ko. */
export function readModule(hostFile: string): ModuleImage | undefined {
  if (!existsSync(hostFile)) return undefined;
  let text: string;
  try {
    text = readFileSync(hostFile, 'utf8');
  } catch {
    return undefined;
  }
  const [head, body] = text.split('\n');
  if (head !== `${MARKER} ${MODULE_NAME}`) return undefined;
  try {
    const image = JSON.parse(body) as Partial<ModuleImage>;
    if (image.module !== MODULE_NAME || !Array.isArray(image.ips) || typeof image.release !== 'string') return undefined;
    return { module: MODULE_NAME, ips: image.ips.map(String), release: image.release, builtIn: String(image.builtIn ?? '') };
  } catch {
    return undefined;
  }
}

/** Module name as lsmod/rmmod see it: basename without .ko, dashes as underscores. */
export function moduleNameOf(arg: string): string {
  return (arg.split('/').pop() ?? arg).replace(/\.ko$/, '').replace(/-/g, '_');
}
