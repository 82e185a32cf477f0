#!/usr/bin/env bash
# make-pause-image.sh OUT.tar: an OCI image archive (for `ctr image import`) holding tests/pause/pause.c
# built with `gcc -static`, tag "pause", Entrypoint ["/pause"]: the pod sandbox image of the CRI tests.
# Built once per source and cached in CACHE_DIR (default /var/cache/veil). Prints OUT.tar's path.
set -euo pipefail
out=${1:?usage: make-pause-image.sh OUT.tar}
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
source_file="$root/tests/pause/pause.c"
cache_dir=${CACHE_DIR:-/var/cache/veil}
sum=$(cat "$source_file" "${BASH_SOURCE[0]}" | sha256sum | cut -d' ' -f1)
cached="$cache_dir/pause-image-$sum.tar"

if [ ! -s "$cached" ]; then
  mkdir -p "$cache_dir"
  work=$(mktemp -d /tmp/veil-pause.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  layout="$work/layout"
  umoci init --layout "$layout"
  umoci new --image "$layout:pause"
  umoci unpack --image "$layout:pause" "$work/bundle"
  rootfs="$work/bundle/rootfs"
  mkdir -p "$rootfs"/{proc,sys,dev,etc}
  gcc -static -Os -Wall -Werror -o "$rootfs/pause" "$source_file"
  strip "$rootfs/pause"
  umoci repack --image "$layout:pause" "$work/bundle"
  umoci config --image "$layout:pause" --config.entrypoint /pause --config.workingdir /
  umoci gc --layout "$layout"
  tmp_tar=$(mktemp "$cache_dir/.pause-image.XXXXXX")
  tar -C "$layout" -cf "$tmp_tar" .
  chmod 644 "$tmp_tar"
  mv -f "$tmp_tar" "$cached"
fi

if [ "$(realpath -m "$out")" != "$(realpath -m "$cached")" ]; then
  mkdir -p "$(dirname "$out")"
  cp -f "$cached" "$out"
fi
realpath "$out"
