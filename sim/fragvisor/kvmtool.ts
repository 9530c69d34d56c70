import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { DELEGATE, type ToolContext, type ToolHandler } from '../tools/types';
import { writeNodeFile } from '../world';
import { KVMTOOL_MARKER, lkvmStandIn } from './content';
import { parallelTime } from './make';
import { parseMakeArgs } from './makeArgs';
import { gitHead } from './tree';

/**
 * `make` in the simulated fragvisor-kvmtool checkout (recognised by its Makefile's marker line):
 * plays kvmtool's build, kbuild-style `  CC  file.o` lines ending in `  LINK     lkvm`, and writes
 * lkvm (the stand-in that runs the node's lkvm imitation, stamped with the checkout's HEAD). Targets:
 * the default (all), lkvm, clean. Anywhere else: DELEGATE.
 *
 * Duration: simulated time (World.sleep), 3 min of work at -j1, shrinking with -j as a kernel build
 * does (parallelTime). Counter: `make:kvmtool` per build on the node. Faults: `kvmtool-build`
 * (a compiler error, exit 2, lkvm left as it was), `slow` (duration multiplied).
 */

const BUILD_MS = 3 * 60_000;

const SOURCES = [
  'builtin-balloon', 'builtin-debug', 'builtin-help', 'builtin-list', 'builtin-stat', 'builtin-pause', 'builtin-resume', 'builtin-run', 'builtin-setup',
  'builtin-stop', 'builtin-version', 'devices', 'disk/core', 'framebuffer', 'guest_compat', 'hw/rtc', 'hw/serial', 'ioport', 'irq', 'kvm-cpu', 'kvm',
  'main', 'mmio', 'pci', 'term', 'virtio/blk', 'virtio/console', 'virtio/core', 'virtio/net', 'virtio/pci', 'virtio/rng', 'net/uip/core', 'net/uip/tcp',
  'popcorn/dsm', 'popcorn/vcpu_migration', 'popcorn/io_delegation', 'x86/boot', 'x86/cpuid', 'x86/interrupt', 'x86/ioport', 'x86/irq', 'x86/kvm-cpu', 'x86/kvm',
];

/** What kvmtool's make prints for a full build, the last line `  LINK     lkvm`. */
export function kvmtoolBuildLog(): string[] {
  return [
    '  CHK      KVMTOOLS-VERSION-FILE',
    '  GEN      include/common-cmds.h',
    ...SOURCES.map((s) => `  CC       ${s}.o`),
    '  CC       guest/init.o',
    '  LINK     guest/init',
    '  LINK     lkvm',
  ];
}

/** What gcc and make print when the `kvmtool-build` fault breaks the build. */
export function kvmtoolCompileErrorLines(): string[] {
  return [
    "builtin-run.c: In function 'kvm_cmd_run_init':",
    "builtin-run.c:712:9: error: implicit declaration of function 'popcorn_vcpu_node_of' [-Werror=implicit-function-declaration]",
    '  node = popcorn_vcpu_node_of(kvm, i);',
    '         ^',
    'cc1: all warnings being treated as errors',
    "Makefile:442: recipe for target 'builtin-run.o' failed",
    'make: *** [builtin-run.o] Error 1',
  ];
}

function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve) => stream.write(text, () => resolve()));
}

function isKvmtoolCheckout(ctx: ToolContext, dir: string): boolean {
  try {
    return new RegExp(`^#\\s*${KVMTOOL_MARKER}\\s*$`, 'm').test(readFileSync(ctx.node.hostPath(path.posix.join(dir, 'Makefile')), 'utf8'));
  } catch {
    return false; // no Makefile, or a path outside the node's own
  }
}

async function build(ctx: ToolContext, dir: string, jobs: number, silent: boolean): Promise<number> {
  ctx.node.count('make:kvmtool');
  const lines = kvmtoolBuildLog();
  const slow = ctx.world.fault(ctx.node.name, 'slow')?.factor ?? 1;
  const failing = ctx.world.fault(ctx.node.name, 'kvmtool-build') !== undefined;
  const shown = failing ? lines.slice(0, lines.indexOf('  CC       builtin-run.o')) : lines;
  const total = parallelTime(BUILD_MS, jobs) * slow * (failing ? 0.3 : 1);
  const batches = Math.min(shown.length, 20);
  const per = Math.ceil(shown.length / batches);
  for (let i = 0; i < shown.length; i += per) {
    await ctx.world.sleep(total / batches, ctx.signal);
    if (!silent) await write(ctx.stdout, shown.slice(i, i + per).map((l) => `${l}\n`).join(''));
  }
  if (failing) {
    await write(ctx.stderr, kvmtoolCompileErrorLines().map((l) => `${l}\n`).join(''));
    return 2;
  }
  // Sources are read as they compile: lkvm is the build of what is checked out now.
  writeNodeFile(ctx.node, path.posix.join(dir, 'lkvm'), lkvmStandIn(gitHead(ctx.node, dir) ?? 'an unknown commit'), 0o755);
  return 0;
}

export const kvmtoolMakeHandler: ToolHandler = async (ctx) => {
  const args = parseMakeArgs(ctx.argv, ctx.cwd, ctx.env);
  if (args.otherMakefile || !isKvmtoolCheckout(ctx, args.dir)) return DELEGATE;
  const showDirs = args.changedDir && args.printDirectory && !args.silent;
  if (showDirs) await write(ctx.stdout, `make: Entering directory '${args.dir}'\n`);
  let rc = 0;
  try {
    for (const target of args.targets.length > 0 ? args.targets : ['all']) {
      if (target === 'all' || target === 'lkvm') rc = await build(ctx, args.dir, args.jobs, args.silent);
      else if (target === 'clean') {
        rmSync(ctx.node.hostPath(path.posix.join(args.dir, 'lkvm')), { force: true });
        if (!args.silent) await write(ctx.stdout, '  CLEAN    lkvm\n');
      } else {
        await write(ctx.stderr, `make: *** No rule to make target '${target}'.  Stop.\n`);
        rc = 2;
      }
      if (rc !== 0 && !args.keepGoing) break;
    }
  } catch (err) {
    if (ctx.signal.aborted) return 130;
    throw err;
  }
  if (showDirs) await write(ctx.stdout, `make: Leaving directory '${args.dir}'\n`);
  return rc;
};
