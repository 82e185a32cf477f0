# guest-report.sh: the TAP-like reporting of the guest check scripts (guest-systemd-tests.sh,
# guest-checkpoint-tests.sh), sourced from the payload (/vm/guest-report.sh). Lines go to the
# console and to $OUT/results.txt:
#     ok N - NAME | not ok N - NAME: reason | ok N - NAME # SKIP reason | # comment
# and, from report_result, the last line run-systemd-guest.sh waits for:
#     VEIL-GUEST-RESULT: PASS n=<ok count> skip=<skip count> | VEIL-GUEST-RESULT: FAIL <count> not ok: <numbers>
mkdir -p "$OUT"
: > "$OUT/results.txt"
n=0
passed=0
skipped=0
failed=
emit() { echo "$1"; echo "$1" >> "$OUT/results.txt"; }
ok() { n=$((n + 1)); passed=$((passed + 1)); emit "ok $n - $1"; }
not_ok() { n=$((n + 1)); failed="$failed $n"; emit "not ok $n - $1: $2"; }
skip() { n=$((n + 1)); skipped=$((skipped + 1)); emit "ok $n - $1 # SKIP $2"; }
# check NAME MISMATCHES: ok when the accumulated mismatch text is empty.
check() { if [ -z "$2" ]; then ok "$1"; else not_ok "$1" "$2"; fi; }
# A comment line with the guest's uptime, to see where the time goes.
section() { emit "# $(cut -d' ' -f1 /proc/uptime)s: $1"; }
# One line of a file or of text (newlines become " | "), for messages.
oneline() { tr '\n' '|' | sed 's/|$//; s/|/ | /g' | cut -c1-400; }
show() { if [ -e "$1" ]; then oneline < "$1"; else echo "(no $1)"; fi; }

# report_result: the result line, then the marker the unit's ExecStopPost looks for; exits with
# the script's status.
report_result() {
    if [ -n "$failed" ]; then
        emit "VEIL-GUEST-RESULT: FAIL $(echo $failed | wc -w) not ok:$failed"
        report_status=1
    elif [ "$passed" -eq 0 ]; then
        emit "VEIL-GUEST-RESULT: FAIL no check passed"
        report_status=1
    else
        emit "VEIL-GUEST-RESULT: PASS n=$passed skip=$skipped"
        report_status=0
    fi
    touch /run/veil-guest-result
    sync
    exit $report_status
}
