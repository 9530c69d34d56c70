import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { findNode, sshTarget } from '../activities/cluster';
import { SshPool } from '../activities/ssh/pool';
import { loadProfile } from '../config/load';
import { AE_BIN, spawnAe } from '../test/helpers/processes';
import { rerun, type BenchContext } from './context';
import { loadavg, timed, type Timed } from './proc';
import { fmt, type Row } from './report';
import { spread } from './stats';
import { ensurePeers, PEERS } from './tools';

/**
 * Figure 1: one command on every node at once, through `ae exec` (its in-process API: SshPool as
 * cli/commands/exec.ts drives it; and the real CLI, a process per call) against parallel-ssh and
 * Ansible ad-hoc (`-m raw`: the sim's nodes need no Python), on the same simulated nodes. The sim
 * runs as its own process (`ae sim up`), so the measured CPU and memory are the clients' only.
 * Cold: new connections. Warm: our pool kept between runs; for pssh and Ansible, OpenSSH
 * multiplexing (ControlMaster=auto, ControlPersist) primed by one unmeasured run; the master's own
 * CPU is then not counted (it is a daemon, not their child).
 */

export const FANOUT_COMMAND = 'uname -r; cat /proc/sys/kernel/random/boot_id';

interface Samples {
  wall: number[];
  cpu: number[];
  mem: number[];
  errors: string[];
}

const empty = (): Samples => ({ wall: [], cpu: [], mem: [], errors: [] });

function record(s: Samples, t: Timed, ok: (t: Timed) => boolean): void {
  if (t.code === 0 && ok(t)) {
    s.wall.push(t.wallMs);
    s.cpu.push(t.cpuMs);
    s.mem.push(t.treePeakMiB);
  } else s.errors.push(`exit ${t.code}: ${(t.stderr || t.stdout).trim().split('\n').slice(-2).join(' / ').slice(0, 200)}`);
}

/** The in-process API: every node at once over one pool (cold: a fresh pool per run). */
async function apiRun(pool: SshPool, profileFile: string): Promise<Timed> {
  const loaded = loadProfile(profileFile);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const results = await Promise.all(loaded.profile.nodes.map((n) => pool.exec(sshTarget(findNode(loaded, n.name)), loaded.profile.ssh, FANOUT_COMMAND).catch((e: Error) => e)));
  const wallMs = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const bad = results.filter((r) => r instanceof Error || r.exitCode !== 0 || r.stdout.trim().split('\n').length !== 2);
  return { code: bad.length ? 1 : 0, stdout: '', stderr: bad.length ? `${bad.length} node(s) failed: ${String(bad[0] instanceof Error ? bad[0].message : bad[0].stderr)}` : '', wallMs, cpuMs: (cpu.user + cpu.system) / 1000, treePeakMiB: NaN };
}

