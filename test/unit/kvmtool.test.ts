import {
  KVMTOOL_MARKER,
  kvmtoolBuildJob,
  kvmtoolBuiltCommand,
  kvmtoolInspectCommand,
  kvmtoolSteps,
  kvmtoolSyncCommands,
  kvmtoolUpToDate,
  parseKvmtoolBuilt,
  parseKvmtoolInspect,
  renderKvmtoolMarker,
  writeKvmtoolMarkerCommand,
  type KvmtoolInspect,
  type KvmtoolMarker,
} from '../../workflows/commands/kvmtool';
import { planJobLine } from '../../workflows/commands/kernel';

const DIR = '/nfs/fragvisor-kvmtool';
const C1 = '1111111111111111111111111111111111111111';
const C2 = '2222222222222222222222222222222222222222';
const H1 = 'a'.repeat(64);
const H2 = 'b'.repeat(64);
const MARKER: KvmtoolMarker = { path: DIR, commit: C1, lkvmSha256: H1, builtAt: '2026-01-01T00:00:00.000Z' };

describe('kvmtool command lines', () => {
  it('sync: the shared checkout steps with kvmtool\'s own messages, then HEAD', () => {
    expect(kvmtoolSyncCommands(`${DIR}/`, C1)).toEqual([
      `test -e ${DIR}/.git || { echo 'fragvisor-ae: no git checkout at ${DIR}: check paths.kvmtool in the cluster profile (fragvisor-kvmtool on the shared path)' >&2; exit 3; }`,
      `git -C ${DIR} cat-file -e '${C1}^{commit}' 2>/dev/null || ! git -C ${DIR} remote get-url origin >/dev/null 2>&1 || git -C ${DIR} fetch --quiet --tags origin`,
      `git -C ${DIR} cat-file -e '${C1}^{commit}' 2>/dev/null || { echo 'fragvisor-ae: kvmtoolCommit ${C1} is not in ${DIR} (nor in its remote origin): fetch it on the origin (git -C ${DIR} fetch <remote> ${C1}) or push it there, or correct kvmtoolCommit' >&2; exit 3; }`,
      `git -C ${DIR} checkout --quiet --detach ${C1}`,
      `git -C ${DIR} rev-parse HEAD`,
    ]);
  });

  it.each([
    ['inspect', () => kvmtoolInspectCommand(DIR), `git -C ${DIR} rev-parse HEAD && { test -f ${DIR}/lkvm && sha256sum < ${DIR}/lkvm | cut -c1-64 || echo absent; } && { cat "$HOME"/.fragvisor-ae/kvmtool/build.json 2>/dev/null || true; }`],
    ['built', () => kvmtoolBuiltCommand(DIR), `{ test -x ${DIR}/lkvm || { echo 'fragvisor-ae: make exited 0 but ${DIR}/lkvm is missing or not executable' >&2; exit 3; }; } && git -C ${DIR} rev-parse HEAD && sha256sum < ${DIR}/lkvm | cut -c1-64`],
    ['marker', () => writeKvmtoolMarkerCommand(), 'mkdir -p "$HOME"/.fragvisor-ae/kvmtool && cat > "$HOME"/.fragvisor-ae/kvmtool/build.json.tmp && mv -f "$HOME"/.fragvisor-ae/kvmtool/build.json.tmp "$HOME"/.fragvisor-ae/kvmtool/build.json'],
    ['build job', () => planJobLine(kvmtoolBuildJob(DIR, 16)), `cd ${DIR} && exec make -j16`],
  ])('%s', (_what, build, line) => {
    expect(build()).toBe(line);
  });

  it.each([
    ['a relative path', () => kvmtoolSyncCommands('nfs/kvmtool', C1), /paths\.kvmtool must be an absolute path/],
    ['a path with a quote', () => kvmtoolInspectCommand("/nfs/k'vm"), /paths\.kvmtool must be an absolute path/],
    ['a path with ..', () => kvmtoolBuiltCommand('/nfs/../etc'), /without "\.\."/],
    ['a commit that is no hash', () => kvmtoolSyncCommands(DIR, 'main; reboot'), /expected a git commit hash/],
    ['0 make jobs', () => kvmtoolBuildJob(DIR, 0), /make jobs must be a whole number 1\.\.1024/],
  ])('refuses %s', (_what, build, message) => {
    expect(build).toThrow(message);
  });

  it('plan steps: sync, inspect, build, marker on the origin, with the lines the activities send', () => {
    const steps = kvmtoolSteps({ node: 'echo5', dir: DIR, commit: C1, jobs: 4 });
    expect(steps.map((s) => [s.key, s.host])).toEqual(['sync', 'inspect', 'build', 'marker'].map((w) => [`fragvisor/kvmtool/echo5/${w}`, { node: 'echo5' }]));
    expect(steps.map((s) => s.commands)).toEqual([kvmtoolSyncCommands(DIR, C1), [kvmtoolInspectCommand(DIR)], [`cd ${DIR} && exec make -j4`, kvmtoolBuiltCommand(DIR)], [writeKvmtoolMarkerCommand()]]);
    expect(steps[3].title).toContain(KVMTOOL_MARKER);
  });
});

