import { summarize } from '../../activities/cluster';
import { loadProfile } from '../../config/load';
import { reproduceClaimsInput } from '../../workflows/inputs';
import { planRun, type RunPlan } from '../../workflows/plan/plan';
import { spawnAe } from '../helpers/processes';

/**
 * `ae plan` for the paper's echo cluster against ARTIFACT.md, step by step: the real CLI's text and
 * the plan structure behind it.
 */

const SHA = '3f1166c0a1b2c3d4e5f60718293a4b5c6d7e8f90';
const TREE = '/root/FragVisor/fragvisor-linux';
const GUEST = '/root/fragvisor-guest-kernel';
const NODES = ['echo5', 'echo4', 'echo0', 'echo1'];
const IPS = '0: 10.4.6.15, 1: 10.4.6.14, 2: 10.4.6.10, 3: 10.4.6.11';

interface Block {
  key: string;
  title: string;
  host: string;
  commands: string[];
  note?: string;
}

/** The printed steps, in print order: `  <key>: <title>`, then `    <host>$ <command>` lines and a `    note:`. */
function parseSteps(text: string): Block[] {
  const blocks: Block[] = [];
  for (const line of text.split('\n')) {
    const head = /^ {2}([a-z]+\/[a-z-]+\/[A-Za-z0-9_-]+\/[a-z-]+): (.*)$/.exec(line);
    if (head) {
      blocks.push({ key: head[1], title: head[2], host: '', commands: [] });
      continue;
    }
    const command = /^ {4}([A-Za-z0-9_-]+)\$ (.*)$/.exec(line);
    if (command) {
      const b = blocks[blocks.length - 1];
      b.host = command[1];
      b.commands.push(command[2]);
    }
    const note = /^ {4}note: (.*)$/.exec(line);
    if (note) blocks[blocks.length - 1].note = note[1];
  }
  return blocks;
}

let text: string;
let code: number | null;
let steps: Block[];
let plan: RunPlan;
const step = (key: string): Block => {
  const b = steps.find((s) => s.key === key);
  if (!b) throw new Error(`no step ${key} in the printed plan:\n${text}`);
  return b;
};
const index = (key: string) => steps.findIndex((s) => s.key === key);

beforeAll(async () => {
  const ae = spawnAe(['plan', '--cluster', 'echo', '--experiments', 'none', '--hypervisors', 'fragvisor', '--commit', SHA]);
  code = (await ae.exited).code;
  text = ae.output();
  steps = parseSteps(text);
  plan = planRun(reproduceClaimsInput.parse({ cluster: 'echo', experiments: [], hypervisors: ['fragvisor'], kernelCommit: SHA }), summarize(loadProfile('echo')), {});
}, 60_000);

