import { rmSync } from 'node:fs';
import path from 'node:path';
import { freePort } from '../ports';
import { writeFileAtomic } from '../state';
import { LOOPBACK } from './listen';

/**
 * The guest's IP (10.4.4.222) is not routable here, so every guest port is a loopback port of
 * this machine: 80 and the OpenLambda ports 5000.. are given one when the VM boots (stable for the
 * VM's life), any other port when a guest server first listens on it. The mapping is published in
 * DIR/guest.json while the VM runs (and read in-process by the `ab` and `curl` imitations on the
 * origin node, which rewrite http://10.4.4.222:PORT/ to it):
 *   { "simulated": true, "guestIp": "10.4.4.222", "ssh": {"host": "127.0.0.1", "port": 2222},
 *     "http": 41234, "openLambdaPorts": {"5000": 41235, ...}, "ports": {"80": 41234, "5000": 41235} }
 */

export const GUEST_JSON = 'guest.json';
export const OPENLAMBDA_BASE_PORT = 5000;
const REBIND_ATTEMPTS = 5;

export class GuestPorts {
  private readonly map = new Map<number, number>();
  private readonly listeners: (() => void)[] = [];

  /** Loopback ports for guest port 80 and 5000..5000+vcpus-1. */
  static async forVm(vcpus: number): Promise<GuestPorts> {
    const ports = new GuestPorts();
    for (const p of [80, ...Array.from({ length: vcpus }, (_, i) => OPENLAMBDA_BASE_PORT + i)]) await ports.ensure(p);
    return ports;
  }

  get(guestPort: number): number | undefined {
    return this.map.get(guestPort);
  }

  async ensure(guestPort: number): Promise<number> {
    const known = this.map.get(guestPort);
    if (known !== undefined) return known;
    const port = await freePort();
    this.map.set(guestPort, port);
    for (const l of this.listeners) l();
    return port;
  }

  /**
   * Start a guest server on `guestPort`'s loopback port. The port was only reserved (bound and
   * closed) at boot, so anything on this machine may have taken it since, most often an outgoing
   * connection's ephemeral port: then the guest port gets a fresh loopback port (guest.json follows)
   * instead of the guest service failing with a host-side EADDRINUSE a real guest never sees.
   */
  async serve<T>(guestPort: number, start: (port: number) => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      const port = await this.ensure(guestPort);
      try {
        return await start(port);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= REBIND_ATTEMPTS) throw err;
        this.map.delete(guestPort);
      }
    }
  }

  onChange(listener: () => void): void {
    this.listeners.push(listener);
  }

  entries(): [number, number][] {
    return [...this.map.entries()].sort((a, b) => a[0] - b[0]);
  }
}

export interface GuestJson {
  simulated: true;
  guestIp: string;
  hypervisor: string;
  ssh: { host: string; port: number; user: string };
  http: number | undefined;
  openLambdaPorts: Record<string, number>;
  ports: Record<string, number>;
}

export function guestJson(opts: { guestIp: string; hypervisor: string; sshPort: number; ports: GuestPorts }): GuestJson {
  const entries = opts.ports.entries();
  return {
    simulated: true,
    guestIp: opts.guestIp,
    hypervisor: opts.hypervisor,
    ssh: { host: LOOPBACK, port: opts.sshPort, user: 'root' },
    http: opts.ports.get(80),
    openLambdaPorts: Object.fromEntries(entries.filter(([g]) => g >= OPENLAMBDA_BASE_PORT && g < OPENLAMBDA_BASE_PORT + 100).map(([g, l]) => [String(g), l])),
    ports: Object.fromEntries(entries.map(([g, l]) => [String(g), l])),
  };
}

export function writeGuestJson(stateDir: string, data: GuestJson): void {
  writeFileAtomic(path.join(stateDir, GUEST_JSON), `${JSON.stringify(data, null, 2)}\n`);
}

export function removeGuestJson(stateDir: string): void {
  rmSync(path.join(stateDir, GUEST_JSON), { force: true });
}
