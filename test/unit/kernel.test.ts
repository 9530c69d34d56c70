import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { jobCommandLine } from '../../activities/remoteJob/scripts';
import {
  failingLines,
  guestKernelUpToDate,
  kernelUpToDate,
  parseGuestReadback,
  parseInspectOutput,
  parseMarker,
  parseOriginFlagReadback,
  parseSyncOutput,
  renderMarker,
  type InspectOutput,
  type KernelMarker,
} from '../../activities/kernelOutput';
import { pathsSchema, sourceSchema } from '../../config/schema';
import { compileErrorLines, fullBuildLog } from '../../sim/fragvisor/buildLog';
import {
  configHashCommand,
  guestBuildJob,
  guestKernelLayout,
  guestKernelSteps,
  guestPrepareCommands,
  hostKernelJobs,
  hostKernelSteps,
  inspectCommand,
  kernelSource,
  originFlagCommands,
  planJobLine,
  sourceSyncCommands,
  writeMarkerCommand,
  type KernelPaths,
} from '../../workflows/commands/kernel';

/** Host and guest kernel command lines, their plan steps, and the readers of what they print. */

const PATHS: KernelPaths = { fragvisor: '/root/FragVisor', kernelTree: '/root/FragVisor/fragvisor-linux' };
const TREE = PATHS.kernelTree;
const DEBUG_H = `${TREE}/include/popcorn/debug.h`;
const C = 'aaee1ba1729901bf1d01463adfe2cf3f5920b41a';
const T = '4c41f2efdd537ea07530d609dc8316baa424074b';
const H = '90fde9e3629b537a99d835d5ab50826bfee8a3959554ab6be9971aafc5cb3c51';

describe('profile: kernel paths and source repositories', () => {
  it.each([
    ['https', 'https://github.com/systems-nuts/FragVisor.git'],
    ['https with a port', 'https://git.example.org:8443/fragvisor/FragVisor'],
    ['ssh', 'ssh://git@github.com:22/systems-nuts/fragvisor-linux.git'],
    ['scp-like', 'git@github.com:systems-nuts/FragVisor.git'],
  ])('accepts a %s repository', (_what, url) => {
    expect(sourceSchema.parse({ repository: url, giantvmRepository: url })).toEqual({ repository: url, giantvmRepository: url });
  });

  it.each([
    ['credentials in an https URL', 'https://user:secret@github.com/x/y.git'],
    ['a shell character', 'https://github.com/x/y.git;reboot'],
    ['an option as the path', 'git@github.com:-oProxyCommand=x'],
    ['the ext transport', 'ext::sh -c id'],
    ['a local path', '/srv/git/FragVisor'],
    ['plain http', 'http://github.com/x/y.git'],
  ])('refuses %s, without echoing it', (_what, url) => {
    const r = sourceSchema.safeParse({ repository: url });
    expect(r.success).toBe(false);
    expect(JSON.stringify(r.error?.issues)).not.toContain(url);
  });

  it('takes giantvmTree and guestKernel as optional remote paths', () => {
    const base = { fragvisor: '/root/FragVisor', kernelTree: '/root/FragVisor/fragvisor-linux', kvmtool: '/nfs/kvmtool', ramdisks: '/root/ramdisks' };
    expect(pathsSchema.parse(base)).toEqual(base);
    expect(pathsSchema.parse({ ...base, giantvmTree: '/root/linux-dsm', guestKernel: '/scratch/guest' })).toMatchObject({ giantvmTree: '/root/linux-dsm', guestKernel: '/scratch/guest' });
    expect(pathsSchema.safeParse({ ...base, guestKernel: 'guest' }).success).toBe(false);
    expect(pathsSchema.safeParse({ ...base, giantvmTree: '/root/$(id)' }).success).toBe(false);
  });
});

