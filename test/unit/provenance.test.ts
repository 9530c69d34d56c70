import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import {
  AB_VERSION,
  nodeQuestions,
  parseCpuInfo,
  parseExtraAnswers,
  parseMemTotal,
  parseNodeProvenance,
  provenanceCommand,
  questionName,
  splitAnswers,
  toolAnswer,
  type NodeQuestionOptions,
} from '../../workflows/commands/provenance';

const run = promisify(execFile);

const PATHS = { fragvisor: '/home/ae/FragVisor', kernelTree: '/home/ae/FragVisor/fragvisor-linux', kvmtool: '/home/ae/fragvisor-kvmtool' };
const BOOT = '8c6b9a1e-3f2d-4b5a-9c8d-7e6f5a4b3c2d';
const HEAD_A = 'a'.repeat(40);
const HEAD_B = '0123456789abcdef0123456789abcdef01234567';

/** One /proc/cpuinfo block as x86 Linux prints it (tab before the colon, flags abridged). */
function x86Block(processor: number, model: string, physical: number, core: number, cores: number, siblings: number): string {
  return [
    `processor\t: ${processor}`,
    'vendor_id\t: GenuineIntel',
    'cpu family\t: 6',
    'model\t\t: 79',
    `model name\t: ${model}`,
    'stepping\t: 1',
    'microcode\t: 0xb000038',
    'cpu MHz\t\t: 2100.000',
    'cache size\t: 20480 KB',
    `physical id\t: ${physical}`,
    `siblings\t: ${siblings}`,
    `core id\t\t: ${core}`,
    `cpu cores\t: ${cores}`,
    `apicid\t\t: ${physical * 32 + core * 2}`,
    'fpu\t\t: yes',
    'flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm',
    'bogomips\t: 4199.88',
    'clflush size\t: 64',
    'address sizes\t: 46 bits physical, 48 bits virtual',
    'power management:',
    '',
  ].join('\n');
}

const E5_2620_V4 = 'Intel(R) Xeon(R) CPU E5-2620 v4 @ 2.10GHz';
/** The echo nodes: one E5-2620 v4, 8 cores, 16 threads (thread i and i+8 share core i). */
const ECHO_CPUINFO = Array.from({ length: 16 }, (_, i) => x86Block(i, E5_2620_V4, 0, i % 8, 8, 16)).join('\n');
/** Two sockets of the same, 32 threads; core ids repeat across sockets. */
const TWO_SOCKETS = Array.from({ length: 32 }, (_, i) => x86Block(i, E5_2620_V4, Math.floor(i / 8) % 2, i % 8, 8, 16)).join('\n');
/** An arm64 host: no model name, no physical id or core id. */
const ARM64 = [0, 1, 2, 3]
  .map((i) => `processor\t: ${i}\nBogoMIPS\t: 50.00\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x3\nCPU part\t: 0xd0c\nCPU revision\t: 1\n`)
  .join('\n');

describe('parseCpuInfo', () => {
  it.each([
    { name: 'the echo nodes (1 socket, 8 cores, 16 threads)', text: ECHO_CPUINFO, expected: { model: E5_2620_V4, logical: 16, sockets: 1, cores: 8 } },
    { name: 'two sockets (core ids repeat per socket)', text: TWO_SOCKETS, expected: { model: E5_2620_V4, logical: 32, sockets: 2, cores: 16 } },
    {
      name: 'the remote grep of a VM without topology lines',
      text: 'processor\t: 0\nmodel name\t: Intel(R) Xeon(R) Processor\nprocessor\t: 1\nmodel name\t: Intel(R) Xeon(R) Processor\n',
      expected: { model: 'Intel(R) Xeon(R) Processor', logical: 2 },
    },
    { name: 'arm64 (no model name)', text: ARM64, expected: { logical: 4 } },
    {
      name: 'mixed models',
      text: `${x86Block(0, 'Model A', 0, 0, 1, 1)}\n${x86Block(1, 'Model B', 1, 0, 1, 1)}`,
      expected: { model: 'Model A + Model B', logical: 2, sockets: 2, cores: 2 },
    },
  ])('$name', ({ text, expected }) => {
    expect(parseCpuInfo(text)).toEqual(expected);
  });

  it('rejects a text without any processor', () => {
    expect(() => parseCpuInfo('grep: /proc/cpuinfo: No such file or directory')).toThrow(/lists no processor/);
  });
});

