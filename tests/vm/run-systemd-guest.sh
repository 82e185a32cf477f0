#!/usr/bin/env bash
# run-systemd-guest.sh --veil PATH [--timeout SECS] [--keep DIR] [--runtimes "runc veil-native veil-sandbox"] [--bench ROUNDS] [--script FILE] [--payload-dir DIR]
#
# Boots the systemd test guest under qemu (TCG software emulation: KVM guests hang on this machine):
# Debian 12 with systemd 252 as PID 1 on cgroup v2 (tests/vm/systemd-image.sh builds and caches its
# root disk), and runs the systemd cgroup driver checks of tests/vm/guest-systemd-tests.sh against
# each runtime of --runtimes (default: $VEIL_GUEST_RUNTIMES, else all three; runc is the reference).
# --script FILE runs another check script of the same shape instead (guest-checkpoint-tests.sh: the
# checkpoint checks of issue #16); --payload-dir DIR adds DIR's files to the payload as /vm/extra.
#
# The guest has one emulated NVMe controller with two namespaces: nvme0n1, the cached image, opened
# with snapshot=on so it stays pristine; nvme0n2, a payload ext4 made per run with mkfs.ext4 -d,
# holding veil, veil-warden and containerd-shim-veil-v1 from --veil's directory, the check script, a
# busybox bundle (scripts/make-bundle.sh), the busybox OCI archive (scripts/make-busybox-image.sh) and
# an env file. The guest mounts it on /vm, a oneshot service runs the script with its output on the
# serial console, and powers off. After qemu exits, /vm/out (logs, systemctl status, the journal) is
# copied back with debugfs (no mount).
#
# Prints the guest's check lines ("ok N - ...", "not ok N - ...", "# ..." comments) and its result.
# Exit status: 0 when the guest reported PASS and no "not ok"; 1 when a check failed; 2 when there is
# no result (timeout, crash); 3 when it could not set up. --keep DIR keeps the serial console
# (serial.log), the script's lines from it (guest.log), /vm/out (out/) and qemu's output there.
# As root. Installs qemu-system-x86, e2fsprogs,
# jq, umoci and busybox-static when missing.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
veil=
timeout=600
keep=
runtimes=${VEIL_GUEST_RUNTIMES:-runc veil-native veil-sandbox}
# --bench N: also N interleaved rounds of the systemd-driver benchmark (a measurement, reported on
# "# bench:" lines; make bench runs it).
bench=0
script=$here/guest-systemd-tests.sh
extra=
cache=${VEIL_VM_CACHE:-/var/cache/veil/vm}

usage() { sed -n '2p' "$0" | sed 's/^# /usage: /' >&2; exit 3; }
while [ $# -gt 0 ]; do
    case "$1" in
        --veil) veil=${2:?}; shift 2 ;;
        --timeout) timeout=${2:?}; shift 2 ;;
        --keep) keep=${2:?}; shift 2 ;;
        --runtimes) runtimes=${2?}; shift 2 ;;
        --bench) bench=${2:?}; shift 2 ;;
        --script) script=${2:?}; shift 2 ;;
        --payload-dir) extra=${2:?}; shift 2 ;;
        -h | --help) usage ;;
        *) echo "run-systemd-guest.sh: unknown argument $1" >&2; usage ;;
    esac
done

say() { echo "run-systemd-guest: $*" >&2; }
die() { say "$*"; exit 3; }

[ "$(id -u)" = 0 ] || die "must run as root (debootstrap, apt-get)"
[ -n "$veil" ] || usage
[ -x "$veil" ] || die "veil binary not found at $veil"
veil=$(readlink -f "$veil")
bin_dir=$(dirname "$veil")
[ -x "$bin_dir/veil-warden" ] || die "no veil-warden next to $veil (the sandbox level needs it)"
[[ "$timeout" =~ ^[0-9]+$ ]] && [ "$timeout" -ge 60 ] || die "--timeout wants whole seconds (at least 60), got $timeout"
for runtime in $runtimes; do
    case "$runtime" in runc | veil-native | veil-sandbox) ;; *) die "--runtimes: unknown runtime $runtime" ;; esac
done
[ -n "$runtimes" ] || die "--runtimes is empty"
[ -f "$script" ] || die "--script: no file $script"
[ -z "$extra" ] || [ -d "$extra" ] || die "--payload-dir: no directory $extra"

# --- tools ----------------------------------------------------------------------------------------
. "$here/lib.sh"
vm_install_missing qemu-system-x86_64:qemu-system-x86 debugfs:e2fsprogs jq:jq umoci:umoci debootstrap:debootstrap \
    dpkg:busybox-static

vm_work_dir "$cache" systemd-run

# --- image and kernel -----------------------------------------------------------------------------
started=$SECONDS
image=$("$here/systemd-image.sh") || die "no guest image (tests/vm/systemd-image.sh failed)"
kernel_dir=$("$here/kernel.sh") || die "no kernel (tests/vm/kernel.sh failed)"
touch "$image.complete"  # recently used, for systemd-image.sh's pruning
image_ready=$((SECONDS - started))

# --- payload --------------------------------------------------------------------------------------
# Copies, not links: another build may replace the binaries while this run uses them.
payload=$work/payload
mkdir -p "$payload/bin" "$payload/out"
install -m 0755 "$veil" "$payload/bin/veil"
install -m 0755 "$bin_dir/veil-warden" "$payload/bin/veil-warden"
if [ -x "$bin_dir/containerd-shim-veil-v1" ]; then
    install -m 0755 "$bin_dir/containerd-shim-veil-v1" "$payload/bin/containerd-shim-veil-v1"
