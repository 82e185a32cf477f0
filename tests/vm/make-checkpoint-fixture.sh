#!/usr/bin/env bash
# make-checkpoint-fixture.sh --veil PATH: remakes Tests/VeilCheckpointTests/Fixtures/raw-tree, the
# checkpoint the host's forensic tests read (inspect, memparse, dump, coredump need no CRIU): a CRIU
# dump made in the systemd guest (tests/vm/guest-checkpoint-tests.sh with VEIL_GUEST_FIXTURE=1) of a
# static busybox loop and tests/vm/secret-holder.c, with crit's JSON of each image beside it.
# Run by hand when the fixture should change; the result is committed. As root.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
veil=
while [ $# -gt 0 ]; do
    case "$1" in
        --veil) veil=${2:?}; shift 2 ;;
        *) echo "usage: make-checkpoint-fixture.sh --veil PATH" >&2; exit 2 ;;
    esac
done
[ -n "$veil" ] || { echo "usage: make-checkpoint-fixture.sh --veil PATH" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$repo/scripts/build-static-c.sh" "$here/secret-holder.c" "$work/extra/secret-holder"
cp /bin/busybox "$work/extra/busybox"
VEIL_GUEST_FIXTURE=1 "$here/run-systemd-guest.sh" --veil "$veil" --script "$here/guest-checkpoint-tests.sh" \
    --payload-dir "$work/extra" --keep "$work/keep" --timeout 600
target=$repo/Tests/VeilCheckpointTests/Fixtures/raw-tree
rm -rf "$target"
mkdir -p "$target"
cp -a "$work/keep/out/fixture/raw/." "$target/"
echo "make-checkpoint-fixture.sh: wrote $target ($(du -sh "$target" | cut -f1))"
