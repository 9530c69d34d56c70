import http from 'node:http';
import net from 'node:net';
import { GuestPorts } from '../../sim/guest/endpoints';
import { listenLoopback, closeServer } from '../../sim/guest/listen';

/**
 * A guest port's loopback port is only reserved at boot; when something on this machine takes it
 * before the guest service starts, the service moves to a fresh port rather than fail.
 */

function occupy(port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

it('a reserved port taken meanwhile: the guest server gets a fresh one and the mapping follows', async () => {
  const ports = await GuestPorts.forVm(2);
  const reserved = ports.get(5001)!;
  const squatter = await occupy(reserved);
  let changes = 0;
  ports.onChange(() => changes++);
  const server = http.createServer((_req, res) => res.end('ok'));
  try {
    const bound = await ports.serve(5001, (port) => listenLoopback(server, port));
    expect(bound).not.toBe(reserved);
    expect(ports.get(5001)).toBe(bound);
    expect(changes).toBe(1);
    expect(ports.get(5000)).toBeDefined();
  } finally {
    await closeServer(server);
    await new Promise((r) => squatter.close(r));
  }
});

it('a free reserved port is used as it is', async () => {
  const ports = await GuestPorts.forVm(1);
  const reserved = ports.get(80)!;
  const server = http.createServer();
  try {
    expect(await ports.serve(80, (port) => listenLoopback(server, port))).toBe(reserved);
  } finally {
    await closeServer(server);
  }
});

it('errors other than a taken port are not retried', async () => {
  const ports = await GuestPorts.forVm(1);
  let calls = 0;
  await expect(
    ports.serve(80, () => {
      calls++;
      return Promise.reject(Object.assign(new Error('denied'), { code: 'EACCES' }));
    }),
  ).rejects.toThrow('denied');
  expect(calls).toBe(1);
});
