#!/usr/bin/env bash
# build-crio.sh [SOURCE]: CRI-O v1.26.4 (`crio`) and its namespace-pinning helper (`pinns`), built
# from source for the CRI-O test rig (scripts/crio-env.sh, scripts/crio-rig.md); prints the cache
# directory. Built once and cached OUTSIDE the clone, keyed by its inputs (the pinned commit, the
# build tags, the Go version, this script's text, the local patches):
#   ${CACHE_DIR:-/var/cache/veil}/crio-<key>/bin/{crio,pinns}
#   ${CACHE_DIR:-/var/cache/veil}/crio-<key>/etc/crio.conf.reference   (`crio config`: every option)
#   ${CACHE_DIR:-/var/cache/veil}/crio-<key>/inputs                     (what the key was made of)
# The build runs in a temporary directory next to it and is renamed into place only when complete
# (`.complete` marker), so an interrupted build never looks cached; concurrent callers wait on a lock.
#
# SOURCE (argument, or the CRIO_SOURCE environment variable) is a git repository holding the
# pinned commit: a clone, or the bare mirror the library's `fetch github:cri-o/cri-o` makes
# (/work/.mirror/cri-o+cri-o/repo). Such a snapshot may lack a few large blobs; the ones it lacks
# are left out of the tree (v1.26.4's snapshot lacks vendor/github.com/aws/aws-sdk-go/service/ec2/
# api.go, which only a release tool imports), and the build fails if `crio` needs one.
#
# Exit status: 0 the cache directory is printed; 1 the build failed (or a tool is missing);
# 2 bad usage or a source without the pinned commit; 3 skipped: nothing cached and no source given
# (CI machines cannot fetch; tests treat 3 as "skip", not as a failure).
#
# Environment: CRIO_SOURCE, CACHE_DIR, CRIO_GOCACHE (a Go build cache to keep between builds; by
# default a throw-away one inside the build directory), CRIO_BUILD_JOBS (go build -p; default 1:
# the machine's two cores are shared with other builds).
#
# Needs, to build: Debian 12's golang-go (Go 1.19; v1.26.4 is the newest CRI-O it builds),
# gcc with glibc's static libc (libc6-dev), libseccomp-dev, patch, git.
set -euo pipefail

# What is built: CRI-O's v1.26.4 tag, pinned to its commit so that the cache key needs no source.
crio_tag=v1.26.4
crio_commit=7b4340777efe2eaf4a6ec7541a0a178cec30ca64
# Build tags: no ostree, no btrfs or devicemapper graph drivers (Debian 12 lacks or we do not want
# their C libraries), OpenPGP in Go instead of gpgme, seccomp through libseccomp (libseccomp-dev).
# btrfs_noversion / libdm_no_deferred_remove are what CRI-O's Makefile adds alongside.
build_tags=(containers_image_ostree_stub containers_image_openpgp exclude_graphdriver_btrfs
  exclude_graphdriver_devicemapper btrfs_noversion libdm_no_deferred_remove seccomp)

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
patch_dir="$script_dir/crio-patches"
cache_root=${CACHE_DIR:-/var/cache/veil}
source_repo=${1:-${CRIO_SOURCE:-}}
jobs=${CRIO_BUILD_JOBS:-1}

say() { echo "build-crio.sh: $*" >&2; }

