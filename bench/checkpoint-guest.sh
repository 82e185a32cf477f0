#!/usr/bin/env bash
# bench/checkpoint-guest.sh VEIL [ROUNDS]: checkpoint and restore (issue #16) in the systemd guest,
# whose kernel runs Debian's CRIU (tests/vm/run-checkpoint-guest.sh): a container holding 64 MiB of
# touched memory checkpointed to a directory and restored, runc 1.1.5, veil native and veil's sandbox level interleaved
# round by round, medians and ratios to runc (target: veil <= 1.0x); then, on this host, `veil
# checkpoint inspect` of an exported archive of it (target <= 0.5 s). TCG emulation makes every
# figure in the guest slower than on hardware; the ratios are what compares.
# Writes bench/results/<UTC time>-checkpoint.md.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
veil=${1:?usage: bench/checkpoint-guest.sh VEIL [ROUNDS]}
rounds=${2:-5}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$here/results/$stamp-checkpoint.md
log=$(mktemp)
keep=$(mktemp -d)
trap 'rm -rf "$keep" "$log"' EXIT
"$here/../tests/vm/run-checkpoint-guest.sh" --veil "$veil" --bench "$rounds" --timeout 1200 --keep "$keep" > "$log" 2>&1
status=$?
# inspect on this host, of the archive the guest exported: the table (what needs no memory) and --all.
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
median() { sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)) }'; }
inspect_line="no archive came back"
archive=$keep/out/bench.tar
if [ -s "$archive" ]; then
    table=$(for _ in $(seq 11); do start=$(date +%s%N); "$veil" checkpoint inspect "$archive" > /dev/null; ms "$start"; done | median)
    all=$(for _ in $(seq 11); do start=$(date +%s%N); "$veil" checkpoint inspect --all "$archive" > /dev/null; ms "$start"; done | median)
    inspect_line="inspect of the exported archive ($(du -h "$archive" | cut -f1)) on this host, 11 runs: table median $table ms, --all median $all ms (target <= 500 ms)"
fi
{
    echo "# checkpoint and restore in the guest ($stamp)"
    echo
    echo "\`bench/checkpoint-guest.sh $veil $rounds\`: a container with 64 MiB of touched memory, checkpoint to a directory and restore, runc, veil native and veil's sandbox level interleaved, $rounds rounds, medians."
    echo
    grep "# bench:" "$log" | sed 's/^.*# bench: /- /'
    echo "- $inspect_line"
    echo
    echo "Guest checks: $(grep -o 'VEIL-GUEST-RESULT: .*' "$log" | head -1)"
} > "$out"
cat "$out"
exit $status
