import { existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { asSimWorldNode, writeNodeFile } from '../../world';
import { DELEGATE, type ToolContext } from '../types';
import { ConfigHError, parseConfigH } from './configH';
import { msgLayerDeps } from './deps';
import { MODULE_NAME, readModule, renderModule } from './ko';
import { parseMakeArgs, type MakeArgs } from './makeArgs';
import { write } from './output';
import { AbortedError, sleep } from './wait';

/**
 * `make` in FragVisor's msg_layer directory (`make -C .../msg_layer`, `make clean -C ...`, cwd =
 * msg_layer, or kbuild's `make M=msg_layer` from the tree): compiles config.h's node list and the
 * tree's kernel release into msg_layer/msg_rdma.ko, printing what kbuild prints. Anything else is
 * not ours: DELEGATE (registered ahead of the kernel tree's `make` handler).
 */

const COMPILE_MS = 3_000;
const LINK_MS = 1_000;
const PRODUCTS = [`${MODULE_NAME}.ko`, `${MODULE_NAME}.o`, `${MODULE_NAME}.mod.c`, `${MODULE_NAME}.mod.o`, 'modules.order', 'Module.symvers'];

interface Build {
  ctx: ToolContext;
  /** msg_layer and the kernel tree (node paths). */
  dir: string;
  tree: string;
  /** Progress output (suppressed by -s). */
  say(text: string): Promise<void>;
}

/**
 * Host path of a file in the node, resolved the node's way (a symlink can never lead us, running as
 * root on the host, to a host file); undefined outside the node's own directories.
 */
function hostFile(ctx: ToolContext, nodePath: string): string | undefined {
  try {
    return ctx.node.hostPath(nodePath);
  } catch {
    return undefined;
  }
}

const exists = (ctx: ToolContext, nodePath: string): boolean => {
  const f = hostFile(ctx, nodePath);
  return f !== undefined && existsSync(f);
};

function msgLayerDirOf(ctx: ToolContext, args: MakeArgs): string | undefined {
  const dir = args.m !== undefined ? ctx.node.resolve(args.dir, args.m) : args.dir;
  if (path.posix.basename(dir) !== 'msg_layer') return undefined;
  return exists(ctx, `${dir}/Makefile`) || exists(ctx, `${dir}/${MODULE_NAME}.c`) ? dir : undefined;
}

export async function msgLayerMake(ctx: ToolContext): Promise<number | typeof DELEGATE> {
  const args = parseMakeArgs(ctx.argv, ctx.cwd, (c, p) => ctx.node.resolve(c, p));
  const dir = msgLayerDirOf(ctx, args);
  if (!dir) return DELEGATE;
  ctx.node.count('msglayer-make');
  const kbuildForm = args.m !== undefined; // invoked from the tree: no outer make level
  const out = (text: string) => (args.silent ? Promise.resolve() : write(ctx.stdout, text));
  const b: Build = { ctx, dir, tree: path.posix.dirname(dir), say: out };
  const showDirs = args.changedDir && args.printDirectory && !args.silent;
  const top = kbuildForm ? 'make' : 'make[1]';

  if (showDirs) await out(`make: Entering directory '${args.dir}'\n`);
  let rc = 0;
  try {
    for (const target of args.targets.length > 0 ? args.targets : ['modules']) {
      if (target === 'clean') rc = await level(b, kbuildForm, top, 'clean', () => clean(b));
      else if (target === 'modules' || target === 'all') rc = await level(b, kbuildForm, top, 'modules', () => build(b, top));
      else {
        await write(ctx.stderr, `make: *** No rule to make target '${target}'.  Stop.\n`);
        rc = 2;
      }
      if (rc !== 0) break;
    }
  } catch (err) {
    if (!(err instanceof AbortedError)) throw err;
    rc = 130; // interrupted: no module (it is written at the very end)
  }
  if (showDirs) await out(`make: Leaving directory '${args.dir}'\n`);
  return rc;
}

/** The msg_layer Makefile's recipe: `$(MAKE) -C $(KERNELDIR) M=$(PWD) <target>`, KERNELDIR = `..`. */
async function level(b: Build, kbuildForm: boolean, top: string, target: string, run: () => Promise<number>): Promise<number> {
  if (kbuildForm) return run();
  await b.say(`make -C .. M=${b.dir} ${target}\n`);
  await b.say(`${top}: Entering directory '${b.tree}'\n`);
  const rc = await run();
  await b.say(`${top}: Leaving directory '${b.tree}'\n`);
  if (rc !== 0) await write(b.ctx.stderr, `make: *** [Makefile:22: ${target}] Error 2\n`);
  return rc;
}

async function fatal(b: Build, top: string, lines: string[]): Promise<number> {
  const text = lines.map((l) => `${l}\n`).join('');
  await write(b.ctx.stderr, `${text}${top}: *** [Makefile:1420: _module_${b.dir}] Error 2\n`);
  return 2;
}

async function build(b: Build, top: string): Promise<number> {
  const { ctx, dir } = b;
  const release = msgLayerDeps().treeRelease(ctx.node, b.tree);
  if (release === undefined) {
    await write(ctx.stderr, [
      '',
      '  ERROR: Kernel configuration is invalid.',
      '         include/generated/autoconf.h or include/config/auto.conf are missing.',
      "         Run 'make oldconfig && make prepare' on kernel src to fix it.",
      '',
      '',
    ].join('\n'));
    return fatal(b, top, []);
  }
  const source = `${dir}/${MODULE_NAME}.c`;
  const config = `${dir}/config.h`;
  if (!exists(ctx, source)) {
    return fatal(b, top, [`make[2]: *** No rule to make target '${dir}/${MODULE_NAME}.c', needed by '${dir}/${MODULE_NAME}.o'.  Stop.`]);
  }
  const ko = `${dir}/${MODULE_NAME}.ko`;
  const koHost = hostFile(ctx, ko);
  const current = koHost === undefined ? undefined : readModule(koHost);
  const mtime = (f: string) => (exists(ctx, f) ? statSync(hostFile(ctx, f) as string).mtimeMs : Infinity);
  if (current && current.release === release && mtime(ko) >= Math.max(mtime(source), mtime(config))) {
    await b.say('  Building modules, stage 2.\n  MODPOST 1 modules\n');
    return 0;
  }

  await b.say(`  CC [M]  ${dir}/${MODULE_NAME}.o\n`);
  // The `slow` fault stretches the node's work, as it does the kernel build.
  const slow = asSimWorldNode(ctx.node)?.slowFactor() ?? 1;
  await sleep(ctx.world, COMPILE_MS * slow, ctx.signal);
  if (!exists(ctx, config)) {
    return fatal(b, top, [`${dir}/common.h:15:20: fatal error: config.h: No such file or directory`, 'compilation terminated.', `make[2]: *** [scripts/Makefile.build:258: ${dir}/${MODULE_NAME}.o] Error 1`]);
  }
  let ips: string[];
  try {
    ips = parseConfigH(readFileSync(hostFile(ctx, config) as string, 'utf8'));
  } catch (err) {
    if (!(err instanceof ConfigHError)) throw err;
    return fatal(b, top, [`${dir}/config.h: error: ${err.message}`, `make[2]: *** [scripts/Makefile.build:258: ${dir}/${MODULE_NAME}.o] Error 1`]);
  }
  await b.say(`  Building modules, stage 2.\n  MODPOST 1 modules\n  CC      ${dir}/${MODULE_NAME}.mod.o\n  LD [M]  ${dir}/${MODULE_NAME}.ko\n`);
  await sleep(ctx.world, LINK_MS * slow, ctx.signal);

  // Written last, in one synchronous go: an interrupted build leaves no module. Owned by the node user.
  const stamp = `/* SIMULATED: built by the fragvisor-ae simulator's kbuild for ${release} */\n`;
  for (const f of [`${MODULE_NAME}.o`, `${MODULE_NAME}.mod.c`, `${MODULE_NAME}.mod.o`]) writeNodeFile(ctx.node, `${dir}/${f}`, stamp);
  writeNodeFile(ctx.node, `${dir}/modules.order`, `kernel/${MODULE_NAME}.ko\n`);
  writeNodeFile(ctx.node, `${dir}/Module.symvers`, '');
  writeNodeFile(ctx.node, ko, renderModule({ module: MODULE_NAME, ips, release, builtIn: dir }));
  return 0;
}

async function clean(b: Build): Promise<number> {
  const had = (f: string) => exists(b.ctx, `${b.dir}/${f}`);
  const cleaned = [had('.tmp_versions') && '.tmp_versions', had('Module.symvers') && 'Module.symvers'].filter((x): x is string => !!x);
  for (const f of [...PRODUCTS, '.tmp_versions']) {
    // rm never follows a symlink it removes; the directory part is resolved the node's way.
    const parent = hostFile(b.ctx, b.dir);
    if (parent !== undefined) rmSync(path.join(parent, f), { recursive: true, force: true });
  }
  for (const f of cleaned) await b.say(`  CLEAN   ${b.dir}/${f}\n`);
  return 0;
}
