import { loadModel } from '../../sim/model/load';
import { PHP_PAGE_BYTES, renderBenchmarkPage, scriptLoops } from '../../sim/guest/php';
import { artifactPinning, maskToVcpu } from '../../sim/guest/pinning';
import { staticHeaders } from '../../sim/guest/responses';
import { Timelines } from '../../sim/guest/timeline';

const { spec } = loadModel('default');

/** The shape of the artifact's php-script-*.php (only the parts the sim reads). */
const artifactScript = (loops: number) => `<?php\nclass benchmark {\n\tprivate static function test_Loops($count = ${loops}) {\n\t\tfor($i = 0; $i < $count; ++$i);\n\t}\n}\nbenchmark::run();\n?>\n`;

describe('web.php work level', () => {
  it.each([
    { name: "the artifact's 25ms script", source: artifactScript(190000), loops: 190000 },
    { name: "the artifact's 500ms script", source: artifactScript(38000000), loops: 38000000 },
    { name: 'a directive naming a level', source: '<?php // work: 250ms\necho "x";', loops: 19000000 },
    { name: 'a directive wins over loops', source: `// work: 40ms\n${artifactScript(5)}`, loops: 1900000 },
    { name: 'an unknown level falls through to the loops', source: `// work: 7ms\n${artifactScript(5)}`, loops: 5 },
    { name: 'a script without either', source: '<?php phpinfo(); ?>', loops: 0 },
  ])('$name', ({ source, loops }) => {
    expect(scriptLoops(source, spec)).toBe(loops);
  });
});

describe('benchmark page', () => {
  it.each([0, 4.4, 499.9, 9999])('keeps one length for %p ms of work (ab counts other lengths as failures)', (workMs) => {
    const page = renderBenchmarkPage({ workMs, start: new Date(), serverName: 'localhost', serverAddr: '10.4.4.222' });
    expect(Buffer.byteLength(page)).toBe(PHP_PAGE_BYTES);
    expect(page).toContain(`Total time:               : ${(workMs / 1000).toFixed(3)} sec.</pre>`);
  });
});

describe('static headers', () => {
  it("add the model's header bytes to a 1-byte page, as nginx's do", () => {
    const headers = staticHeaders('/html/index.html', 1, new Date('2020-07-27T10:00:00Z'));
    const wire = `HTTP/1.1 200 OK\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
    expect(Buffer.byteLength(wire)).toBe(spec.network.headerBytes);
    expect(headers).toMatchObject({ Server: 'nginx/1.14.0', 'Content-Type': 'text/html', 'Content-Length': '1', ETag: '"5f1ea5a0-1"' });
  });
});

describe('pinning', () => {
  it.each([
    { mask: 0x1, nodes: 4, vcpu: 0 },
    { mask: 0x2, nodes: 4, vcpu: 1 },
    { mask: 0x8, nodes: 4, vcpu: 3 },
    { mask: 0x6, nodes: 4, vcpu: 1 },
    { mask: 0x8, nodes: 2, vcpu: 0 },
    { mask: 0, nodes: 2, vcpu: 0 },
    { mask: 0xff, nodes: 8, vcpu: 0 },
    { mask: 0x80, nodes: 8, vcpu: 7 },
  ])('mask $mask with $nodes nodes runs on vCPU $vcpu', ({ mask, nodes, vcpu }) => {
    expect(maskToVcpu(mask, nodes)).toBe(vcpu);
  });

  it("follows the artifact's step 5", () => {
    expect(artifactPinning(4)).toEqual({ nginxWorkers: [0x1], phpFpmWorkers: [0x1, 0x2, 0x4, 0x8], openLambdaWorkers: [0x1, 0x2, 0x4, 0x8] });
  });
});

describe('timelines', () => {
  it('books the earliest free vCPU first come, first served', () => {
    let now = 100;
    const t = new Timelines(() => now);
    const keys = ['php:v0', 'php:v1'];
    const a = t.earliest(keys, now);
    expect(a).toEqual({ key: 'php:v0', start: 100 });
    t.reserve(a.key, a.start, 50);
    const b = t.earliest(keys, now);
    expect(b).toEqual({ key: 'php:v1', start: 100 });
    t.reserve(b.key, b.start, 80);
    // Both busy: the third waits for the one that frees first.
    expect(t.earliest(keys, now)).toEqual({ key: 'php:v0', start: 150 });
    now = 400;
    expect(t.earliest(keys, now)).toEqual({ key: 'php:v0', start: 400 });
  });
});