describe('where the sources are', () => {
  it.each([
    { flavour: 'fragvisor' as const, paths: PATHS, want: { repo: '/root/FragVisor', tree: TREE, submodules: true } },
    { flavour: 'giantvm' as const, paths: PATHS, want: { repo: '/root/linux-dsm', tree: '/root/linux-dsm', submodules: false } },
    { flavour: 'giantvm' as const, paths: { ...PATHS, giantvmTree: '/srv/giantvm/linux/' }, want: { repo: '/srv/giantvm/linux', tree: '/srv/giantvm/linux', submodules: false } },
    { flavour: 'fragvisor' as const, paths: { fragvisor: '/FragVisor', kernelTree: '/FragVisor/fragvisor-linux' }, want: { repo: '/FragVisor', tree: '/FragVisor/fragvisor-linux', submodules: true } },
  ])('$flavour with $paths.giantvmTree', ({ flavour, paths, want }) => {
    expect(kernelSource(flavour, paths)).toEqual({ flavour, ...want });
  });

  it.each([
    { paths: PATHS, dir: '/root/fragvisor-guest-kernel' },
    { paths: { fragvisor: '/FragVisor', kernelTree: '/FragVisor/linux' }, dir: '/fragvisor-guest-kernel' },
    { paths: { ...PATHS, guestKernel: '/scratch/guest' }, dir: '/scratch/guest' },
  ])('the guest kernel lives in $dir', ({ paths, dir }) => {
    expect(guestKernelLayout(paths)).toEqual({ dir, src: `${dir}/src`, out: `${dir}/build`, image: `${dir}/build/arch/x86/boot/bzImage` });
  });

  it.each([
    ['a space', { ...PATHS, kernelTree: '/root/Frag Visor' }, /paths.kernelTree/],
    ['a command substitution', { ...PATHS, fragvisor: '/root/$(reboot)' }, /paths.fragvisor/],
    ['a relative path', { ...PATHS, fragvisor: 'FragVisor' }, /paths.fragvisor/],
    ['..', { ...PATHS, giantvmTree: '/root/../etc' }, /paths.giantvmTree/],
    ['a quote', { ...PATHS, guestKernel: "/root/g'uest" }, /paths.guestKernel/],
  ])('refuses a path with %s', (_what, paths, field) => {
    expect(() => {
      kernelSource('giantvm', paths);
      kernelSource('fragvisor', paths);
      guestKernelLayout(paths);
    }).toThrow(field);
  });
});

