import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { DELEGATE } from '../../sim/tools/types';
import { msgLayerMake, parseConfigH, renderConfigH, setMsgLayerDeps, type MsgLayerDeps } from '../../sim/tools/msglayer';
import { inAton } from '../../sim/tools/msglayer/configH';
import { readModule } from '../../sim/tools/msglayer/ko';
import { parseMakeArgs } from '../../sim/tools/msglayer/makeArgs';
import { call, FakeWorld, type FakeNode } from '../helpers/fakeWorld';

/** config.h parsing and the simulated `make -C msg_layer`. */

/** systems-nuts/fragvisor-linux msg_layer/config.h, verbatim: the echo cluster's list. */
const FRAGVISOR_CONFIG_H = `#ifndef __POPCORN_MSG_LAYER_CONFIG_H__
#define __POPCORN_MSG_LAYER_CONFIG_H__

/**
 * XXX DO NOT commit your local config file!!! XXX
 */

const char *ip_addresses[] = {
\t/* Node 0 */ "10.4.6.15",
\t/* Node 1 */ "10.4.6.14",
\t/* Node 2 */ "10.4.6.10",
\t/* Node 3 */ "10.4.6.11",
\t/*   ...  */
};

#endif
`;

/** The older popcorn-kernel layout: entries commented out with block and line comments. */
const POPCORN_CONFIG_H = `const char *ip_addresses[] = {
\t/* ib */
\t/*
\t"192.168.69.129",\t// echo5 ib0
\t"192.168.69.128",\t// echo6 ib0
\t*/
    "10.0.0.100",
    // "10.0.0.7",
    "10.0.0.20",
    "10.0.0.101",
};
#define MAX_NUM_NODES (sizeof(ip_addresses) / sizeof(typeof(*ip_addresses)))
`;

describe('config.h', () => {
  it.each([
    { what: "FragVisor's config.h", text: FRAGVISOR_CONFIG_H, ips: ['10.4.6.15', '10.4.6.14', '10.4.6.10', '10.4.6.11'] },
    { what: 'commented-out entries', text: POPCORN_CONFIG_H, ips: ['10.0.0.100', '10.0.0.20', '10.0.0.101'] },
    { what: 'an #if 0 block', text: 'const char *ip_addresses[] = {\n#if 0\n"1.1.1.1",\n#endif\n"2.2.2.2"};', ips: ['2.2.2.2'] },
    { what: 'an empty list', text: 'const char *ip_addresses[] = { };', ips: [] },
    { what: 'one line', text: 'const char *ip_addresses[] = {"10.4.6.35","10.4.6.36"};', ips: ['10.4.6.35', '10.4.6.36'] },
  ])('parses $what', ({ text, ips }) => {
    expect(parseConfigH(text)).toEqual(ips);
  });

  it.each([
    { what: 'no array', text: '#define X 1\n', error: /'ip_addresses' undeclared/ },
    { what: 'a non-string entry', text: 'const char *ip_addresses[] = { NULL };', error: /expected string literals.*NULL/ },
    { what: 'a list commented out entirely', text: '/* const char *ip_addresses[] = { "1.2.3.4" }; */', error: /undeclared/ },
  ])('rejects $what like a compile error', ({ text, error }) => {
    expect(() => parseConfigH(text)).toThrow(error);
  });

  it("renders the artifact's exact layout", () => {
    expect(renderConfigH(['10.4.6.15', '10.4.6.14', '10.4.6.10', '10.4.6.11'])).toBe(FRAGVISOR_CONFIG_H);
  });

  it.each([
    ['10.4.6.15', '10.4.6.15'],
    ['10.4.6', '10.4.6.0'],
    ['10.4.6.15\n', '10.4.6.15'],
    ['10.4.6.300', '10.4.7.44'], // in_aton does no range check: the overflow spills into the next byte
  ])('in_aton(%j) = %s', (input, dotted) => {
    expect(inAton(input)).toBe(dotted);
  });
});

