import { uniform } from '../model/prng';
import type { Flavour } from './content';

/**
 * The kbuild output of a simulated kernel build (4.4-era), generated: which objects appear is fixed
 * for a flavour, the sizes and CRC come from the seed and the build. The first line says SIMULATED.
 */

export const HEADER = '  SIMULATED kernel build by the fragvisor-ae simulator: nothing is compiled, this log is generated';

const DIRS: Record<string, string[]> = {
  init: ['main', 'do_mounts', 'do_mounts_rd', 'initramfs', 'calibrate', 'init_task'],
  kernel: ['fork', 'exec_domain', 'panic', 'cpu', 'exit', 'softirq', 'resource', 'sysctl', 'capability', 'ptrace', 'timer', 'user', 'signal', 'sys', 'kmod', 'workqueue', 'pid', 'task_work', 'extable', 'params', 'kthread', 'sys_ni', 'nsproxy', 'notifier', 'ksysfs', 'cred', 'reboot', 'async', 'range', 'smpboot', 'ucount'],
  'kernel/sched': ['core', 'loadavg', 'clock', 'cputime', 'idle_task', 'fair', 'rt', 'deadline', 'stop_task', 'wait', 'completion', 'idle'],
  'kernel/locking': ['mutex', 'semaphore', 'rwsem', 'percpu-rwsem', 'spinlock', 'osq_lock', 'qrwlock', 'qspinlock'],
  'kernel/rcu': ['update', 'srcu', 'tree', 'sync'],
  'kernel/time': ['time', 'timer', 'hrtimer', 'itimer', 'posix-timers', 'posix-cpu-timers', 'timekeeping', 'ntp', 'clocksource', 'jiffies', 'timer_list', 'timeconv', 'timecounter', 'alarmtimer', 'clockevents', 'tick-common', 'tick-broadcast', 'tick-sched'],
  mm: ['filemap', 'mempool', 'oom_kill', 'fadvise', 'maccess', 'page_alloc', 'page-writeback', 'readahead', 'swap', 'truncate', 'vmscan', 'shmem', 'util', 'mmzone', 'vmstat', 'backing-dev', 'mm_init', 'mmu_context', 'percpu', 'slab_common', 'compaction', 'vmacache', 'interval_tree', 'list_lru', 'workingset', 'debug', 'gup', 'highmem', 'memory', 'mincore', 'mlock', 'mmap', 'mprotect', 'mremap', 'msync', 'rmap', 'vmalloc', 'pagewalk', 'pgtable-generic', 'madvise', 'memblock', 'slub', 'migrate', 'huge_memory', 'ksm'],
  fs: ['open', 'read_write', 'file_table', 'super', 'char_dev', 'stat', 'exec', 'pipe', 'namei', 'fcntl', 'ioctl', 'readdir', 'select', 'dcache', 'inode', 'attr', 'bad_inode', 'file', 'filesystems', 'namespace', 'seq_file', 'xattr', 'libfs', 'fs-writeback', 'pnode', 'splice', 'sync', 'utimes', 'stack', 'fs_struct', 'statfs', 'fs_pin', 'nsfs', 'buffer', 'block_dev', 'direct-io', 'mpage', 'eventpoll', 'anon_inodes', 'signalfd', 'timerfd', 'eventfd', 'aio', 'locks'],
  'fs/ext4': ['balloc', 'bitmap', 'dir', 'file', 'fsync', 'ialloc', 'inode', 'page-io', 'ioctl', 'namei', 'super', 'symlink', 'hash', 'resize', 'extents', 'ext4_jbd2', 'migrate', 'mballoc', 'block_validity', 'move_extent', 'mmp', 'indirect', 'extents_status', 'xattr', 'xattr_user', 'xattr_trusted', 'inline', 'readpage', 'sysfs'],
  'arch/x86/kernel': ['process_64', 'signal', 'traps', 'irq', 'irq_64', 'dumpstack_64', 'time', 'ioport', 'ldt', 'dumpstack', 'nmi', 'setup', 'x86_init', 'i8259', 'irqinit', 'jump_label', 'irq_work', 'probe_roms', 'sys_x86_64', 'x8664_ksyms_64', 'mcount_64', 'ksysfs', 'bootflag', 'e820', 'pci-dma', 'quirks', 'topology', 'kdebugfs', 'alternative', 'i8253', 'pci-nommu', 'hw_breakpoint', 'tsc', 'tsc_msr', 'io_delay', 'rtc', 'pci-iommu_table', 'resource', 'process', 'fpu/core', 'ptrace', 'tls', 'step', 'smp', 'smpboot', 'tsc_sync', 'setup_percpu', 'mpparse', 'apic/apic', 'apic/io_apic', 'kvm', 'kvmclock', 'paravirt', 'pvclock'],
  'arch/x86/kvm': ['pmu', 'pmu_intel', 'x86', 'mmu', 'emulate', 'i8259', 'irq', 'lapic', 'i8254', 'ioapic', 'irq_comm', 'cpuid', 'mtrr', 'hyperv', 'page_track', 'vmx', 'svm'],
  virt: ['kvm/kvm_main', 'kvm/coalesced_mmio', 'kvm/eventfd', 'kvm/irqchip', 'kvm/vfio', 'kvm/async_pf'],
  net: ['socket', 'core/sock', 'core/request_sock', 'core/skbuff', 'core/datagram', 'core/stream', 'core/scm', 'core/gen_stats', 'core/gen_estimator', 'core/net_namespace', 'core/secure_seq', 'core/flow_dissector', 'core/sysctl_net_core', 'core/dev', 'core/ethtool', 'core/dev_addr_lists', 'core/dst', 'core/netevent', 'core/neighbour', 'core/rtnetlink', 'core/utils', 'core/link_watch', 'core/filter', 'ipv4/route', 'ipv4/inetpeer', 'ipv4/protocol', 'ipv4/ip_input', 'ipv4/ip_fragment', 'ipv4/ip_forward', 'ipv4/ip_options', 'ipv4/ip_output', 'ipv4/ip_sockglue', 'ipv4/inet_hashtables', 'ipv4/tcp', 'ipv4/tcp_input', 'ipv4/tcp_output', 'ipv4/tcp_timer', 'ipv4/tcp_ipv4', 'ipv4/udp', 'ipv4/arp', 'ipv4/icmp', 'ipv4/devinet', 'ipv4/af_inet', 'bridge/br', 'bridge/br_device', 'bridge/br_fdb', 'bridge/br_forward', 'bridge/br_if', 'bridge/br_input'],
  'drivers/net': ['tun', 'loopback', 'veth', 'virtio_net'],
  'drivers/vhost': ['vhost', 'net'],
  'drivers/block': ['brd', 'loop', 'virtio_blk'],
  'drivers/tty/serial/8250': ['8250_core', '8250_port', '8250_pci', '8250_early'],
  'lib': ['lockref', 'bcd', 'div64', 'sort', 'parser', 'halfmd4', 'debug_locks', 'random32', 'bust_spinlocks', 'kasprintf', 'bitmap', 'scatterlist', 'gcd', 'lcm', 'list_sort', 'uuid', 'flex_array', 'iov_iter', 'clz_ctz', 'bsearch', 'find_bit', 'llist', 'memweight', 'kfifo', 'percpu-refcount', 'percpu_ida', 'rhashtable', 'reciprocal_div', 'string', 'vsprintf', 'cmdline', 'rbtree', 'radix-tree', 'dump_stack', 'idr', 'int_sqrt', 'extable', 'sha1', 'md5', 'irq_regs', 'argv_split', 'proportions', 'flex_proportions', 'ratelimit', 'show_mem', 'is_single_threaded', 'plist', 'decompress', 'kobject_uevent', 'earlycpio', 'seq_buf', 'nmi_backtrace'],
};

