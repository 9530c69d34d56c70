import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { EXIT_PERMANENT, kernelSource, sourceSyncCommands, type KernelSource } from '../../workflows/commands/kernel';

/**
 * The source sync's command lines run by real bash and git against local repositories (the
 * simulated nodes have no remote, so clone and fetch are exercised here): clone when the checkout is
 * absent, fetch when the commit is missing, nothing fetched when it is there, exit 3 when no retry
 * can help.
 */

const ENV = {
  ...process.env,
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_AUTHOR_NAME: 'test',
  GIT_AUTHOR_EMAIL: 'test@example.invalid',
  GIT_COMMITTER_NAME: 'test',
  GIT_COMMITTER_EMAIL: 'test@example.invalid',
};

function bash(line: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile('bash', ['-c', line], { env: ENV, encoding: 'utf8' }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function must(line: string): Promise<string> {
  const r = await bash(line);
  if (r.code !== 0) throw new Error(`${line}: exit ${r.code}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Runs the sync's lines in order, as the activity does: the first non-zero exit stops it. */
async function sync(src: KernelSource, commit: string, repository?: string) {
  let last = { code: 0, stdout: '', stderr: '' };
  for (const line of sourceSyncCommands(src, commit, repository)) {
    last = await bash(line);
    if (last.code !== 0) break;
  }
  return last;
}

let dir: string;
let upstream: string;
let src: KernelSource;
const commits: string[] = [];

async function commit(file: string): Promise<string> {
  writeFileSync(path.join(upstream, file), `${file}\n`);
  await must(`git -C ${upstream} add -A && git -C ${upstream} commit -q -m ${file}`);
  return must(`git -C ${upstream} rev-parse HEAD`);
}

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'ae-kernel-sync-'));
  upstream = path.join(dir, 'upstream');
  await must(`git -c init.defaultBranch=master init -q ${upstream}`);
  commits.push(await commit('Makefile'));
  src = kernelSource('giantvm', { fragvisor: path.join(dir, 'node', 'FragVisor'), kernelTree: path.join(dir, 'node', 'FragVisor', 'fragvisor-linux') });
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('source sync against local git repositories', () => {
  it('without a checkout and without a repository: exit 3 saying so', async () => {
    const r = await sync(src, commits[0]);
    expect(r.code).toBe(EXIT_PERMANENT);
    expect(r.stderr).toContain(`no git checkout at ${src.repo} and the profile names no source repository`);
  });

  it('clones when the checkout is absent, through a staging dir, and checks the commit out detached', async () => {
    const r = await sync(src, commits[0], upstream);
    expect(r).toMatchObject({ code: 0, stdout: `${commits[0]}\n${commits[0]}\n` });
    expect(existsSync(`${src.repo}.ae-clone`)).toBe(false);
    expect(await must(`git -C ${src.repo} symbolic-ref -q HEAD || echo detached`)).toBe('detached');
  });

  it('fetches a commit it lacks from its remote', async () => {
    commits.push(await commit('Kconfig'));
    expect((await bash(`git -C ${src.repo} cat-file -e ${commits[1]}`)).code).not.toBe(0);
    expect(await sync(src, commits[1].slice(0, 10), upstream)).toMatchObject({ code: 0, stdout: `${commits[1]}\n${commits[1]}\n` });
  });

  it('fetches nothing when the commit is there (a remote that is gone does not matter)', async () => {
    await must(`git -C ${src.repo} remote set-url origin ${path.join(dir, 'gone')}`);
    expect(await sync(src, commits[0], upstream)).toMatchObject({ code: 0, stdout: `${commits[0]}\n${commits[0]}\n` });
  });

  it('a commit that is nowhere: a fetch that fails may heal (not 3); without a remote it is exit 3', async () => {
    const missing = await commit('README');
    const unreachable = await sync(src, missing);
    expect(unreachable.code).not.toBe(0);
    expect(unreachable.code).not.toBe(EXIT_PERMANENT);
    await must(`git -C ${src.repo} remote remove origin`);
    const r = await sync(src, missing);
    expect(r.code).toBe(EXIT_PERMANENT);
    expect(r.stderr).toContain(`commit ${missing} is not in ${src.repo}`);
  });
});
