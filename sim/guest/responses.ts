import type http from 'node:http';

/** What nginx 1.14 sends, so that ab's "Server Software" and header byte counts look real. */
export const SERVER = 'nginx/1.14.0';

const REASONS: Record<number, string> = {
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Not Allowed',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
};

const TYPES: Record<string, string> = {
  html: 'text/html',
  htm: 'text/html',
  txt: 'text/plain',
  css: 'text/css',
  js: 'application/javascript',
  json: 'application/json',
  png: 'image/png',
  jpg: 'image/jpeg',
  gif: 'image/gif',
};

/** nginx's mime.types for the common cases, `default_type application/octet-stream` otherwise. */
export function contentType(file: string): string {
  const ext = /\.([A-Za-z0-9]+)$/.exec(file)?.[1]?.toLowerCase() ?? '';
  return TYPES[ext] ?? 'application/octet-stream';
}

function httpDate(d: Date): string {
  return d.toUTCString();
}

/** Headers of a static file, in nginx's order (they come to 229 bytes for a 1-byte file). */
export function staticHeaders(file: string, size: number, mtime: Date): Record<string, string> {
  const mtimeSec = Math.floor(mtime.getTime() / 1000);
  return {
    Server: SERVER,
    Date: httpDate(new Date()),
    'Content-Type': contentType(file),
    'Content-Length': String(size),
    'Last-Modified': httpDate(mtime),
    Connection: 'close',
    ETag: `"${mtimeSec.toString(16)}-${size.toString(16)}"`,
    'Accept-Ranges': 'bytes',
  };
}

/** Headers nginx relays for a PHP page: no length, the body ends when the connection closes. */
export function phpHeaders(): Record<string, string> {
  return { Server: SERVER, Date: httpDate(new Date()), 'Content-Type': 'text/html; charset=UTF-8', Connection: 'close' };
}

/** nginx's built-in error page. */
export function sendError(res: http.ServerResponse, status: number, head = false): void {
  const title = `${status} ${REASONS[status] ?? 'Error'}`;
  const body = `<html>\r\n<head><title>${title}</title></head>\r\n<body bgcolor="white">\r\n<center><h1>${title}</h1></center>\r\n<hr><center>${SERVER}</center>\r\n</body>\r\n</html>\r\n`;
  res.sendDate = false;
  res.writeHead(status, REASONS[status], {
    Server: SERVER,
    Date: httpDate(new Date()),
    'Content-Type': 'text/html',
    'Content-Length': String(Buffer.byteLength(body)),
    Connection: 'close',
  });
  res.end(head ? undefined : body);
}