const FLAVOUR_DIRS: Record<Flavour, Record<string, string[]>> = {
  fragvisor: {
    'kernel/popcorn': ['init', 'util', 'process_server', 'vma_server', 'page_server', 'fh_action', 'remote_process', 'sched', 'syscall_server', 'wait_station', 'pcn_kmsg', 'bundle', 'hype_kvm', 'hype_file', 'stat', 'trace_events', 'debug', 'sync'],
    'arch/x86/kvm/pophype': ['pophype', 'pophype_irq', 'pophype_io', 'pophype_migrate'],
  },
  giantvm: {
    'arch/x86/kvm/dsm': ['dsm', 'dsm-util', 'ivy', 'krdma', 'ktcp', 'mmu-dsm'],
  },
};

const MODULES: Record<Flavour, string[]> = {
  fragvisor: ['drivers/infiniband/hw/mlx5/mlx5_ib', 'drivers/net/ethernet/mellanox/mlx5/core/mlx5_core', 'drivers/infiniband/core/ib_core', 'drivers/infiniband/core/rdma_cm', 'drivers/infiniband/core/ib_cm', 'drivers/infiniband/core/iw_cm', 'drivers/infiniband/ulp/ipoib/ib_ipoib', 'net/bridge/netfilter/br_netfilter', 'drivers/net/ethernet/intel/igb/igb', 'fs/nfs/nfs', 'fs/nfs/nfsv4', 'net/sunrpc/sunrpc'],
  giantvm: ['drivers/infiniband/hw/mlx5/mlx5_ib', 'drivers/net/ethernet/mellanox/mlx5/core/mlx5_core', 'drivers/infiniband/core/ib_core', 'drivers/infiniband/core/rdma_cm', 'drivers/infiniband/ulp/ipoib/ib_ipoib', 'drivers/net/ethernet/intel/igb/igb', 'fs/nfs/nfs', 'net/sunrpc/sunrpc'],
};

