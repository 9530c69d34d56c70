import net from 'node:net';

/**
 * Ports already handed out by this process. Parts of the sim start in parallel, and the kernel may
 * give two back-to-back `bind(0)`s the same just-released port (with UDP this is common): two
 * servers would then share a port. Never hand the same one out twice.
 */
const handedOut = new Set<number>();

/** A port from `probe` (a bind to port 0, released) that this process has not handed out before. */
export async function freshPort(probe: () => Promise<number>): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = await probe();
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no fresh port on 127.0.0.1 after 50 tries');
}

/** A loopback TCP port that was free a moment ago. */
export function freePort(): Promise<number> {
  return freshPort(
    () =>
      new Promise((resolve, reject) => {
        const server = net.createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => {
          const { port } = server.address() as net.AddressInfo;
          server.close(() => resolve(port));
        });
      }),
  );
}
