import { z } from 'zod';

/** A cluster reference: a profile name (`echo`, `sim`) or a path to a .yaml profile on the worker host. */
export const clusterRef = z
  .string({ error: 'expected a cluster profile name like "sim" or "echo", or a path to a .yaml profile' })
  .min(1, 'expected a cluster profile name like "sim" or "echo"')
  .max(1024)
  .refine(
    (s) => /^[A-Za-z][A-Za-z0-9_-]{0,62}$/.test(s) || /^[A-Za-z0-9_./~+@-]+\.ya?ml$/.test(s),
    'expected a profile name (letters, digits, - and _) or a path ending in .yaml without spaces or shell characters',
  );

export const probeClusterInput = z.strictObject({ cluster: clusterRef });
export type ProbeClusterInput = z.input<typeof probeClusterInput>;
