#!/usr/bin/env bash
# make-checkpoint-fixture.sh --veil PATH: remakes Tests/VeilCheckpointTests/Fixtures, what the host's
# forensic tests read (inspect, memparse, dump and coredump need no CRIU): raw-tree/, a CRIU dump of
# a static busybox loop and tests/vm/secret-holder.c, and container.tar.gz, veil's archive of a
# native container running secret-holder, each with crit's decoding of its images beside it; made
# in the systemd guest by tests/vm/run-checkpoint-guest.sh. Run by hand when the fixture should
# change; the result is committed. As root.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ "${1:-}" = --veil ] && [ -n "${2:-}" ] || { echo "usage: make-checkpoint-fixture.sh --veil PATH" >&2; exit 2; }
"$here/run-checkpoint-guest.sh" --veil "$2" --fixture-out "$here/../../Tests/VeilCheckpointTests/Fixtures"