describe('make arguments', () => {
  const resolve = (cwd: string, p: string) => path.posix.resolve(cwd, p);
  it.each([
    { argv: ['make', '-C', 'msg_layer'], cwd: '/t', want: { dir: '/t/msg_layer', changedDir: true, targets: [] } },
    { argv: ['make', 'clean', '-C', '/t/msg_layer/'], cwd: '/x', want: { dir: '/t/msg_layer', targets: ['clean'] } },
    { argv: ['make', '-C/t', '-C', 'msg_layer', '-j16', 'V=1'], cwd: '/x', want: { dir: '/t/msg_layer' } },
    { argv: ['make', '--directory=/t', 'M=msg_layer', 'modules'], cwd: '/x', want: { dir: '/t', m: 'msg_layer', targets: ['modules'] } },
    { argv: ['make', '-j', '8', '-s'], cwd: '/t/msg_layer', want: { dir: '/t/msg_layer', changedDir: false, silent: true, targets: [] } },
  ])('$argv in $cwd', ({ argv, cwd, want }) => {
    expect(parseMakeArgs(argv, cwd, resolve)).toMatchObject(want);
  });
});

describe('make -C msg_layer', () => {
  const TREE = '/home/ae/FragVisor/fragvisor-linux';
  const DIR = `${TREE}/msg_layer`;
  const POP = '4.4.137-pop-hype';
  let root: string;
  let world: FakeWorld;
  let node: FakeNode;
  let previousDeps: MsgLayerDeps;
  let treeRelease: string | undefined;

  const host = (p: string) => node.hostPath(p);
  const make = (argv: string[], cwd = TREE) => call(world, node, msgLayerMake, ['make', ...argv], { cwd });

  /** Runs make to completion (the build takes 4 s of simulated time). */
  async function run(argv: string[], cwd = TREE) {
    const c = make(argv, cwd);
    await world.clock.advance(10_000);
    return { rc: await c.done, out: c.stdout(), err: c.stderr() };
  }

  beforeEach(() => {
    root = mkdtempSync(path.join(os.tmpdir(), 'msglayer-make-'));
    world = new FakeWorld(root, ['10.4.6.15'], POP);
    node = world.nodes[0];
    treeRelease = POP;
    previousDeps = setMsgLayerDeps({ treeRelease: () => treeRelease });
    mkdirSync(host(DIR), { recursive: true });
    writeFileSync(host(`${DIR}/Makefile`), 'obj-m += msg_rdma.o\n');
    writeFileSync(host(`${DIR}/msg_rdma.c`), '/* msg_rdma */\n');
    writeFileSync(host(`${DIR}/config.h`), FRAGVISOR_CONFIG_H);
  });

  afterEach(() => {
    setMsgLayerDeps(previousDeps);
    rmSync(root, { recursive: true, force: true });
  });

  it('builds msg_rdma.ko with the node list and the kernel release, printing kbuild lines', async () => {
    const r = await run(['-C', 'msg_layer']);
    expect(r).toEqual({
      rc: 0,
      err: '',
      out: [
        `make: Entering directory '${DIR}'`,
        `make -C .. M=${DIR} modules`,
        `make[1]: Entering directory '${TREE}'`,
        `  CC [M]  ${DIR}/msg_rdma.o`,
        '  Building modules, stage 2.',
        '  MODPOST 1 modules',
        `  CC      ${DIR}/msg_rdma.mod.o`,
        `  LD [M]  ${DIR}/msg_rdma.ko`,
        `make[1]: Leaving directory '${TREE}'`,
        `make: Leaving directory '${DIR}'`,
        '',
      ].join('\n'),
    });
    expect(readModule(host(`${DIR}/msg_rdma.ko`))).toEqual({ module: 'msg_rdma', ips: ['10.4.6.15', '10.4.6.14', '10.4.6.10', '10.4.6.11'], release: POP, builtIn: DIR });
    expect(readFileSync(host(`${DIR}/msg_rdma.ko`), 'utf8').startsWith('#ae-sim-module')).toBe(true); // sim/bin/kmod's marker
    expect(node.counters['msglayer-make']).toBe(1);
  });

  it('takes simulated time: no .ko before the compile ends', async () => {
    const c = make([], DIR);
    await world.clock.advance(2_000);
    expect(c.result()).toBeUndefined();
    expect(c.stdout()).toBe(`make -C .. M=${DIR} modules\nmake[1]: Entering directory '${TREE}'\n  CC [M]  ${DIR}/msg_rdma.o\n`);
    expect(existsSync(host(`${DIR}/msg_rdma.ko`))).toBe(false);
    await world.clock.advance(3_000);
    expect(await c.done).toBe(0);
  });

  it('an interrupted build leaves no module', async () => {
    const c = make(['-C', 'msg_layer']);
    await world.clock.advance(1_000);
    c.abort();
    expect(await c.done).toBe(130);
    expect(existsSync(host(`${DIR}/msg_rdma.ko`))).toBe(false);
  });

  it('rebuilds after config.h changes; an unchanged tree is up to date', async () => {
    expect((await run(['-C', 'msg_layer'])).rc).toBe(0);
    const again = await run([], DIR);
    expect(again.out).toBe(`make -C .. M=${DIR} modules\nmake[1]: Entering directory '${TREE}'\n  Building modules, stage 2.\n  MODPOST 1 modules\nmake[1]: Leaving directory '${TREE}'\n`);
    writeFileSync(host(`${DIR}/config.h`), renderConfigH(['10.4.6.15', '10.4.6.14']));
    const later = new Date(Date.now() + 5_000);
    utimesSync(host(`${DIR}/config.h`), later, later);
    const rebuilt = await run(['-C', DIR]);
    expect(rebuilt.out).toContain('CC [M]');
    expect(readModule(host(`${DIR}/msg_rdma.ko`))?.ips).toEqual(['10.4.6.15', '10.4.6.14']);
  });

  it('make clean removes the build products (the artifact runs it before every build)', async () => {
    await run(['-C', 'msg_layer']);
    const r = await run(['clean', '-C', `${DIR}/`], '/home/ae');
    expect(r.rc).toBe(0);
    expect(r.out).toContain(`  CLEAN   ${DIR}/Module.symvers\n`);
    for (const f of ['msg_rdma.ko', 'msg_rdma.o', 'Module.symvers', '.tmp_versions']) expect(existsSync(host(`${DIR}/${f}`))).toBe(false);
    expect(existsSync(host(`${DIR}/config.h`))).toBe(true);
  });

  it("kbuild's own form from the tree: make M=msg_layer", async () => {
    const r = await run(['M=msg_layer', 'modules']);
    expect(r.rc).toBe(0);
    expect(r.out.split('\n')[0]).toBe(`  CC [M]  ${DIR}/msg_rdma.o`);
  });

  it.each([
    { what: 'the tree was never built', setup: () => (treeRelease = undefined), err: /Kernel configuration is invalid/ },
    { what: 'config.h is missing', setup: () => rmSync(host(`${DIR}/config.h`)), err: /fatal error: config\.h: No such file or directory/ },
    { what: 'config.h has no list', setup: () => writeFileSync(host(`${DIR}/config.h`), '#define X\n'), err: /'ip_addresses' undeclared/ },
    { what: 'msg_rdma.c is missing', setup: () => rmSync(host(`${DIR}/msg_rdma.c`)), err: /No rule to make target '.*msg_rdma\.c'/ },
  ])('fails (exit 2) when $what', async ({ setup, err }) => {
    setup();
    const r = await run(['-C', 'msg_layer']);
    expect(r.rc).toBe(2);
    expect(r.err).toMatch(err);
    expect(r.err).toMatch(/make: \*\*\* \[Makefile:22: modules\] Error 2\n$/);
    expect(existsSync(host(`${DIR}/msg_rdma.ko`))).toBe(false);
  });

  it('an unknown target: No rule to make target', async () => {
    const r = await run(['-C', 'msg_layer', 'bogus']);
    expect(r.rc).toBe(2);
    expect(r.err).toBe("make: *** No rule to make target 'bogus'.  Stop.\n");
  });

  it.each([
    { what: 'the kernel tree itself', argv: ['-j16'], cwd: TREE },
    { what: 'a missing msg_layer', argv: ['-C', '/home/ae/elsewhere/msg_layer'], cwd: TREE },
    { what: 'a directory outside the node', argv: ['-C', '/usr/src/msg_layer'], cwd: TREE },
    { what: 'kvmtool', argv: [], cwd: '/home/ae/fragvisor-kvmtool' },
  ])('delegates for $what', async ({ argv, cwd }) => {
    expect(await make(argv, cwd).done).toBe(DELEGATE);
    expect(node.counters['msglayer-make']).toBeUndefined();
  });
});
