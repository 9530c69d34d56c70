import { OPENLAMBDA_PHASES, type Hypervisor, type HypervisorSpec, type ModelSpec, type OpenLambdaPhase } from './schema';

/**
 * Pure functions of the performance model: mean values in model time, without noise (add it with
 * runtime.ts) and without sleeping. vCPU i runs on node i; vCPU 0 is the origin, whose node owns
 * the VM's I/O devices, so "remote" means any other vCPU.
 */

export const MAX_NODES = 8;

export function assertNodes(nodes: number): void {
  if (!Number.isInteger(nodes) || nodes < 1 || nodes > MAX_NODES) throw new RangeError(`node count must be 1..${MAX_NODES}, got ${nodes}`);
}

function checkVcpu(vcpu: number, nodes: number): void {
  if (!Number.isInteger(vcpu) || vcpu < 0 || vcpu >= nodes) throw new RangeError(`vCPU must be 0..${nodes - 1} with ${nodes} node(s), got ${vcpu}`);
}

function hv(spec: ModelSpec, hypervisor: Hypervisor): HypervisorSpec {
  return spec.hypervisors[hypervisor];
}

/** Everything a distributed VM does gets slower as nodes are added (coherence traffic). */
export function contention(spec: ModelSpec, hypervisor: Hypervisor, nodes: number): number {
  assertNodes(nodes);
  return 1 + hv(spec, hypervisor).contentionPerExtraNode * (nodes - 1);
}

export interface Placement {
  hypervisor: Hypervisor;
  nodes: number;
}

// ---- E3 network: nginx serving a static file ------------------------------------------------

export interface StaticRequest extends Placement {
  /** vCPU the nginx worker serving the request is pinned to. */
  workerVcpu: number;
  /** Body bytes (headers are added from the model). */
  bytes: number;
}

/**
 * Service time of one request at the nginx worker: small bodies are dominated by the per-request
 * overhead, large ones by bandwidth. A remote worker delegates its I/O to the origin; the delegated
 * factors say what that costs (FragVisor's DSM bypass keeps them near 1).
 */
export function staticRequestMs(spec: ModelSpec, req: StaticRequest): number {
  checkVcpu(req.workerVcpu, req.nodes);
  if (!(req.bytes >= 0)) throw new RangeError(`bytes must be >= 0, got ${req.bytes}`);
  const net = hv(spec, req.hypervisor).network;
  const remote = req.workerVcpu !== 0;
  const overhead = net.requestOverheadMs * (remote ? net.delegated.overheadFactor : 1);
  const bytesPerMs = net.bandwidthMBps * 1000 * (remote ? net.delegated.bandwidthFactor : 1);
  return (overhead + (req.bytes + spec.network.headerBytes) / bytesPerMs) * contention(spec, req.hypervisor, req.nodes);
}

export interface Throughput {
  requestsPerSecond: number;
  /** Bytes on the wire (body + headers) per second, in KB/s as ab's "Transfer rate" reports it. */
  transferKBps: number;
}

/** Saturated throughput (ab -c >= workers): each nginx worker serves one request at a time. */
export function staticThroughput(spec: ModelSpec, req: Placement & { workerVcpus: readonly number[]; bytes: number }): Throughput {
  const rps = sumRates(req.workerVcpus.map((workerVcpu) => staticRequestMs(spec, { ...req, workerVcpu })));
  return { requestsPerSecond: rps, transferKBps: (rps * (req.bytes + spec.network.headerBytes)) / 1024 };
}

// ---- E1 LEMP: nginx + php-fpm -----------------------------------------------------------------

/** Loop count of the level with this label. */
export function levelLoops(spec: ModelSpec, label: string): number {
  const level = spec.lemp.levels.find((l) => l.label === label);
  if (!level) throw new RangeError(`unknown LEMP level ${JSON.stringify(label)}; the model has ${spec.lemp.levels.map((l) => l.label).join(', ')}`);
  return level.loops;
}

/** PHP compute of one request on the origin vCPU of a 1-node VM. */
export function phpWorkMs(spec: ModelSpec, loops: number): number {
  return spec.lemp.startupMs + (loops / 1e6) * spec.lemp.msPerMillionLoops;
}

export interface PhpRequest extends Placement {
  loops: number;
  nginxVcpu: number;
  phpVcpu: number;
}

