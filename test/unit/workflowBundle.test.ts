import { bundleKey } from '../../workers/workflowBundle';

/** The workflow bundle cache's key: any edit to an input file must make a new bundle; nothing else may. */
describe('bundleKey', () => {
  const files = [
    { path: 'workflows/index.ts', content: "export * from './reproduceClaims';\n" },
    { path: 'workflows/reproduceClaims.ts', content: 'export async function reproduceClaims() {}\n' },
    { path: 'config/schema.ts', content: Buffer.from('export const nodeName = 1;\n') },
  ];
  const key = bundleKey(files);

  it('is a short hex digest, the same for the same files in any order', () => {
    expect(key).toMatch(/^[0-9a-f]{24}$/);
    expect(bundleKey([...files].reverse())).toBe(key);
    expect(bundleKey(files.map((f) => ({ ...f, content: Buffer.from(f.content) })))).toBe(key);
  });

  it.each([
    ['an edited file', files.map((f, i) => (i === 1 ? { ...f, content: 'export async function reproduceClaims() { }\n' } : f))],
    ['an added file', [...files, { path: 'workflows/extra.ts', content: '' }]],
    ['a removed file', files.slice(1)],
    ['a renamed file', files.map((f, i) => (i === 2 ? { ...f, path: 'config/schema2.ts' } : f))],
  ])('changes with %s', (_what, changed) => {
    expect(bundleKey(changed)).not.toBe(key);
  });

  // Path and content are framed: moving bytes between them is a different input.
  it('tells apart a path/content split of the same bytes', () => {
    expect(bundleKey([{ path: 'a', content: 'bc' }])).not.toBe(bundleKey([{ path: 'ab', content: 'c' }]));
  });
});
