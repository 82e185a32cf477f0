#!/usr/bin/env bash
# bench/systemd-guest.sh VEIL [ROUNDS]: the systemd cgroup driver's cost, in the qemu guest that
# boots Debian 12 with systemd 252 as PID 1 (tests/vm/run-systemd-guest.sh): create+start+delete of
# /bin/true with --systemd-cgroup, runc, veil native and veil sandbox interleaved round by round,
# medians and ratios to runc (#15's target: veil <= 1.0x runc, which pays D-Bus round trips too).
# TCG emulation makes every figure slower than on hardware; the ratios are what compares.
# Writes bench/results/<UTC time>-systemd.md. Exit status: the guest run's.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
veil=${1:?usage: bench/systemd-guest.sh VEIL [ROUNDS]}
rounds=${2:-15}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$here/results/$stamp-systemd.md
log=$(mktemp)
"$here/../tests/vm/run-systemd-guest.sh" --veil "$veil" --bench "$rounds" > "$log" 2>&1
status=$?
{
    echo "# systemd cgroup driver in the guest ($stamp)"
    echo
    echo "\`bench/systemd-guest.sh $veil $rounds\`: create+start+delete of /bin/true with --systemd-cgroup, $rounds interleaved rounds, medians."
    echo
    grep -E "^# (systemd|image|containerd)" "$log" | sed 's/^# /    /'
    echo
    grep "# bench:" "$log" | sed 's/^.*# bench: /- /'
    echo
    echo "One traced create, start and delete per veil level (\`--debug\`: milliseconds since each command started):"
    echo
    grep "# trace:" "$log" | sed 's/^.*# trace: /    /'
    echo
    echo "Guest checks: $(grep -o 'VEIL-GUEST-RESULT: .*' "$log" | head -1)"
} > "$out"
cat "$out"
rm -f "$log"
exit $status
