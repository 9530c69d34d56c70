import type { IncomingMessage } from 'node:http';
import { HttpError } from './httpError';

/** 415 unless the body is declared JSON; GitHub's default form encoding gets a hint where to change it. */
export function requireJson(contentType: string | undefined): void {
  const type = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (type === 'application/json') return;
  const hint =
    type === 'application/x-www-form-urlencoded'
      ? ': in the GitHub webhook settings choose Content type "application/json"'
      : ': send the payload as JSON with Content-Type: application/json';
  throw new HttpError(415, `unsupported content type ${JSON.stringify(type || '(none)')}${hint}`);
}

function tooLarge(limit: number): HttpError {
  return new HttpError(413, `the body is larger than ${limit} bytes`, { Connection: 'close' });
}

/**
 * The request body, at most `limit` bytes: a declared Content-Length over it is refused before
 * reading, and a body that grows past it stops being read at the limit (413, connection closed).
 */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (err?: Error) => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        chunks.length = 0;
        done(tooLarge(limit));
      } else chunks.push(chunk);
    };
    const onEnd = () => done();
    const onError = (err: Error) => done(err);
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
  });
}
