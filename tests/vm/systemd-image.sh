#!/usr/bin/env bash
# systemd-image.sh: the root disk of the systemd test guest (tests/vm/run-systemd-guest.sh), a raw
# ext4 image of Debian with systemd as PID 1, containerd, runc and the cloud kernel's modules; prints
# its path. Built once and cached OUTSIDE the clone, keyed by every input (suite, architecture,
# package list, kernel package and release, this script and the files under tests/vm/systemd/):
#   $VEIL_VM_CACHE/systemd-<key>.img            (default cache: /var/cache/veil/vm)
#   $VEIL_VM_CACHE/systemd-<key>.img.complete   written last: an image without it is not used
# The newest two images are kept (a script edit makes a new one). Guests boot it with snapshot=on, so
# it stays pristine. Concurrent callers wait on a lock instead of building twice.
#
# How: debootstrap --variant=minbase into a temporary directory, configure it (modules + depmod,
# machine-id, hostname, fstab, masked and disabled units, the test units), then mkfs.ext4 -d turns
# the directory into the image: no loop device, nothing mounted on the host.
#
# Environment: SUITE (default bookworm), MIRROR (default: the Debian URIs: line of apt's deb822
# sources, as scripts/debian-rootfs.sh does), VEIL_VM_CACHE. As root (debootstrap, chroot).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
suite=${SUITE:-bookworm}
arch=$(dpkg --print-architecture)
cache=${VEIL_VM_CACHE:-/var/cache/veil/vm}
keep=2
image_size=1536M
# udev: systemd waits for a device unit before mounting /dev/nvme0n2 on /vm (vm.mount), and only udev
# announces devices. e2fsprogs is not here: the root is never fsck'd (pass 0) and the payload is made
# on the host.
# criu and gdb-minimal (gdb without python, whose minbase install fails to configure): the checkpoint checks (guest-checkpoint-tests.sh); criu brings python3 and its crit,
# which the checks compare veil's decoding with; busybox-static: what `restore --import` applies an
# archive's rootfs changes with (chrooted into the rootfs).
packages=(systemd systemd-sysv udev dbus kmod iproute2 procps containerd runc containernetworking-plugins jq criu gdb-minimal busybox-static)
# Units that cost boot time under TCG and that no check needs. Masked, so nothing pulls them in.
masked=(
    getty.target getty@tty1.service serial-getty@ttyS0.service console-getty.service
    apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service
    fstrim.timer systemd-timesyncd.service
    # ConditionNeedsUpdate=/etc|/var units: the snapshot makes every boot look like the first after an
    # update, and rebuilding hwdb.bin alone takes many seconds under emulation.
    ldconfig.service systemd-hwdb-update.service systemd-journal-catalog-update.service systemd-update-done.service
)

say() { echo "systemd-image.sh: $*" >&2; }
die() { say "$*"; exit 1; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, chroot)"
command -v debootstrap > /dev/null || die "debootstrap is not installed (make deps)"
command -v mkfs.ext4 > /dev/null || die "mkfs.ext4 is not installed (e2fsprogs)"

kernel_dir=$("$here/kernel.sh") || die "no kernel (tests/vm/kernel.sh failed)"
release=$(cat "$kernel_dir/release" 2> /dev/null || true)
[ -n "$release" ] && [ -d "$kernel_dir/lib/modules/$release" ] ||
    die "$kernel_dir has no modules (cached before tests/vm/kernel.sh kept them, and apt cannot fetch it again now)"
# Root on an emulated NVMe disk with no initramfs: the kernel itself must read it.
for option in BLK_DEV_NVME EXT4_FS DEVTMPFS CGROUPS MEMCG CGROUP_PIDS CGROUP_SCHED CFS_BANDWIDTH CPUSETS CGROUP_BPF; do
    grep -qx "CONFIG_$option=y" "$kernel_dir/config" || die "$kernel_dir/config: CONFIG_$option is not built in"
done

