import { readFileSync } from 'node:fs';
import { DELEGATE, type ToolContext } from '../types';
import { MODULE_NAME } from './ko';
import { write } from './output';
import { loadedModule } from './rendezvous';

/** A plausible core size of msg_rdma (lsmod's Size column). */
const MODULE_SIZE = 45056;

/** What sim/bin/kmod recorded (`name size used` lines in the node state's `modules`). */
function otherModules(ctx: ToolContext): string[][] {
  try {
    const file = ctx.node.hostPath(`${ctx.env.AE_SIM_STATE || '/home/.ae-sim/state'}/modules`);
    return readFileSync(file, 'utf8').split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[0] && f[0] !== MODULE_NAME);
  } catch {
    return [];
  }
}

/**
 * `lsmod` while msg_rdma is in the kernel (loading, hung or up, as /proc/modules lists it), newest
 * first, then what sim/bin/kmod recorded. Without it, kmod answers alone (DELEGATE).
 */
export async function lsmodHandler(ctx: ToolContext): Promise<number | typeof DELEGATE> {
  if (!loadedModule(ctx.node)) return DELEGATE;
  const row = (a: string, b: string, c: string) => `${a.padEnd(19)} ${b.padStart(8)}  ${c}\n`;
  const rows = [row('Module', 'Size', 'Used by'), row(MODULE_NAME, String(MODULE_SIZE), '0')];
  for (const [name, size = '0', used = '0'] of otherModules(ctx)) rows.push(row(name, size, used));
  await write(ctx.stdout, rows.join(''));
  return 0;
}
