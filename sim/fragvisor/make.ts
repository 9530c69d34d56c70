import { existsSync, readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Writable } from 'node:stream';
import { ReadOnlyPathError } from '../hostPath';
import { DELEGATE, type ToolContext, type ToolHandler } from '../tools/types';
import { writeNodeFile } from '../world';
import { compileErrorLines, fullBuildLog, HEADER, MODULE_COUNT, modulesLog, modulesUpToDateLog } from './buildLog';
import { fragvisorLinuxFiles, linuxDsmFiles } from './content';
import { NOTICE, parseIdentity, recordInstalledImage, recordModulesInstalled, modulesInstalled, renderIdentity, type KernelIdentity } from './identity';
import { parseMakeArgs, type MakeArgs } from './makeArgs';
import { detectTree, gitHead, parseConfig, parseDebugH, releaseOf, sha256, type KernelTree } from './tree';

/**
 * `make` in a simulated kernel tree (fragvisor-linux or GiantVM's linux-dsm, recognised by their
 * Makefile): plays kbuild. Anywhere else: DELEGATE (the real make runs). Targets: the build (all,
 * vmlinux, bzImage), modules, modules_install and install (need sudo), clean, mrproper, the config
 * targets, prepare, kernelrelease, kernelversion. `O=<dir>` builds in that output dir.
 *
 * Durations are simulated time (World.sleep, the one time-scale knob): a full build takes 40 min at
 * -j1 and shrinks with -j the way Amdahl's law says (a quarter of it does not parallelise; the echo
 * servers have 16 hardware threads, so -j17 or -j32 is no faster than -j16). Counters: `make:<target>`.
 * Faults: `kernel-build` (compiler errors, exit 2), `slow` (durations multiplied).
 */

const MIN = 60_000;
/** Simulated duration at -j1 of each kind of work. */
export const DURATION_MS = {
  build: 40 * MIN,
  modules: 10 * MIN,
  modulesUpToDate: 15_000,
  modulesInstall: 40_000,
  install: 20_000,
  clean: 20_000,
  config: 5_000,
};
/** Hardware threads of an echo server. */
export const CORES = 16;
/** Share of a kernel build that does not run in parallel (configuration, linking, compression). */
export const SERIAL_FRACTION = 0.25;

/** Simulated time of `baseMs` of -j1 work at `jobs` job slots. */
export function parallelTime(baseMs: number, jobs: number): number {
  const n = Math.max(1, Math.min(jobs, CORES));
  return baseMs * (SERIAL_FRACTION + (1 - SERIAL_FRACTION) / n);
}

/** Config options recorded in the identity: the ones the orchestrator flips. */
const RECORDED_CONFIG = ['CONFIG_LOCALVERSION', 'CONFIG_RCU_STALL_COMMON', 'CONFIG_POPCORN_KMSG_RDMA', 'CONFIG_POPCORN_DEBUG'];

class Aborted extends Error {}

function write(stream: Writable, text: string): Promise<void> {
  return new Promise((resolve) => stream.write(text, () => resolve()));
}

class KernelMake {
  private readonly out: string;

  constructor(
    private readonly ctx: ToolContext,
    private readonly args: MakeArgs,
    private readonly tree: KernelTree,
  ) {
    this.out = args.vars.O ? ctx.node.resolve(args.dir, args.vars.O) : tree.dir;
  }

  async run(): Promise<number> {
    const { args, ctx } = this;
    const targets = args.targets.length > 0 ? args.targets : ['all'];
    const showDirs = args.changedDir && args.printDirectory && !args.silent;
    if (showDirs) await this.say(`make: Entering directory '${args.dir}'`);
    let rc = 0;
    for (const target of targets) {
      ctx.node.count(`make:${target}`);
      try {
        rc = await this.target(target);
      } catch (err) {
        if (err instanceof Aborted || ctx.signal.aborted) return 130;
        if (err instanceof ReadOnlyPathError) {
          await write(ctx.stderr, `mkdir: cannot create directory '${this.out}': Read-only file system\nmake: *** [${target}] Error 1\n`);
          rc = 2;
        } else throw err;
      }
      if (rc !== 0 && !args.keepGoing) break;
    }
    if (showDirs) await this.say(`make: Leaving directory '${args.dir}'`);
    return rc;
  }

