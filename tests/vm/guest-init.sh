#!/bin/sh
# /init of the cgroup v2 test guest (busybox sh as PID 1), packed by run-guest.sh.
#
# Stage 1 runs on the initramfs itself. pivot_root(2) refuses to move away from that initial
# rootfs, so a container runtime cannot work there: copy everything to a tmpfs and switch_root.
# Stage 2 mounts proc, sysfs, devtmpfs, tmpfs and ONLY cgroup2 (no v1 hierarchy exists), enables
# every controller the kernel offers, runs /vm/guest-tests.sh and reports one line on the serial
# console that run-guest.sh waits for:
#     VEIL-GUEST-RESULT: PASS n=<ok count> skip=<skip count>
#     VEIL-GUEST-RESULT: FAIL <names of the failed checks, or what went wrong>
# then powers off.
export PATH=/usr/local/bin:/bin
export HOME=/root

finish() {
    echo "VEIL-GUEST-RESULT: $*"
    sync
    poweroff -f
    sleep 30  # poweroff -f does not return; should it, PID 1 must not exit (that panics)
}

if [ "$1" != stage2 ]; then
    mount -t proc proc /proc || finish "FAIL init: mount /proc"
    mkdir -p /newroot
    mount -t tmpfs -o mode=0755 newroot /newroot || finish "FAIL init: mount tmpfs /newroot"
    for entry in /* /.[!.]*; do
        case "$entry" in /newroot|/proc|/sys|/dev|'/.[!.]*') continue ;; esac
        cp -a "$entry" /newroot/ || finish "FAIL init: copy $entry to the tmpfs root"
    done
    mkdir -p /newroot/proc /newroot/sys /newroot/dev
    umount /proc
    exec switch_root /newroot /init stage2
    finish "FAIL init: switch_root"
fi

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
mount -t tmpfs -o mode=0755 run /run
mount -t tmpfs -o mode=1777 tmp /tmp
mkdir -p /sys/fs/cgroup
# nsdelegate as systemd mounts it; fall back to plain options on a kernel that lacks it.
mount -t cgroup2 -o nsdelegate cgroup2 /sys/fs/cgroup 2>/dev/null ||
    mount -t cgroup2 cgroup2 /sys/fs/cgroup || finish "FAIL init: mount cgroup2"
# One write per controller: a single write naming an unavailable controller would enable none.
for controller in cpu cpuset io memory pids hugetlb rdma misc; do
    echo "+$controller" > /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null ||
        echo "VEIL-GUEST: controller $controller not available"
done
hostname veil-guest
echo "VEIL-GUEST: kernel $(uname -r), $(nproc) cpus, $(sed -n 's/^MemTotal: *//p' /proc/meminfo) memory"
echo "VEIL-GUEST: cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.controllers)"
echo "VEIL-GUEST: subtree_control: $(cat /sys/fs/cgroup/cgroup.subtree_control)"

# The tests run as a background job so that this PID 1 sits in `wait`, which reaps every child,
# including container processes orphaned to it. Output goes to the console and to a file.
start=$(cut -d' ' -f1 /proc/uptime)
( sh /vm/guest-tests.sh; echo "$?" > /run/guest-tests.status ) 2>&1 < /dev/null | tee /run/guest-tests.out &
tests_job=$!
# veil.timeout=SECONDS on the kernel command line: give up (with a result line naming the reason)
# before the host kills qemu, and power off even when the host side is gone.
limit=$(sed -n 's/.*veil\.timeout=\([0-9][0-9]*\).*/\1/p' /proc/cmdline)
if [ -n "$limit" ]; then
    ( sleep "$limit"; finish "FAIL guest watchdog: the tests still ran after ${limit}s" ) &
fi
wait "$tests_job"
end=$(cut -d' ' -f1 /proc/uptime)
echo "VEIL-GUEST: tests took $(awk "BEGIN { print $end - $start }") s of guest time"

status=$(cat /run/guest-tests.status 2>/dev/null || echo none)
passed=$(grep -c '^ok ' /run/guest-tests.out)
skipped=$(grep -c '^skip ' /run/guest-tests.out)
failed=$(sed -n 's/^not ok \([^:]*\).*/\1/p' /run/guest-tests.out | tr '\n' ' ')
if [ -n "$failed" ]; then
    finish "FAIL ${failed% }"
elif [ "$status" != 0 ]; then
    finish "FAIL guest-tests.sh exited with status $status"
elif [ "$passed" -eq 0 ]; then
    finish "FAIL no check passed"
fi
finish "PASS n=$passed skip=$skipped"
