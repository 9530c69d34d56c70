import { levelLoops } from '../model/model';
import type { ModelSpec } from '../model/schema';

/**
 * The simulated php-fpm does not run PHP: it reads how much work web.php asks for and lets the
 * model say how long that takes. Two forms are recognised, first match wins:
 * - a directive comment naming a model level: `// work: 250ms` (for hand-written test scripts);
 * - the artifact's own scripts (experiments/php-script/php-script-*.php): the loop count of
 *   `test_Loops($count = 19000000)`; the script's other loops grow with it (about 10x per level).
 * Anything else is a script that does no loops: it costs only the model's per-request startup.
 */
const DIRECTIVE = /\/\/\s*work:\s*([A-Za-z0-9_.-]+)/;
const TEST_LOOPS = /\btest_Loops\s*\(\s*\$count\s*=\s*(\d+)\s*\)/;

export function scriptLoops(source: string, spec: ModelSpec): number {
  const directive = DIRECTIVE.exec(source);
  if (directive && spec.lemp.levels.some((l) => l.label === directive[1])) return levelLoops(spec, directive[1]);
  const loops = TEST_LOOPS.exec(source);
  return loops ? Number(loops[1]) : 0;
}

/** How the artifact's benchmark script splits its time between its four tests (for the printout). */
const TESTS: readonly [string, number][] = [
  ['test_Math', 0.3],
  ['test_StringManipulation', 0.35],
  ['test_Loops', 0.2],
  ['test_IfElse', 0.15],
];

const LINE = '-'.repeat(38);

/**
 * The page the artifact's script prints, with the simulated time. Every number has 3 decimals so
 * the page keeps one length (ab counts a page of another length as a failed request).
 */
export function renderBenchmarkPage(opts: { workMs: number; start: Date; serverName: string; serverAddr: string }): string {
  const stamp = opts.start.toISOString().slice(0, 19).replace('T', ' ');
  const title = 'PHP BENCHMARK SCRIPT';
  const pad = 36 - title.length;
  const head =
    `<pre>${LINE}\n|${' '.repeat(Math.floor(pad / 2))}${title}${' '.repeat(Math.ceil(pad / 2))}|\n${LINE}\n` +
    `Start : ${stamp}\nServer : ${opts.serverName}@${opts.serverAddr}\nPHP version : 7.2.24-0ubuntu0.18.04.6\nPlatform : Linux\n${LINE}\n`;
  const seconds = opts.workMs / 1000;
  const lines = TESTS.map(([name, share]) => `${name.padEnd(25)} : ${(seconds * share).toFixed(3)} sec.\n`).join('');
  return `${head}${lines}${LINE}\n${'Total time:'.padEnd(25)} : ${seconds.toFixed(3)} sec.</pre>`;
}

/** Length of the page for the artifact's guest address (the same for every request, see above). */
export const PHP_PAGE_BYTES = Buffer.byteLength(renderBenchmarkPage({ workMs: 0, start: new Date(0), serverName: 'localhost', serverAddr: '10.4.4.222' }));
