import type { GuestToolCall, GuestToolResult } from '../channel';
import type { GuestRuntime, GuestTool } from './context';
import { ddTool } from './dd';
import { nprocTool, powerTool } from './misc';
import { npbTool } from './npb';
import { psTool } from './ps';
import { nginxTool, olTool, phpFpmTool } from './servers';
import { tasksetTool } from './taskset';

const TOOLS: Record<string, GuestTool> = {
  ps: psTool,
  taskset: tasksetTool,
  nginx: nginxTool,
  'php-fpm7.2': phpFpmTool,
  ol: olTool,
  dd: ddTool,
  nproc: nprocTool,
  poweroff: powerTool,
  halt: powerTool,
  shutdown: powerTool,
  reboot: powerTool,
};

/** Runs one call of a guest imitation tool (NPB binaries are named like `ep.B`). */
export function runGuestTool(call: GuestToolCall, guest: GuestRuntime): Promise<GuestToolResult> {
  const tool = TOOLS[call.tool] ?? (/^[a-z]{2}\.[A-Z]$/.test(call.tool) ? npbTool : undefined);
  if (!tool) {
    call.stderr.write(`bash: ${call.tool}: command not found\n`);
    return Promise.resolve(127);
  }
  return tool(call, guest);
}
