import type { BenchTemporal } from './stack';

/** What every figure gets from the runner. */
export interface BenchContext {
  quick: boolean;
  /** Runs per measured case. */
  runs: number;
  /** Cluster sizes of the fan-out and scale figures (`--nodes`, default 4,16,64). */
  sizes: number[];
  /** Scratch space, removed at the end. */
  tmp: string;
  log(line: string): void;
  /** The bench's own dev server and workflow bundle, started on first use. */
  temporal(): Promise<BenchTemporal>;
}

/** `npm run bench -- --only <figure>`: the command that measures a figure again. */
export const rerun = (figure: string, quick: boolean) => `npm run bench -- --only ${figure}${quick ? ' --quick' : ''}`;
