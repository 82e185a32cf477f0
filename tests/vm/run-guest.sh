#!/usr/bin/env bash
# run-guest.sh [--veil PATH] [--script GUEST_SCRIPT] [--timeout SECS] [--log FILE]
#
# Boots Debian's cloud kernel under qemu (TCG software emulation: KVM guests hang on this machine)
# with an initramfs holding busybox, veil and the libraries it links, busybox OCI bundles and a test
# script; the guest mounts only cgroup2 and runs the script (tests/vm/guest-init.sh is its /init).
# The guest's serial console is printed when it is done; the exit status is 0 only when the guest
# reported "VEIL-GUEST-RESULT: PASS". 1: the guest reported FAIL; 2: no result (timeout, crash);
# 3: could not set up.
#
# Cached under $VEIL_VM_CACHE (default /var/cache/veil/vm), outside the clone:
#   kernel-PACKAGE-VERSION/                  the image package linux-image-cloud-amd64 depends on,
#                                            extracted with dpkg -x (tests/vm/kernel.sh)
#   initramfs-HASH.cpio.gz                   keyed by every input (busybox, veil, its libraries,
#                                            these scripts); the newest few are kept
# As root (mknod, apt-get). Installs qemu-system-x86, cpio, busybox-static and jq when missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
veil=$repo/.build/release/veil
script=$here/guest-tests.sh
timeout=600
log_copy=
cache=${VEIL_VM_CACHE:-/var/cache/veil/vm}
keep_initramfs=3

usage() { sed -n '2p' "$0" | sed 's/^# /usage: /' >&2; exit 3; }
while [ $# -gt 0 ]; do
    case "$1" in
        --veil) veil=${2:?}; shift 2 ;;
        --script) script=${2:?}; shift 2 ;;
        --timeout) timeout=${2:?}; shift 2 ;;
        --log) log_copy=${2:?}; shift 2 ;;
        -h|--help) usage ;;
        *) echo "run-guest.sh: unknown argument $1" >&2; usage ;;
    esac
done

say() { echo "run-guest: $*" >&2; }
die() { say "$*"; exit 3; }

[ "$(id -u)" = 0 ] || die "must run as root (mknod, apt-get)"
[ -x "$veil" ] || die "veil binary not found at $veil (build: swift build -c release --static-swift-stdlib)"
[ -f "$script" ] || die "guest script not found: $script"
[[ "$timeout" =~ ^[0-9]+$ ]] || die "--timeout wants whole seconds, got $timeout"
veil=$(readlink -f "$veil")
script=$(readlink -f "$script")

# --- tools ----------------------------------------------------------------------------------------
. "$here/lib.sh"
vm_install_missing qemu-system-x86_64:qemu-system-x86 cpio:cpio jq:jq dpkg:busybox-static
busybox=$(readlink -f "$(command -v busybox)")
if ldd "$busybox" > /dev/null 2>&1; then die "$busybox is dynamically linked; install busybox-static"; fi

vm_work_dir "$cache" run

# --- kernel ---------------------------------------------------------------------------------------
# tests/vm/kernel.sh finds, downloads and caches it (under the cache lock, so before we take it).
started=$SECONDS
kernel_dir=$("$here/kernel.sh") || die "no kernel to boot (tests/vm/kernel.sh failed)"

# Builds that share the cache (two test runs at once) take turns; the boot itself needs no lock.
exec 9> "$cache/.lock"
flock 9

# What the guest needs must be built in: the initramfs carries no modules.
for option in BLK_DEV_INITRD RD_GZIP DEVTMPFS TMPFS SERIAL_8250_CONSOLE CGROUPS MEMCG CGROUP_PIDS \
    CGROUP_SCHED CFS_BANDWIDTH CPUSETS CGROUP_BPF BPF_SYSCALL PID_NS NET_NS IPC_NS UTS_NS USER_NS; do
    grep -qx "CONFIG_$option=y" "$kernel_dir/config" || die "$kernel_dir/config: CONFIG_$option is not built in"
done

