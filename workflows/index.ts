// Every workflow the worker registers. Deterministic code only: see eslint.config.mjs.
export { probeCluster } from './probeCluster';
export { rebootNodes } from './rebootNodes';
export { messagingLayer } from './messagingLayer';
export { installHostKernel } from './installHostKernel';
export { buildGuestKernel } from './guestKernel';
export { clusterLease } from './clusterLease';
export { reproduceClaims } from './reproduceClaims';
export { runEpoch } from './epoch';
export { notifyWhenDone } from './notifyWhenDone';
