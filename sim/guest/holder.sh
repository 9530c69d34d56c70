#!/bin/bash
# The holder of the simulated guest: pid 1 of the guest's PID namespace, inside its own user, mount
# and UTS namespaces (started by sim/guest/sandbox.ts). It builds the guest's root filesystem in a
# tmpfs, as a ramdisk would be (nothing survives the VM): the host's programs and libraries
# read-only, /etc read-only with room for new entries, /usr/local, /root, /tmp, /var, /run writable,
# a /dev with the usual character devices and the virtio disk, a /proc of its own, then the ramdisk
# image on top. Then it chroots there and becomes the guest's init. The user namespace keeps the
# guest's root away from the host: mounts inherited from the host stay locked read-only.
# Arguments: guest dir (holds image/ and the mountpoint root/), node binary, guest tools dir,
# host name, init path inside the guest. Prints `ae-sim-guest-ready <pid on the host>`.
set -eu
guest_dir=$1 node_bin=$2 bin_dir=$3 guest_name=$4 init=$5
fail() { echo "ae-sim guest: $*" >&2; exit 1; }
read -r host_pid _ < /proc/self/stat
root=$guest_dir/root
mount -t tmpfs -o mode=0755 ramdisk "$root" || fail "cannot mount the guest's ramdisk on $root"
cd "$root"

# A read-only view of a host path (a directory or a file) at $2 inside the guest.
ro_bind() {
  if [ -d "$1" ]; then mkdir -p "$2"; else : > "$2"; fi
  mount --rbind "$1" "$2" || fail "cannot bind $1"
  mount -o remount,bind,ro "$2" 2>/dev/null || true
}
# Host entries of directory $1 at guest directory $2: symlinks copied, the rest bound read-only.
mirror() {
  local src=$1 dst=$2 e n
  mkdir -p "$dst"
  for e in "$src"/*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    n=${e##*/}
    [ -n "${3:-}" ] && [ "$n" = "$3" ] && continue
    if [ -L "$e" ]; then ln -s "$(readlink "$e")" "$dst/$n"
    elif [ -d "$e" ] || [ -f "$e" ]; then ro_bind "$e" "$dst/$n"
    fi
  done
}

# 1. Programs and libraries: the host's, read-only (symlinks such as bin -> usr/bin kept as they are).
for n in bin sbin lib lib32 lib64 libx32; do
  if [ -L "/$n" ]; then ln -s "$(readlink "/$n")" "$n"
  elif [ -d "/$n" ]; then ro_bind "/$n" "$n"
  fi
done
mirror /usr usr local
mirror /usr/local usr/local
mirror /etc etc
# 2. The guest's own writable directories.
mkdir -p root home opt srv mnt media boot run var/log var/lib var/www var/cache sys proc dev/shm tmp var/tmp
chmod 0700 root
chmod 1777 tmp var/tmp dev/shm
ln -s /run var/run
# 3. Devices: the host's harmless character devices, and the virtio disk (a file: dd is imitated).
for d in null zero full random urandom tty; do
  [ -e "/dev/$d" ] || continue
  : > "dev/$d"
  mount --bind "/dev/$d" "dev/$d" || fail "cannot bind /dev/$d"
done
ln -s /proc/self/fd dev/fd
ln -s /proc/self/fd/0 dev/stdin
ln -s /proc/self/fd/1 dev/stdout
ln -s /proc/self/fd/2 dev/stderr
: > dev/vda
mount -t proc proc proc || fail "cannot mount a /proc for the guest's PID namespace"
# 4. The simulator's pieces: imitation tools and the node binary that runs their client.
mkdir -p .ae-guest/bin
ro_bind "$bin_dir" .ae-guest/bin
ro_bind "$node_bin" .ae-guest/node
# 5. The ramdisk image (guest-specific files, written by the simulator).
cp -a "$guest_dir/image/." . || fail "cannot unpack the ramdisk image"
hostname "$guest_name" || fail "cannot set the host name"
echo "ae-sim-guest-ready $host_pid"
exec chroot . "$init"