if [ $# -gt 1 ]; then
  say "usage: build-crio.sh [SOURCE-GIT-REPOSITORY]"
  exit 2
fi

# The inputs that decide what gets built, one per line, except Go's version (added below, because
# a machine without Go can still use a cached build).
base_inputs() {
  echo "crio $crio_tag $crio_commit"
  echo "tags ${build_tags[*]}"
  echo "script $(sha256sum < "${BASH_SOURCE[0]}" | cut -d' ' -f1)"
  local patch
  for patch in "$patch_dir"/*.patch; do
    [ -e "$patch" ] || continue
    echo "patch $(basename "$patch") $(sha256sum < "$patch" | cut -d' ' -f1)"
  done
}
base=$(base_inputs)

# A cached build whose inputs match, given Go's version; or, without Go, any Go version.
find_cached() {
  local go_line=$1 dir
  if [ -n "$go_line" ]; then
    key=$(printf '%s\n%s\n' "$base" "$go_line" | sha256sum | cut -c1-16)
    target="$cache_root/crio-$key"
    [ -f "$target/.complete" ] && return 0
    return 1
  fi
  for dir in "$cache_root"/crio-*/; do
    dir=${dir%/}
    [ -f "$dir/.complete" ] || continue
    if [ "$(grep -v '^go ' "$dir/inputs")" = "$base" ]; then
      target=$dir
      return 0
    fi
  done
  return 1
}

go_line=""
if command -v go >/dev/null; then
  go_line="go $(go env GOVERSION)"
fi
if find_cached "$go_line"; then
  echo "$target"
  exit 0
fi

# Nothing cached: a build needs the source.
if [ -z "$source_repo" ]; then
  say "skipping: no CRI-O source (nothing cached in $cache_root/crio-*; pass a git repository" \
    "holding $crio_tag, e.g. the mirror of \`fetch github:cri-o/cri-o\`, as the argument or CRIO_SOURCE)"
  exit 3
fi
if ! git -C "$source_repo" rev-parse --git-dir >/dev/null 2>&1; then
  say "$source_repo is not a git repository"
  exit 2
fi
if ! git -C "$source_repo" cat-file -e "$crio_commit^{commit}" 2>/dev/null; then
  say "$source_repo does not hold CRI-O $crio_tag (commit $crio_commit)"
  exit 2
fi
# A tag of that name pointing elsewhere means the repository is not CRI-O's (or was rewritten).
tagged=$(git -C "$source_repo" rev-parse -q --verify "refs/tags/$crio_tag^{commit}" || true)
if [ -n "$tagged" ] && [ "$tagged" != "$crio_commit" ]; then
  say "$source_repo: $crio_tag is $tagged, expected $crio_commit"
  exit 2
fi

# Tools. Go must be there now; its version goes into the key.
missing=()
command -v go >/dev/null || missing+=(golang-go)
command -v gcc >/dev/null || missing+=(gcc)
command -v patch >/dev/null || missing+=(patch)
[ -f /usr/include/seccomp.h ] || missing+=(libseccomp-dev)
[ -n "$(gcc -print-file-name=libc.a 2>/dev/null | grep /)" ] || missing+=(libc6-dev)
if [ ${#missing[@]} -gt 0 ]; then
  say "missing build tools: apt-get install ${missing[*]}"
  exit 1
fi
go_line="go $(go env GOVERSION)"
case "$go_line" in
  "go go1.19"*) ;;
  *) say "warning: $go_line; CRI-O $crio_tag is known to build with Debian 12's Go 1.19" ;;
esac

mkdir -p "$cache_root"
exec 9>"$cache_root/.crio-build.lock"
flock 9
# Another caller may have built it while we waited.
if find_cached "$go_line"; then
  echo "$target"
  exit 0
fi

# Leftovers of interrupted builds (we hold the lock, so nobody is building them). Go's module
# cache is read-only, hence the chmod before deleting.
for stale in "$cache_root"/.crio-build-*; do
  [ -e "$stale" ] || continue
  chmod -R u+w "$stale" 2>/dev/null || true
  rm -rf --one-file-system "$stale"
done
rm -rf --one-file-system "$target"

work=$(mktemp -d "$cache_root/.crio-build-$key.XXXXXX")
cleanup() {
  chmod -R u+w "$work" 2>/dev/null || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT
started=$(date +%s)

# 1. The source tree: `git archive` of the pinned commit, leaving out the blobs the repository
#    does not have (a snapshot may be partial). git archive still complains about an excluded
#    missing blob while it walks the tree, so its messages go to a log shown only on failure.
say "extracting $crio_tag ($crio_commit) from $source_repo"
# Every blob of the commit ("<mode> blob <object>\t<path>"), then the objects the repository lacks
# (one cat-file for all of them), then their paths.
git -C "$source_repo" -c core.quotePath=false ls-tree -r "$crio_commit" > "$work/tree"
awk '$2 == "blob" { print $3 }' "$work/tree" |
  git -C "$source_repo" cat-file --batch-check | awk '$2 == "missing" { print $1 }' > "$work/absent"
excludes=()
while IFS= read -r path; do
  say "left out (blob absent from the repository): $path"
  excludes+=(":(exclude,literal)$path")
done < <(awk -F'\t' 'NR == FNR { absent[$1]; next } { split($1, meta, " "); if (meta[3] in absent) print $2 }' \
           "$work/absent" "$work/tree")
mkdir "$work/src"
if ! git -C "$source_repo" archive --format=tar "$crio_commit" -- . "${excludes[@]}" \
     2>"$work/archive.log" | tar -C "$work/src" -x; then
  say "git archive failed:"
  cat "$work/archive.log" >&2
  exit 1
fi

# 2. veil's local patches (each says why at its top).
for patch in "$patch_dir"/*.patch; do
  [ -e "$patch" ] || continue
  say "applying $(basename "$patch")"
  patch -p1 -d "$work/src" --forward --batch --quiet < "$patch"
done

# 3. crio: vendored modules only (no network), cgo for seccomp, stripped; the build date is the
#    commit's, so the binary does not change with the day it was built.
mkdir -p "$work/out/bin" "$work/out/etc"
build_date=$(TZ=UTC git -C "$source_repo" show -s --format=%cd --date=format-local:%Y-%m-%dT%H:%M:%SZ "$crio_commit")
say "go build ./cmd/crio with $go_line, -p $jobs (about 7 minutes cold on this machine)"
(
  cd "$work/src"
  export GOFLAGS=-mod=vendor GOPROXY=off GOTOOLCHAIN=local CGO_ENABLED=1
  export GOPATH="$work/gopath" GOCACHE=${CRIO_GOCACHE:-$work/gocache} TZ=UTC
  nice -n 10 go build -p "$jobs" -trimpath \
    -ldflags "-s -w -X github.com/cri-o/cri-o/internal/version.buildDate=$build_date" \
    -tags "${build_tags[*]}" -o "$work/out/bin/crio" ./cmd/crio
) >"$work/go-build.log" 2>&1 || {
  say "go build failed; last lines of the log:"
  tail -n 40 "$work/go-build.log" >&2
  exit 1
}

# 4. pinns: a small static C program (CRI-O's pinns/Makefile flags).
say "gcc pinns"
gcc -std=c99 -Os -Wall -Werror -Wextra -static -o "$work/out/bin/pinns" "$work/src"/pinns/src/*.c
strip -s "$work/out/bin/pinns"

# 5. The config skeleton: CRI-O's own rendering of every option and its default, for reference
#    (scripts/crio-env.sh writes the rig's actual config). --config /dev/null: ignore the host's.
"$work/out/bin/crio" --config /dev/null --config-dir "$work/out/etc" config \
  > "$work/out/etc/crio.conf.reference" 2>/dev/null || say "warning: \`crio config\` failed; no crio.conf.reference"
"$work/out/bin/crio" --version > "$work/out/version"

printf '%s\n%s\n' "$base" "$go_line" > "$work/out/inputs"
date -u +%FT%TZ > "$work/out/.complete"
mv -T "$work/out" "$target"
say "built in $(( $(date +%s) - started )) s: $target"
echo "$target"
