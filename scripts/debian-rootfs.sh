#!/usr/bin/env bash
# debian-rootfs.sh: a Debian rootfs (debootstrap, minbase) holding the workloads the end-to-end tests
# run (python3, nginx, redis, CPython's own test suite); prints its path. Built once and cached
# OUTSIDE the clone, keyed by its inputs (suite, packages, architecture, this script's own text):
#   ${CACHE_DIR:-/var/cache/veil}/rootfs/<key>/
# The build goes to a temporary directory next to it and is renamed into place only when complete,
# so an interrupted build never looks cached. Concurrent callers wait on a lock instead of building twice.
# Tests share the result read-only: never write into it.
#
# Environment: SUITE (default bookworm), MIRROR (default: the URIs: line of apt's deb822 sources;
# a commented snapshot address above it does not answer here), CACHE_DIR.
set -euo pipefail

suite=${SUITE:-bookworm}
packages=(python3 nginx-light redis-server redis-tools procps libpython3.11-testsuite)
arch=$(dpkg --print-architecture)
cache_dir=${CACHE_DIR:-/var/cache/veil}/rootfs

key=$( { echo "$suite"; echo "$arch"; printf '%s\n' "${packages[@]}"; cat "$0" "$(dirname "$0")/build-dir-lib.sh"; } | sha256sum | cut -c1-16)
target="$cache_dir/$key"

if [ -f "$target/.veil-rootfs-complete" ]; then
  echo "$target"
  exit 0
fi

command -v debootstrap >/dev/null || { echo "debian-rootfs.sh: debootstrap is not installed (make deps)" >&2; exit 1; }

mirror=$("$(dirname "$0")/debian-mirror.sh")

mkdir -p "$cache_dir"
exec 9>"$cache_dir/.lock"
flock 9
# Another caller may have finished it while we waited.
if [ -f "$target/.veil-rootfs-complete" ]; then
  echo "$target"
  exit 0
fi

. "$(dirname "$0")/build-dir-lib.sh"
remove_stale_builds "$cache_dir/.build-"
rm -rf --one-file-system "$target"

work=$(mktemp -d "$cache_dir/.build-$key.XXXXXX")
trap 'remove_build_dir "$work"' EXIT
chmod 755 "$work"

started=$(date +%s)
echo "debian-rootfs.sh: debootstrap $suite ($arch) from $mirror into $work" >&2
include=$(IFS=,; echo "${packages[*]}")
if ! debootstrap --variant=minbase --arch="$arch" --include="$include" "$suite" "$work" "$mirror" > "$work.log" 2>&1; then
  echo "debian-rootfs.sh: debootstrap failed; last lines of $work.log:" >&2
  tail -n 30 "$work.log" >&2
  exit 1
fi
rm -f "$work.log"

# What a container engine would bind-mount (debootstrap writes none): programs and test suites
# resolve "localhost" (CPython's asyncio and socket tests do).
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$work/etc/hosts"

# Nothing the tests need, and it halves the copy a test might make.
rm -rf "$work"/var/cache/apt/archives/*.deb "$work"/var/lib/apt/lists/* "$work"/usr/share/doc/* "$work"/usr/share/man/*
date -u +%FT%TZ > "$work/.veil-rootfs-complete"

mv -T "$work" "$target"
trap - EXIT
echo "debian-rootfs.sh: built in $(( $(date +%s) - started )) s" >&2
echo "$target"
