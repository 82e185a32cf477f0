#!/usr/bin/env bash
# run-checkpoint-guest.sh --veil PATH [--keep DIR] [--fixture-out DIR] [--timeout SECS] [--bench ROUNDS]
#
# The checkpoint checks of issue #16 (tests/vm/guest-checkpoint-tests.sh) in the systemd guest
# (tests/vm/run-systemd-guest.sh), whose kernel runs Debian's CRIU (this host's fails `criu check`).
# The payload gains static binaries in /vm/extra: tests/vm/secret-holder.c and console-receiver.c
# (built here with scripts/build-static-c.sh) and the host's static busybox. --fixture-out DIR also asks the guest for
# the forensic tests' fixture (a CRIU dump of a process tree, and veil's archive of a container, with
# crit's decoding beside them) and copies it to DIR; --bench N also runs N rounds of the checkpoint
# benchmark (bench/checkpoint-guest.sh). Exit status as run-systemd-guest.sh's.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
veil= keep= fixture= timeout=600 bench=0
usage() { sed -n '2p' "$0" | sed 's/^# /usage: /' >&2; exit 3; }
while [ $# -gt 0 ]; do
    case "$1" in
        --veil) veil=${2:?}; shift 2 ;;
        --keep) keep=${2:?}; shift 2 ;;
        --fixture-out) fixture=${2:?}; shift 2 ;;
        --timeout) timeout=${2:?}; shift 2 ;;
        --bench) bench=${2:?}; shift 2 ;;
        *) usage ;;
    esac
done
[ -n "$veil" ] || usage
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$repo/scripts/build-static-c.sh" "$here/secret-holder.c" "$work/extra/secret-holder"
"$repo/scripts/build-static-c.sh" "$here/console-receiver.c" "$work/extra/console-receiver"
busybox=$(command -v busybox || true)
[ -n "$busybox" ] && { LANG=C ldd "$busybox" 2>&1 || true; } | grep -q 'not a dynamic executable' ||
    { echo "run-checkpoint-guest.sh: no static busybox on PATH (apt-get install busybox-static)" >&2; exit 3; }
cp "$busybox" "$work/extra/busybox"
[ -n "$keep" ] || keep=$work/keep
status=0
VEIL_GUEST_FIXTURE=$([ -n "$fixture" ] && echo 1 || echo 0) "$here/run-systemd-guest.sh" --veil "$veil" \
    --script "$here/guest-checkpoint-tests.sh" --payload-dir "$work/extra" --keep "$keep" --timeout "$timeout" --bench "$bench" || status=$?
if [ -n "$fixture" ] && [ "$status" = 0 ]; then
    rm -rf "$fixture"
    mkdir -p "$fixture"
    cp -a "$keep/out/fixture/." "$fixture/"
    echo "run-checkpoint-guest.sh: fixture in $fixture ($(du -sh "$fixture" | cut -f1))"
fi
exit "$status"
