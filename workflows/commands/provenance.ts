import { giantvmTreePath, kernelSource, type KernelPaths } from './kernel';
import { shellQuote, toCommandLine } from './quote';
import { BOOT_ID } from './reboot';

/**
 * What a node is, for the run's provenance.json (pure): one round trip asks every question, each
 * answer framed by markers with its own exit code, so a missing tool or a directory that is not a git
 * checkout spoils only its own answer. The node facts (release, boot_id, CPU, memory) must be there;
 * commits and tool versions may be missing and say why.
 */

/** The source trees whose HEADs are recorded. */
export type SourceName = 'fragvisor' | 'kernel' | 'kvmtool' | 'giantvm';

export interface ToolQuestion {
  kind: 'tool';
  tool: string;
  argv: readonly string[];
}

export type ProvenanceQuestion = { kind: 'release' | 'kernelVersion' | 'bootId' | 'cpu' | 'memory' } | { kind: 'git'; source: SourceName; path: string } | ToolQuestion;

/** A checkout's HEAD, or why there is none (no checkout, not a git repository, git missing). */
export type GitHead = { path: string; commit: string } | { path: string; error: string };

/** A tool's version line, or why there is none (not installed, failed). */
export type ToolAnswer = { tool: string; version: string } | { tool: string; error: string };

export interface CpuInfo {
  /** `model name` of /proc/cpuinfo; distinct models joined with " + "; absent where the kernel prints none. */
  model?: string;
  /** Online logical CPUs (`processor` entries). */
  logical: number;
  /** Distinct `physical id`s, when the kernel prints them. */
  sockets?: number;
  /** Distinct (physical id, core id) pairs, when the kernel prints them. */
  cores?: number;
}

export interface ProvenanceAnswers {
  /** `uname -r`. */
  kernelRelease: string;
  /** `uname -v` (build number and date). */
  kernelVersion: string;
  bootId: string;
  cpu: CpuInfo;
  memory: { totalKiB: number };
  commits: Partial<Record<SourceName, GitHead>>;
  tools: ToolAnswer[];
}

export interface NodeQuestionOptions {
  paths: KernelPaths & { kvmtool: string };
  /** The origin also answers for kvmtool (one shared path) and lkvm. */
  origin: boolean;
  /** GiantVM is measured in this run: its tree's HEAD and qemu on every node. */
  giantvm: boolean;
  /** ab runs on this node (the origin, when the profile names no separate client host). */
  loadGenerator: boolean;
}

const QEMU_VERSION: ToolQuestion = { kind: 'tool', tool: 'qemu-system-x86_64', argv: ['qemu-system-x86_64', '--version'] };
export const AB_VERSION: ToolQuestion = { kind: 'tool', tool: 'ab', argv: ['ab', '-V'] };

const join = (dir: string, name: string) => `${dir.replace(/\/+$/, '')}/${name}`;

/**
 * Every node: its kernel, boot, CPU and memory, and the HEADs of the FragVisor checkout and its
 * kernel tree (each node builds its own). kvmtool is on a shared path: asked on the origin only.
 */
export function nodeQuestions({ paths, origin, giantvm, loadGenerator }: NodeQuestionOptions): ProvenanceQuestion[] {
  const fragvisor = kernelSource('fragvisor', paths);
  const questions: ProvenanceQuestion[] = [
    { kind: 'release' },
    { kind: 'kernelVersion' },
    { kind: 'bootId' },
    { kind: 'cpu' },
    { kind: 'memory' },
    { kind: 'git', source: 'fragvisor', path: fragvisor.repo },
    { kind: 'git', source: 'kernel', path: fragvisor.tree },
  ];
  if (giantvm) questions.push({ kind: 'git', source: 'giantvm', path: giantvmTreePath(paths) }, QEMU_VERSION);
  if (origin) questions.push({ kind: 'git', source: 'kvmtool', path: paths.kvmtool }, { kind: 'tool', tool: 'lkvm', argv: [join(paths.kvmtool, 'lkvm'), 'version'] });
  if (loadGenerator) questions.push(AB_VERSION);
  return questions;
}

