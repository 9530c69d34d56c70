# shellcheck shell=bash
# Shared by the imitation tools of a simulated node (sourced, not run). The simulator keeps the
# node's facts in $AE_SIM_STATE (see sim/state.ts): node.env (AE_NODE_* assignments), boot_id,
# modules (loaded imitation modules), next_kernel_release (installed kernel, booted next), and
# ctl/ where requests to the simulator (reboot, poweroff) are dropped as files.

AE_SIM_STATE=${AE_SIM_STATE:-/home/.ae-sim/state}

ae_sim_load() {
  # shellcheck source=/dev/null
  . "$AE_SIM_STATE/node.env" || { echo "${0##*/}: simulated node state is missing ($AE_SIM_STATE/node.env)" >&2; exit 1; }
}

# True when the caller is "root" on the node: commands run through sudo (AE_SIM_SUDO=1).
ae_sim_is_root() {
  [ "${AE_SIM_SUDO:-}" = 1 ]
}

# Seconds since the node booted and a plausible idle time, as /proc/uptime prints them.
ae_sim_uptime() {
  ae_sim_load
  local now_us=${EPOCHREALTIME//[.,]/}
  local up_us=$(( now_us - AE_NODE_BOOTED_AT_MS * 1000 ))
  (( up_us < 0 )) && up_us=0
  local idle_us=$(( up_us * ${AE_NODE_CPUS:-1} * 9 / 10 ))
  printf '%d.%02d %d.%02d\n' $(( up_us / 1000000 )) $(( up_us % 1000000 / 10000 )) $(( idle_us / 1000000 )) $(( idle_us % 1000000 / 10000 ))
}

# Asks the simulator for a power action (reboot | poweroff), then blocks like the real thing: the
# simulator kills this process when the node goes down. Never returns unless the simulator is gone.
ae_sim_power() {
  local action=$1 tool=$2 req
  req="$AE_SIM_STATE/ctl/$action.$$.$RANDOM"
  printf '%s\n' "$action" > "$req.tmp" && mv -f "$req.tmp" "$req" || { echo "$tool: cannot reach the simulator ($AE_SIM_STATE/ctl)" >&2; exit 1; }
  /bin/sleep 60
  echo "$tool: the simulated node did not go down within 60 s (is the simulator running?)" >&2
  exit 1
}
