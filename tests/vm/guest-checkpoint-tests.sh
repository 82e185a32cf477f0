#!/bin/sh
# The checkpoint checks of issue #16, run inside the systemd guest (tests/vm/run-systemd-guest.sh
# --script tests/vm/guest-checkpoint-tests.sh): this guest's kernel (Debian's cloud kernel) runs
# Debian's CRIU, which fails `criu check` on the host's. Output, to the serial console and
# /vm/out/results.txt, is TAP-like, as guest-systemd-tests.sh's:
#     ok N - NAME | not ok N - NAME: reason | ok N - NAME # SKIP reason
#     VEIL-GUEST-RESULT: PASS n=<ok count> skip=<skip count> | VEIL-GUEST-RESULT: FAIL ...
#
# VEIL_GUEST_FIXTURE=1 (in /vm/env) also writes /vm/out/fixture/: a small checkpoint made here by
# veil with crit's decoding of some of its images, which the host keeps as the test fixture of
# Tests/VeilCheckpointTests (tests/vm/make-checkpoint-fixture.sh).
# Not `set -e`: a failing command is a check's result, never the end of the run.
export PATH=/vm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
OUT=/vm/out
WORK=/run/veil-guest
mkdir -p "$OUT" "$WORK"
: > "$OUT/results.txt"

n=0
passed=0
skipped=0
failed=
emit() { echo "$1"; echo "$1" >> "$OUT/results.txt"; }
ok() { n=$((n + 1)); passed=$((passed + 1)); emit "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed="$failed $n"; emit "not ok $n - $1: $2"; }
skip() { n=$((n + 1)); skipped=$((skipped + 1)); emit "ok $n - $1 # SKIP $2"; }
check() { if [ -z "$2" ]; then ok "$1"; else not_ok "$1" "$2"; fi; }
section() { emit "# $(cut -d' ' -f1 /proc/uptime)s: $1"; }
oneline() { tr '\n' '|' | sed 's/|$//; s/|/ | /g' | cut -c1-400; }
show() { if [ -e "$1" ]; then oneline < "$1"; else echo "(no $1)"; fi; }

section "checks start: $(uname -r), $(criu --version 2>&1 | head -1)"
criu check > "$OUT/criu-check.txt" 2>&1
check "criu check passes in the guest" "$([ $? = 0 ] || show "$OUT/criu-check.txt")"

# --- CRIU alone: a process tree dumped and decoded (what the host's fixture is made of) -------------
section "criu dump of a process tree"
raw=$WORK/raw
mkdir -p "$raw/images"
# A static busybox sh (the loop) with secret-holder (static, two threads, a secret in its heap) as its
# child, a variable in both environments: what inspect, memparse and coredump look for. Static
# binaries from the payload keep the dump small enough to be the host's test fixture.
EXTRA=/vm/extra
VEIL_FIXTURE_ENV=hello-from-the-guest setsid "$EXTRA/busybox" sh -c "$EXTRA/secret-holder $raw/holder-counter &
i=0; while :; do i=\$((i + 1)); echo \$i > $raw/counter; $EXTRA/busybox sleep 0.2; done" < /dev/null > /dev/null 2>&1 &
loop=$!
sleep 2
criu dump -t "$loop" -D "$raw/images" -o dump.log -v4 > "$OUT/raw-dump.out" 2>&1
check "criu dump of a shell loop" "$([ $? = 0 ] || tail -5 "$raw/images/dump.log" | oneline)"
before=$(cat "$raw/counter")
criu restore -D "$raw/images" -o restore.log -d > "$OUT/raw-restore.out" 2>&1
rc=$?
sleep 1
after=$(cat "$raw/counter")
check "criu restore continues the loop" "$([ $rc = 0 ] && [ "$after" -gt "$before" ] || echo "restore exit $rc, counter $before then $after: $(tail -3 "$raw/images/restore.log" | oneline)")"
pkill -f 'raw/counter' 2> /dev/null
pkill -f 'secret-holder' 2> /dev/null

if [ "${VEIL_GUEST_FIXTURE:-0}" = 1 ]; then
    section "fixture"
    fixture=$OUT/fixture
    mkdir -p "$fixture/raw"
    cp -a "$raw/images/." "$fixture/raw/"
    # crit's decoding of every image it can decode, for the host's comparison with veil's.
    for image in "$raw/images"/*.img; do
        crit decode -i "$image" > "$fixture/raw/$(basename "$image" .img).crit.json" 2> /dev/null || rm -f "$fixture/raw/$(basename "$image" .img).crit.json"
    done
    crit x "$raw/images" ps > "$fixture/raw/crit-x-ps.txt" 2>&1
    crit x "$raw/images" fds > "$fixture/raw/crit-x-fds.txt" 2>&1
    crit x "$raw/images" mems > "$fixture/raw/crit-x-mems.txt" 2>&1
    emit "# fixture: $(du -sh "$fixture" | cut -f1) in $fixture"
fi

section "done"
dmesg > "$OUT/dmesg.txt" 2>&1
if [ -n "$failed" ]; then
    emit "VEIL-GUEST-RESULT: FAIL $(echo $failed | wc -w) not ok:$failed"
    status=1
elif [ "$passed" -eq 0 ]; then
    emit "VEIL-GUEST-RESULT: FAIL no check passed"
    status=1
else
    emit "VEIL-GUEST-RESULT: PASS n=$passed skip=$skipped"
    status=0
fi
touch /run/veil-guest-result
sync
exit $status
