import { summarize } from '../../activities/cluster';
import type { ClusterSummary } from '../../activities/probeTypes';
import { loadProfile } from '../../config/load';
import { reproduceClaimsInput, type ReproduceClaimsInput } from '../../workflows/inputs';
import { canonicalJson, fnv1a64 } from '../../workflows/plan/hash';
import { FRAGVISOR_COMMIT_PLACEHOLDER, GIANTVM_COMMIT_PLACEHOLDER, PlanError, planRun, type PlanOptions, type RunPlan } from '../../workflows/plan/plan';

const SHA = '0123456789abcdef0123456789abcdef01234567';
const DSM_SHA = 'fedcba9876543210fedcba9876543210fedcba98';
const echo = summarize(loadProfile('echo'));

/** A second, different profile: 3 nodes, no BMCs, other paths. */
const lab: ClusterSummary = {
  ...echo,
  name: 'lab',
  hash: 'a'.repeat(64),
  nodes: [
    { name: 'n0', origin: true, rdmaIp: '10.0.0.1', bmc: false },
    { name: 'n1', origin: false, rdmaIp: '10.0.0.2', bmc: false },
    { name: 'n2', origin: false, rdmaIp: '10.0.0.3', bmc: false },
  ],
  paths: { fragvisor: '/srv/fv', kernelTree: '/srv/fv/linux', kvmtool: '/nfs/kvmtool', ramdisks: '/nfs/ramdisks' },
};

const plan = (input: Omit<ReproduceClaimsInput, 'cluster'>, cluster: ClusterSummary = echo, opts: PlanOptions = { commit: SHA, giantvmCommit: DSM_SHA }): RunPlan =>
  planRun(reproduceClaimsInput.parse({ cluster: cluster.name, ...input }), cluster, opts);

const allKeys = (p: RunPlan) => [...p.stages.map((s) => s.key), ...p.stages.flatMap((s) => s.steps.map((st) => st.key))];
const hostOf = (step: { host: { node: string } | { controlHost: true } | { guest: true } }) => ('node' in step.host ? step.host.node : 'control-host');

const CASES: { name: string; input: Omit<ReproduceClaimsInput, 'cluster'>; cluster?: ClusterSummary; stages: string[]; nodes: string[] }[] = [
  {
    name: 'prepare only on echo (both hypervisors, 4 nodes)',
    input: { experiments: [] },
    stages: ['fragvisor/prepare-hosts', 'fragvisor/reboot', 'fragvisor/messaging-layer', 'giantvm/prepare-hosts', 'giantvm/reboot'],
    nodes: ['echo5', 'echo4', 'echo0', 'echo1'],
  },
  {
    name: 'giantvm first keeps the input order',
    input: { hypervisors: ['giantvm', 'fragvisor'], experiments: [] },
    stages: ['giantvm/prepare-hosts', 'giantvm/reboot', 'fragvisor/prepare-hosts', 'fragvisor/reboot', 'fragvisor/messaging-layer'],
    nodes: ['echo5', 'echo4', 'echo0', 'echo1'],
  },
  { name: 'giantvm alone: no messaging layer', input: { hypervisors: ['giantvm'], experiments: [] }, stages: ['giantvm/prepare-hosts', 'giantvm/reboot'], nodes: ['echo5', 'echo4', 'echo0', 'echo1'] },
  {
    name: 'fragvisor on 2 nodes: the first two',
    input: { hypervisors: ['fragvisor'], nodeCounts: [2], experiments: [] },
    stages: ['fragvisor/prepare-hosts', 'fragvisor/reboot', 'fragvisor/messaging-layer'],
    nodes: ['echo5', 'echo4'],
  },
  {
    name: 'node counts [1, 3]: max wins',
    input: { hypervisors: ['fragvisor'], nodeCounts: [1, 3], experiments: [] },
    stages: ['fragvisor/prepare-hosts', 'fragvisor/reboot', 'fragvisor/messaging-layer'],
    nodes: ['echo5', 'echo4', 'echo0'],
  },
  { name: 'another profile without BMCs', input: { nodeCounts: [3], experiments: [] }, cluster: lab, stages: ['fragvisor/prepare-hosts', 'fragvisor/reboot', 'fragvisor/messaging-layer', 'giantvm/prepare-hosts', 'giantvm/reboot'], nodes: ['n0', 'n1', 'n2'] },
];

