#!/bin/sh
# Builds veil at another revision (e.g. the one before a change) for a side-by-side benchmark:
#   bench/baseline.sh REV            prints the path of that revision's veil (veil-warden beside it)
#   make bench BASELINE=REV          bench.py and syscalls.py with --baseline-veil "$(bench/baseline.sh REV)"
# The binaries are kept in $VEIL_CACHE/baseline/<commit>/bin (default /var/cache/veil), outside the
# clone, and reused while the commit is the same; they are built in a git worktree beside them
# (src/), which a cold build takes ~20 minutes for on 2 cores (grpc and protobuf's C++). Progress
# goes to stderr, only the path to stdout.
set -eu
rev=${1:?usage: bench/baseline.sh REV}
repo=$(cd "$(dirname "$0")/.." && pwd)
commit=$(git -C "$repo" rev-parse --verify "$rev^{commit}")
dir=${VEIL_CACHE:-/var/cache/veil}/baseline/$commit
if [ ! -x "$dir/bin/veil" ] || [ ! -x "$dir/bin/veil-warden" ]; then
    mkdir -p "$dir/bin"
    [ -d "$dir/src" ] || git -C "$repo" worktree add --detach "$dir/src" "$commit" >&2
    for product in veil veil-warden; do
        echo "baseline.sh: building $product at $commit in $dir/src" >&2
        (cd "$dir/src" && swift build -c release --static-swift-stdlib --product "$product") >&2
        cp "$dir/src/.build/release/$product" "$dir/bin/$product.new" && mv "$dir/bin/$product.new" "$dir/bin/$product"
    done
fi
echo "$dir/bin/veil"
