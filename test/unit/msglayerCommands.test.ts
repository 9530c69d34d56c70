import { parseConfigH } from '../../sim/tools/msglayer';
import {
  judgeMessagingLayer,
  lsmodHasMsgLayer,
  messagingLayerSteps,
  msgLayerArgv,
  parseMsgLayerDmesg,
  renderConfigH,
  rmmodOutcome,
  type MsgLayerDmesg,
  type MsgLayerNodeReport,
} from '../../workflows/commands/msglayer';
import { toCommandLine } from '../../workflows/commands/quote';

/** The messaging layer's pure parts: config.h, command lines, the dmesg parser, the verdict, the plan. */

const ECHO = ['10.4.6.15', '10.4.6.14', '10.4.6.10', '10.4.6.11'];
const TREE = '/root/FragVisor/fragvisor-linux';

/** The artifact's dmesg of node `me` (ARTIFACT.md step 3; sim/tools/msglayer/dmesg.ts). */
const list = (me: number, ips = ECHO) => ['popcorn: Loading node configuration...', ...ips.map((ip, i) => `popcorn: ${i === me ? '*' : ' '} ${i}: ${ip}`)];
const joined = (...ids: number[]) => ids.map((i) => `popcorn:    ${i} joined, x86_64`);
const READY = 'popcorn: Ready on InfiniBand RDMA';

describe('renderConfigH', () => {
  it.each([
    { name: 'four echo nodes', ips: ECHO },
    { name: 'the first two', ips: ECHO.slice(0, 2) },
    { name: 'one node', ips: ['10.4.6.15'] },
  ])('$name: the artifact layout, read back in the same order by the simulated compiler', ({ ips }) => {
    const text = renderConfigH(ips);
    expect(text).toContain('const char *ip_addresses[] = {\n');
    ips.forEach((ip, i) => expect(text).toContain(`\t/* Node ${i} */ "${ip}",\n`));
    expect(parseConfigH(text)).toEqual(ips);
  });
});

describe('command lines', () => {
  it.each([
    ['rmmod', toCommandLine(msgLayerArgv.rmmod()), 'sudo -n rmmod msg_rdma'],
    ['config.h', toCommandLine(msgLayerArgv.writeConfigH(TREE)), `tee ${TREE}/msg_layer/config.h`],
    ['make clean', toCommandLine(msgLayerArgv.makeClean(TREE)), `make clean -C ${TREE}/msg_layer`],
    ['make', toCommandLine(msgLayerArgv.make(`${TREE}/`)), `make -C ${TREE}/msg_layer`],
    ['insmod', toCommandLine(msgLayerArgv.insmod(TREE)), `insmod ${TREE}/msg_layer/msg_rdma.ko`],
    ['dmesg', toCommandLine(msgLayerArgv.dmesg()), 'sudo -n dmesg -t'],
  ])('%s', (_what, actual, expected) => expect(actual).toBe(expected));

  it.each([
    { exitCode: 0, stderr: '', outcome: 'removed' },
    { exitCode: 1, stderr: 'rmmod: ERROR: Module msg_rdma is not currently loaded\n', outcome: 'not-loaded' },
    { exitCode: 1, stderr: 'rmmod: ERROR: could not remove module msg_rdma: Device or resource busy\n', outcome: 'busy' },
    { exitCode: 1, stderr: 'rmmod: ERROR: could not remove module msg_rdma: Operation not permitted\n', outcome: 'failed' },
    { exitCode: 1, stderr: 'sudo: a password is required\n', outcome: 'failed' },
  ])('rmmod exit $exitCode, "$stderr" -> $outcome', ({ exitCode, stderr, outcome }) => expect(rmmodOutcome(exitCode, stderr)).toBe(outcome));

  it.each([
    ['Module                  Size  Used by\nmsg_rdma                45056  0\nib_core 1 0\n', true],
    ['Module                  Size  Used by\nib_core                 45056  0\n', false],
    ['Module                  Size  Used by\nmsg_rdma_extra          45056  0\n', false],
  ])('lsmod %#', (out, loaded) => expect(lsmodHasMsgLayer(out as string)).toBe(loaded));
});

