import { defineQuery } from '@temporalio/workflow';

export interface ProbeProgress {
  phase: 'loading profile' | 'probing' | 'done';
  nodes: Record<string, 'pending' | 'reachable' | 'unreachable'>;
}

/** Every long workflow answers `progress`: what it is doing now, per node. */
export const probeProgressQuery = defineQuery<ProbeProgress>('progress');
