import { readdirSync, readFileSync, statSync } from 'node:fs';
import { cachedWorkflowBundle } from '../../workers/workflowBundle';
import { testTempDir } from '../helpers/tempDir';

jest.setTimeout(120_000);

/** A worker without AE_WORKFLOW_BUNDLE (`npm start`, `ae worker`) starts from this cache instead of bundling in its own process. */
describe('cachedWorkflowBundle', () => {
  it('bundles workflows/ once in a child process and hands the same file to the next worker', async () => {
    const dir = testTempDir('ae-bundle-cache-');
    const file = await cachedWorkflowBundle(dir);
    expect(file).toMatch(/workflows-[0-9a-f]{24}\.js$/);
    const code = readFileSync(file, 'utf8');
    // The real bundle: our workflows are in it, and its source map names lines but carries no sources.
    expect(code).toContain('reproduceClaims');
    const map = JSON.parse(Buffer.from(/sourceMappingURL=data:application\/json;[^,]*base64,([A-Za-z0-9+/=]+)\s*$/.exec(code)![1], 'base64').toString('utf8')) as { sources: string[]; sourcesContent?: unknown };
    expect(map.sources.some((s) => s.includes('workflows/reproduceClaims.ts'))).toBe(true);
    expect(map.sourcesContent).toBeUndefined();
    const written = statSync(file).mtimeMs;

    expect(await cachedWorkflowBundle(dir)).toBe(file);
    expect(statSync(file).mtimeMs).toBe(written);
    // Nothing half-written left beside it.
    expect(readdirSync(dir)).toEqual([file.slice(dir.length + 1)]);
  });
});
