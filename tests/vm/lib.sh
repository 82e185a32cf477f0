# Sourced by the qemu guest runners (run-guest.sh, run-systemd-guest.sh); bash. They define say()
# before sourcing it.

# vm_install_missing CHECK...: installs with apt-get what is missing; a CHECK is COMMAND:PACKAGE
# (the package that puts COMMAND on PATH) or dpkg:PACKAGE (a package that must be installed).
vm_install_missing() {
    local check missing=()
    for check in "$@"; do
        case "$check" in
            dpkg:*) dpkg -s "${check#dpkg:}" > /dev/null 2>&1 || missing+=("${check#dpkg:}") ;;
            *) command -v "${check%%:*}" > /dev/null || missing+=("${check#*:}") ;;
        esac
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    say "installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /dev/null
}

# vm_work_dir CACHE PREFIX: sets $work, a fresh directory under CACHE, and $qemu_pid (empty until
# the runner starts qemu under timeout(1)); on exit qemu is stopped and $work removed.
vm_work_dir() {
    mkdir -p "$1"
    work=$(mktemp -d "$1/$2.XXXXXX")
    qemu_pid=
    trap vm_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

vm_cleanup() {
    if [ -n "$qemu_pid" ] && kill -0 "$qemu_pid" 2> /dev/null; then
        # $qemu_pid is timeout(1): it passes TERM on to qemu, and KILLs it 5 s later if need be.
        kill -TERM "$qemu_pid" 2> /dev/null || true
        wait "$qemu_pid" 2> /dev/null || true
    fi
    rm -rf "$work"
}

# vm_wait_for_result SERIAL MARKER_REGEX GRACE [FIRST_REGEX]: follows qemu ($qemu_pid) until it ends,
# or GRACE seconds after the serial console showed MARKER_REGEX (the guest powers off right after
# it), or $timeout seconds; then stops it. Sets $qemu_status, and $first_check (seconds from
# $boot_started to the first line matching FIRST_REGEX) when given.
vm_wait_for_result() {
    local serial=$1 marker=$2 grace=$3 first=${4:-} marker_seen= deadline=$((SECONDS + timeout))
    first_check=
    while kill -0 "$qemu_pid" 2> /dev/null; do
        if [ -n "$first" ] && [ -z "$first_check" ] && grep -Eq "$first" "$serial"; then
            first_check=$((SECONDS - boot_started))
        fi
        if [ -z "$marker_seen" ] && grep -Eq "$marker" "$serial"; then
            marker_seen=$SECONDS
            deadline=$((SECONDS + grace))
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            [ -n "$marker_seen" ] || say "timed out after ${timeout}s: stopping qemu"
            break
        fi
        sleep 0.5
    done
    qemu_status=0
    # timeout(1) passes TERM on to qemu and KILLs it 5 s later if need be.
    kill -0 "$qemu_pid" 2> /dev/null && kill -TERM "$qemu_pid" 2> /dev/null
    wait "$qemu_pid" 2> /dev/null || qemu_status=$?
    qemu_pid=
}

# vm_verdict RESULTS CONSOLE TIMING: exits with the guest's verdict from the RESULTS log (its
# "VEIL-GUEST-RESULT: PASS|FAIL" line): 0 on PASS (1 if a "not ok" line sits beside it), 1 on FAIL,
# 2 with no result, showing the end of the CONSOLE log and qemu's output ($work/qemu.out).
vm_verdict() {
    local results=$1 console=$2 timing=$3 result
    result=$(grep '^VEIL-GUEST-RESULT: ' "$results" | tail -1 || true)
    case "$result" in
        "VEIL-GUEST-RESULT: PASS"*)
            if grep -q '^not ok ' "$results"; then
                say "the guest said PASS next to a 'not ok' line ($timing)"
                exit 1
            fi
            say "${result#VEIL-GUEST-RESULT: } ($timing)"
            exit 0 ;;
        "VEIL-GUEST-RESULT: FAIL"*)
            say "guest failed: ${result#VEIL-GUEST-RESULT: FAIL } ($timing)"
            grep '^not ok ' "$results" >&2 || true
            exit 1 ;;
        *)
            say "no result from the guest ($timing; qemu status $qemu_status); last lines of its console:"
            tail -n 40 "$console" >&2
            if [ -s "$work/qemu.out" ]; then say "qemu said:"; tail -n 20 "$work/qemu.out" >&2; fi
            exit 2 ;;
    esac
}
