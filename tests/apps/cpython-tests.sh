#!/bin/sh
# cpython-tests.sh: runs CPython's own regression tests (Debian's libpython3.11-testsuite) inside a
# container and prints one machine-readable summary, so the same run under runc and under veil can be
# compared module by module and case by case (Tests/VeilRuntimeTests/AppSuiteTests.swift does that).
#
#   cpython-tests.sh [-t SECONDS] MODULE...
#
# Each module runs in its own `python3 -m test` process (a hang or crash costs one module, not the
# run), bounded by regrtest's --timeout and, as a backstop, timeout(1). Output on stdout, after each
# module's own (indented, for the log):
#   MODULE <name> <result> <seconds> tests=<n> failures=<n> errors=<n> skipped=<n>
#   CASE <name> <FAIL|ERROR|SKIP> <test id> :: <the exception's last line, or the skip's reason>
# <result> is regrtest's verdict (SUCCESS, FAILURE, ENV_CHANGED, NO_TESTS_RAN, INTERRUPTED), or TIMEOUT
# / CRASH(<exit status>) when the process did not finish on its own. Needs a writable /tmp.
set -u

timeout_seconds=120
if [ "${1:-}" = "-t" ]; then timeout_seconds=$2; shift 2; fi
[ $# -gt 0 ] || { echo "usage: cpython-tests.sh [-t SECONDS] MODULE..." >&2; exit 2; }

work=$(mktemp -d /tmp/cpython-tests.XXXXXX)
export TMPDIR="$work"
# A read-only rootfs: no .pyc writes, and HOME somewhere writable.
export PYTHONDONTWRITEBYTECODE=1 HOME="$work"

summarize() {
  # $1 module, $2 junit xml, $3 result, $4 seconds
  python3 - "$@" <<'EOF'
import sys, xml.etree.ElementTree as ET
module, path, result, seconds = sys.argv[1:5]
counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
cases = []
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError):
    root = None
if root is not None:
    for case in root.iter("testcase"):
        counts["tests"] += 1
        name = case.get("name", "?")
        for kind, label in (("failure", "FAIL"), ("error", "ERROR")):
            found = case.find(kind)
            if found is not None:
                counts["failures" if kind == "failure" else "errors"] += 1
                # The exception's last line says why (the traceback is in the module's log above).
                lines = [line for line in (found.text or found.get("message", "")).splitlines() if line.strip()]
                cases.append((label, name, (lines[-1].strip() if lines else "")[:300]))
        skipped = case.find("skipped")
        if skipped is not None:
            counts["skipped"] += 1
            cases.append(("SKIP", name, (skipped.get("message") or skipped.text or "").strip().splitlines()[0][:300] if (skipped.get("message") or skipped.text or "").strip() else ""))
print(f"MODULE {module} {result} {seconds} " + " ".join(f"{k}={v}" for k, v in counts.items()))
for label, name, why in cases:
    print(f"CASE {module} {label} {name} :: {why}")
EOF
}

for module in "$@"; do
  xml="$work/$module.xml"
  log="$work/$module.log"
  started=$(date +%s)
  timeout -k 10 $((timeout_seconds + 30)) \
    python3 -m test --timeout "$timeout_seconds" --junit-xml "$xml" "$module" > "$log" 2>&1
  status=$?
  seconds=$(( $(date +%s) - started ))
  sed 's/^/    /' "$log"
  verdict=$(sed -n 's/^Tests\{0,1\} result: \([A-Z ,]*\).*/\1/p' "$log" | tail -n 1)
  case "$status:$verdict" in
    124:*|137:*) result=TIMEOUT ;;
    *:"") result="CRASH($status)" ;;
    # "FAILURE then SUCCESS" (a re-run) and "ENV CHANGED" keep their first word joined by _.
    *) result=$(echo "$verdict" | sed 's/,.*//; s/ *$//; s/ /_/g') ;;
  esac
  if grep -q "Timeout ([0-9:]*)!" "$log"; then result=TIMEOUT; fi
  summarize "$module" "$xml" "$result" "$seconds"
done
rm -rf "$work"
