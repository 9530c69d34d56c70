import { createHmac } from 'node:crypto';
import { signatureHeader, validBearer, validSignature } from '../../webhook/signature';

const SECRET = "It's a Secret to Everybody";
const BODY = Buffer.from('Hello, World!');
// GitHub's documented test values (docs: "Validating webhook deliveries"): this secret and body, this signature.
const GITHUB_EXAMPLE = 'sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17';

it("matches GitHub's documented test vector", () => {
  expect(signatureHeader(SECRET, BODY)).toBe(GITHUB_EXAMPLE);
});

const sign = (secret: string, body: Buffer | string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

it.each([
  ['the right signature', GITHUB_EXAMPLE, true],
  ['the same signature in upper case hex', GITHUB_EXAMPLE.toUpperCase().replace('SHA256=', 'sha256='), false],
  ['a signature made with another secret', sign('other', BODY), false],
  ['a signature of another body', sign(SECRET, 'Hello, World?'), false],
  ['the bare hex without sha256=', GITHUB_EXAMPLE.slice('sha256='.length), false],
  ['sha1= prefix (the old X-Hub-Signature)', GITHUB_EXAMPLE.replace('sha256=', 'sha1='), false],
  ['a truncated signature (shorter: refused before comparing)', GITHUB_EXAMPLE.slice(0, -1), false],
  ['a longer signature', `${GITHUB_EXAMPLE}0`, false],
  ['an empty header', '', false],
  ['no header', undefined, false],
])('X-Hub-Signature-256: %s -> %s', (_what, header, ok) => {
  expect(validSignature(SECRET, BODY, header)).toBe(ok);
});

it.each([
  ['Bearer and the secret', `Bearer ${SECRET}`, true],
  ['the secret without Bearer', SECRET, false],
  ['lower-case bearer', `bearer ${SECRET}`, false],
  ['another secret of the same length', `Bearer ${SECRET.replace('S', 's')}`, false],
  ['a prefix of the secret', `Bearer ${SECRET.slice(0, 5)}`, false],
  ['Basic auth', `Basic ${Buffer.from(`u:${SECRET}`).toString('base64')}`, false],
  ['nothing', undefined, false],
])('Authorization: %s -> %s', (_what, header, ok) => {
  expect(validBearer(SECRET, header)).toBe(ok);
});
