import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { PROJECT_ROOT } from './paths';
import { clusterProfileSchema } from './schema';

/** The committed JSON Schema that editors use for config/clusters/*.yaml (see their first line). */
export const PROFILE_SCHEMA_FILE = path.join(PROJECT_ROOT, 'config', 'profile.schema.json');

/**
 * JSON Schema of a cluster profile as written by hand (zod's input side: fields with defaults are
 * optional). Draft 7, which the YAML and JSON language servers of common editors support fully.
 * Cross-field rules (one origin, first; unique names and IPs) live only in the zod schema.
 */
export function profileJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(clusterProfileSchema, { io: 'input', target: 'draft-7', unrepresentable: 'throw' }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  return {
    $schema,
    title: 'FragVisor AE cluster profile',
    description:
      'A cluster profile (config/clusters/*.yaml) for fragvisor-ae. Generated from config/schema.ts by `npx tsx config/writeJsonSchema.ts`; do not edit by hand.',
    ...rest,
  };
}

/** The file's exact text: stable key order, 2-space indent, trailing newline. */
export function renderProfileJsonSchema(): string {
  return `${JSON.stringify(profileJsonSchema(), null, 2)}\n`;
}

/** Whether the committed file matches the zod schema; `message` says what to run when it does not. */
export function checkProfileJsonSchema(file: string = PROFILE_SCHEMA_FILE): { ok: boolean; message: string } {
  let current: string | undefined;
  try {
    current = readFileSync(file, 'utf8');
  } catch {
    current = undefined;
  }
  if (current === renderProfileJsonSchema()) return { ok: true, message: `${path.relative(PROJECT_ROOT, file)} is up to date` };
  return {
    ok: false,
    message: `${path.relative(PROJECT_ROOT, file)} is ${current === undefined ? 'missing' : 'stale (config/schema.ts changed since it was generated)'}: regenerate it with \`npx tsx config/writeJsonSchema.ts\` and commit the result`,
  };
}

/** Write the file; returns whether it changed. */
export function writeProfileJsonSchema(file: string = PROFILE_SCHEMA_FILE): boolean {
  if (checkProfileJsonSchema(file).ok) return false;
  writeFileSync(file, renderProfileJsonSchema());
  return true;
}