describe('parseMemTotal', () => {
  it.each([
    { name: 'the whole of /proc/meminfo', text: 'MemTotal:       32827408 kB\nMemFree:        30112332 kB\nMemAvailable:   31200412 kB\nBuffers:          102400 kB\n', totalKiB: 32827408 },
    { name: 'the grep', text: 'MemTotal:       24684084 kB', totalKiB: 24684084 },
  ])('$name', ({ text, totalKiB }) => {
    expect(parseMemTotal(text)).toEqual({ totalKiB });
  });

  it.each(['MemFree:        30112332 kB', 'MemTotal:       lots', ''])('rejects %j', (text) => {
    expect(() => parseMemTotal(text)).toThrow(/no MemTotal line/);
  });
});

describe('toolAnswer', () => {
  it.each([
    { name: 'a version banner: its first line', raw: { exitCode: 0, text: 'This is ApacheBench, Version 2.3 <$Revision: 1807734 $>\nCopyright 1996 Adam Twiss' }, expected: { tool: 'ab', version: 'This is ApacheBench, Version 2.3 <$Revision: 1807734 $>' } },
    { name: 'leading blank lines and spaces', raw: { exitCode: 0, text: '\n  QEMU emulator version 2.8.1 (GiantVM)  \n' }, expected: { tool: 'ab', version: 'QEMU emulator version 2.8.1 (GiantVM)' } },
    { name: 'not installed: the shell says so', raw: { exitCode: 127, text: 'sh: 1: ab: not found' }, expected: { tool: 'ab', error: 'not installed (sh: 1: ab: not found)' } },
    { name: 'not installed, silently', raw: { exitCode: 127, text: '' }, expected: { tool: 'ab', error: 'not installed' } },
    { name: 'not executable', raw: { exitCode: 126, text: 'sh: 1: ./lkvm: Permission denied' }, expected: { tool: 'ab', error: 'exit 126: sh: 1: ./lkvm: Permission denied' } },
    { name: 'exit 0 but no output', raw: { exitCode: 0, text: '' }, expected: { tool: 'ab', error: 'printed no version' } },
    { name: 'no answer at all', raw: undefined, expected: { tool: 'ab', error: 'no answer (the round trip ended before it)' } },
  ])('$name', ({ raw, expected }) => {
    expect(toolAnswer('ab', raw)).toEqual(expected);
  });
});

