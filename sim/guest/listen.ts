import type http from 'node:http';
import type net from 'node:net';

/** Guest servers are only ever reachable from this machine. */
export const LOOPBACK = '127.0.0.1';

export interface RunningServer {
  port: number;
  stop(): Promise<void>;
}

/** Listen on 127.0.0.1:`port` (0 = any free port); resolves with the port bound. */
export function listenLoopback(server: http.Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, LOOPBACK, () => {
      server.off('error', reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}

/** Stop accepting and drop open connections (a stopped guest process answers nothing more). */
export function closeServer(server: http.Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