describe('parseMsgLayerDmesg', () => {
  const ok = (me: number, peers: number[]) => [...list(me), READY, ...joined(...peers)];
  const cases: { name: string; dmesg: string[]; expected: Partial<MsgLayerDmesg> }[] = [
    { name: 'node 0 of 4, ready', dmesg: ok(0, [1, 2, 3]), expected: { ready: true, nodeId: 0, joined: [1, 2, 3], errors: [] } },
    { name: 'node 2 of 4, ready (peers in any order)', dmesg: [...list(2), READY, ...joined(3, 0, 1)], expected: { ready: true, nodeId: 2, joined: [0, 1, 3], errors: [] } },
    { name: 'node 1 of 2', dmesg: [...list(1, ECHO.slice(0, 2)), READY, ...joined(0)], expected: { ready: true, nodeId: 1, joined: [0] } },
    { name: 'not listed', dmesg: [...list(-1), 'popcorn: My IP is not listed in the node configuration'], expected: { ready: false, nodeId: null, errors: ['popcorn: My IP is not listed in the node configuration'] } },
    { name: 'connect rejected', dmesg: [...list(3), 'popcorn: Unable to connect, 10.4.6.15 - 0, -62'], expected: { ready: false, nodeId: 3, errors: ['popcorn: Unable to connect, 10.4.6.15 - 0, -62'] } },
    { name: 'another step', dmesg: [...list(1), 'popcorn: Unable to create qp, 10.4.6.15 - 3, -12'], expected: { errors: ['popcorn: Unable to create qp, 10.4.6.15 - 3, -12'] } },
    { name: 'bind', dmesg: [...list(1), 'popcorn: Cannot bind server address, -98'], expected: { ready: false, errors: ['popcorn: Cannot bind server address, -98'] } },
    { name: 'unhandled event (bare printk)', dmesg: [...list(2), 'Unhandled client event 7'], expected: { ready: false, nodeId: 2, errors: ['Unhandled client event 7'] } },
    { name: 'no origin', dmesg: [...list(0), READY, 'popcorn: No origin node', ...joined(1)], expected: { ready: true, joined: [1], originProblem: { kind: 'none', line: 'popcorn: No origin node' } } },
    { name: 'duplicate origin', dmesg: [...list(2), 'popcorn: Duplicate origin: nodes 0, 2'], expected: { ready: false, originProblem: { kind: 'duplicate', line: 'popcorn: Duplicate origin: nodes 0, 2' } } },
    { name: 'silent accept timeout', dmesg: list(0), expected: { ready: false, nodeId: 0, joined: [], errors: [] } },
    { name: 'nothing loaded', dmesg: ['Linux version 4.4.137-pop-hype', 'e1000e: eth0 NIC Link is Up'], expected: { ready: false, nodeId: null, joined: [], errors: [], lines: [] } },
    {
      name: 'vermagic (the init never ran)',
      dmesg: ["msg_rdma: version magic '4.4.137-pop-hype SMP mod_unload modversions ' should be '4.15.0-213-generic SMP mod_unload modversions '"],
      expected: { ready: false, nodeId: null, errors: ["msg_rdma: version magic '4.4.137-pop-hype SMP mod_unload modversions ' should be '4.15.0-213-generic SMP mod_unload modversions '"] },
    },
    {
      name: 'only the latest load counts (earlier ready, then a failed reload)',
      dmesg: [...ok(1, [0, 2, 3]), ...list(1), 'popcorn: Unable to connect, 10.4.6.15 - 0, -62'],
      expected: { ready: false, nodeId: 1, joined: [], errors: ['popcorn: Unable to connect, 10.4.6.15 - 0, -62'] },
    },
    {
      name: 'an earlier failure does not spoil a later good load',
      dmesg: [...list(1), 'Unhandled client event 1', ...ok(1, [0, 2, 3])],
      expected: { ready: true, nodeId: 1, joined: [0, 2, 3], errors: [] },
    },
    { name: 'duplicate entries: the last starred one wins', dmesg: ['popcorn: Loading node configuration...', 'popcorn: * 0: 10.4.6.15', 'popcorn: * 1: 10.4.6.15'], expected: { nodeId: 1 } },
  ];
  it.each(cases)('$name', ({ dmesg, expected }) => {
    expect(parseMsgLayerDmesg(`${dmesg.join('\n')}\n`)).toMatchObject(expected);
  });

  it('reads dmesg with timestamps too, and keeps only the layer lines of the latest load', () => {
    const text = ['[    0.000000] Linux version 4.4.137-pop-hype', ...ok(0, [1]).map((l, i) => `[  ${100 + i}.000001] ${l}`), '[  200.000000] e1000e: eth0 NIC Link is Up'].join('\n');
    const parsed = parseMsgLayerDmesg(text);
    expect(parsed).toMatchObject({ ready: true, nodeId: 0, joined: [1] });
    expect(parsed.lines).toEqual(ok(0, [1]));
  });
});