/** The answer's name in the output. */
export function questionName(q: ProvenanceQuestion): string {
  if (q.kind === 'git') return `git:${q.source}`;
  if (q.kind === 'tool') return `tool:${q.tool}`;
  return q.kind;
}

const MARK = '@@fragvisor-ae';
const BEGIN = `${MARK}:begin `;
const END = new RegExp(`^${MARK}:end (\\S+) (\\d+)$`);

function questionCommand(q: ProvenanceQuestion): string {
  switch (q.kind) {
    case 'release':
      return 'uname -r';
    case 'kernelVersion':
      return 'uname -v';
    case 'bootId':
      return 'cat /proc/sys/kernel/random/boot_id';
    case 'cpu':
      // Only the lines counted: a full /proc/cpuinfo of a large host is hundreds of KiB.
      return `grep -E ${shellQuote('^(processor|model name|physical id|core id)[[:space:]]*:')} /proc/cpuinfo`;
    case 'memory':
      return toCommandLine(['grep', '-E', '^MemTotal:', '/proc/meminfo']);
    case 'git':
      // Without its own .git, `git -C` would climb to an enclosing repository (an uninitialised
      // submodule would report FragVisor's HEAD as the kernel's).
      return `if ${toCommandLine(['test', '-e', join(q.path, '.git')])}; then ${toCommandLine(['git', '-C', q.path, 'rev-parse', 'HEAD'])}; else echo ${shellQuote(`not a git checkout (no ${join(q.path, '.git')})`)}; false; fi`;
    case 'tool':
      return toCommandLine(q.argv);
  }
}

/**
 * The round trip: per question a begin marker, its output (stderr too, stdin closed), then an end
 * marker with its exit code on a line of its own.
 */
export function provenanceCommand(questions: readonly ProvenanceQuestion[]): string {
  if (questions.length === 0) throw new TypeError('provenanceCommand: ask at least one question');
  return questions
    .map((q) => {
      const name = shellQuote(questionName(q));
      return `printf '%s %s\\n' ${MARK}:begin ${name}; { ${questionCommand(q)}; } </dev/null 2>&1; printf '\\n%s %s %d\\n' ${MARK}:end ${name} "$?"`;
    })
    .join('; ');
}

export interface RawAnswer {
  exitCode: number;
  /** The answer's output, trimmed. */
  text: string;
}

/** The framed answers by name; a question without both markers has no entry. */
export function splitAnswers(stdout: string): Map<string, RawAnswer> {
  const answers = new Map<string, RawAnswer>();
  let open: { name: string; lines: string[] } | undefined;
  for (const line of stdout.split('\n')) {
    const begin = line.startsWith(BEGIN) ? line.slice(BEGIN.length) : undefined;
    const end = END.exec(line);
    if (begin !== undefined) open = { name: begin, lines: [] };
    else if (end && open?.name === end[1]) {
      answers.set(open.name, { exitCode: Number(end[2]), text: open.lines.join('\n').trim() });
      open = undefined;
    } else open?.lines.push(line);
  }
  return answers;
}

const COMMIT = /^[0-9a-f]{40}(?:[0-9a-f]{24})?$/;
const firstLine = (text: string) => (text.split('\n').find((l) => l.trim() !== '') ?? '').trim().slice(0, 300);

/** `key : value` pairs of /proc/cpuinfo, one block per logical CPU, into counts. */
export function parseCpuInfo(text: string): CpuInfo {
  let logical = 0;
  const models: string[] = [];
  const sockets = new Set<string>();
  const cores = new Set<string>();
  let socket = '';
  for (const line of text.split('\n')) {
    const m = /^([^:]*?)\s*:\s*(.*)$/.exec(line);
    if (!m) continue;
    const [, key, value] = m;
    if (key === 'processor') {
      logical++;
      socket = '';
    } else if (key === 'model name' && !models.includes(value.trim())) models.push(value.trim());
    else if (key === 'physical id') sockets.add((socket = value.trim()));
    else if (key === 'core id') cores.add(`${socket}/${value.trim()}`);
  }
  if (logical === 0) throw new Error(`/proc/cpuinfo lists no processor: ${JSON.stringify(text.slice(0, 200))}`);
  return { ...(models.length > 0 ? { model: models.join(' + ') } : {}), logical, ...(sockets.size > 0 ? { sockets: sockets.size } : {}), ...(cores.size > 0 ? { cores: cores.size } : {}) };
}