export const MODULE_COUNT: Record<Flavour, number> = { fragvisor: 312, giantvm: 305 };

/** The lines of a full build (vmlinux, modules, bzImage), last one the "ready" line. */
export function fullBuildLog(flavour: Flavour, build: number, seed: number): string[] {
  const lines = [
    HEADER,
    '  CHK     include/config/kernel.release',
    '  CHK     include/generated/uapi/linux/version.h',
    '  CHK     include/generated/utsrelease.h',
    '  CHK     include/generated/timeconst.h',
    '  CHK     include/generated/bounds.h',
    '  CHK     include/generated/asm-offsets.h',
    '  CALL    scripts/checksyscalls.sh',
    '  CHK     include/generated/compile.h',
  ];
  const dirs = { ...DIRS, ...FLAVOUR_DIRS[flavour] };
  const mods = MODULES[flavour];
  let m = 0;
  for (const [dir, files] of Object.entries(dirs)) {
    for (const f of files) {
      lines.push(`  CC      ${dir}/${f}.o`);
      // Module objects compile in parallel with the built-in ones (a -j build interleaves them).
      if (lines.length % 17 === 0 && m < mods.length) lines.push(`  CC [M]  ${mods[m++]}.o`);
    }
    lines.push(`  LD      ${dir}/built-in.o`);
  }
  while (m < mods.length) lines.push(`  CC [M]  ${mods[m++]}.o`);
  const kb = 6800 + Math.floor(uniform(seed, `bzImage-size#${flavour}#${build}`) * 900);
  const crc = Math.floor(uniform(seed, `bzImage-crc#${flavour}#${build}`) * 0xffffffff).toString(16).padStart(8, '0');
  lines.push(
    '  LINK    vmlinux',
    '  LD      vmlinux.o',
    '  MODPOST vmlinux.o',
    '  GEN     .version',
    '  CHK     include/generated/compile.h',
    '  UPD     include/generated/compile.h',
    '  CC      init/version.o',
    '  LD      init/built-in.o',
    '  KSYM    .tmp_kallsyms1.o',
    '  KSYM    .tmp_kallsyms2.o',
    '  LD      vmlinux',
    '  SORTEX  vmlinux',
    '  SYSMAP  System.map',
    '  Building modules, stage 2.',
    `  MODPOST ${MODULE_COUNT[flavour]} modules`,
    ...mods.flatMap((mod) => [`  CC      ${mod}.mod.o`, `  LD [M]  ${mod}.ko`]),
    '  CC      arch/x86/boot/a20.o',
    '  AS      arch/x86/boot/bioscall.o',
    '  CC      arch/x86/boot/cmdline.o',
    '  AS      arch/x86/boot/copy.o',
    '  HOSTCC  arch/x86/boot/mkcpustr',
    '  CC      arch/x86/boot/cpuflags.o',
    '  CC      arch/x86/boot/early_serial_console.o',
    '  CC      arch/x86/boot/main.o',
    '  CC      arch/x86/boot/memory.o',
    '  CC      arch/x86/boot/pm.o',
    '  CC      arch/x86/boot/video.o',
    '  LD      arch/x86/boot/setup.elf',
    '  OBJCOPY arch/x86/boot/setup.bin',
    '  OBJCOPY arch/x86/boot/vmlinux.bin',
    '  LDS     arch/x86/boot/compressed/vmlinux.lds',
    '  AS      arch/x86/boot/compressed/head_64.o',
    '  CC      arch/x86/boot/compressed/misc.o',
    '  OBJCOPY arch/x86/boot/compressed/vmlinux.bin',
    '  RELOCS  arch/x86/boot/compressed/vmlinux.relocs',
    '  GZIP    arch/x86/boot/compressed/vmlinux.bin.gz',
    '  MKPIGGY arch/x86/boot/compressed/piggy.S',
    '  AS      arch/x86/boot/compressed/piggy.o',
    '  LD      arch/x86/boot/compressed/vmlinux',
    '  ZOFFSET arch/x86/boot/zoffset.h',
    '  AS      arch/x86/boot/header.o',
    '  BUILD   arch/x86/boot/bzImage',
    'Setup is 17084 bytes (padded to 17408 bytes).',
    `System is ${kb} kB`,
    `CRC ${crc}`,
    `Kernel: arch/x86/boot/bzImage is ready  (#${build})`,
  );
  return lines;
}