  private target(target: string): Promise<number> {
    switch (target) {
      case 'all':
      case 'vmlinux':
      case 'bzImage':
        return this.build();
      case 'modules':
        return this.modules();
      case 'modules_install':
        return this.modulesInstall();
      case 'install':
        return this.install();
      case 'clean':
        return this.clean(false);
      case 'mrproper':
      case 'distclean':
        return this.clean(true);
      case 'olddefconfig':
      case 'oldconfig':
      case 'defconfig':
      case 'silentoldconfig':
      case 'oldnoconfig':
        return this.configure(target);
      case 'menuconfig':
      case 'nconfig':
      case 'xconfig':
      case 'gconfig':
        return this.fail([' *** Unable to find the ncurses libraries or the', ' *** required header files.', " *** 'make menuconfig' requires the ncurses libraries.", ' *** (SIMULATED tree: edit .config, or use scripts/config, instead)', `make: *** [${target}] Error 1`]);
      case 'prepare':
      case 'modules_prepare':
        return this.prepare();
      case 'kernelrelease':
        return this.print(releaseOf(this.tree, this.config() ?? {}, this.args.vars.LOCALVERSION));
      case 'kernelversion':
        return this.print(this.tree.kernelVersion);
      case 'help':
        return this.print(
          'SIMULATED kernel tree (fragvisor-ae simulator). Targets: all vmlinux bzImage modules modules_install install clean mrproper\n' +
            'olddefconfig oldconfig defconfig prepare kernelrelease kernelversion. Variables: O=dir LOCALVERSION=-x',
        );
      default:
        return this.fail([`make: *** No rule to make target '${target}'.  Stop.`]);
    }
  }

  // ---- targets ----

  private async build(): Promise<number> {
    const config = this.config();
    if (!config) return this.noConfig();
    const { ctx, tree } = this;
    const release = releaseOf(tree, config, this.args.vars.LOCALVERSION);
    this.writeOut('include/config/kernel.release', `${release}\n`);
    // Sources are read as they compile: the identity is what the tree says now.
    const build = this.buildNumber() + 1;
    const identity = this.identity(release, config, build);
    const slow = this.slowFactor();
    const total = parallelTime(DURATION_MS.build, this.args.jobs) * slow;
    const lines = fullBuildLog(tree.flavour, build, ctx.world.seed);
    if (ctx.world.fault(ctx.node.name, 'kernel-build')) {
      const upTo = Math.floor(lines.length * 0.3);
      await this.stream(lines.slice(0, upTo), total * 0.3);
      return this.fail(compileErrorLines(tree.flavour));
    }
    await this.padLog(ctx.world.buildLogPadBytes ?? 0);
    await this.stream(lines, total);
    this.writeOut('vmlinux', renderIdentity(identity));
    this.writeOut('System.map', `# ${NOTICE}\n`);
    this.writeOut('modules.order', `# ${NOTICE}\n`);
    this.writeOut('.ae-sim-modules', `${release}\n`);
    this.writeOut('.version', `${build}\n`);
    this.writeOut('arch/x86/boot/bzImage', renderIdentity(identity));
    return 0;
  }

  private async modules(): Promise<number> {
    const config = this.config();
    if (!config) return this.noConfig();
    const release = releaseOf(this.tree, config, this.args.vars.LOCALVERSION);
    this.writeOut('include/config/kernel.release', `${release}\n`);
    if (this.readOut('.ae-sim-modules')?.trim() === release) {
      await this.stream(modulesUpToDateLog(this.tree.flavour), DURATION_MS.modulesUpToDate * this.slowFactor());
      return 0;
    }
    if (this.ctx.world.fault(this.ctx.node.name, 'kernel-build')) return this.fail(compileErrorLines(this.tree.flavour));
    await this.stream(modulesLog(this.tree.flavour), parallelTime(DURATION_MS.modules, this.args.jobs) * this.slowFactor());
    this.writeOut('modules.order', `# ${NOTICE}\n`);
    this.writeOut('.ae-sim-modules', `${release}\n`);
    return 0;
  }

