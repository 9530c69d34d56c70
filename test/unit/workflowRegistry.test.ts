import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as registered from '../../workflows';

/**
 * A child workflow the worker does not register fails its first workflow task forever ("no such
 * function is exported by the workflow bundle") and the parent waits without end: every function a
 * workflow starts as a child must be exported by workflows/index.ts.
 */

const dir = path.resolve(__dirname, '../../workflows');
const children = readdirSync(dir)
  .filter((f) => f.endsWith('.ts'))
  .flatMap((f) => [...readFileSync(path.join(dir, f), 'utf8').matchAll(/\b(?:executeChild|startChild)(?:<[^>]*>)?\(\s*([A-Za-z_$][\w$]*)\s*,/g)].map((m) => ({ file: f, child: m[1] })));

it('finds the children the workflows start', () => {
  expect(children.map((c) => c.child)).toEqual(expect.arrayContaining(['installHostKernel', 'buildGuestKernel', 'rebootNodes', 'messagingLayer', 'runEpoch', 'clusterLease']));
});

it.each(children)('$child (started in $file) is registered', ({ child }) => {
  expect(typeof (registered as Record<string, unknown>)[child]).toBe('function');
});