/** `MemTotal:  32827408 kB` of /proc/meminfo. */
export function parseMemTotal(text: string): { totalKiB: number } {
  const m = /^MemTotal:\s+(\d+) kB$/m.exec(text);
  if (!m) throw new Error(`/proc/meminfo has no MemTotal line in kB: ${JSON.stringify(text.slice(0, 200))}`);
  return { totalKiB: Number(m[1]) };
}

/** A tool's answer: its first line when it ran, else why not (exit 127 = the shell did not find it). */
export function toolAnswer(tool: string, raw: RawAnswer | undefined): ToolAnswer {
  if (!raw) return { tool, error: 'no answer (the round trip ended before it)' };
  const line = firstLine(raw.text);
  if (raw.exitCode === 127) return { tool, error: `not installed${line ? ` (${line})` : ''}` };
  if (raw.exitCode !== 0) return { tool, error: `exit ${raw.exitCode}${line ? `: ${line}` : ''}` };
  return line ? { tool, version: line } : { tool, error: 'printed no version' };
}

function gitHead(path: string, raw: RawAnswer | undefined): GitHead {
  if (!raw) return { path, error: 'no answer (the round trip ended before it)' };
  if (raw.exitCode === 0 && COMMIT.test(raw.text)) return { path, commit: raw.text };
  const line = firstLine(raw.text);
  if (raw.exitCode === 0) return { path, error: `not a commit: ${JSON.stringify(line)}` };
  // git's own message (or the .git guard's) says what is wrong; the exit code only when it said nothing.
  return { path, error: raw.exitCode === 127 ? `git not installed${line ? ` (${line})` : ''}` : line || `exit ${raw.exitCode}` };
}

/** The commits and tool versions among `questions`, each with its reason when it could not be read. */
export function parseExtraAnswers(stdout: string, questions: readonly ProvenanceQuestion[]): Pick<ProvenanceAnswers, 'commits' | 'tools'> {
  return extraAnswers(splitAnswers(stdout), questions);
}

function extraAnswers(answers: Map<string, RawAnswer>, questions: readonly ProvenanceQuestion[]): Pick<ProvenanceAnswers, 'commits' | 'tools'> {
  const out: Pick<ProvenanceAnswers, 'commits' | 'tools'> = { commits: {}, tools: [] };
  for (const q of questions) {
    if (q.kind === 'git') out.commits[q.source] = gitHead(q.path, answers.get(questionName(q)));
    else if (q.kind === 'tool') out.tools.push(toolAnswer(q.tool, answers.get(questionName(q))));
  }
  return out;
}

/**
 * A node's answers to nodeQuestions(). The node facts must parse (else an Error naming the answer);
 * a commit or a tool version that cannot be read is recorded with the reason.
 */
export function parseNodeProvenance(stdout: string, questions: readonly ProvenanceQuestion[]): ProvenanceAnswers {
  const answers = splitAnswers(stdout);
  const fact = (kind: ProvenanceQuestion['kind']): string => {
    const raw = answers.get(kind);
    if (!raw) throw new Error(`provenance: no ${kind} answer in the output: ${JSON.stringify(stdout.slice(0, 200))}`);
    if (raw.exitCode !== 0) throw new Error(`provenance: ${kind} failed with exit ${raw.exitCode}: ${firstLine(raw.text)}`);
    return raw.text;
  };
  const kernelRelease = fact('release');
  if (!/^\S+$/.test(kernelRelease)) throw new Error(`provenance: uname -r is not one word: ${JSON.stringify(kernelRelease)}`);
  const bootId = fact('bootId');
  if (!BOOT_ID.test(bootId)) throw new Error(`provenance: boot_id is not a UUID: ${JSON.stringify(bootId)}`);
  return {
    kernelRelease,
    kernelVersion: fact('kernelVersion'),
    bootId,
    cpu: parseCpuInfo(fact('cpu')),
    memory: parseMemTotal(fact('memory')),
    ...extraAnswers(answers, questions),
  };
}
