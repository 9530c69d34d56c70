/**
 * Regenerate config/profile.schema.json from the zod schema:
 *   npx tsx config/writeJsonSchema.ts           write it (if it changed)
 *   npx tsx config/writeJsonSchema.ts --check   exit 1 with a message when the committed file is stale (CI)
 */
import path from 'node:path';
import { PROFILE_SCHEMA_FILE, checkProfileJsonSchema, writeProfileJsonSchema } from './jsonSchema';
import { PROJECT_ROOT } from './paths';

export function main(argv: readonly string[]): number {
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(`usage: npx tsx config/writeJsonSchema.ts [--check] (unknown argument ${unknown.join(' ')})\n`);
    return 2;
  }
  if (argv.includes('--check')) {
    const { ok, message } = checkProfileJsonSchema();
    (ok ? process.stdout : process.stderr).write(`${message}\n`);
    return ok ? 0 : 1;
  }
  const changed = writeProfileJsonSchema();
  process.stdout.write(`${path.relative(PROJECT_ROOT, PROFILE_SCHEMA_FILE)} ${changed ? 'written' : 'already up to date'}\n`);
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