  private async modulesInstall(): Promise<number> {
    const release = this.readOut('.ae-sim-modules')?.trim();
    if (!release) return this.fail(["cp: cannot stat 'modules.order': No such file or directory", 'Makefile:1162: recipe for target \'_modinst_\' failed', 'make: *** [_modinst_] Error 1']);
    if (!this.ctx.sudo) {
      return this.fail([`mkdir: cannot create directory '/lib/modules/${release}': Permission denied`, 'Makefile:1162: recipe for target \'_modinst_\' failed', 'make: *** [_modinst_] Error 1']);
    }
    const mods = Array.from({ length: 12 }, (_, i) => `  INSTALL ${['drivers/infiniband/hw/mlx5/mlx5_ib', 'drivers/infiniband/core/ib_core', 'drivers/infiniband/core/rdma_cm', 'drivers/infiniband/ulp/ipoib/ib_ipoib', 'drivers/net/ethernet/mellanox/mlx5/core/mlx5_core', 'drivers/net/ethernet/intel/igb/igb'][i % 6]}.ko`);
    await this.stream([HEADER, ...mods.slice(0, 6), `  ... (${MODULE_COUNT[this.tree.flavour]} modules)`, `  DEPMOD  ${release}`], DURATION_MS.modulesInstall * this.slowFactor());
    recordModulesInstalled(this.ctx.node, release);
    return 0;
  }

  private async install(): Promise<number> {
    const image = this.readOut('arch/x86/boot/bzImage');
    const id = image === undefined ? undefined : parseIdentity(image);
    const release = id?.release ?? releaseOf(this.tree, this.config() ?? {}, this.args.vars.LOCALVERSION);
    const call = [`sh ./arch/x86/boot/install.sh ${release} arch/x86/boot/bzImage \\`, '\tSystem.map "/boot"'];
    if (!id) {
      return this.fail([...call, '', '*** Missing file: arch/x86/boot/bzImage', '*** You need to run "make" before "make install".', '', "arch/x86/boot/Makefile:160: recipe for target 'install' failed", 'make[1]: *** [install] Error 1', "arch/x86/Makefile:237: recipe for target 'install' failed", 'make: *** [install] Error 2']);
    }
    if (!this.ctx.sudo) {
      return this.fail([...call, `cp: cannot create regular file '/boot/vmlinuz-${release}': Permission denied`, "arch/x86/boot/Makefile:160: recipe for target 'install' failed", 'make[1]: *** [install] Error 1', "arch/x86/Makefile:237: recipe for target 'install' failed", 'make: *** [install] Error 2']);
    }
    const warn = modulesInstalled(this.ctx.node, release) ? [] : [`W: missing /lib/modules/${release}`, `W: Ensure all necessary drivers are built into the linux image!`];
    await this.stream(
      [
        HEADER,
        ...call,
        `run-parts: executing /etc/kernel/postinst.d/apt-auto-removal ${release} /boot/vmlinuz-${release}`,
        `run-parts: executing /etc/kernel/postinst.d/initramfs-tools ${release} /boot/vmlinuz-${release}`,
        `update-initramfs: Generating /boot/initrd.img-${release}`,
        ...warn,
        `run-parts: executing /etc/kernel/postinst.d/zz-update-grub ${release} /boot/vmlinuz-${release}`,
        'Generating grub configuration file ...',
        `Found linux image: /boot/vmlinuz-${release}`,
        `Found initrd image: /boot/initrd.img-${release}`,
        'done',
      ],
      DURATION_MS.install * this.slowFactor(),
    );
    recordInstalledImage(this.ctx.node, id);
    this.ctx.node.installKernel(id.release);
    return 0;
  }