export async function fanout(ctx: BenchContext): Promise<Row[]> {
  const sizes = ctx.sizes;
  const missing = await ensurePeers(ctx.log);
  const rows: Row[] = [];
  const again = rerun('fanout', ctx.quick);
  for (const n of sizes) {
    const load = loadavg();
    const dir = mkdtempSync(path.join(ctx.tmp, `fanout-${n}-`));
    const cm = mkdtempSync('/tmp/ae-cm-'); // ControlPath: a socket path must stay short
    ctx.log(`fan-out: ${n} nodes`);
    const sim = spawnAe(['sim', 'up', '--nodes', String(n), '--state-dir', path.join(dir, 'sim'), '--time-scale', '0', '--no-bmc', '--json']);
    const samples: Record<string, Samples> = {};
    const commands: Record<string, string> = {};
    try {
      const info = JSON.parse(await sim.waitFor(/\{"stateDir".*\}/, 300_000)) as { profileFile: string; sshConfigFile: string; nodes: { name: string }[] };
      const names = info.nodes.map((x) => x.name);
      const hosts = path.join(dir, 'hosts');
      writeFileSync(hosts, `${names.join('\n')}\n`);
      const inventory = path.join(dir, 'inventory');
      writeFileSync(inventory, `[sim]\n${names.join('\n')}\n`);
      const cfg = info.sshConfigFile;
      const q = `'${FANOUT_COMMAND}'`;

      const api = (samples['ae API cold'] = empty());
      commands['ae API cold'] = again;
      for (let i = 0; i < ctx.runs; i++) {
        const pool = new SshPool();
        record(api, await apiRun(pool, info.profileFile), () => true);
        await pool.close();
      }
      const apiWarm = (samples['ae API warm'] = empty());
      commands['ae API warm'] = again;
      const pool = new SshPool();
      await apiRun(pool, info.profileFile);
      for (let i = 0; i < ctx.runs; i++) record(apiWarm, await apiRun(pool, info.profileFile), () => true);
      await pool.close();

      const cli = (samples['ae exec CLI cold'] = empty());
      commands['ae exec CLI cold'] = `npx ae exec --cluster <state-dir>/cluster.yaml -- ${q}`;
      for (let i = 0; i < ctx.runs; i++) record(cli, await timed([process.execPath, AE_BIN, 'exec', '--cluster', info.profileFile, '--', FANOUT_COMMAND]), (t) => (t.stdout.match(/^=== /gm) ?? []).length === n);

      const peers: [string, string | undefined, (mode: 'cold' | 'warm') => { argv: string[]; env?: NodeJS.ProcessEnv; shown: string }, (t: Timed) => boolean][] = [
        [
          'pssh',
          missing.pssh,
          (mode) => {
            const x = mode === 'cold' ? `-F ${cfg} -o ControlMaster=no` : `-F ${cfg} -o ControlMaster=auto -o ControlPath=${cm}/pssh-%C -o ControlPersist=600`;
            return { argv: [PEERS.pssh.bin, '-h', hosts, '-p', String(n), '-t', '120', '-i', '-x', x, FANOUT_COMMAND], shown: `parallel-ssh -h hosts -p ${n} -t 120 -i -x '${x.replace(cfg, '<state-dir>/ssh_config').replace(cm, '<dir>')}' ${q}` };
          },
          (t) => (t.stdout.match(/\[SUCCESS\]/g) ?? []).length === n,
        ],
        [
          'ansible',
          missing.ansible,
          (mode) => {
            const args = mode === 'cold' ? `-F ${cfg} -o ControlMaster=no` : `-F ${cfg} -o ControlMaster=auto -o ControlPersist=600s`;
            const env = { ANSIBLE_SSH_ARGS: args, ANSIBLE_SSH_CONTROL_PATH_DIR: cm, ANSIBLE_LOCAL_TEMP: path.join(dir, 'ansible-tmp'), ANSIBLE_NOCOLOR: '1', ANSIBLE_CONFIG: path.join(dir, 'none.cfg') };
            return { argv: [PEERS.ansible.bin, 'all', '-i', inventory, '-m', 'raw', '-a', FANOUT_COMMAND, '-f', String(n)], env, shown: `ANSIBLE_SSH_ARGS='${args.replace(cfg, '<state-dir>/ssh_config')}' ansible all -i inventory -m raw -a ${q} -f ${n}` };
          },
          (t) => (t.stdout.match(/\| CHANGED/g) ?? []).length === n,
        ],
      ];
      for (const [peer, why, build, ok] of peers) {
        for (const mode of ['cold', 'warm'] as const) {
          const key = `${peer} ${mode}`;
          const s = (samples[key] = empty());
          const b = build(mode);
          commands[key] = b.shown;
          if (why) {
            s.errors.push(`not measured: ${why}`);
            continue;
          }
          if (mode === 'warm') await timed(b.argv, { env: b.env }); // opens the masters
          for (let i = 0; i < ctx.runs; i++) record(s, await timed(b.argv, { env: b.env }), ok);
        }
      }
    } catch (err) {
      ctx.log(`fan-out ${n}: ${(err as Error).message}`);
      rows.push({ figure: '1. fan-out', what: `${n} nodes`, unit: 'ms', values: [], note: `failed: ${(err as Error).message.slice(0, 300)}`, command: again, load });
      continue;
    } finally {
      // A sim still starting does not listen for SIGTERM yet.
      sim.child.kill('SIGTERM');
      const killer = setTimeout(() => sim.child.kill('SIGKILL'), 20_000);
      await sim.exited;
      clearTimeout(killer);
      rmSync(dir, { recursive: true, force: true });
      rmSync(cm, { recursive: true, force: true });
    }
    const psshMedian = (mode: string) => spread(samples[`pssh ${mode}`]?.wall ?? []).median;
    for (const [key, s] of Object.entries(samples)) {
      const errors = s.errors.length ? `${s.errors.length} failed run(s): ${s.errors[0]}` : undefined;
      let target: Row['target'];
      if (n === Math.max(...sizes) && key.startsWith('ae ')) {
        const mode = key.endsWith('warm') ? 'warm' : 'cold';
        const p = psshMedian(mode);
        if (Number.isFinite(p) && s.wall.length) target = { text: `<= 0.5 x pssh ${mode} (${fmt(p / 2)} ms)`, pass: spread(s.wall).median <= p / 2 };
      }
      rows.push({ figure: '1. fan-out', what: `${n} nodes, ${key}: wall`, unit: 'ms', values: s.wall, ...(target ? { target } : {}), ...(errors ? { note: errors } : {}), command: commands[key], load });
      rows.push({ figure: '1. fan-out', what: `${n} nodes, ${key}: CPU (user+sys)`, unit: 'ms', values: s.cpu, ...(key.startsWith('ae API') ? { note: 'the bench process itself (the sim is another process)' } : key.endsWith('warm') && !key.startsWith('ae') ? { note: 'excludes the ControlMaster daemons' } : {}), command: commands[key], load });
      if (!key.startsWith('ae API')) rows.push({ figure: '1. fan-out', what: `${n} nodes, ${key}: peak RSS (process tree)`, unit: 'MiB', values: s.mem, command: commands[key], load });
    }
  }
  return rows;
}
