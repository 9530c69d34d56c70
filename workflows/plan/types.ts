/**
 * The plan's vocabulary: ordered stages of steps with stable keys. Pure data, shared by the workflow
 * (which executes it), `ae plan` (which prints it) and the step ledger (which keys what is done).
 */

/** Where a step runs: a node over SSH, the control host (the worker's machine: ipmitool, ab later), or the guest VM over its SSH endpoint. */
export type StepHost = { node: string } | { controlHost: true } | { guest: true };

export interface PlanStep {
  /** Stable key, unique in the plan: `<hypervisor>/<stage>/<node>/<what>`, e.g. `fragvisor/host-kernel/echo5/build`. */
  key: string;
  /** One line for humans: what this step is in the artifact's words. */
  title: string;
  host: StepHost;
  /**
   * The exact command lines this step runs there, in order, as the activity will send them (after
   * quoting). Steps that decide at run time (skip when already installed, escalate a reboot) list
   * what they run in the normal case and say the rest in `note`.
   */
  commands: string[];
  /** Runs as root through `sudo -n`. */
  privileged?: boolean;
  /** Run-time behaviour the commands alone do not show (skips, checks, escalation). */
  note?: string;
}

export interface PlanStage {
  /** Stable key, e.g. `fragvisor/prepare-hosts`. */
  key: string;
  title: string;
  /** Steps of different nodes run in parallel; the steps of one node in order. */
  parallel: boolean;
  steps: PlanStep[];
}