describe('ae plan --cluster echo (fragvisor, no experiments) follows ARTIFACT.md', () => {
  it('exits 0 and prints the plan of the same structure, command line for command line', () => {
    expect(code).toBe(0);
    expect(text).toContain(`plan for cluster echo: 4 node(s): echo5 (node 0, origin), echo4 (1), echo0 (2), echo1 (3)`);
    expect(text).toContain(`FragVisor commit: ${SHA}`);
    expect(text).toContain(`plan hash: ${plan.hash}`);
    const structure = plan.stages.flatMap((s) => s.steps);
    expect(steps.map((s) => s.key)).toEqual(structure.map((s) => s.key));
    for (const [i, s] of structure.entries()) {
      expect(steps[i].commands).toEqual(s.commands);
      expect(steps[i].host).toBe('node' in s.host ? s.host.node : 'control-host');
      expect(steps[i].note).toBe(s.note);
    }
  });

  it('stages in the artifact order: hosts (step 1, 2), reboot, messaging layer (step 3); experiments left out, and said so', () => {
    expect(plan.stages.map((s) => s.key)).toEqual(['fragvisor/prepare-hosts', 'fragvisor/reboot', 'fragvisor/messaging-layer']);
    const at = (s: string) => text.indexOf(`== stage ${plan.stages.findIndex((x) => x.key === s) + 1}/3: ${s}:`);
    expect(at('fragvisor/prepare-hosts')).toBeGreaterThan(0);
    expect(at('fragvisor/prepare-hosts')).toBeLessThan(at('fragvisor/reboot'));
    expect(at('fragvisor/reboot')).toBeLessThan(at('fragvisor/messaging-layer'));
    expect(text).toContain('experiments: none requested: the run prepares the cluster and stops.');
  });

  it.each(NODES)('step 1 on %s: origin flag in include/popcorn/debug.h (origin only), make -j16, sudo make modules_install, sudo make install, in order', (node) => {
    const origin = node === 'echo5';
    const key = (what: string) => `fragvisor/host-kernel/${node}/${what}`;
    const flag = step(key('origin-flag'));
    expect(flag.host).toBe(node);
    const flagText = flag.commands.join('\n');
    expect(flagText).toContain(`${TREE}/include/popcorn/debug.h`);
    expect(flag.title).toBe(origin ? 'Define CONFIG_POPCORN_ORIGIN_NODE in include/popcorn/debug.h (the origin)' : 'Comment out CONFIG_POPCORN_ORIGIN_NODE in include/popcorn/debug.h (not the origin)');
    // The origin may append the define; every other node comments it out.
    expect(flagText.includes(`'#define CONFIG_POPCORN_ORIGIN_NODE' >> ${TREE}/include/popcorn/debug.h`)).toBe(origin);
    expect(flagText.includes(`s@^([[:space:]]*#[[:space:]]*define[[:space:]]+CONFIG_POPCORN_ORIGIN_NODE([[:space:]]|$))@// \\1@' ${TREE}/include/popcorn/debug.h`)).toBe(!origin);

    expect(step(key('sync')).commands).toContain(`git -C /root/FragVisor checkout --quiet --detach ${SHA}`);
    expect(step(key('build')).commands[0]).toBe(`cd ${TREE} && exec make -j16`);
    expect(step(key('modules-install')).commands).toEqual([`cd ${TREE} && exec sudo -n -- make modules_install`]);
    expect(step(key('install')).commands).toEqual([`cd ${TREE} && exec sudo -n -- make install`]);
    const order = ['sync', 'origin-flag', 'inspect', 'build', 'modules-install', 'install', 'marker'].map((w) => index(key(w)));
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    for (const w of ['sync', 'origin-flag', 'build', 'modules-install', 'install']) expect(step(key(w)).host).toBe(node);
  });

  it('step 2: the guest kernel on echo5 only, POPHYPE_HOST_KERNEL 0 in its own worktree and O= dir, the host tree untouched', () => {
    const guest = steps.filter((s) => s.key.includes('/guest-kernel/'));
    expect(guest.map((s) => s.key)).toEqual(['fragvisor/guest-kernel/echo5/sync', 'fragvisor/guest-kernel/echo5/inspect', 'fragvisor/guest-kernel/echo5/prepare', 'fragvisor/guest-kernel/echo5/build', 'fragvisor/guest-kernel/echo5/marker']);
    expect(guest.every((s) => s.host === 'echo5')).toBe(true);
    const prepare = step('fragvisor/guest-kernel/echo5/prepare').commands.join('\n');
    expect(prepare).toContain(`worktree add --quiet --detach ${GUEST}/src HEAD`);
    expect(prepare).toContain(`cp ${TREE}/include/popcorn/debug.h ${GUEST}/src/include/popcorn/debug.h && sed -i -E 's@^([[:space:]]*#[[:space:]]*define[[:space:]]+POPHYPE_HOST_KERNEL)[[:space:]]+[0-9]+@\\1 0@' ${GUEST}/src/include/popcorn/debug.h`);
    expect(prepare).toContain(`-d RCU_STALL_COMMON`);
    expect(step('fragvisor/guest-kernel/echo5/build').commands[0]).toBe(`cd ${GUEST}/src && exec make O=${GUEST}/build -j16`);
    // Nothing in the guest steps edits the host tree: every sed -i, cp destination and output dir is under the guest dir.
    for (const command of guest.flatMap((s) => s.commands)) {
      expect(command).not.toMatch(new RegExp(`sed -i[^&|;]*' ${TREE}/`));
      expect(command).not.toMatch(new RegExp(`cp \\S+ ${TREE}/`));
      expect(command).not.toMatch(new RegExp(`O=${TREE}`));
    }
    // The guest is built after the origin's host kernel steps (same node, in order).
    expect(index('fragvisor/guest-kernel/echo5/sync')).toBeGreaterThan(index('fragvisor/host-kernel/echo5/marker'));
  });

  it.each(NODES)('reboot of %s with boot_id proof into 4.4.137-pop-hype, escalating to its BMC', (node) => {
    const key = (what: string) => `fragvisor/reboot/${node}/${what}`;
    expect(step(key('read-boot-state')).commands).toEqual(['cat /proc/sys/kernel/random/boot_id; uname -r']);
    expect(step(key('soft-reboot')).commands).toEqual(['sudo -n systemctl reboot']);
    const wait = step(key('await-boot'));
    expect(wait.commands).toEqual(['cat /proc/sys/kernel/random/boot_id; uname -r']);
    expect(wait.title).toContain('4.4.137-pop-hype');
    expect(wait.note).toContain('boot_id differs from the one read before');
    expect(wait.note).toContain('at most 1200 s');
    const bmc = step(key('bmc-power-cycle'));
    expect(bmc.host).toBe('control-host');
    expect(bmc.commands).toEqual([`ipmitool -I lanplus -C 3 -H ${node}-ipmi -p 623 -U ADMIN -E chassis power cycle`]);
    expect(bmc.note).toContain(`$${node.toUpperCase()}_BMC_PASSWORD`);
    expect(bmc.note).toContain(`signal operator {"node":"${node}","action":"power-cycled"}`);
    const order = ['read-boot-state', 'soft-reboot', 'await-boot', 'bmc-power-cycle'].map((w) => index(key(w)));
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // Rebooted after its kernel was installed.
    expect(index(key('read-boot-state'))).toBeGreaterThan(index(`fragvisor/host-kernel/${node}/install`));
  });

  it.each(NODES)('step 3 on %s: config.h with 10.4.6.15, .14, .10, .11 in that order, make clean && make -C msg_layer', (node) => {
    const build = step(`fragvisor/msg-layer/${node}/build`);
    expect(build.host).toBe(node);
    expect(build.commands).toEqual([
      'sudo -n rmmod msg_rdma',
      `tee ${TREE}/msg_layer/config.h`,
      `make clean -C ${TREE}/msg_layer`,
      `make -C ${TREE}/msg_layer`,
    ]);
    expect(build.note).toContain(`node id = position: ${IPS}.`);
  });

  it('step 3: insmod in node order echo5, echo4, echo0, echo1, after every build, then the checks', () => {
    const insmods = steps.filter((s) => s.commands.some((c) => c.includes('insmod')));
    expect(insmods.map((s) => s.host)).toEqual(NODES);
    for (const s of insmods) expect(s.commands).toEqual([`sudo -n insmod ${TREE}/msg_layer/msg_rdma.ko`]);
    const lastBuild = Math.max(...NODES.map((n) => index(`fragvisor/msg-layer/${n}/build`)));
    expect(index('fragvisor/msg-layer/echo5/insmod')).toBeGreaterThan(lastBuild);
    // The printed text has the insmods in this order too (not only the parsed blocks).
    const positions = NODES.map((n) => text.indexOf(`${n}$ sudo -n insmod`));
    expect(positions.every((p) => p > 0)).toBe(true);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
    for (const n of NODES) expect(index(`fragvisor/msg-layer/${n}/check`)).toBeGreaterThan(index('fragvisor/msg-layer/echo1/insmod'));
  });
});
