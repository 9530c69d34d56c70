import type { z } from 'zod';

/** A config or input that can never work as given: callers turn it into a non-retryable failure. */
export class InvalidConfigError extends Error {
  override readonly name = 'InvalidConfigError';
  constructor(
    message: string,
    readonly problems: string[] = [],
  ) {
    super(message);
  }
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `nodes[1].rdmaIp` style path for a zod issue (odd keys are quoted: `ssh["connect timeout"]`). */
export function issuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (typeof part === 'string' && IDENTIFIER.test(part)) out += out ? `.${part}` : part;
    else out += `[${JSON.stringify(String(part))}]`;
  }
  return out || '(top level)';
}

const MAX_SHOWN = 60;

/**
 * What a value is, for "expected X, got Y" messages, in YAML terms: `string "22"`, `number 22`, `a list`,
 * `a mapping`, `nothing (the field is missing)`. Strings are quoted and truncated; never call this on secrets.
 */
export function describeInput(input: unknown): string {
  if (input === undefined) return 'nothing (the field is missing)';
  if (input === null) return 'null (an empty value)';
  if (Array.isArray(input)) return input.length === 0 ? 'an empty list' : 'a list';
  switch (typeof input) {
    case 'string': {
      const shown = input.length > MAX_SHOWN ? `${input.slice(0, MAX_SHOWN)}...` : input;
      return `string ${JSON.stringify(shown)}`;
    }
    case 'number':
      return Number.isNaN(input) ? 'NaN' : `number ${input}`;
    case 'boolean':
      return `boolean ${input}`;
    case 'object':
      return input instanceof Date ? 'a date' : 'a mapping';
    default:
      return typeof input;
  }
}

/** A JSON value's kind in YAML words, for zod's `expected` codes (`string` -> `a string`). */
function expectedNoun(expected: string): string {
  switch (expected) {
    case 'object':
      return 'a mapping';
    case 'array':
      return 'a list';
    case 'int':
      return 'a whole number';
    case 'boolean':
      return 'true or false';
    default:
      return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
  }
}

/** Zod's default English messages, which we replace when a schema did not say something better. */
const ZOD_DEFAULT = /^(?:Invalid input|Invalid option|Invalid string|Invalid number|Invalid [A-Za-z0-9 ]+$|Too (?:big|small):|Unrecognized key)/;

/**
 * Fallback wording for an issue the schema gave no message of its own; usable as a per-parse error map
 * (`schema.safeParse(x, { error: profileErrorMap })`), where `input` is still available.
 */
export function profileErrorMap(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined
        ? `missing: expected ${expectedNoun(issue.expected)}`
        : `expected ${expectedNoun(issue.expected)}, got ${describeInput(issue.input)}`;
    case 'too_small':
      if (issue.origin === 'array') return `expected at least ${issue.minimum} item(s)`;
      if (issue.origin === 'string') return `expected at least ${issue.minimum} character(s)`;
      return `expected a value ${issue.inclusive ? 'of at least' : 'greater than'} ${issue.minimum}`;
    case 'too_big':
      if (issue.origin === 'array') return `expected at most ${issue.maximum} item(s)`;
      if (issue.origin === 'string') return `expected at most ${issue.maximum} character(s)`;
      return `expected a value ${issue.inclusive ? 'of at most' : 'less than'} ${issue.maximum}`;
    case 'invalid_value':
      return `expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'unrecognized_keys':
      return issue.keys.map(() => 'unknown field: check the spelling or remove it').join('\n');
    default:
      return undefined;
  }
}

/** Fallback when an issue reached us with zod's stock wording and without its input. */
function fallbackMessage(issue: z.core.$ZodIssue): string {
  switch (issue.code) {
    case 'invalid_type':
      return `expected ${expectedNoun(issue.expected)}`;
    case 'too_small':
    case 'too_big':
    case 'invalid_value':
      return profileErrorMap(issue as z.core.$ZodRawIssue) ?? issue.message;
    case 'invalid_format':
      return issue.format === 'regex' && 'pattern' in issue ? `expected a value matching ${String(issue.pattern)}` : `expected a valid ${issue.format}`;
    case 'invalid_union':
      return 'matches none of the allowed forms';
    default:
      return issue.message;
  }
}

/**
 * One line per problem: where it is (`nodes[1].rdmaIp`) and what was expected. Unknown fields get one
 * line each, with the field itself in the path (`nodes[0].rdma_ip: unknown field ...`).
 */
export function describeZodError(error: z.core.$ZodError): string[] {
  const lines: string[] = [];
  for (const issue of error.issues) {
    if (issue.code === 'unrecognized_keys') {
      // Schema error maps word unknown keys one line per key, in key order (see profileErrorMap).
      const perKey = issue.message.split('\n');
      const custom = perKey.length === issue.keys.length && !ZOD_DEFAULT.test(issue.message);
      issue.keys.forEach((key, i) => {
        lines.push(`${issuePath([...issue.path, key])}: ${custom ? perKey[i] : 'unknown field: check the spelling or remove it'}`);
      });
      continue;
    }
    if (issue.code === 'invalid_union' && issue.errors.length > 0) {
      // Report the branch that got furthest, not a bare "Invalid input".
      const best = [...issue.errors].sort((a, b) => depth(b) - depth(a))[0];
      if (best.length > 0 && best.some((i) => i.path.length > 0 || !ZOD_DEFAULT.test(i.message))) {
        const nested = { issues: best.map((i) => ({ ...i, path: [...issue.path, ...i.path] })) } as unknown as z.core.$ZodError;
        lines.push(...describeZodError(nested));
        continue;
      }
    }
    const message = ZOD_DEFAULT.test(issue.message) ? fallbackMessage(issue) : issue.message;
    lines.push(`${issuePath(issue.path)}: ${message}`);
  }
  return lines;
}

function depth(issues: readonly z.core.$ZodIssue[]): number {
  return Math.max(0, ...issues.map((i) => i.path.length));
}
