import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { PROFILE_SCHEMA_FILE, checkProfileJsonSchema, profileJsonSchema, renderProfileJsonSchema, writeProfileJsonSchema } from '../../config/jsonSchema';
import { clustersDir } from '../../config/paths';
import { clusterProfileSchema } from '../../config/schema';
import { main } from '../../config/writeJsonSchema';

type Json = Record<string, unknown>;

/**
 * A deliberately small JSON Schema (draft 7) checker covering the keywords zod emits for the profile
 * schema, so the test needs no validator dependency. Returns `path: problem` strings; throws on any
 * keyword it does not know, so a schema change cannot silently make the check weaker.
 */
function validate(schema: Json, value: unknown, at = ''): string[] {
  const KNOWN = new Set(['$schema', 'title', 'description', 'default', 'type', 'properties', 'required', 'additionalProperties', 'items', 'minItems', 'maxItems', 'pattern', 'minLength', 'maxLength', 'minimum', 'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'allOf', 'enum', 'const']);
  for (const k of Object.keys(schema)) if (!KNOWN.has(k)) throw new Error(`${at || '(root)'}: the test validator does not know the keyword ${k}`);
  const out: string[] = [];
  const kind = Array.isArray(value) ? 'array' : value === null ? 'null' : Number.isInteger(value) ? 'integer' : typeof value;
  const type = schema.type as string | undefined;
  if (type && !(type === kind || (type === 'number' && kind === 'integer') || (type === 'object' && kind === 'object'))) return [`${at}: expected ${type}, got ${kind}`];
  if (schema.enum && !(schema.enum as unknown[]).includes(value)) out.push(`${at}: not in enum`);
  if ('const' in schema && schema.const !== value) out.push(`${at}: not the const`);
  for (const sub of (schema.allOf as Json[] | undefined) ?? []) out.push(...validate(sub, value, at));
  if (typeof value === 'string') {
    if (schema.pattern !== undefined && !new RegExp(schema.pattern as string, 'u').test(value)) out.push(`${at}: does not match ${String(schema.pattern)}`);
    if (typeof schema.minLength === 'number' && value.length < schema.minLength) out.push(`${at}: too short`);
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength) out.push(`${at}: too long`);
  }
  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum) out.push(`${at}: below minimum`);
    if (typeof schema.maximum === 'number' && value > schema.maximum) out.push(`${at}: above maximum`);
    if (typeof schema.exclusiveMinimum === 'number' && value <= schema.exclusiveMinimum) out.push(`${at}: not above exclusiveMinimum`);
    if (typeof schema.exclusiveMaximum === 'number' && value >= schema.exclusiveMaximum) out.push(`${at}: not below exclusiveMaximum`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems) out.push(`${at}: too few items`);
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems) out.push(`${at}: too many items`);
    if (schema.items) value.forEach((v, i) => out.push(...validate(schema.items as Json, v, `${at}[${i}]`)));
  }
  if (kind === 'object') {
    const obj = value as Json;
    const props = (schema.properties as Record<string, Json> | undefined) ?? {};
    for (const r of (schema.required as string[] | undefined) ?? []) if (!(r in obj)) out.push(`${at}.${r}: required`);
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) out.push(...validate(props[k], v, `${at}.${k}`));
      else if (schema.additionalProperties === false) out.push(`${at}.${k}: additional property`);
    }
  }
  return out;
}

const profileData = (file: string) => parseYaml(readFileSync(path.join(clustersDir(), file), 'utf8')) as Json;