describe('command lines', () => {
  const src = kernelSource('fragvisor', PATHS);
  const dsm = kernelSource('giantvm', PATHS);

  it('syncs FragVisor: no clone without a repository, fetch only when the commit is missing and a remote exists, submodules, heads', () => {
    expect(sourceSyncCommands(src, C)).toEqual([
      "test -e /root/FragVisor/.git || { echo 'fragvisor-ae: no git checkout at /root/FragVisor and the profile names no source repository to clone it from' >&2; exit 3; }",
      `git -C /root/FragVisor cat-file -e '${C}^{commit}' 2>/dev/null || ! git -C /root/FragVisor remote get-url origin >/dev/null 2>&1 || git -C /root/FragVisor fetch --quiet --tags origin`,
      `git -C /root/FragVisor cat-file -e '${C}^{commit}' 2>/dev/null || { echo 'fragvisor-ae: commit ${C} is not in /root/FragVisor' >&2; exit 3; }`,
      `git -C /root/FragVisor checkout --quiet --detach ${C}`,
      'git -C /root/FragVisor submodule --quiet update --init',
      `git -C /root/FragVisor rev-parse HEAD && git -C ${TREE} rev-parse HEAD`,
    ]);
  });

  it('clones into a staging dir first when the profile names a repository; GiantVM has no submodule step', () => {
    const lines = sourceSyncCommands(dsm, 'abcdef1', 'https://example.org/giantvm/linux-dsm.git');
    expect(lines[0]).toBe(
      'test -e /root/linux-dsm/.git || { rm -rf /root/linux-dsm.ae-clone && git clone --quiet -- https://example.org/giantvm/linux-dsm.git /root/linux-dsm.ae-clone && mv -T /root/linux-dsm.ae-clone /root/linux-dsm; }',
    );
    expect(lines[2]).toContain("commit abcdef1 is not in /root/linux-dsm (nor in its remote origin)'");
    expect(lines.some((l) => l.includes('submodule'))).toBe(false);
    expect(lines.at(-1)).toBe('git -C /root/linux-dsm rev-parse HEAD && git -C /root/linux-dsm rev-parse HEAD');
  });

  it('quotes whatever it is given (a URL the profile would refuse stays one word)', () => {
    expect(sourceSyncCommands(dsm, C, "https://x/a b';reboot;'")[0]).toContain(`git clone --quiet -- 'https://x/a b'\\'';reboot;'\\''' /root/linux-dsm.ae-clone`);
  });

  it.each([
    ['a branch name', 'master'],
    ['upper-case hex', 'AAEE1BA'],
    ['too short', 'aaee1b'],
    ['an option', '--upload-pack=x'],
  ])('refuses %s as a commit', (_what, commit) => {
    expect(() => sourceSyncCommands(src, commit)).toThrow(/git commit hash/);
  });

  it.each([
    {
      origin: true,
      want: [
        `sed -i -E -e 's@^[[:space:]]*//[[:space:]]*(#[[:space:]]*define[[:space:]]+CONFIG_POPCORN_ORIGIN_NODE([[:space:]]|$))@\\1@' -e 's@^[[:space:]]*/\\*[[:space:]]*(#[[:space:]]*define[[:space:]]+CONFIG_POPCORN_ORIGIN_NODE)[[:space:]]*\\*/[[:space:]]*$@\\1@' ${DEBUG_H}`,
        `grep -Eq '^[[:space:]]*#[[:space:]]*define[[:space:]]+CONFIG_POPCORN_ORIGIN_NODE([[:space:]]|$)' ${DEBUG_H} || printf '%s\\n' '' '/* The origin node (set by fragvisor-ae). */' '#define CONFIG_POPCORN_ORIGIN_NODE' >> ${DEBUG_H}`,
        `grep -n CONFIG_POPCORN_ORIGIN_NODE ${DEBUG_H} || true`,
      ],
    },
    {
      origin: false,
      want: [`sed -i -E 's@^([[:space:]]*#[[:space:]]*define[[:space:]]+CONFIG_POPCORN_ORIGIN_NODE([[:space:]]|$))@// \\1@' ${DEBUG_H}`, `grep -n CONFIG_POPCORN_ORIGIN_NODE ${DEBUG_H} || true`],
    },
  ])('origin flag (origin: $origin): the idempotent edit, then the read-back', ({ origin, want }) => {
    expect(originFlagCommands(TREE, origin).slice(1)).toEqual(want);
  });

  it('origin flag: first checks debug.h and its directory are there and writable, permanently (exit 3) if not', () => {
    expect(originFlagCommands(TREE, true)[0]).toBe(
      `{ test -f ${DEBUG_H} || { echo 'fragvisor-ae: cannot set the origin flag (CONFIG_POPCORN_ORIGIN_NODE): ${DEBUG_H} is missing: check paths.kernelTree in the cluster profile (the FragVisor kernel tree)' >&2; exit 3; }; } && ` +
        `{ { test -w ${DEBUG_H} && test -w ${TREE}/include/popcorn; } || { echo 'fragvisor-ae: cannot set the origin flag (CONFIG_POPCORN_ORIGIN_NODE): ${DEBUG_H} or its directory is not writable by the SSH user: give that user the kernel tree (chown -R)' >&2; exit 3; }; }`,
    );
  });

  it('hashes .config, debug.h (FragVisor only) and LOCALVERSION on the node; inspect adds uname -r and the marker', () => {
    expect(configHashCommand(src)).toBe(
      `cd ${TREE} && { test -f .config || { echo 'fragvisor-ae: ${TREE}/.config is missing: configure the kernel tree first' >&2; exit 3; }; } && { test -f include/popcorn/debug.h || { echo 'fragvisor-ae: ${DEBUG_H} is missing: configure the kernel tree first' >&2; exit 3; }; } && { sha256sum .config include/popcorn/debug.h && { grep -E '^[[:space:]]*LOCALVERSION[[:space:]]*[:?]?=' Makefile || true; }; } | sha256sum | cut -c1-64`,
    );
    expect(configHashCommand(dsm)).toContain('&& { sha256sum .config && {');
    expect(inspectCommand(dsm)).toBe(`uname -r && ( ${configHashCommand(dsm)} ) && { cat "$HOME"/.fragvisor-ae/kernel/giantvm.json 2>/dev/null || true; }`);
    expect(writeMarkerCommand('fragvisor')).toBe(
      'mkdir -p "$HOME"/.fragvisor-ae/kernel && cat > "$HOME"/.fragvisor-ae/kernel/fragvisor.json.tmp && mv -f "$HOME"/.fragvisor-ae/kernel/fragvisor.json.tmp "$HOME"/.fragvisor-ae/kernel/fragvisor.json',
    );
  });

  it('builds with make -jN in the tree, installs through sudo -n; the plan shows what the remote job runner runs', () => {
    const jobs = hostKernelJobs(src, 16);
    expect(jobs).toEqual({
      build: { step: 'build', argv: ['make', '-j16'], cwd: TREE },
      modulesInstall: { step: 'modules-install', argv: ['make', 'modules_install'], cwd: TREE, sudo: true },
      install: { step: 'install', argv: ['make', 'install'], cwd: TREE, sudo: true },
    });
    const guest = guestBuildJob(PATHS, 8);
    expect(guest).toEqual({ step: 'build', argv: ['make', 'O=/root/fragvisor-guest-kernel/build', '-j8'], cwd: '/root/fragvisor-guest-kernel/src' });
    for (const job of [jobs.build, jobs.modulesInstall, jobs.install, guest]) expect(planJobLine(job)).toBe(jobCommandLine({ key: 'k', ...job }));
    expect(planJobLine(jobs.install)).toBe(`cd ${TREE} && exec sudo -n -- make install`);
    expect(() => hostKernelJobs(src, 0)).toThrow(/1\.\.1024/);
    expect(() => hostKernelJobs(src, 2.5)).toThrow(/whole number/);
  });

  it('prepares the guest in a worktree and its own output dir, reading the host tree only', () => {
    const lines = guestPrepareCommands(PATHS);
    const g = '/root/fragvisor-guest-kernel';
    expect(lines).toEqual([
      `{ git -C ${TREE} worktree remove --force ${g}/src 2>/dev/null || true; } && rm -rf ${g}/src && git -C ${TREE} worktree prune && mkdir -p ${g} ${g}/build && git -C ${TREE} worktree add --quiet --detach ${g}/src HEAD`,
      `cp ${DEBUG_H} ${g}/src/include/popcorn/debug.h && sed -i -E 's@^([[:space:]]*#[[:space:]]*define[[:space:]]+POPHYPE_HOST_KERNEL)[[:space:]]+[0-9]+@\\1 0@' ${g}/src/include/popcorn/debug.h`,
      `cp ${TREE}/.config ${g}/build/.config && make -s -C ${g}/src O=${g}/build olddefconfig && ${g}/src/scripts/config --file ${g}/build/.config -d RCU_STALL_COMMON`,
      `grep -E '^[[:space:]]*#[[:space:]]*define[[:space:]]+POPHYPE_HOST_KERNEL' ${g}/src/include/popcorn/debug.h && ${g}/src/scripts/config --file ${g}/build/.config -s RCU_STALL_COMMON && git -C ${g}/src rev-parse HEAD`,
    ]);
    // Everything the host tree sees is a read: no sed -i, no make, no redirection into it.
    const touchingHost = lines.flatMap((l) => l.split(/&&|\|\||;/)).filter((part) => part.includes(TREE) && !/^\s*\{?\s*(git -C \S+ worktree|cp )/.test(part));
    expect(touchingHost).toEqual([]);
  });

  it('every line is valid shell (bash -n)', async () => {
    const run = promisify(execFile);
    const lines = [
      ...sourceSyncCommands(src, C, 'git@github.com:systems-nuts/FragVisor.git'),
      ...originFlagCommands(TREE, true),
      ...originFlagCommands(TREE, false),
      inspectCommand(src),
      inspectCommand(dsm),
      writeMarkerCommand('giantvm'),
      ...guestPrepareCommands(PATHS),
      ...hostKernelSteps({ hypervisor: 'fragvisor', node: 'echo5', origin: true, paths: PATHS, commit: C, jobs: 16 }).flatMap((s) => s.commands),
      ...guestKernelSteps({ node: 'echo5', paths: PATHS, commit: C, jobs: 16 }).flatMap((s) => s.commands),
    ];
    for (const line of lines) await expect(run('bash', ['-n', '-c', line])).resolves.toBeDefined();
  });
});

describe('plan steps', () => {
  it.each([
    { hypervisor: 'fragvisor' as const, origin: true, whats: ['sync', 'origin-flag', 'inspect', 'build', 'modules-install', 'install', 'marker'] },
    { hypervisor: 'fragvisor' as const, origin: false, whats: ['sync', 'origin-flag', 'inspect', 'build', 'modules-install', 'install', 'marker'] },
    { hypervisor: 'giantvm' as const, origin: true, whats: ['sync', 'inspect', 'build', 'modules-install', 'install', 'marker'] },
  ])('$hypervisor (origin: $origin): stable keys, the exact command lines', ({ hypervisor, origin, whats }) => {
    const steps = hostKernelSteps({ hypervisor, node: 'echo4', origin, paths: PATHS, commit: C, jobs: 17 });
    expect(steps.map((s) => s.key)).toEqual(whats.map((w) => `${hypervisor}/host-kernel/echo4/${w}`));
    for (const s of steps) expect(s.host).toEqual({ node: 'echo4' });
    const src = kernelSource(hypervisor, PATHS);
    const by = Object.fromEntries(steps.map((s) => [s.key.split('/').at(-1), s]));
    expect(by.sync.commands).toEqual(sourceSyncCommands(src, C));
    if (hypervisor === 'fragvisor') expect(by['origin-flag'].commands).toEqual(originFlagCommands(TREE, origin));
    expect(by.build.commands[0]).toBe(`cd ${src.tree} && exec make -j17`);
    expect(by.install).toMatchObject({ privileged: true, commands: [`cd ${src.tree} && exec sudo -n -- make install`] });
    expect(by['modules-install']).toMatchObject({ privileged: true, commands: [`cd ${src.tree} && exec sudo -n -- make modules_install`] });
    expect(by.inspect.note).toMatch(/skipped/);
  });

  it('guest kernel: sync, inspect, prepare, build, marker on the origin', () => {
    const steps = guestKernelSteps({ node: 'echo5', paths: PATHS, commit: C, jobs: 16 });
    expect(steps.map((s) => s.key)).toEqual(['fragvisor/guest-kernel/echo5/sync', 'fragvisor/guest-kernel/echo5/inspect', 'fragvisor/guest-kernel/echo5/prepare', 'fragvisor/guest-kernel/echo5/build', 'fragvisor/guest-kernel/echo5/marker']);
    expect(steps[1].commands[0]).toContain('/root/fragvisor-guest-kernel/build/arch/x86/boot/bzImage');
    expect(steps[1].commands[0]).toContain('"$HOME"/.fragvisor-ae/kernel/guest.json');
    expect(steps[2].commands).toEqual(guestPrepareCommands(PATHS));
    expect(steps[3].commands).toEqual(['cd /root/fragvisor-guest-kernel/src && exec make O=/root/fragvisor-guest-kernel/build -j16', "test -s /root/fragvisor-guest-kernel/build/arch/x86/boot/bzImage || { echo 'fragvisor-ae: make exited 0 but /root/fragvisor-guest-kernel/build/arch/x86/boot/bzImage is missing' >&2; exit 3; }; cat /root/fragvisor-guest-kernel/build/include/config/kernel.release"]);
  });
});

describe('parseOriginFlagReadback', () => {
  it.each([
    { name: 'defined', out: '12:#define CONFIG_POPCORN_ORIGIN_NODE\n', origin: true },
    { name: 'defined with spaces', out: '12:  #  define   CONFIG_POPCORN_ORIGIN_NODE\n', origin: true },
    { name: 'commented with //', out: '12:// #define CONFIG_POPCORN_ORIGIN_NODE\n', origin: false },
    { name: 'commented with /* */', out: '12:/* #define CONFIG_POPCORN_ORIGIN_NODE */\n', origin: false },
    { name: 'removed by the artifact sed', out: '', origin: false },
    { name: 'a longer name only', out: '12:#define CONFIG_POPCORN_ORIGIN_NODE_X\n', origin: false },
    { name: 'defined then #undef', out: '12:#define CONFIG_POPCORN_ORIGIN_NODE\n40:#undef CONFIG_POPCORN_ORIGIN_NODE\n', origin: false },
    { name: 'commented, then appended', out: '12:// #define CONFIG_POPCORN_ORIGIN_NODE\n31:#define CONFIG_POPCORN_ORIGIN_NODE\n', origin: true },
  ])('$name -> origin $origin', ({ out, origin }) => {
    const state = parseOriginFlagReadback(out);
    expect(state.origin).toBe(origin);
    expect(state.lines).toEqual(out.split('\n').filter(Boolean));
  });

  it('refuses output that is not grep -n lines', () => {
    expect(() => parseOriginFlagReadback('#define CONFIG_POPCORN_ORIGIN_NODE\n')).toThrow(/grep -n/);
  });
});

describe('install marker and the skip decision', () => {
  const marker: KernelMarker = { flavour: 'fragvisor', commit: C, treeCommit: T, configHash: H, release: '4.4.137-pop-hype', origin: true, installedAt: '2025-01-01T00:00:00.000Z' };
  const inspect = (over: Partial<InspectOutput> = {}): InspectOutput => ({ running: '4.4.137-pop-hype', configHash: H, marker, ...over });
  const want = { flavour: 'fragvisor' as const, commit: C, configHash: H, origin: true };

  it('round-trips', () => {
    expect(parseMarker(renderMarker(marker))).toEqual({ marker });
  });

  it.each([
    { name: 'empty', text: '', want: {} },
    { name: 'not JSON', text: '{"flavour":', want: { problem: 'the install marker is not JSON' } },
    { name: 'a list', text: '[]', want: { problem: expect.stringMatching(/no valid flavour, commit/) } },
    { name: 'a short commit', text: JSON.stringify({ ...marker, commit: 'aaee1ba' }), want: { problem: 'the install marker has no valid commit' } },
    { name: 'origin as a string', text: JSON.stringify({ ...marker, origin: 'yes' }), want: { problem: 'the install marker has no valid origin' } },
    { name: 'a release with a space', text: JSON.stringify({ ...marker, release: '4.4 x' }), want: { problem: 'the install marker has no valid release' } },
  ])('parseMarker: $name', ({ text, want: expected }) => {
    expect(parseMarker(text)).toEqual(expected);
  });

  it.each([
    { name: 'same commit, config, origin, booted', got: inspect(), upToDate: true, reason: /runs 4\.4\.137-pop-hype/ },
    { name: 'no marker', got: inspect({ marker: undefined }), upToDate: false, reason: /no install marker/ },
    { name: 'a corrupt marker', got: inspect({ marker: undefined, markerProblem: 'the install marker is not JSON' }), upToDate: false, reason: /not JSON/ },
    { name: 'another flavour', got: inspect({ marker: { ...marker, flavour: 'giantvm' } }), upToDate: false, reason: /for giantvm/ },
    { name: 'another commit', got: inspect({ marker: { ...marker, commit: T } }), upToDate: false, reason: /from commit 4c41f2e/ },
    { name: 'a changed config', got: inspect({ configHash: H.replace(/^9/, '8') }), upToDate: false, reason: /configuration .* changed/ },
    { name: 'built without the origin flag', got: inspect({ marker: { ...marker, origin: false } }), upToDate: false, reason: /without the origin flag/ },
    { name: 'installed, not rebooted', got: inspect({ running: '4.15.0-213-generic' }), upToDate: false, reason: /runs 4\.15\.0-213-generic \(not rebooted/, installOnly: true },
    { name: "built, then the other hypervisor's kernel installed", got: inspect({ running: '4.8.10-dsm' }), upToDate: false, reason: /installing it again/, installOnly: true },
  ])('kernelUpToDate: $name', ({ got, upToDate, reason, installOnly }) => {
    const v = kernelUpToDate(got, { ...want, configHash: got.configHash });
    expect(v.upToDate).toBe(upToDate);
    expect(v.reason).toMatch(reason);
    // Only a build that is still in the tree, unchanged, may skip the build.
    expect(v.installOnly).toBe(installOnly);
  });

  it.each([
    { name: 'built from this commit and configuration', out: `present\n${H}\n${renderMarker(marker)}`, upToDate: true, reason: /built from/ },
    { name: 'no image', out: `absent\n${H}\n${renderMarker(marker)}`, upToDate: false, reason: /no guest kernel image/ },
    { name: 'no marker', out: `present\n${H}\n`, upToDate: false, reason: /no .*marker/ },
    { name: 'another commit', out: `present\n${H}\n${renderMarker({ ...marker, commit: 'b'.repeat(40) })}`, upToDate: false, reason: /from commit b{40}/ },
    { name: 'a changed host configuration', out: `present\n${H.replace(/^9/, '8')}\n${renderMarker(marker)}`, upToDate: false, reason: /host configuration .* changed/ },
  ])('guestKernelUpToDate: $name', ({ out, upToDate, reason }) => {
    const v = guestKernelUpToDate(out, marker.commit);
    expect(v.upToDate).toBe(upToDate);
    expect(v.reason).toMatch(reason);
  });

  it('guestKernelUpToDate refuses output without the config hash', () => {
    expect(() => guestKernelUpToDate('present\n\n', marker.commit)).toThrow(/config hash/);
  });

  it('parseInspectOutput reads uname -r, the hash and the marker (or its absence)', () => {
    expect(parseInspectOutput(`4.4.137-pop-hype\n${H}\n${renderMarker(marker)}`)).toEqual({ running: '4.4.137-pop-hype', configHash: H, marker });
    expect(parseInspectOutput(`4.15.0-213-generic\n${H}\n`)).toEqual({ running: '4.15.0-213-generic', configHash: H });
    expect(parseInspectOutput(`4.15.0-213-generic\n${H}\nnot json`)).toEqual({ running: '4.15.0-213-generic', configHash: H, markerProblem: 'the install marker is not JSON' });
    expect(() => parseInspectOutput(`4.15.0-213-generic\n\n`)).toThrow(/config hash/);
    expect(() => parseInspectOutput('')).toThrow(/uname -r/);
  });
});

describe('other read-backs', () => {
  it('parseSyncOutput: two full hashes', () => {
    expect(parseSyncOutput(`${C}\n${T}\n`)).toEqual({ commit: C, treeCommit: T });
    expect(() => parseSyncOutput(`${C}\n`)).toThrow(/two commit hashes/);
    expect(() => parseSyncOutput(`${C}\nfatal: not a git repository\n`)).toThrow(/kernel tree HEAD/);
  });

  it('parseGuestReadback: the knob, the option, the worktree HEAD', () => {
    expect(parseGuestReadback(`#define POPHYPE_HOST_KERNEL 0\nn\n${T}\n`)).toEqual({ hostKernel: 0, rcuStallCommon: 'n', treeCommit: T });
    expect(parseGuestReadback(`#define POPHYPE_HOST_KERNEL\ny\n${T}\n`)).toEqual({ hostKernel: undefined, rcuStallCommon: 'y', treeCommit: T });
    expect(() => parseGuestReadback(`n\n${T}\n`)).toThrow(/read-back/);
  });
});

describe('failingLines', () => {
  it.each(['fragvisor', 'giantvm'] as const)('%s: the compiler error and make\'s *** lines from the end of a failed build', (flavour) => {
    const log = [...fullBuildLog(flavour, 1, 7).slice(0, 200), ...compileErrorLines(flavour)];
    const lines = failingLines(log);
    expect(lines[0]).toMatch(/\.c:1187:9: error: implicit declaration of function/);
    expect(lines.slice(1)).toEqual(compileErrorLines(flavour).filter((l) => l.includes('***')));
  });

  it.each([
    { name: 'a clean build', log: fullBuildLog('fragvisor', 1, 7), want: [] },
    { name: 'make without a .config', log: ['***', '*** Configuration file ".config" not found!', 'make: *** No rule to make target'], want: ['***', '*** Configuration file ".config" not found!', 'make: *** No rule to make target'] },
    { name: 'a fatal error', log: ['  CC      fs/x.o', 'fs/x.c:1:10: fatal error: y.h: No such file or directory', 'compilation terminated.'], want: ['fs/x.c:1:10: fatal error: y.h: No such file or directory'] },
    { name: 'warnings are not errors', log: ['cc1: some warnings being treated as errors', 'x.c:3: warning: unused variable'], want: [] },
  ])('$name', ({ log, want }) => {
    expect(failingLines(log)).toEqual(want);
  });

  it('keeps at most `max` lines', () => {
    expect(failingLines(Array.from({ length: 30 }, (_, i) => `make[${i}]: *** [x] Error 2`), 5)).toHaveLength(5);
  });
});
