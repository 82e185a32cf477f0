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
missing=()
command -v qemu-system-x86_64 > /dev/null || missing+=(qemu-system-x86)
command -v cpio > /dev/null || missing+=(cpio)
command -v jq > /dev/null || missing+=(jq)
dpkg -s busybox-static > /dev/null 2>&1 || missing+=(busybox-static)
if [ ${#missing[@]} -gt 0 ]; then
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
fi
busybox=$(readlink -f "$(command -v busybox)")
if ldd "$busybox" > /dev/null 2>&1; then die "$busybox is dynamically linked; install busybox-static"; fi

mkdir -p "$cache"
work=$(mktemp -d "$cache/run.XXXXXX")
qemu_pid=
cleanup() {
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2> /dev/null; then
        # $qemu_pid is timeout(1): it passes TERM on to qemu, and KILLs it 5 s later if need be.
        kill -TERM "$qemu_pid" 2> /dev/null || true
        wait "$qemu_pid" 2> /dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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

marker_seen=
deadline=$((SECONDS + timeout))
while kill -0 "$qemu_pid" 2> /dev/null; do
    if [ -z "$marker_seen" ] && grep -q '^VEIL-GUEST-RESULT: ' "$serial"; then
        marker_seen=$SECONDS
        deadline=$((SECONDS + 15))  # the guest powers off right after the marker
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        [ -n "$marker_seen" ] || say "timed out after ${timeout}s: stopping qemu"
        break
    fi
    sleep 0.5
done
cleanup_status=0
# timeout(1) passes TERM on to qemu and KILLs it 5 s later if need be.
kill -0 "$qemu_pid" 2> /dev/null && kill -TERM "$qemu_pid" 2> /dev/null
wait "$qemu_pid" 2> /dev/null || cleanup_status=$?
qemu_pid=
elapsed=$((SECONDS - boot_started))

tr -d '\r' < "$serial" > "$work/guest.log"
[ -z "$log_copy" ] || cp "$work/guest.log" "$log_copy"
cat "$work/guest.log"
result=$(grep '^VEIL-GUEST-RESULT: ' "$work/guest.log" | tail -1 || true)
case "$result" in
    "VEIL-GUEST-RESULT: PASS"*)
        say "${result#VEIL-GUEST-RESULT: } (guest ran ${elapsed}s)"
        exit 0 ;;
    "VEIL-GUEST-RESULT: FAIL"*)
        say "guest failed: ${result#VEIL-GUEST-RESULT: FAIL } (guest ran ${elapsed}s)"
        grep '^not ok ' "$work/guest.log" >&2 || true
        exit 1 ;;
    *)
        say "no result from the guest after ${elapsed}s (qemu status $cleanup_status); last lines of its console:"
        tail -n 40 "$work/guest.log" >&2
        if [ -s "$work/qemu.out" ]; then say "qemu said:"; tail -n 20 "$work/qemu.out" >&2; fi
        exit 2 ;;
esac