describe('nodeQuestions', () => {
  const names = (o: Partial<NodeQuestionOptions>) => nodeQuestions({ paths: PATHS, origin: false, giantvm: false, loadGenerator: false, ...o }).map(questionName);
  const FACTS = ['release', 'kernelVersion', 'bootId', 'cpu', 'memory', 'git:fragvisor', 'git:kernel'];
  it.each([
    { name: 'another node', o: {}, expected: FACTS },
    { name: 'the origin (kvmtool is shared: asked there only)', o: { origin: true }, expected: [...FACTS, 'git:kvmtool', 'tool:lkvm'] },
    { name: 'the origin running ab', o: { origin: true, loadGenerator: true }, expected: [...FACTS, 'git:kvmtool', 'tool:lkvm', 'tool:ab'] },
    { name: 'another node when GiantVM is measured', o: { giantvm: true }, expected: [...FACTS, 'git:giantvm', 'tool:qemu-system-x86_64'] },
  ])('$name', ({ o, expected }) => {
    expect(names(o)).toEqual(expected);
  });

  it('takes the trees from the profile: the kernel tree, GiantVM beside FragVisor unless named, lkvm in kvmtool', () => {
    const q = nodeQuestions({ paths: PATHS, origin: true, giantvm: true, loadGenerator: false });
    const where = Object.fromEntries(q.map((x) => [questionName(x), x.kind === 'git' ? x.path : x.kind === 'tool' ? x.argv.join(' ') : '']));
    expect(where).toMatchObject({
      'git:fragvisor': '/home/ae/FragVisor',
      'git:kernel': '/home/ae/FragVisor/fragvisor-linux',
      'git:giantvm': '/home/ae/linux-dsm',
      'git:kvmtool': '/home/ae/fragvisor-kvmtool',
      'tool:lkvm': '/home/ae/fragvisor-kvmtool/lkvm version',
      'tool:qemu-system-x86_64': 'qemu-system-x86_64 --version',
    });
    expect(nodeQuestions({ paths: { ...PATHS, giantvmTree: '/srv/dsm' }, origin: false, giantvm: true, loadGenerator: false }).find((x) => questionName(x) === 'git:giantvm')).toMatchObject({ path: '/srv/dsm' });
  });

  it('refuses a path a shell would parse', () => {
    expect(() => nodeQuestions({ paths: { ...PATHS, fragvisor: '/home/ae/Frag Visor;reboot' }, origin: false, giantvm: false, loadGenerator: false })).toThrow(/paths.fragvisor must be an absolute path/);
  });
});

/** A node's output as the command frames it. */
function framed(answers: [string, number, string][]): string {
  return answers.map(([name, code, text]) => `@@fragvisor-ae:begin ${name}\n${text}\n\n@@fragvisor-ae:end ${name} ${code}\n`).join('');
}

const ORIGIN_QUESTIONS = nodeQuestions({ paths: PATHS, origin: true, giantvm: false, loadGenerator: true });
const FACT_ANSWERS: [string, number, string][] = [
  ['release', 0, '4.4.137-pop-hype'],
  ['kernelVersion', 0, '#1 SMP Mon Jun 19 13:30:12 UTC 2023'],
  ['bootId', 0, BOOT],
  ['cpu', 0, ECHO_CPUINFO],
  ['memory', 0, 'MemTotal:       32827408 kB'],
];