  private async clean(mrproper: boolean): Promise<number> {
    for (const f of ['arch/x86/boot/bzImage', 'vmlinux', 'System.map', 'modules.order', 'Module.symvers', '.ae-sim-modules']) this.removeOut(f);
    const lines = ['  CLEAN   .', '  CLEAN   arch/x86/boot/compressed', '  CLEAN   arch/x86/boot', '  CLEAN   .tmp_versions'];
    if (mrproper) {
      for (const f of ['.config', '.version', 'include/config/kernel.release']) this.removeOut(f);
      lines.push('  CLEAN   scripts/basic', '  CLEAN   scripts/kconfig', '  CLEAN   include/config include/generated arch/x86/include/generated', '  CLEAN   .config .version');
    }
    await this.stream(lines, DURATION_MS.clean * this.slowFactor());
    return 0;
  }

  private async configure(target: string): Promise<number> {
    if (this.readOut('.config') === undefined) {
      // O= without a .config, or after mrproper: start from the tree's own (its "defconfig").
      const fromTree = this.out !== this.tree.dir ? this.readTree('.config') : undefined;
      const defconfig = (this.tree.flavour === 'fragvisor' ? fragvisorLinuxFiles() : linuxDsmFiles())['.config'].content.toString();
      this.writeOut('.config', fromTree ?? defconfig);
    }
    await this.stream(['  HOSTCC  scripts/basic/fixdep', '  HOSTCC  scripts/kconfig/conf.o', '  HOSTLD  scripts/kconfig/conf', `scripts/kconfig/conf  --${target === 'defconfig' ? 'defconfig' : 'olddefconfig'} Kconfig`, '#', '# configuration written to .config', '#'], DURATION_MS.config * this.slowFactor());
    return 0;
  }

  private async prepare(): Promise<number> {
    const config = this.config();
    if (!config) return this.noConfig();
    this.writeOut('include/config/kernel.release', `${releaseOf(this.tree, config, this.args.vars.LOCALVERSION)}\n`);
    await this.stream(['  CHK     include/config/kernel.release', '  UPD     include/config/kernel.release', '  CHK     include/generated/uapi/linux/version.h', '  CHK     include/generated/utsrelease.h'], DURATION_MS.config * this.slowFactor());
    return 0;
  }

  // ---- helpers ----

  private identity(release: string, config: Record<string, string>, build: number): KernelIdentity {
    const { ctx, tree } = this;
    const id: KernelIdentity = { simulated: true, notice: NOTICE, flavour: tree.flavour, release, fragvisor: tree.flavour === 'fragvisor' };
    if (tree.flavour === 'fragvisor') {
      const debugH = this.readTree('include/popcorn/debug.h') ?? '';
      const { origin, knobs } = parseDebugH(debugH);
      id.origin = origin;
      id.hostKernel = knobs.POPHYPE_HOST_KERNEL !== 0;
      id.knobs = knobs;
    }
    id.sourceCommit = gitHead(ctx.node, tree.dir);
    id.sourceTree = tree.dir;
    id.outputDir = this.out;
    id.configSha256 = sha256(this.readOut('.config') ?? '');
    id.config = Object.fromEntries(RECORDED_CONFIG.filter((k) => k in config).map((k) => [k, config[k]]));
    id.build = build;
    id.builtOn = ctx.node.name;
    id.builtAt = new Date().toISOString();
    return id;
  }

  private config(): Record<string, string> | undefined {
    const text = this.readOut('.config');
    return text === undefined ? undefined : parseConfig(text);
  }

  private noConfig(): Promise<number> {
    return this.fail([
      '***',
      '*** Configuration file ".config" not found!',
      '***',
      '*** Please run some configurator (e.g. "make oldconfig" or',
      '*** "make menuconfig" or "make xconfig").',
      '***',
      "scripts/kconfig/Makefile:37: recipe for target 'silentoldconfig' failed",
      'make[2]: *** [silentoldconfig] Error 1',
      "Makefile:541: recipe for target 'silentoldconfig' failed",
      'make[1]: *** [silentoldconfig] Error 2',
      "make: *** No rule to make target 'include/config/auto.conf', needed by 'include/config/kernel.release'.  Stop.",
    ]);
  }