describe('judgeMessagingLayer', () => {
  const good = (node: string, index: number, n: number): MsgLayerNodeReport => ({
    node,
    index,
    insmod: { exitCode: 0, tail: [] },
    check: {
      ...parseMsgLayerDmesg([...list(index, ECHO.slice(0, n)), READY, ...joined(...Array.from({ length: n }, (_, i) => i).filter((i) => i !== index))].join('\n')),
      loaded: true,
    },
  });
  const four = () => ['node0', 'node1', 'node2', 'node3'].map((node, i) => good(node, i, 4));
  const failed = (reports: MsgLayerNodeReport[]) => {
    const v = judgeMessagingLayer(reports);
    if (v.ok) throw new Error('expected a failure');
    return v.failure;
  };

  it('4 nodes, all ready with 3 joined: ok, in node order', () => {
    expect(judgeMessagingLayer(four())).toEqual({
      ok: true,
      nodes: [
        { node: 'node0', nodeId: 0, joined: [1, 2, 3] },
        { node: 'node1', nodeId: 1, joined: [0, 2, 3] },
        { node: 'node2', nodeId: 2, joined: [0, 1, 3] },
        { node: 'node3', nodeId: 3, joined: [0, 1, 2] },
      ],
    });
  });

  it('a single node is its own layer', () => {
    expect(judgeMessagingLayer([good('node0', 0, 1)])).toEqual({ ok: true, nodes: [{ node: 'node0', nodeId: 0, joined: [] }] });
  });

  it('hang: names the hung node with its last lines', () => {
    const r = four();
    r[2] = { node: 'node2', index: 2, hung: [...list(2), 'Unhandled client event 7'], check: { ...parseMsgLayerDmesg([...list(2), 'Unhandled client event 7'].join('\n')), loaded: true } };
    r[0].check = { ...parseMsgLayerDmesg(list(0).join('\n')), loaded: false };
    expect(failed(r)).toEqual({ kind: 'hang', nodes: ['node2'], lines: [...list(2), 'Unhandled client event 7'].map((l) => `node2: ${l}`) });
  });

  it('rdma-error: every node with an RDMA error line, with those lines', () => {
    const r = four();
    r[2].check = { ...parseMsgLayerDmesg([...list(2), 'popcorn: Unable to connect, 10.4.6.15 - 0, -62'].join('\n')), loaded: false };
    r[3].check = { ...parseMsgLayerDmesg([...list(3), 'popcorn: Unable to connect, 10.4.6.10 - 0, -62'].join('\n')), loaded: false };
    r[0].check = { ...parseMsgLayerDmesg(list(0).join('\n')), loaded: false };
    expect(failed(r)).toEqual({
      kind: 'rdma-error',
      nodes: ['node2', 'node3'],
      lines: ['node2: popcorn: Unable to connect, 10.4.6.15 - 0, -62', 'node3: popcorn: Unable to connect, 10.4.6.10 - 0, -62'],
    });
  });

  it('origin wins over a hang (a reboot cannot cure it)', () => {
    const r = four();
    r[1].hung = ['Unhandled client event 7'];
    r[0].check = { ...parseMsgLayerDmesg([...list(0), 'popcorn: Duplicate origin: nodes 0, 2'].join('\n')), loaded: true };
    expect(failed(r)).toEqual({ kind: 'origin', nodes: ['node0'], lines: ['node0: popcorn: Duplicate origin: nodes 0, 2'] });
  });

  it.each([
    { name: 'not listed (a config error, not RDMA)', mutate: (r: MsgLayerNodeReport) => (r.check = { ...parseMsgLayerDmesg([...list(-1), 'popcorn: My IP is not listed in the node configuration'].join('\n')), loaded: false }), line: /node1: popcorn: My IP is not listed/ },
    { name: 'not loaded (an old Ready after rmmod)', mutate: (r: MsgLayerNodeReport) => (r.check!.loaded = false), line: /node1: msg_rdma is not loaded/ },
    { name: 'a peer missing', mutate: (r: MsgLayerNodeReport) => (r.check!.joined = [0, 2]), line: /node1: peers 3 did not join \(joined: 0, 2\)/ },
    { name: 'wrong node id', mutate: (r: MsgLayerNodeReport) => (r.check!.nodeId = 2), line: /node1: claims node id 2, expected 1/ },
    { name: 'insmod failed', mutate: (r: MsgLayerNodeReport) => (r.insmod = { exitCode: 1, tail: ['insmod: ERROR: could not insert module x: Invalid parameters'] }), line: /node1: insmod exited with 1: .*Invalid parameters/ },
    { name: 'not checked', mutate: (r: MsgLayerNodeReport) => delete r.check, line: /node1: not checked/ },
  ])('not-ready: $name', ({ mutate, line }) => {
    const r = four();
    mutate(r[1]);
    const f = failed(r);
    expect(f).toMatchObject({ kind: 'not-ready', nodes: ['node1'] });
    expect(f.lines.some((l) => line.test(l))).toBe(true);
  });
});