# --- initramfs ------------------------------------------------------------------------------------
# The veil binary links glibc, libstdc++ and friends dynamically (the Swift stdlib is static): the
# libraries ldd names, and the loader, go in at the paths ldd gives.
libraries=$(ldd "$veil" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }' | sort -u)
[ -n "$libraries" ] || die "ldd $veil names no libraries"
key=$(
    {
        sha256sum "$here/run-guest.sh" "$here/guest-init.sh" "$script" "$busybox" "$veil" "$repo/scripts/make-bundle.sh"
        for library in $libraries; do echo "$library $(sha256sum < "$(readlink -f "$library")")"; done
    } | sha256sum | cut -c1-24
)
initramfs=$cache/initramfs-$key.cpio.gz
if [ ! -f "$initramfs" ]; then
    say "building initramfs $key"
    stage=$work/stage
    mkdir -p "$stage"/{bin,dev,proc,sys,run,tmp,root,etc,usr/local/bin,vm/bundles}
    cp "$busybox" "$stage/bin/busybox"
    for applet in $("$busybox" --list); do
        [ "$applet" = busybox ] || ln -s busybox "$stage/bin/$applet"
    done
    ln -s bin "$stage/sbin"
    ln -s ../bin "$stage/usr/bin"
    ln -s ../bin "$stage/usr/sbin"
    mknod -m 600 "$stage/dev/console" c 5 1
    mknod -m 666 "$stage/dev/null" c 1 3
    echo 'root:x:0:0:root:/root:/bin/sh' > "$stage/etc/passwd"
    echo 'root:x:0:' > "$stage/etc/group"
    install -m 0755 "$veil" "$stage/usr/local/bin/veil"
    for library in $libraries; do
        mkdir -p "$stage$(dirname "$library")"
        cp -L "$library" "$stage$library"
    done
    install -m 0755 "$here/guest-init.sh" "$stage/init"
    install -m 0755 "$script" "$stage/vm/guest-tests.sh"

    # The busybox rootfs and the base config come from the project's bundle script; the configs
    # are patched here because the guest has no jq.
    VEIL=$veil "$repo/scripts/make-bundle.sh" "$work/base" > /dev/null
    mv "$work/base/rootfs" "$stage/vm/rootfs"
    base='.process.terminal = false | .root.path = "/vm/rootfs" | .linux.cgroupsPath = "/veil-guest/" + $name'
    count=0
    while read -r _ name filter; do
        [[ "$name" =~ ^[a-z0-9][a-z0-9_.-]*$ ]] || die "$script: bad bundle name '$name'"
        mkdir "$stage/vm/bundles/$name"
        jq --arg name "$name" "$base | ${filter:-.}" "$work/base/config.json" > "$stage/vm/bundles/$name/config.json" ||
            die "$script: jq filter of bundle $name failed: $filter"
        count=$((count + 1))
    done < <(grep '^#@bundle ' "$script")
    say "$count bundles"

    (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) | gzip -1 > "$work/initramfs.cpio.gz"
    mv "$work/initramfs.cpio.gz" "$initramfs"
    rm -rf "$stage" "$work/base"
    # Keep the newest few: every veil build makes a new one.
    ls -t "$cache"/initramfs-*.cpio.gz | tail -n +$((keep_initramfs + 1)) | xargs -r rm -f
fi
touch "$initramfs"  # marks it recently used for the pruning above
flock -u 9
exec 9>&-
prepared=$((SECONDS - started))

# --- boot -----------------------------------------------------------------------------------------
serial=$work/serial.log
: > "$serial"
say "booting $(basename "$kernel_dir") (prepared in ${prepared}s, timeout ${timeout}s)"
boot_started=$SECONDS
# timeout(1) ends qemu even if this script is killed before it can; the guest's own watchdog
# (veil.timeout) reports and powers off a little before that.
guest_limit=$((timeout > 20 ? timeout - 10 : timeout))
timeout -k 5 $((timeout + 30)) qemu-system-x86_64 -accel tcg -machine pc -cpu max -m 1024 -smp 2 \
    -nodefaults -display none -no-reboot -monitor none -serial "file:$serial" \
    -kernel "$kernel_dir/vmlinuz" -initrd "$initramfs" \
    -append "console=ttyS0 panic=-1 quiet veil.timeout=$guest_limit" \
    < /dev/null > "$work/qemu.out" 2>&1 &
qemu_pid=$!

vm_wait_for_result "$serial" '^VEIL-GUEST-RESULT: ' 15
elapsed=$((SECONDS - boot_started))

tr -d '\r' < "$serial" > "$work/guest.log"
[ -z "$log_copy" ] || cp "$work/guest.log" "$log_copy"
cat "$work/guest.log"
vm_verdict "$work/guest.log" "$work/guest.log" "guest ran ${elapsed}s"