  private buildNumber(): number {
    return Number.parseInt(this.readOut('.version') ?? '0', 10) || 0;
  }

  private slowFactor(): number {
    return this.ctx.world.fault(this.ctx.node.name, 'slow')?.factor ?? 1;
  }

  private readOut(rel: string): string | undefined {
    return this.readNode(path.posix.join(this.out, rel));
  }

  private readTree(rel: string): string | undefined {
    return this.readNode(path.posix.join(this.tree.dir, rel));
  }

  private readNode(nodePath: string): string | undefined {
    try {
      const host = this.ctx.node.hostPath(nodePath);
      return existsSync(host) ? readFileSync(host, 'utf8') : undefined;
    } catch (err) {
      if (err instanceof ReadOnlyPathError) return undefined;
      throw err;
    }
  }

  private writeOut(rel: string, text: string): void {
    writeNodeFile(this.ctx.node, path.posix.join(this.out, rel), text);
  }

  private removeOut(rel: string): void {
    try {
      rmSync(this.ctx.node.hostPath(path.posix.join(this.out, rel)), { force: true });
    } catch (err) {
      if (!(err instanceof ReadOnlyPathError)) throw err;
    }
  }

  private async say(line: string): Promise<void> {
    if (!this.args.silent) await write(this.ctx.stdout, `${line}\n`);
  }

  private async print(line: string): Promise<number> {
    await write(this.ctx.stdout, `${line}\n`);
    return 0;
  }

  private async fail(lines: string[]): Promise<number> {
    await write(this.ctx.stderr, lines.map((l) => `${l}\n`).join(''));
    return 2;
  }

  /** `bytes` of compiler command lines as `make V=1` prints them, written as fast as the reader takes them. */
  private async padLog(bytes: number): Promise<void> {
    if (bytes <= 0 || this.args.silent) return;
    const line = (i: number) =>
      `  gcc -Wp,-MD,drivers/gpu/drm/.obj${i}.o.d -nostdinc -isystem /usr/lib/gcc/x86_64-linux-gnu/7/include -I./arch/x86/include -I./arch/x86/include/generated -I./include -I./arch/x86/include/uapi -include ./include/linux/kconfig.h -D__KERNEL__ -Wall -Wundef -O2 -m64 -mno-red-zone -mcmodel=kernel -DKBUILD_BASENAME='"obj${i}"' -c -o drivers/gpu/drm/obj${i}.o drivers/gpu/drm/obj${i}.c\n`;
    const chunk: string[] = [];
    let size = 0;
    for (let i = 0; size < 2 ** 20; i++) {
      chunk.push(line(i));
      size += chunk[chunk.length - 1].length;
    }
    const text = chunk.join('');
    for (let written = 0; written < bytes; written += text.length) {
      if (this.ctx.signal.aborted) throw new Aborted();
      await write(this.ctx.stdout, text);
    }
  }

  /** Prints `lines` spread over `totalMs` of simulated time, the last one at the end. */
  private async stream(lines: string[], totalMs: number): Promise<void> {
    const batches = Math.max(1, Math.min(lines.length, 50));
    const per = Math.ceil(lines.length / batches);
    const n = Math.ceil(lines.length / per);
    for (let i = 0; i < lines.length; i += per) {
      try {
        await this.ctx.world.sleep(totalMs / n, this.ctx.signal);
      } catch {
        throw new Aborted();
      }
      if (!this.args.silent) await write(this.ctx.stdout, lines.slice(i, i + per).map((l) => `${l}\n`).join(''));
    }
  }
}

export const kernelMakeHandler: ToolHandler = async (ctx) => {
  const args = parseMakeArgs(ctx.argv, ctx.cwd, ctx.env);
  if (args.otherMakefile) return DELEGATE;
  const tree = detectTree(ctx.node, args.dir);
  if (!tree) return DELEGATE;
  return new KernelMake(ctx, args, tree).run();
};