/** nginx's share of a PHP request: the FastCGI relay plus sending the response (as a static body). */
export function lempFrontMs(spec: ModelSpec, req: Placement & { nginxVcpu: number; responseBytes: number }): number {
  return staticRequestMs(spec, { ...req, workerVcpu: req.nginxVcpu, bytes: req.responseBytes }) + hv(spec, req.hypervisor).lemp.fastcgiMs * contention(spec, req.hypervisor, req.nodes);
}

/** The php-fpm worker's share: compute (slower off the origin) plus the cross-node hop to nginx. */
export function lempPhpMs(spec: ModelSpec, req: PhpRequest): number {
  checkVcpu(req.nginxVcpu, req.nodes);
  checkVcpu(req.phpVcpu, req.nodes);
  const lemp = hv(spec, req.hypervisor).lemp;
  const compute = phpWorkMs(spec, req.loops) * (req.phpVcpu === 0 ? 1 : lemp.remoteComputeFactor);
  const hop = req.phpVcpu === req.nginxVcpu ? 0 : lemp.remoteWorkerMs;
  return (compute + hop) * contention(spec, req.hypervisor, req.nodes);
}

export interface LempLoad extends Placement {
  loops: number;
  nginxVcpus: readonly number[];
  /** One entry per php-fpm worker; workers sharing a vCPU share its time. */
  phpVcpus: readonly number[];
  responseBytes: number;
}

/**
 * Saturated throughput: the smaller of what the nginx workers can relay and what the php-fpm
 * vCPUs can compute. PHP hop costs are taken against the first nginx worker.
 */
export function lempThroughput(spec: ModelSpec, load: LempLoad): number {
  if (load.nginxVcpus.length === 0 || load.phpVcpus.length === 0) return 0;
  const nginxVcpu = load.nginxVcpus[0];
  const front = sumRates(distinct(load.nginxVcpus).map((v) => lempFrontMs(spec, { ...load, nginxVcpu: v })));
  const php = sumRates(distinct(load.phpVcpus).map((phpVcpu) => lempPhpMs(spec, { ...load, nginxVcpu, phpVcpu })));
  return Math.min(front, php);
}

// ---- E2 OpenLambda --------------------------------------------------------------------------

export function openLambdaPhasesMs(spec: ModelSpec, req: Placement & { vcpu: number }): Record<OpenLambdaPhase, number> {
  checkVcpu(req.vcpu, req.nodes);
  const c = contention(spec, req.hypervisor, req.nodes);
  const phases = hv(spec, req.hypervisor).openLambda;
  const out = {} as Record<OpenLambdaPhase, number>;
  for (const p of OPENLAMBDA_PHASES) out[p] = phases[p].localMs * (req.vcpu === 0 ? 1 : phases[p].remoteFactor) * c;
  return out;
}

// ---- E3 storage and NPB ---------------------------------------------------------------------

export function diskThroughputMBps(spec: ModelSpec, req: Placement & { vcpu: number; op: 'read' | 'write' }): number {
  checkVcpu(req.vcpu, req.nodes);
  const s = hv(spec, req.hypervisor).storage;
  const base = req.op === 'read' ? s.readMBps : s.writeMBps;
  return (base * (req.vcpu === 0 ? 1 : s.delegatedFactor)) / contention(spec, req.hypervisor, req.nodes);
}

export function npbKernels(spec: ModelSpec): string[] {
  return Object.keys(spec.npb.kernels);
}

export function npbSeconds(spec: ModelSpec, req: Placement & { kernel: string; vcpu: number }): number {
  checkVcpu(req.vcpu, req.nodes);
  const kernel = spec.npb.kernels[req.kernel];
  if (!kernel) throw new RangeError(`unknown NPB kernel ${JSON.stringify(req.kernel)}; the model has ${npbKernels(spec).join(', ')}`);
  const npb = hv(spec, req.hypervisor).npb;
  const remote = req.vcpu === 0 ? 1 : 1 + npb.remotePenalty * kernel.memoryIntensity;
  return kernel.localSeconds * npb.localFactor * remote * contention(spec, req.hypervisor, req.nodes);
}

// ---- helpers --------------------------------------------------------------------------------

/** Requests per second of servers working in parallel, from their service times in ms. */
function sumRates(serviceMs: number[]): number {
  return serviceMs.reduce((sum, ms) => sum + 1000 / ms, 0);
}

function distinct(values: readonly number[]): number[] {
  return [...new Set(values)];
}
