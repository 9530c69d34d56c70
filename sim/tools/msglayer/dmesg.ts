/** The messaging layer's kernel log lines (PCNPRINTK adds `popcorn: `; a bare printk adds nothing). */
const P = 'popcorn: ';

export const lines = {
  loading: () => `${P}Loading node configuration...`,
  /** `%s %d: %pI4`: own entry starred. */
  entry: (me: boolean, id: number, ip: string) => `${P}${me ? '*' : ' '} ${id}: ${ip}`,
  notListed: () => `${P}My IP is not listed in the node configuration`,
  /** `Unable to %s, %pI4 - %d, %d`: step, peer IP, connection (channel) index, return code. */
  unable: (step: string, ip: string, ret: number) => `${P}Unable to ${step}, ${ip} - 0, ${ret}`,
  /** cm_client_event_handler's default branch: a bare printk, and the connect waits forever. */
  unhandledClientEvent: (event: number) => `Unhandled client event ${event}`,
  ready: () => `${P}Ready on InfiniBand RDMA`,
  joined: (id: number) => `${P}   ${id} joined, x86_64`,
  // Our reconstruction (no public source): how an origin-flag mistake shows up.
  noOrigin: () => `${P}No origin node`,
  duplicateOrigin: (ids: number[]) => `${P}Duplicate origin: nodes ${ids.join(', ')}`,
  // The kernel's module loader (kernel/module.c), prefixed with the module name.
  versionMagic: (mod: string, have: string, want: string) => `${mod}: version magic '${have}' should be '${want}'`,
  unknownSymbol: (mod: string, sym: string) => `${mod}: Unknown symbol ${sym} (err 0)`,
};

/** rdma_cm_event_type values the imitation prints. */
export const CM_EVENT = { ADDR_ERROR: 1, UNREACHABLE: 7 } as const;
