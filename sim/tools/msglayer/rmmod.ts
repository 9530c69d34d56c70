import { DELEGATE, type ToolContext } from '../types';
import { MODULE_NAME, moduleNameOf } from './ko';
import { write } from './output';
import { loadedModule, rendezvous } from './rendezvous';

/**
 * `rmmod msg_rdma` (or a path to msg_rdma.ko, as the artifact's script passes it). Only a module
 * whose init finished can be removed: a loading or hung one is busy until the node reboots.
 * Any other module goes to the next rmmod (DELEGATE).
 */
export async function rmmodHandler(ctx: ToolContext): Promise<number | typeof DELEGATE> {
  const args = ctx.argv.slice(1).filter((a) => !a.startsWith('-'));
  if (args.length === 0 || args.some((a) => moduleNameOf(a) !== MODULE_NAME)) return DELEGATE;
  ctx.node.count('rmmod');
  let rc = 0;
  for (const arg of args) {
    const inst = loadedModule(ctx.node);
    // kmod checks /sys/module (readable by anyone) before asking the kernel (root only).
    const error = !inst
      ? `Module ${MODULE_NAME} is not currently loaded`
      : !ctx.sudo
        ? `could not remove module ${arg}: Operation not permitted`
        : inst.phase !== 'up'
          ? `could not remove module ${arg}: Device or resource busy`
          : undefined;
    if (error || !inst) {
      await write(ctx.stderr, `rmmod: ERROR: ${error}\n`);
      rc = 1;
      continue;
    }
    inst.end('removed');
    rendezvous(ctx.world).notify();
  }
  return rc;
}
