import { DELEGATE, type ToolContext } from '../types';
import { inAton } from './configH';
import { msgLayerDeps } from './deps';
import { lines } from './dmesg';
import { MODULE_NAME, readModule, vermagic } from './ko';
import { moduleInit } from './init';
import { aborted, write } from './output';
import { Instance, nodeState, rendezvous } from './rendezvous';

/**
 * `insmod msg_rdma.ko`: checks as the kernel's module loader does (root, already loaded, vermagic,
 * symbols), then runs the module's init and blocks until it returns. Other modules go to the next
 * insmod (DELEGATE). Errors are worded as kmod's insmod words them.
 */
export async function insmodHandler(ctx: ToolContext): Promise<number | typeof DELEGATE> {
  const file = ctx.argv.slice(1).find((a) => !a.startsWith('-'));
  if (!file) return DELEGATE;
  const nodePath = ctx.node.resolve(ctx.cwd, file);
  let hostFile: string;
  try {
    hostFile = ctx.node.hostPath(nodePath);
  } catch {
    return DELEGATE;
  }
  const image = readModule(hostFile);
  if (!image) return DELEGATE;
  const { node, world } = ctx;
  node.count('insmod');
  const refuse = async (reason: string) => {
    await write(ctx.stderr, `insmod: ERROR: could not insert module ${file}: ${reason}\n`);
    return 1;
  };
  if (!ctx.sudo) return refuse('Operation not permitted');

  const state = nodeState(node);
  if (state.module?.live) return refuse('File exists');
  const kernel = msgLayerDeps().bootedKernel(node);
  if (image.release !== kernel.release) {
    node.dmesg.append(lines.versionMagic(MODULE_NAME, vermagic(image.release), vermagic(kernel.release)));
    return refuse('Invalid module format');
  }
  if (!kernel.fragvisor) {
    node.dmesg.append(lines.unknownSymbol(MODULE_NAME, 'pcn_kmsg_set_transport'));
    return refuse('Unknown symbol in module');
  }

  const table = image.ips.map(inAton);
  // identify_myself: the last entry equal to our address wins (its loop does not stop at the first).
  const nid = table.lastIndexOf(node.rdmaIp);
  const inst = new Instance(node, image, table, nid, kernel);
  state.module = inst;
  const rv = rendezvous(world);
  rv.add(inst);

  const result = await Promise.race([moduleInit(world, rv, inst), aborted(ctx.signal)]);
  if (result === 'ok') return 0;
  if (result === 'einval') return refuse('Invalid parameters');
  // Hung: insmod never returns; the caller going away is the only way out (the module stays half-loaded).
  if (result === 'hung') await aborted(ctx.signal);
  return 130;
}