describe('messagingLayerSteps', () => {
  const nodes = [
    { name: 'echo5', rdmaIp: '10.4.6.15' },
    { name: 'echo4', rdmaIp: '10.4.6.14' },
  ];
  const steps = messagingLayerSteps({ hypervisor: 'fragvisor', nodes, paths: { kernelTree: TREE } });

  it('builds, then insmods in node order, then checks, with stable keys', () => {
    expect(steps.map((s) => s.key)).toEqual([
      'fragvisor/msg-layer/echo5/build',
      'fragvisor/msg-layer/echo4/build',
      'fragvisor/msg-layer/echo5/insmod',
      'fragvisor/msg-layer/echo4/insmod',
      'fragvisor/msg-layer/echo5/check',
      'fragvisor/msg-layer/echo4/check',
    ]);
    expect(steps.every((s) => 'node' in s.host && s.key.includes(`/${s.host.node}/`))).toBe(true);
  });

  it('lists the exact command lines', () => {
    expect(steps[0].commands).toEqual(['sudo -n rmmod msg_rdma', `tee ${TREE}/msg_layer/config.h`, `make clean -C ${TREE}/msg_layer`, `make -C ${TREE}/msg_layer`]);
    expect(steps[0].note).toContain('0: 10.4.6.15, 1: 10.4.6.14');
    expect(steps[3].commands).toEqual([`sudo -n insmod ${TREE}/msg_layer/msg_rdma.ko`]);
    expect(steps[3].title).toContain('1 s after echo5');
    expect(steps[5].commands).toEqual(['lsmod', 'sudo -n dmesg -t']);
    expect(steps[5].title).toContain('1 joined');
  });
});