describe('parseNodeProvenance', () => {
  it('reads the origin: facts, commits, tools; a missing tool and a tree that is not a checkout say why', () => {
    const out = framed([
      ...FACT_ANSWERS,
      ['git:fragvisor', 0, HEAD_A],
      ['git:kernel', 0, HEAD_B],
      ['git:kvmtool', 1, 'not a git checkout (no /home/ae/fragvisor-kvmtool/.git)'],
      ['tool:lkvm', 0, 'kvm tool 3.18.0-fragvisor'],
      ['tool:ab', 127, 'bash: line 1: ab: command not found'],
    ]);
    expect(parseNodeProvenance(out, ORIGIN_QUESTIONS)).toEqual({
      kernelRelease: '4.4.137-pop-hype',
      kernelVersion: '#1 SMP Mon Jun 19 13:30:12 UTC 2023',
      bootId: BOOT,
      cpu: { model: E5_2620_V4, logical: 16, sockets: 1, cores: 8 },
      memory: { totalKiB: 32827408 },
      commits: {
        fragvisor: { path: '/home/ae/FragVisor', commit: HEAD_A },
        kernel: { path: '/home/ae/FragVisor/fragvisor-linux', commit: HEAD_B },
        kvmtool: { path: '/home/ae/fragvisor-kvmtool', error: 'not a git checkout (no /home/ae/fragvisor-kvmtool/.git)' },
      },
      tools: [
        { tool: 'lkvm', version: 'kvm tool 3.18.0-fragvisor' },
        { tool: 'ab', error: 'not installed (bash: line 1: ab: command not found)' },
      ],
    });
  });

  it.each([
    { name: 'git refuses the checkout', answer: [128, "fatal: detected dubious ownership in repository at '/home/ae/FragVisor'\nTo add an exception for this directory, call:"], error: "fatal: detected dubious ownership in repository at '/home/ae/FragVisor'" },
    { name: 'git is not installed', answer: [127, 'sh: 1: git: not found'], error: 'git not installed (sh: 1: git: not found)' },
    { name: 'HEAD is not a commit yet', answer: [0, 'HEAD'], error: 'not a commit: "HEAD"' },
    { name: 'git says nothing', answer: [128, ''], error: 'exit 128' },
  ] as { name: string; answer: [number, string]; error: string }[])('a commit that cannot be read: $name', ({ answer, error }) => {
    const out = framed([...FACT_ANSWERS, ['git:fragvisor', ...answer], ['git:kernel', 0, HEAD_B]]);
    expect(parseNodeProvenance(out, ORIGIN_QUESTIONS.slice(0, 7)).commits.fragvisor).toEqual({ path: '/home/ae/FragVisor', error });
  });

  it('a round trip cut short leaves the later answers missing, and says so', () => {
    const out = framed([...FACT_ANSWERS, ['git:fragvisor', 0, HEAD_A]]) + '@@fragvisor-ae:begin git:kernel\n';
    const parsed = parseNodeProvenance(out, ORIGIN_QUESTIONS);
    expect(parsed.commits.kernel).toEqual({ path: '/home/ae/FragVisor/fragvisor-linux', error: 'no answer (the round trip ended before it)' });
    expect(parsed.tools).toEqual([
      { tool: 'lkvm', error: 'no answer (the round trip ended before it)' },
      { tool: 'ab', error: 'no answer (the round trip ended before it)' },
    ]);
  });

  it.each([
    { name: 'no boot_id answer', drop: 'bootId', error: /no bootId answer/ },
    { name: 'uname failing', replace: ['release', 1, 'uname: cannot get system name'], error: /release failed with exit 1: uname: cannot get system name/ },
    { name: 'a boot_id that is no UUID', replace: ['bootId', 0, 'cat: /proc/sys/kernel/random/boot_id: oops'], error: /boot_id is not a UUID/ },
    { name: 'a release of two words', replace: ['release', 0, 'Linux 4.4'], error: /uname -r is not one word/ },
    { name: 'no MemTotal', replace: ['memory', 1, ''], error: /memory failed with exit 1/ },
  ] as { name: string; drop?: string; replace?: [string, number, string]; error: RegExp }[])('the node facts must be there: $name', ({ drop, replace, error }) => {
    const answers = FACT_ANSWERS.filter(([n]) => n !== drop).map((a) => (replace && a[0] === replace[0] ? replace : a));
    expect(() => parseNodeProvenance(framed(answers), ORIGIN_QUESTIONS)).toThrow(error);
  });
});

describe('splitAnswers', () => {
  it('keeps an answer whose text has no final newline, and ignores noise around the frames (a login banner)', () => {
    const out = 'Welcome to echo5\n@@fragvisor-ae:begin release\n4.4.137-pop-hype\n@@fragvisor-ae:end release 0\nstray line\n';
    expect([...splitAnswers(out)]).toEqual([['release', { exitCode: 0, text: '4.4.137-pop-hype' }]]);
  });

  it('an end marker of another answer does not close the open one', () => {
    const out = '@@fragvisor-ae:begin cpu\nprocessor : 0\n@@fragvisor-ae:end memory 0\n';
    expect(splitAnswers(out).size).toBe(0);
  });
});