describe('planRun', () => {
  it.each(CASES)('$name: stages per hypervisor, nodes in id order, keys stable and unique', ({ input, cluster, stages, nodes }) => {
    const a = plan(input, cluster);
    const b = plan(input, cluster);
    expect(a.stages.map((s) => s.key)).toEqual(stages);
    expect(a.nodes).toEqual(nodes);
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    const keys = allKeys(a);
    expect(new Set(keys).size).toBe(keys.length);
    // Step keys are `<hypervisor>/<stage>/<node>/<what>` and name one of the plan's nodes (or none, for control-host steps).
    for (const stage of a.stages) {
      const [h] = stage.key.split('/');
      for (const step of stage.steps) {
        const parts = step.key.split('/');
        expect(parts).toHaveLength(4);
        expect(parts[0]).toBe(h);
        expect(nodes).toContain(parts[2]);
      }
    }
  });

  it.each(CASES)('$name: every node has its steps in each stage, the origin first', ({ input, cluster, nodes }) => {
    const p = plan(input, cluster);
    for (const stage of p.stages) {
      const onNodes = stage.steps.map((s) => s.key.split('/')[2]);
      expect(onNodes[0]).toBe(nodes[0]);
      expect([...new Set(onNodes)].sort()).toEqual([...nodes].sort());
    }
  });

  it('hash: FNV-1a 64 of the canonical plan, the same for the same arguments, different for any change', () => {
    const base = plan({ hypervisors: ['fragvisor'] });
    const { hash, ...rest } = base;
    expect(hash).toBe(fnv1a64(canonicalJson(rest)));
    expect(plan({ hypervisors: ['fragvisor'] }).hash).toBe(hash);
    const variants = [
      plan({ hypervisors: ['fragvisor'], buildJobs: 32 }),
      plan({ hypervisors: ['fragvisor'], nodeCounts: [2] }),
      plan({ hypervisors: ['fragvisor'], experiments: ['E1'] }),
      plan({ hypervisors: ['fragvisor', 'giantvm'] }),
      plan({ hypervisors: ['fragvisor'] }, echo, { commit: DSM_SHA }),
      plan({ hypervisors: ['fragvisor'] }, { ...echo, hash: 'b'.repeat(64) }),
    ];
    for (const v of variants) expect(v.hash).not.toBe(hash);
    expect(new Set(variants.map((v) => v.hash)).size).toBe(variants.length);
  });

  it.each([
    { text: '', hash: 'cbf29ce484222325' },
    { text: 'a', hash: 'af63dc4c8601ec8c' },
    { text: 'foobar', hash: '85944171f73967e8' },
  ])('fnv1a64($text) is the published FNV-1a 64 value', ({ text, hash }) => {
    expect(fnv1a64(text)).toBe(hash);
  });

  it.each([
    { a: { b: 1, a: [1, { y: 2, x: undefined, z: 'é' }] }, b: { a: [1, { z: 'é', y: 2 }], b: 1 } },
    { a: { k: null, j: true }, b: { j: true, k: null } },
  ])('canonicalJson ignores key order and undefined fields', ({ a, b }) => {
    expect(canonicalJson(a)).toBe(canonicalJson(b));
    expect(JSON.parse(canonicalJson(a))).toEqual(JSON.parse(JSON.stringify(b)));
  });

  it.each([
    { name: '8 nodes on the 4-node echo', input: { nodeCounts: [8] }, cluster: echo, opts: {}, field: 'nodeCounts', message: 'nodeCounts: expected at most 4 nodes (the profile echo has 4), got 8' },
    { name: '[2, 5] on echo', input: { nodeCounts: [2, 5] }, cluster: echo, opts: {}, field: 'nodeCounts', message: 'nodeCounts: expected at most 4 nodes (the profile echo has 4), got 5' },
    { name: '4 nodes on the 3-node lab', input: {}, cluster: lab, opts: {}, field: 'nodeCounts', message: 'nodeCounts: expected at most 3 nodes (the profile lab has 3), got 4' },
    { name: 'origin not first', input: { nodeCounts: [3] }, cluster: { ...lab, nodes: [lab.nodes[1], lab.nodes[0], lab.nodes[2]] }, opts: {}, field: 'cluster', message: /^cluster: the profile lab must list the origin first/ },
    { name: 'a resolved commit that is no hash', input: {}, cluster: echo, opts: { commit: 'HEAD' }, field: 'kernelCommit', message: /^kernelCommit: expected a git commit hash.*got "HEAD"$/ },
    { name: 'a GiantVM commit that is no hash', input: {}, cluster: echo, opts: { commit: SHA, giantvmCommit: 'main' }, field: 'giantvmCommit', message: /^giantvmCommit: expected a git commit hash/ },
    {
      name: 'kvmtoolCommit on a GiantVM-only run',
      input: { hypervisors: ['giantvm' as const], kvmtoolCommit: DSM_SHA },
      cluster: echo,
      opts: {},
      field: 'kvmtoolCommit',
      message: "kvmtoolCommit: kvmtool (lkvm) runs FragVisor's VMs, but this run measures giantvm only: add fragvisor to hypervisors or drop kvmtoolCommit",
    },
  ])('$name: a PlanError naming the field', ({ input, cluster, opts, field, message }) => {
    let error: unknown;
    try {
      plan(input, cluster, opts);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(PlanError);
    expect((error as PlanError).field).toBe(field);
    if (typeof message === 'string') expect((error as PlanError).message).toBe(message);
    else expect((error as PlanError).message).toMatch(message);
  });

  it.each([
    { name: 'an epoch', input: { hypervisors: ['fragvisor'] as 'fragvisor'[], experiments: ['E1'] as 'E1'[], nodeCounts: [2] }, stages: ['fragvisor/kvmtool', 'fragvisor/prepare-hosts', 'fragvisor/E1-n2'] },
    {
      name: 'giantvm first: kvmtool still before everything',
      input: { hypervisors: ['giantvm', 'fragvisor'] as ('giantvm' | 'fragvisor')[], experiments: [], nodeCounts: [3] },
      stages: ['fragvisor/kvmtool', 'giantvm/prepare-hosts', 'giantvm/reboot', 'fragvisor/prepare-hosts', 'fragvisor/reboot', 'fragvisor/messaging-layer'],
    },
  ])('kvmtoolCommit ($name): one kvmtool stage first, on the origin only, at that commit', ({ input, stages }) => {
    const p = plan({ ...input, kvmtoolCommit: DSM_SHA, buildJobs: 8 }, lab);
    expect(p.stages.map((s) => s.key)).toEqual(stages);
    expect(p.kvmtoolCommit).toBe(DSM_SHA);
    const kvmtool = p.stages[0];
    expect(kvmtool.steps.map((s) => s.key)).toEqual(['sync', 'inspect', 'build', 'marker'].map((w) => `fragvisor/kvmtool/n0/${w}`));
    expect(kvmtool.steps.map(hostOf)).toEqual(['n0', 'n0', 'n0', 'n0']);
    expect(kvmtool.steps[0].commands.join('\n')).toContain(`git -C /nfs/kvmtool checkout --quiet --detach ${DSM_SHA}`);
    expect(kvmtool.steps[2].commands[0]).toBe('cd /nfs/kvmtool && exec make -j8');
    // Without it: no kvmtool stage, and the plan (and its hash) is what it was.
    const without = plan(input, lab);
    expect(without.stages.map((s) => s.key)).toEqual(stages.slice(1));
    expect(without.kvmtoolCommit).toBeUndefined();
    expect(without.hash).not.toBe(p.hash);
  });

  it.each([
    { hypervisors: ['fragvisor'] as const, cluster: echo },
    { hypervisors: ['fragvisor', 'giantvm'] as const, cluster: lab },
  ])('origin flag defined on the origin only ($cluster.name)', ({ hypervisors, cluster }) => {
    const p = plan({ hypervisors: [...hypervisors], nodeCounts: [3] }, cluster);
    const flagSteps = p.stages.flatMap((s) => s.steps).filter((s) => s.key.endsWith('/origin-flag'));
    expect(flagSteps.map(hostOf)).toEqual(p.nodes);
    for (const step of flagSteps) {
      const origin = hostOf(step) === p.nodes[0];
      const text = step.commands.join('\n');
      expect(text).toContain(`${cluster.paths.kernelTree}/include/popcorn/debug.h`);
      // Only the origin's commands can add a define; only the others comment it out.
      expect(text.includes("'#define CONFIG_POPCORN_ORIGIN_NODE'")).toBe(origin);
      expect(text.includes('@// \\1@')).toBe(!origin);
    }
    // GiantVM's kernel has no origin flag.
    expect(flagSteps.every((s) => s.key.startsWith('fragvisor/'))).toBe(true);
  });

  it.each([
    { hypervisors: ['fragvisor'] as const, guest: true },
    { hypervisors: ['giantvm', 'fragvisor'] as const, guest: true },
    { hypervisors: ['giantvm'] as const, guest: false },
  ])('guest kernel only on the origin and only for fragvisor ($hypervisors)', ({ hypervisors, guest }) => {
    const p = plan({ hypervisors: [...hypervisors], experiments: [] });
    const steps = p.stages.flatMap((s) => s.steps.map((st) => ({ stage: s.key, step: st })));
    const guestSteps = steps.filter((s) => s.step.key.includes('/guest-kernel/'));
    expect(guestSteps.length > 0).toBe(guest);
    for (const { stage, step } of guestSteps) {
      expect(stage).toBe('fragvisor/prepare-hosts');
      expect(hostOf(step)).toBe('echo5');
    }
    expect(steps.filter((s) => s.stage === 'giantvm/prepare-hosts' && /POPHYPE_HOST_KERNEL|guest/.test(s.step.key + s.step.commands.join(' ')))).toEqual([]);
  });

  it.each([
    { hypervisors: ['giantvm', 'fragvisor'] as const, stage: 'giantvm/prepare-hosts' },
    { hypervisors: ['fragvisor', 'giantvm'] as const, stage: 'fragvisor/prepare-hosts' },
    { hypervisors: ['giantvm'] as const, stage: 'giantvm/prepare-hosts' },
  ])('measuring ($hypervisors): the guest kernel once, with the first hypervisor whose epochs boot a VM', ({ hypervisors, stage }) => {
    const p = plan({ hypervisors: [...hypervisors], experiments: ['E1'] });
    const stages = p.stages.filter((s) => s.steps.some((st) => st.key.includes('/guest-kernel/')));
    expect(stages.map((s) => s.key)).toEqual([stage]);
  });

  it('epochs: one stage per (experiment, node count) after the hosts, each with its own boot cycle, VM, guest setup and benchmarks', () => {
    const p = plan({ hypervisors: ['fragvisor', 'giantvm'], nodeCounts: [2, 4], experiments: ['E1', 'E3'] });
    expect(p.stages.map((s) => s.key)).toEqual([
      'fragvisor/prepare-hosts',
      'fragvisor/E1-n2',
      'fragvisor/E1-n4',
      'fragvisor/E3-n2',
      'fragvisor/E3-n4',
      'giantvm/prepare-hosts',
      'giantvm/E1-n2',
      'giantvm/E1-n4',
      'giantvm/E3-n2',
      'giantvm/E3-n4',
    ]);
    const keys = allKeys(p);
    expect(new Set(keys).size).toBe(keys.length);
    const stage = (k: string) => p.stages.find((s) => s.key === k)!;
    const lines = (k: string) => stage(k).steps.flatMap((s) => s.commands);
    // The first n nodes only, rebooted with proof; FragVisor loads the messaging layer in node order.
    const e1n2 = stage('fragvisor/E1-n2');
    // (the BMC power cycle, an escalation, runs on the control host)
    expect([...new Set(e1n2.steps.filter((s) => s.key.includes('/reboot/')).map(hostOf))].filter((h) => h !== 'control-host')).toEqual(['echo5', 'echo4']);
    expect(e1n2.steps.filter((s) => s.key.endsWith('/insmod')).map(hostOf)).toEqual(['echo5', 'echo4']);
    expect(lines('fragvisor/E1-n2').find((l) => l.includes('lkvm run'))).toMatch(/-w 2 .*ramdisk_lemp_4php\.gz.*-m 20480.*numa=fake=2/);
    expect(lines('fragvisor/E1-n4').some((l) => l.includes('ab -n 100 -c 10 http://10.4.4.222/'))).toBe(true);
    // E3 pins both cases and measures every size in each.
    expect(lines('fragvisor/E3-n2').filter((l) => l.includes('ab -n 1000 -c 10')).length).toBeGreaterThan(0);
    expect(stage('fragvisor/E3-n4').steps.some((s) => /delegated/.test(s.key))).toBe(true);
    // GiantVM: no messaging layer, qemu on every node of the epoch.
    expect(stage('giantvm/E1-n4').steps.some((s) => s.key.includes('/msg-layer/'))).toBe(false);
    expect(lines('giantvm/E1-n4').filter((l) => l.includes('qemu-system-x86_64'))).toHaveLength(4);
  });

  it('a baseline file stands in for GiantVM: no GiantVM stage; with giantvm alone, a PlanError naming baseline', () => {
    const p = plan({ experiments: ['E1'], nodeCounts: [2], baseline: 'config/baselines/example-giantvm.yaml' });
    expect(p.hypervisors).toEqual(['fragvisor']);
    expect(p.stages.map((s) => s.key)).toEqual(['fragvisor/prepare-hosts', 'fragvisor/E1-n2']);
    expect(() => plan({ hypervisors: ['giantvm'], baseline: 'b.yaml' })).toThrow(expect.objectContaining({ field: 'baseline' }));
  });

  it('reboot: every node, boot_id proof, BMC escalation from the control host only where a BMC exists', () => {
    const withBmc = plan({ hypervisors: ['fragvisor'], experiments: [] });
    const withoutBmc = plan({ hypervisors: ['fragvisor'], nodeCounts: [3], experiments: [] }, lab);
    for (const [p, bmc] of [
      [withBmc, true],
      [withoutBmc, false],
    ] as const) {
      const reboot = p.stages.find((s) => s.key === 'fragvisor/reboot')!;
      for (const node of p.nodes) {
        const whats = reboot.steps.filter((s) => s.key.split('/')[2] === node).map((s) => s.key.split('/')[3]);
        expect(whats).toEqual(['read-boot-state', 'soft-reboot', 'await-boot', ...(bmc ? ['bmc-power-cycle'] : [])]);
      }
      for (const step of reboot.steps) {
        if (step.key.endsWith('/bmc-power-cycle')) {
          expect(step.host).toEqual({ controlHost: true });
          expect(step.commands).toEqual([expect.stringMatching(/^ipmitool -I lanplus .* -E chassis power cycle$/)]);
        } else expect(step.host).toEqual({ node: step.key.split('/')[2] });
      }
      const operatorNotes = reboot.steps.filter((s) => s.note?.includes('waits for an operator'));
      expect(operatorNotes).toHaveLength(p.nodes.length);
    }
  });

  it('without a commit: placeholders in the commands, no commit in the plan, never a sentinel', () => {
    const p = planRun(reproduceClaimsInput.parse({ cluster: 'echo' }), echo, {});
    expect(p.commit).toBeUndefined();
    expect(p.giantvmCommit).toBeUndefined();
    const sync = (h: string) => p.stages.flatMap((s) => s.steps).find((s) => s.key === `${h}/host-kernel/echo5/sync`)!;
    expect(sync('fragvisor').commands.join('\n')).toContain(`checkout --quiet --detach ${FRAGVISOR_COMMIT_PLACEHOLDER}`);
    expect(sync('giantvm').commands.join('\n')).toContain(`checkout --quiet --detach ${GIANTVM_COMMIT_PLACEHOLDER}`);
    // Nothing else in the plan looks like a 40-digit hash: the sentinels are gone.
    expect(JSON.stringify(p.stages)).not.toMatch(/[0-9a-f]{40}/);
    // The input's kernelCommit counts when the options name none.
    const pinned = planRun(reproduceClaimsInput.parse({ cluster: 'echo', kernelCommit: SHA, hypervisors: ['fragvisor'] }), echo, {});
    expect(pinned.commit).toBe(SHA);
    expect(JSON.stringify(pinned)).not.toContain(FRAGVISOR_COMMIT_PLACEHOLDER);
  });
});

/** Each character's quoting state in a POSIX command line: inside single quotes or not. */
function singleQuoted(command: string): boolean[] {
  const state: boolean[] = [];
  let mode: 'plain' | 'single' | 'double' = 'plain';
  for (let i = 0; i < command.length; i++) {
    const c = command[i];
    if (mode === 'single') {
      if (c === "'") mode = 'plain';
      state.push(mode === 'single' || c !== "'");
      continue;
    }
    state.push(false);
    if (c === '\\') {
      state.push(false);
      i++;
    } else if (c === "'" && mode === 'plain') mode = 'single';
    else if (c === '"') mode = mode === 'double' ? 'plain' : 'double';
  }
  return state;
}

/** True when every occurrence of `value` in `command` lies inside single quotes. */
function onlyQuoted(command: string, value: string): boolean {
  const quoted = singleQuoted(command);
  for (let at = command.indexOf(value); at >= 0; at = command.indexOf(value, at + 1)) {
    for (let i = at; i < at + value.length; i++) if (!quoted[i]) return false;
  }
  return true;
}

describe('no unquoted config value in any command', () => {
  const node0 = echo.nodes[0];
  it.each([
    { name: 'kernelTree with a space', value: '/root/Frag Visor/linux', mutate: (c: ClusterSummary, v: string) => ({ ...c, paths: { ...c.paths, kernelTree: v } }) },
    { name: 'fragvisor path with $()', value: '/srv/$(reboot)', mutate: (c: ClusterSummary, v: string) => ({ ...c, paths: { ...c.paths, fragvisor: v } }) },
    { name: 'guest kernel dir with ;', value: '/srv/g;reboot', mutate: (c: ClusterSummary, v: string) => ({ ...c, paths: { ...c.paths, guestKernel: v } }) },
    { name: 'giantvm tree with a backquote', value: '/srv/`id`', mutate: (c: ClusterSummary, v: string) => ({ ...c, paths: { ...c.paths, giantvmTree: v } }) },
    { name: 'rdmaIp with a command', value: '10.4.6.15 && reboot', mutate: (c: ClusterSummary, v: string) => ({ ...c, nodes: [{ ...node0, rdmaIp: v }, ...c.nodes.slice(1)] }) },
    { name: 'node name with ;', value: 'echo5;reboot', mutate: (c: ClusterSummary, v: string) => ({ ...c, nodes: [{ ...node0, name: v }, ...c.nodes.slice(1)] }) },
    { name: 'BMC host with ;', value: 'ipmi;reboot', mutate: (c: ClusterSummary, v: string) => ({ ...c, nodes: [{ ...node0, bmcEndpoint: { ...node0.bmcEndpoint!, host: v } }, ...c.nodes.slice(1)] }) },
    { name: 'BMC user with $()', value: 'AD$(id)', mutate: (c: ClusterSummary, v: string) => ({ ...c, nodes: [{ ...node0, bmcEndpoint: { ...node0.bmcEndpoint!, user: v } }, ...c.nodes.slice(1)] }) },
  ])('$name: refused or single-quoted', ({ value, mutate }) => {
    let p: RunPlan;
    try {
      p = plan({}, mutate(echo, value));
    } catch (err) {
      // Refused: nothing unsafe was produced, and the refusal is a PlanError the workflow turns into InvalidInput.
      expect(err).toBeInstanceOf(PlanError);
      expect((err as PlanError).field).toBe('cluster');
      expect((err as PlanError).message).toContain(JSON.stringify(value));
      return;
    }
    for (const step of p.stages.flatMap((s) => s.steps)) {
      for (const command of step.commands) {
        if (!onlyQuoted(command, value)) throw new Error(`${step.key}: ${JSON.stringify(value)} unquoted in: ${command}`);
      }
    }
  });

  it('the quoting check itself tells quoted from unquoted', () => {
    expect(onlyQuoted("cat '/a b/c'", '/a b')).toBe(true);
    expect(onlyQuoted('cat /a b/c', '/a b')).toBe(false);
    expect(onlyQuoted('echo "$(x)"', '$(x)')).toBe(false);
    expect(onlyQuoted("echo 'it'\\''s'", 'it')).toBe(true);
  });

  it('the echo profile plans without a single quoted or refused value: its values are plain words', () => {
    const p = plan({});
    const values = [echo.paths.kernelTree, echo.paths.fragvisor, ...echo.nodes.flatMap((n) => [n.bmcEndpoint!.host, n.bmcEndpoint!.user])];
    const commands = p.stages.flatMap((s) => s.steps.flatMap((st) => st.commands)).join('\n');
    for (const v of values) {
      expect(commands).toContain(v);
      expect(commands).not.toContain(`'${v}`);
    }
  });
});