key=$(
    {
        echo "$suite $arch $image_size"
        printf '%s\n' "${packages[@]}" "${masked[@]}"
        echo "$(basename "$kernel_dir") $release"
        sha256sum "$here/systemd-image.sh" "$here"/systemd/* "$here/../../scripts/build-dir-lib.sh" | cut -d" " -f1
    } | sha256sum | cut -c1-16
)
image=$cache/systemd-$key.img

if [ -f "$image.complete" ] && [ -f "$image" ]; then
    echo "$image"
    exit 0
fi

# The Debian archive apt uses here, as scripts/debian-rootfs.sh picks it.
mirror=$("$here/../../scripts/debian-mirror.sh")

mkdir -p "$cache"
exec 9> "$cache/.systemd-image.lock"
flock 9
# Another caller may have finished it while we waited.
if [ -f "$image.complete" ] && [ -f "$image" ]; then
    echo "$image"
    exit 0
fi

. "$here/../../scripts/build-dir-lib.sh"
remove_stale_builds "$cache/.systemd-build-"
rm -f "$image" "$image.complete"

work=$(mktemp -d "$cache/.systemd-build-$key.XXXXXX")
trap 'remove_build_dir "$work"' EXIT
root=$work/root
mkdir -m 755 "$root"

started=$(date +%s)
say "debootstrap $suite ($arch) from $mirror"
include=$(IFS=,; echo "${packages[*]}")
if ! debootstrap --variant=minbase --arch="$arch" --include="$include" "$suite" "$root" "$mirror" > "$work/debootstrap.log" 2>&1; then
    say "debootstrap failed; last lines of its log:"
    tail -n 30 "$work/debootstrap.log" >&2
    exit 1
fi
bootstrapped=$(date +%s)

# --- configure -----------------------------------------------------------------------------------
# The kernel's modules (overlay for containerd's snapshotter, fuse for veil's sandbox level, autofs
# for systemd...); depmod from the image's own kmod writes the indexes next to them.
mkdir -p "$root/usr/lib/modules"
cp -a "$kernel_dir/lib/modules/$release" "$root/usr/lib/modules/"
chroot "$root" depmod -a "$release"

# Fixed, so the image is a function of its inputs; systemd treats an empty machine-id as a first boot.
echo "$key" | sha256sum | cut -c1-32 > "$root/etc/machine-id"
echo veil-systemd-guest > "$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tveil-systemd-guest\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$root/etc/hosts"
# Pass 0: every boot starts from the pristine image (snapshot=on), so there is nothing to check.
echo '/dev/nvme0n1 / ext4 rw,noatime 0 0' > "$root/etc/fstab"
mkdir -p "$root/vm"

# systemctl of the image itself, offline in the chroot (enable, disable and mask need no running systemd).
chroot "$root" systemctl mask --quiet "${masked[@]}"
# The checks start containerd themselves, with a private configuration.
chroot "$root" systemctl disable --quiet containerd.service
install -m 0644 "$here/systemd/vm.mount" "$here/systemd/veil-guest-tests.service" "$root/etc/systemd/system/"
install -D -m 0644 "$here/systemd/veil-guest-system.conf" "$root/etc/systemd/system.conf.d/veil-guest.conf"
chroot "$root" systemctl enable --quiet veil-guest-tests.service

{
    echo "key=$key"
    echo "suite=$suite arch=$arch"
    echo "kernel=$(basename "$kernel_dir") release=$release"
    echo "packages=${packages[*]}"
    echo "built=$(date -u +%FT%TZ)"
} > "$root/etc/veil-guest-image"

# Nothing the guest needs: a smaller image is a faster mkfs.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/usr/share/doc/* \
    "$root"/usr/share/man/* "$root"/usr/share/info/* "$root"/usr/share/locale/*

# --- the image -----------------------------------------------------------------------------------
# debootstrap unmounts its /proc and /sys when it succeeds; mkfs must not copy a mounted tree.
! awk -v d="$root" 'index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo ||
    die "something is still mounted under $root"
# Sparse: only the blocks mkfs writes take space.
truncate -s "$image_size" "$work/image"
mkfs.ext4 -q -F -L veilroot -d "$root" "$work/image" || die "mkfs.ext4 -d failed"
mv "$work/image" "$image"
date -u +%FT%TZ > "$image.complete"

# Keep the newest few (by their markers, which run-systemd-guest.sh touches on use).
ls -t "$cache"/systemd-*.img.complete 2> /dev/null | tail -n +$((keep + 1)) | while read -r old; do
    rm -f "${old%.complete}" "$old"
done

finished=$(date +%s)
say "built $image in $((finished - started)) s (debootstrap $((bootstrapped - started)) s): $(du -h "$image" | cut -f1) used of $image_size, tree $(du -sh --one-file-system "$root" | cut -f1)"
echo "$image"
