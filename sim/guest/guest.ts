import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { npbKernels } from '../model/model';
import type { SimModel } from '../model/runtime';
import type { Hypervisor } from '../model/schema';
import { GuestChannel } from './channel';
import { guestJson, GuestPorts, removeGuestJson, writeGuestJson, type GuestJson } from './endpoints';
import { NGINX_CONF, PHP_FPM_CONF, writeImage, type GuestKind } from './image';
import { GuestProcesses } from './processes';
import { GuestSandbox } from './sandbox';
import { GuestServices } from './services';
import { startGuestSsh, type GuestSsh } from './sshd';
import { runGuestTool } from './tools';
import type { GuestRuntime } from './tools/context';

/**
 * One simulated guest, alive from the end of the VM's boot to the VM's death: its sandbox (real
 * bash, the ramdisk's files), its tool channel, its servers (started as the ramdisk's init would:
 * nginx, and php-fpm for LEMP) and its sshd. stop() is the VM dying: everything goes at once.
 */

export interface GuestOptions {
  kind: GuestKind;
  hypervisor: Hypervisor;
  vcpus: number;
  memMiB: number;
  model: SimModel;
  /** The simulator's state dir (DIR): sim.json, known_hosts, ssh_config; the guest's files go to DIR/guest. */
  stateDir: string;
  sshPort: number;
  guestIp: string;
  /** init= of the kernel command line. */
  init: string;
  /** The guest ran poweroff or reboot. */
  onPowerOff(how: 'poweroff' | 'reboot'): void;
}

export interface Guest {
  readonly endpoints: GuestJson;
  readonly ports: GuestPorts;
  readonly runtime: GuestRuntime;
  readonly ssh: GuestSsh;
  stop(): Promise<void>;
}

export async function startGuest(opts: GuestOptions): Promise<Guest> {
  const guestDir = path.join(opts.stateDir, 'guest');
  mkdirSync(guestDir, { recursive: true });
  let runtime: GuestRuntime | undefined;
  const cleanups: (() => Promise<void> | void)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => {});
    cleanups.length = 0;
  };
  try {
    const channel = await GuestChannel.listen((call) => (runtime ? runGuestTool(call, runtime) : Promise.resolve(127)));
    cleanups.push(() => channel.close());
    const ports = await GuestPorts.forVm(opts.vcpus);
    writeImage(path.join(guestDir, 'image'), { kind: opts.kind, vcpus: opts.vcpus, npbKernels: npbKernels(opts.model.spec), socketName: channel.name });
    const sandbox = await GuestSandbox.start({ guestDir, hostname: 'guest', init: opts.init });
    const exitHook = () => sandbox.killSync();
    process.on('exit', exitHook);
    cleanups.push(() => sandbox.stop());
    cleanups.push(() => void process.off('exit', exitHook));

    const processes = new GuestProcesses(sandbox, opts.vcpus);
    const hostPath = (p: string) => sandbox.hostPath(p);
    const services = new GuestServices({ processes, hostPath, model: opts.model, hypervisor: opts.hypervisor, vcpus: opts.vcpus, guestIp: opts.guestIp, ports });
    cleanups.push(() => services.stopAll());
    let poweredOff = false;
    const runs = new Map<string, number>();
    runtime = {
      kind: opts.kind,
      hypervisor: opts.hypervisor,
      vcpus: opts.vcpus,
      memMiB: opts.memMiB,
      model: opts.model,
      proc: sandbox.proc,
      processes,
      services,
      hostPath,
      nextRun: (what) => {
        const n = runs.get(what) ?? 0;
        runs.set(what, n + 1);
        return n;
      },
      powerOff: (how) => {
        if (poweredOff) return;
        poweredOff = true;
        // After the tool's reply: the guest goes down the moment it returns.
        setImmediate(() => opts.onPowerOff(how));
      },
    };

    // What the ramdisk's init starts (E1 kills and restarts them as the artifact does).
    const autostart = [
      ...(opts.kind === 'lemp' || opts.kind === 'npb' ? [() => services.startNginx(NGINX_CONF, processes.fullMask)] : []),
      ...(opts.kind === 'lemp' ? [() => services.startPhpFpm(PHP_FPM_CONF, processes.fullMask)] : []),
    ];
    for (const start of autostart) {
      const refused = await start();
      if (refused) throw new Error(`the ramdisk's init could not start its servers: ${refused.error.trim()}`);
    }

    const ssh = await startGuestSsh({ stateDir: opts.stateDir, port: opts.sshPort, run: (command, env) => sandbox.run(command, { ...env, AE_SIM_TIME_SCALE: String(opts.model.timeScale) }) });
    cleanups.push(() => ssh.front.cut());
    const publish = () => writeGuestJson(opts.stateDir, guestJson({ guestIp: opts.guestIp, hypervisor: opts.hypervisor, sshPort: ssh.port, ports }));
    publish();
    ports.onChange(publish);
    cleanups.push(() => removeGuestJson(opts.stateDir));

    let stopping: Promise<void> | undefined;
    const rt = runtime;
    return {
      get endpoints() {
        return guestJson({ guestIp: opts.guestIp, hypervisor: opts.hypervisor, sshPort: ssh.port, ports });
      },
      ports,
      runtime: rt,
      ssh,
      stop: () => (stopping ??= cleanup()),
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
