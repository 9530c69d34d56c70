#!/bin/bash
# The holder of one simulated node: pid 1 of the node's own PID namespace, inside its own mount and
# UTS namespaces (started by sim/sandbox.ts). When it exits, the kernel kills every process of the
# node, detached ones included.
# Arguments: node dir, imitation bin dir, generated tool wrappers dir, node name, then `target=source` pairs for the shadowed
# tools. Sources under the node dir are relative to it and mounted without canonicalisation: once
# /home or /tmp is covered, an absolute path to a state dir below them would resolve inside the
# sandbox instead. Prints `ae-sim-holder-ready <pid on the host>` when the node's view of the
# machine is in place.
set -eu
node_dir=$1 bin_dir=$2 tools_dir=$3 node_name=$4
shift 4
fail() { echo "ae-sim holder: $*" >&2; exit 1; }
cd "$node_dir" || fail "cannot enter $node_dir"
# 0. Our pid as the host sees it (the host's /proc is still mounted), then a /proc of our own:
#    processes in the node see only the node's processes.
read -r host_pid _ < /proc/self/stat
mount -t proc proc /proc || fail "cannot mount a /proc for the node's PID namespace"
# 1. Everything the host has becomes read-only in here (/proc, /sys and /dev stay as they are).
while read -r mp; do
  mp=$(printf '%b' "$mp") # mountinfo escapes spaces and the like as \040
  case $mp in /proc | /proc/* | /sys | /sys/* | /dev | /dev/*) continue ;; esac
  mount -o remount,bind,ro "$mp" 2>/dev/null || echo "ae-sim holder: note: could not make $mp read-only" >&2
done < <(awk '{print $5}' /proc/self/mountinfo)
# 2. Imitation tools over the host's power and module tools.
for pair in "$@"; do
  mount --bind "${pair#*=}" "${pair%%=*}" || fail "cannot shadow ${pair%%=*}"
done
# 3. Node state over the kernel's boot id.
mount --bind state/boot_id /proc/sys/kernel/random/boot_id || fail "cannot cover /proc/sys/kernel/random/boot_id"
# 4. The simulator's directories inside the node's /home (tools read-only, state writable).
mount --bind "$bin_dir" fs/home/.ae-sim/bin || fail "cannot mount the imitation tools"
mount -o remount,bind,ro fs/home/.ae-sim/bin || fail "cannot make the imitation tools read-only"
mount --bind "$tools_dir" fs/home/.ae-sim/tools || fail "cannot mount the generated tool wrappers"
mount -o remount,bind,ro fs/home/.ae-sim/tools || fail "cannot make the generated tool wrappers read-only"
mount --bind state fs/home/.ae-sim/state || fail "cannot mount the node state"
mount -o remount,bind,rw fs/home/.ae-sim/state || fail "cannot make the node state writable"
# 5. The node's own directories over the host's.
cover() {
  [ -d "$2" ] || { [ "$3" = optional ] && return 0; fail "the host has no $2 to cover"; }
  mount --no-canonicalize --rbind "fs/$1" "$2" || fail "cannot cover $2"
  mount -o remount,bind,rw "$2" || fail "cannot make $2 writable"
}
cover home /home required
cover root /root required
cover tmp /tmp required
cover var-tmp /var/tmp optional
cover dev-shm /dev/shm optional
hostname "$node_name" || fail "cannot set the host name"
echo "ae-sim-holder-ready $host_pid"
# Stay until the simulator kills us (reboot, stop) or goes away (our stdin closes). Exiting as pid 1
# of the node's PID namespace takes every process of the node with us.
while read -r _; do :; done
exit 0
