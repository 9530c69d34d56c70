/**
 * Where the guest's server processes are pinned, as CPU affinity masks (`taskset -p 0x2 <pid>`).
 * The guest state owns these; the servers read them through a callback on every request, so a
 * `taskset` issued while ab is running takes effect for the next request.
 */
export interface GuestPinning {
  /** One mask per nginx worker process (E3 runs exactly one; E1 keeps it on 0x1). */
  nginxWorkers: readonly number[];
  /** One mask per php-fpm worker; none means php-fpm is not running (nginx answers 502). */
  phpFpmWorkers: readonly number[];
  /** Mask of the `ol worker` listening on the i-th OpenLambda port. */
  openLambdaWorkers: readonly number[];
}

/** The artifact's setup (step 5): nginx on vCPU 0, php-fpm and OpenLambda worker i on vCPU i. */
export function artifactPinning(nodes: number): GuestPinning {
  const perNode = Array.from({ length: nodes }, (_, i) => 1 << i);
  return { nginxWorkers: [0x1], phpFpmWorkers: perNode, openLambdaWorkers: perNode };
}

/**
 * The vCPU a process with this mask runs on: its lowest allowed vCPU that exists. A process allowed
 * on several vCPUs stays where it woke up, which for the guest's servers is the lowest one. A mask
 * naming no existing vCPU falls back to 0 (taskset refuses such masks anyway).
 */
export function maskToVcpu(mask: number, nodes: number): number {
  for (let v = 0; v < nodes && v < 31; v++) if ((mask >>> v) & 1) return v;
  return 0;
}