describe('reading what they print', () => {
  it.each<[string, string, KvmtoolInspect]>([
    ['no lkvm, no marker', `${C1}\nabsent\n`, { head: C1 }],
    ['lkvm, no marker', `${C1}\n${H1}\n`, { head: C1, lkvmSha256: H1 }],
    ['lkvm and a marker', `${C1}\n${H1}\n${renderKvmtoolMarker(MARKER)}`, { head: C1, lkvmSha256: H1, marker: MARKER }],
    ['a marker that is not JSON', `${C1}\n${H1}\n{"path":`, { head: C1, lkvmSha256: H1, markerProblem: 'the build marker is not JSON' }],
    ['a marker without lkvmSha256', `${C1}\n${H1}\n${JSON.stringify({ path: DIR, commit: C1, builtAt: 'x' })}`, { head: C1, lkvmSha256: H1, markerProblem: 'the build marker lacks path, commit, lkvmSha256 or builtAt' }],
  ])('inspect: %s', (_what, stdout, expected) => {
    expect(parseKvmtoolInspect(stdout)).toEqual(expected);
  });

  it.each([
    ['no HEAD', `fatal: not a git repository\nabsent\n`, /expected HEAD/],
    ['a bad hash line', `${C1}\nsha256sum: lkvm: Permission denied\n`, /expected lkvm's sha256 or "absent"/],
  ])('inspect refuses %s', (_what, stdout, message) => {
    expect(() => parseKvmtoolInspect(stdout)).toThrow(message);
  });

  it.each([
    ['HEAD and hash', `${C2}\n${H2}\n`, { head: C2, lkvmSha256: H2 }],
    ['one line only', `${C2}\n`, /expected HEAD and lkvm's sha256/],
    ['a short hash', `${C2}\nabc\n`, /expected HEAD and lkvm's sha256/],
  ])('built read-back: %s', (_what, stdout, expected) => {
    if (expected instanceof RegExp) expect(() => parseKvmtoolBuilt(stdout)).toThrow(expected);
    else expect(parseKvmtoolBuilt(stdout)).toEqual(expected);
  });
});

describe('kvmtoolUpToDate: skip only when lkvm is the recorded build of this very commit', () => {
  const up = { head: C1, lkvmSha256: H1, marker: MARKER };
  it.each<[string, KvmtoolInspect, { upToDate: boolean; reason: RegExp }]>([
    ['everything matches', up, { upToDate: true, reason: /^lkvm already built from 111111111111 \(2026-01-01/ }],
    ['no marker', { head: C1, lkvmSha256: H1 }, { upToDate: false, reason: /^no kvmtool build marker/ }],
    ['an unreadable marker', { head: C1, lkvmSha256: H1, markerProblem: 'the build marker is not JSON' }, { upToDate: false, reason: /^the build marker is not JSON$/ }],
    ['built from another commit', { ...up, marker: { ...MARKER, commit: C2 } }, { upToDate: false, reason: /^lkvm was built from 222222222222, not 111111111111$/ }],
    ['another checkout\'s marker', { ...up, marker: { ...MARKER, path: '/home/ae/fragvisor-kvmtool' } }, { upToDate: false, reason: /^the marker is for \/home\/ae\/fragvisor-kvmtool/ }],
    ['HEAD elsewhere', { ...up, head: C2 }, { upToDate: false, reason: /^the checkout is at 222222222222/ }],
    ['lkvm gone', { head: C1, marker: MARKER }, { upToDate: false, reason: /^lkvm is missing$/ }],
    ['lkvm rebuilt since', { ...up, lkvmSha256: H2 }, { upToDate: false, reason: /^lkvm changed since the recorded build$/ }],
  ])('%s', (_what, inspect, expected) => {
    const got = kvmtoolUpToDate(inspect, { dir: DIR, commit: C1 });
    expect(got.upToDate).toBe(expected.upToDate);
    expect(got.reason).toMatch(expected.reason);
  });
});
