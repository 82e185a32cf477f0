#!/usr/bin/env bash
# build-static-c.sh SRC OUT: compiles one C file into a static binary (gcc -static -O2), the way
# the in-container helpers (tests/security/probe.c, bench/syscalls.c) are built. Binaries are
# never committed: callers build into a temp or cache dir.
set -euo pipefail
src=${1:?usage: build-static-c.sh SRC OUT}
out=${2:?usage: build-static-c.sh SRC OUT}
command -v gcc >/dev/null || { echo "build-static-c.sh: gcc not found (apt-get install gcc libc6-dev)" >&2; exit 1; }
mkdir -p "$(dirname "$out")"
gcc -static -O2 -Wall -Wextra -Wno-format-truncation -o "$out.tmp.$$" "$src"
mv -f "$out.tmp.$$" "$out"