/** `make modules` after a full build: nothing left to compile. */
export function modulesUpToDateLog(flavour: Flavour): string[] {
  return [HEADER, '  CHK     include/config/kernel.release', '  CHK     include/generated/uapi/linux/version.h', '  CHK     include/generated/utsrelease.h', '  CALL    scripts/checksyscalls.sh', '  Building modules, stage 2.', `  MODPOST ${MODULE_COUNT[flavour]} modules`];
}

/** `make modules` from scratch: the module objects only. */
export function modulesLog(flavour: Flavour): string[] {
  const mods = MODULES[flavour];
  return [HEADER, '  CHK     include/config/kernel.release', '  CALL    scripts/checksyscalls.sh', ...mods.map((m) => `  CC [M]  ${m}.o`), '  Building modules, stage 2.', `  MODPOST ${MODULE_COUNT[flavour]} modules`, ...mods.flatMap((m) => [`  CC      ${m}.mod.o`, `  LD [M]  ${m}.ko`])];
}

/** What gcc and make print when the `kernel-build` fault breaks the build. */
export function compileErrorLines(flavour: Flavour): string[] {
  const [dir, file, fn, missing] = flavour === 'fragvisor' ? ['kernel/popcorn', 'process_server', 'process_server_do_migration', 'popcorn_migrate_vcpu'] : ['arch/x86/kvm/dsm', 'dsm', 'kvm_dsm_page_fault', 'dsm_rdma_fetch'];
  return [
    `${dir}/${file}.c: In function '${fn}':`,
    `${dir}/${file}.c:1187:9: error: implicit declaration of function '${missing}' [-Werror=implicit-function-declaration]`,
    `  ret = ${missing}(vcpu, gfn);`,
    '        ^',
    'cc1: some warnings being treated as errors',
    `scripts/Makefile.build:258: recipe for target '${dir}/${file}.o' failed`,
    `make[2]: *** [${dir}/${file}.o] Error 1`,
    `scripts/Makefile.build:403: recipe for target '${dir}' failed`,
    `make[1]: *** [${dir}] Error 2`,
    `Makefile:950: recipe for target '${dir.split('/')[0]}' failed`,
    `make: *** [${dir.split('/')[0]}] Error 2`,
  ];
}