describe('provenanceCommand in a real shell', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'provenance-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const git = (cwd: string, ...args: string[]) =>
    run('git', ['-c', 'init.defaultBranch=master', '-c', 'commit.gpgSign=false', ...args], {
      cwd,
      env: { PATH: process.env.PATH, HOME: dir, GIT_CONFIG_NOSYSTEM: '1', GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t.invalid', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t.invalid' },
    });

  it('answers every question; an uninitialised submodule is not mistaken for its parent; missing tools are named', async () => {
    // FragVisor: a repository; its kernel tree: an empty directory inside it (an uninitialised submodule).
    const fragvisor = path.join(dir, 'FragVisor');
    const kernelTree = path.join(fragvisor, 'fragvisor-linux');
    mkdirSync(kernelTree, { recursive: true });
    writeFileSync(path.join(fragvisor, 'README'), 'x\n');
    await git(fragvisor, 'init', '-q');
    await git(fragvisor, 'add', '-A');
    await git(fragvisor, 'commit', '-q', '-m', 'one');
    const head = (await git(fragvisor, 'rev-parse', 'HEAD')).stdout.trim();
    const kvmtool = path.join(dir, 'kvmtool');
    mkdirSync(kvmtool);
    writeFileSync(path.join(kvmtool, 'lkvm'), "#!/bin/sh\n[ \"$1\" = version ] && echo 'kvm tool 3.18.0-test' || exit 2\n");
    chmodSync(path.join(kvmtool, 'lkvm'), 0o755);
    // A PATH with the basics only: ab and qemu are missing here, whatever this host has.
    const bin = path.join(dir, 'bin');
    mkdirSync(bin);
    for (const tool of ['uname', 'cat', 'grep', 'git']) symlinkSync((await run('sh', ['-c', `command -v ${tool}`])).stdout.trim(), path.join(bin, tool));
    const paths = { fragvisor, kernelTree, kvmtool, giantvmTree: path.join(dir, 'linux-dsm') };
    const questions = nodeQuestions({ paths, origin: true, giantvm: true, loadGenerator: true });
    const ask = async () => parseNodeProvenance((await run('/bin/sh', ['-c', provenanceCommand(questions)], { env: { PATH: bin, HOME: dir } })).stdout, questions);

    const first = await ask();
    expect(first).toMatchObject({
      kernelRelease: (await run('uname', ['-r'])).stdout.trim(),
      kernelVersion: (await run('uname', ['-v'])).stdout.trim(),
      bootId: readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim(),
      cpu: { logical: os.cpus().length },
      memory: { totalKiB: os.totalmem() / 1024 },
      commits: {
        fragvisor: { path: fragvisor, commit: head },
        kernel: { path: kernelTree, error: `not a git checkout (no ${kernelTree}/.git)` },
        giantvm: { path: paths.giantvmTree, error: `not a git checkout (no ${paths.giantvmTree}/.git)` },
        kvmtool: { path: kvmtool, error: `not a git checkout (no ${kvmtool}/.git)` },
      },
      tools: [
        { tool: 'qemu-system-x86_64', error: expect.stringMatching(/^not installed \(.*qemu-system-x86_64.*not found\)$/) },
        { tool: 'lkvm', version: 'kvm tool 3.18.0-test' },
        { tool: 'ab', error: expect.stringMatching(/^not installed \(.*ab.*not found\)$/) },
      ],
    });
    expect(first.cpu.model).toBe(os.cpus()[0].model);

    // Once the submodule is a checkout of its own, its own HEAD is read.
    writeFileSync(path.join(kernelTree, 'Makefile'), 'VERSION = 4\n');
    await git(kernelTree, 'init', '-q');
    await git(kernelTree, 'add', '-A');
    await git(kernelTree, 'commit', '-q', '-m', 'kernel');
    const kernelHead = (await git(kernelTree, 'rev-parse', 'HEAD')).stdout.trim();
    expect(kernelHead).not.toBe(head);
    expect((await ask()).commits.kernel).toEqual({ path: kernelTree, commit: kernelHead });
  });
});

describe('parseExtraAnswers', () => {
  it('reads the client host: only ab', () => {
    expect(parseExtraAnswers(framed([['tool:ab', 0, 'This is ApacheBench, Version 2.3 <$Revision: 1903618 $>']]), [AB_VERSION])).toEqual({
      commits: {},
      tools: [{ tool: 'ab', version: 'This is ApacheBench, Version 2.3 <$Revision: 1903618 $>' }],
    });
  });
});