describe('config/profile.schema.json', () => {
  it('is committed and equals what the zod schema generates (else run `npx tsx config/writeJsonSchema.ts`)', () => {
    expect(readFileSync(PROFILE_SCHEMA_FILE, 'utf8')).toBe(renderProfileJsonSchema());
    expect(checkProfileJsonSchema()).toEqual({ ok: true, message: 'config/profile.schema.json is up to date' });
  });

  it('is draft 7 and describes the input side: fields with defaults are optional', () => {
    const schema = profileJsonSchema();
    expect(schema.$schema).toBe('http://json-schema.org/draft-07/schema#');
    expect(schema.type).toBe('object');
    expect(schema.additionalProperties).toBe(false);
    expect(schema.required).toEqual(['name', 'nodes', 'paths', 'guest']);
    const props = schema.properties as Record<string, Json>;
    expect(Object.keys(props)).toEqual(['name', 'description', 'simulated', 'nodes', 'paths', 'guest', 'client', 'source', 'ssh', 'timeouts', 'claims']);
    const node = (props.nodes.items as Json) ?? {};
    expect(props.nodes).toMatchObject({ type: 'array', minItems: 1 });
    expect(node).toMatchObject({ type: 'object', additionalProperties: false, required: ['name', 'host', 'rdmaIp'] });
    const nodeProps = node.properties as Record<string, Json>;
    expect(nodeProps.port).toMatchObject({ type: 'integer', minimum: 1, maximum: 65535 });
    expect(nodeProps.origin).toMatchObject({ type: 'boolean', default: false });
    expect(nodeProps.bmc).toMatchObject({ type: 'object', additionalProperties: false, required: ['host', 'user', 'passwordEnv'] });
    expect(Object.keys((nodeProps.bmc.properties as Json) ?? {})).not.toContain('password');
    expect(props.timeouts).toMatchObject({ type: 'object', additionalProperties: false });
    expect(props.timeouts.required).toBeUndefined();
    expect((props.timeouts.properties as Record<string, Json>).kernelBuild).toMatchObject({ type: 'number', exclusiveMinimum: 0, maximum: 86400, default: 14400 });
    expect((props.guest.properties as Record<string, Json>).mac).toMatchObject({ type: 'string', pattern: expect.any(String) });
  });

  it.each(['echo.yaml', 'fox.yaml', 'sim.yaml'])('accepts %s', (file) => {
    expect(validate(profileJsonSchema(), profileData(file))).toEqual([]);
  });

  // Editors flag the same mistakes the loader rejects (those JSON Schema can express).
  it.each([
    { name: 'typo rdma_ip', mutate: (p: Json) => ((p.nodes as Json[])[0].rdma_ip = '10.4.6.15'), problem: '.nodes[0].rdma_ip: additional property' },
    { name: 'port as a string', mutate: (p: Json) => ((p.nodes as Json[])[0].port = '22'), problem: '.nodes[0].port: expected integer, got string' },
    { name: 'bmc password', mutate: (p: Json) => (((p.nodes as Json[])[0].bmc as Json).password = 'x'), problem: '.nodes[0].bmc.password: additional property' },
    { name: 'bad IP', mutate: (p: Json) => ((p.nodes as Json[])[1].rdmaIp = '300.1.1.1'), problem: '.nodes[1].rdmaIp: does not match' },
    { name: 'shell in a path', mutate: (p: Json) => ((p.paths as Json).fragvisor = '/root/$(id)'), problem: '.paths.fragvisor: does not match' },
    { name: '.. in a path', mutate: (p: Json) => ((p.paths as Json).fragvisor = '/root/../etc'), problem: '.paths.fragvisor: does not match' },
    { name: 'relative path', mutate: (p: Json) => ((p.paths as Json).fragvisor = 'FragVisor'), problem: '.paths.fragvisor: does not match' },
    { name: 'negative timeout', mutate: (p: Json) => ((p.timeouts as Json).probe = -1), problem: '.timeouts.probe: not above exclusiveMinimum' },
    { name: 'no nodes', mutate: (p: Json) => (p.nodes = []), problem: '.nodes: too few items' },
    { name: 'missing guest', mutate: (p: Json) => delete p.guest, problem: '.guest: required' },
  ])('rejects $name, as zod does', ({ mutate, problem }) => {
    const data = profileData('echo.yaml');
    mutate(data);
    expect(validate(profileJsonSchema(), data).join('\n')).toContain(problem);
    expect(clusterProfileSchema.safeParse(data).success).toBe(false);
  });

  it('the writer reports a stale or missing file and rewrites it', () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'ae-schema-'));
    try {
      const file = path.join(dir, 'profile.schema.json');
      expect(checkProfileJsonSchema(file)).toMatchObject({ ok: false, message: expect.stringMatching(/is missing: regenerate it with `npx tsx config\/writeJsonSchema.ts`/) });
      writeFileSync(file, '{}\n');
      expect(checkProfileJsonSchema(file)).toMatchObject({ ok: false, message: expect.stringMatching(/is stale/) });
      expect(writeProfileJsonSchema(file)).toBe(true);
      expect(checkProfileJsonSchema(file).ok).toBe(true);
      expect(writeProfileJsonSchema(file)).toBe(false);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('npx tsx config/writeJsonSchema.ts', () => {
  it('--check succeeds on the committed file; unknown arguments are a usage error', () => {
    const out = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const err = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      expect(main(['--check'])).toBe(0);
      expect(out).toHaveBeenCalledWith('config/profile.schema.json is up to date\n');
      expect(main(['--chek'])).toBe(2);
      expect(err).toHaveBeenCalledWith(expect.stringMatching(/^usage: npx tsx config\/writeJsonSchema.ts \[--check\]/));
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
  });
});