else
    say "no containerd-shim-veil-v1 next to $veil; the payload goes without it"
fi
if [ -x "$bin_dir/veil-checkpoint" ]; then
    install -m 0755 "$bin_dir/veil-checkpoint" "$payload/bin/veil-checkpoint"
fi
if [ -x "$bin_dir/veil-verify" ]; then
    install -m 0755 "$bin_dir/veil-verify" "$payload/bin/veil-verify"
else
    say "no veil-verify next to $veil; the guest's CRI checks will say so"
fi
install -m 0755 "$script" "$payload/guest-script.sh"
install -m 0644 "$here/guest-report.sh" "$payload/guest-report.sh"
[ -z "$extra" ] || cp -a "$extra" "$payload/extra"
VEIL=$veil "$repo/scripts/make-bundle.sh" "$payload/bundle" > /dev/null || die "scripts/make-bundle.sh failed"
"$repo/scripts/make-busybox-image.sh" "$payload/busybox.tar" > /dev/null || die "scripts/make-busybox-image.sh failed"
"$repo/scripts/make-pause-image.sh" "$payload/pause.tar" > /dev/null || die "scripts/make-pause-image.sh failed"
# The script's own bound: what is left of the run after a generous allowance for the boot, so the
# guest reports a timeout itself before the host gives up on it.
guest_limit=$((timeout - (timeout / 4 > 60 ? timeout / 4 : 60)))
{
    echo "VEIL_GUEST_TIMEOUT=$guest_limit"
    echo "VEIL_GUEST_RUNTIMES=\"$runtimes\""
    echo "VEIL_GUEST_BENCH=$bench"
    echo "VEIL_GUEST_FIXTURE=${VEIL_GUEST_FIXTURE:-0}"
} > "$payload/env"
# Room for the copies plus 256 MiB of logs; sparse, so only what mkfs writes takes space.
size_mb=$(( $(du -sm "$payload" | cut -f1) + 256 ))
truncate -s "${size_mb}M" "$work/payload.img"
mkfs.ext4 -q -F -L veilpayload -d "$payload" "$work/payload.img" || die "mkfs.ext4 -d of the payload failed"
rm -rf "$payload"
prepared=$((SECONDS - started))

# --- boot -----------------------------------------------------------------------------------------
serial=$work/serial.log
: > "$serial"
say "booting $(basename "$image") with $(basename "$kernel_dir") (image ${image_ready}s, prepared in ${prepared}s, runtimes: $runtimes, timeout ${timeout}s)"
boot_started=$SECONDS
# timeout(1) ends qemu even if this script is killed before it can. No initramfs: the kernel mounts
# the NVMe root itself (rootwait: the controller is probed asynchronously).
timeout -k 5 $((timeout + 30)) qemu-system-x86_64 -accel tcg -machine pc -cpu max -m 2048 -smp 2 \
    -nodefaults -display none -no-reboot -monitor none -serial "file:$serial" \
    -kernel "$kernel_dir/vmlinuz" \
    -append "console=ttyS0 root=/dev/nvme0n1 rootfstype=ext4 rootwait rw panic=-1 quiet systemd.show_status=0 systemd.unified_cgroup_hierarchy=1${VEIL_GUEST_KERNEL_ARGS:+ $VEIL_GUEST_KERNEL_ARGS}" \
    -drive "file=$image,format=raw,if=none,id=root,snapshot=on" \
    -drive "file=$work/payload.img,format=raw,if=none,id=payload" \
    -device nvme,id=nvme0,serial=veil \
    -device nvme-ns,drive=root,bus=nvme0,nsid=1 \
    -device nvme-ns,drive=payload,bus=nvme0,nsid=2 \
    < /dev/null > "$work/qemu.out" 2>&1 &
qemu_pid=$!

# The service's lines reach the console through journald as "[  12.345678] veil-guest[PID]: LINE"
# (SyslogIdentifier= in veil-guest-tests.service); the kernel's own lines have no such tag.
tag='^\[ *[0-9]+\.[0-9]+\] veil-guest\[[0-9]+\]: '
vm_wait_for_result "$serial" "${tag}VEIL-GUEST-RESULT: " 30 "$tag# [0-9.]+s: checks start"
elapsed=$((SECONDS - boot_started))

# --- results --------------------------------------------------------------------------------------
tr -d '\r' < "$serial" > "$work/console.log"
# The check script's lines, untagged, in the order the guest printed them.
sed -nE "s/$tag//p" "$work/console.log" > "$work/guest.log"
# The guest's /vm/out, read from the payload's ext4 without mounting it.
mkdir -p "$work/copied"
debugfs -R "rdump /out $work/copied" "$work/payload.img" > /dev/null 2>&1 || say "could not copy /vm/out back (debugfs rdump)"
if [ -n "$keep" ]; then
    mkdir -p "$keep"
    cp "$work/console.log" "$keep/serial.log"
    cp "$work/guest.log" "$keep/guest.log"
    cp "$work/qemu.out" "$keep/qemu.out"
    rm -rf "$keep/out"
    [ ! -d "$work/copied/out" ] || cp -a "$work/copied/out" "$keep/out"
    say "kept the console, /vm/out and qemu's output in $keep"
fi

# The check lines only (the script's stderr is in guest.log too).
grep -E '^(ok [0-9]|not ok [0-9]|# |VEIL-GUEST-RESULT: )' "$work/guest.log" || true
vm_verdict "$work/guest.log" "$work/console.log" "boot to first check ${first_check:-?}s, guest ran ${elapsed}s, whole run $((SECONDS - started))s"
