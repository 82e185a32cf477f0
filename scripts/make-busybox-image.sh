#!/usr/bin/env bash
# make-busybox-image.sh OUT.tar: an OCI image archive (for `ctr image import`) holding busybox-static
# with its applet symlinks, tag "busybox", Entrypoint unset, Cmd ["sh"]. Prints OUT.tar's path.
# The archive is built once per busybox binary and cached in CACHE_DIR (default /var/cache/veil),
# keyed by the binary's sha256, because umoci pack/unpack takes seconds and tests call this often.
set -euo pipefail
out=${1:?usage: make-busybox-image.sh OUT.tar}
busybox=${BUSYBOX:-$(command -v busybox)}
cache_dir=${CACHE_DIR:-/var/cache/veil}
sum=$(sha256sum "$busybox" | cut -d' ' -f1)
cached="$cache_dir/busybox-image-$sum.tar"

if [ ! -s "$cached" ]; then
  mkdir -p "$cache_dir"
  work=$(mktemp -d /tmp/veil-image.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  layout="$work/layout"
  umoci init --layout "$layout"
  umoci new --image "$layout:busybox"
  # Running as root, so a plain (non-rootless) unpack keeps ownership as root:root in the layer.
  umoci unpack --image "$layout:busybox" "$work/bundle"
  rootfs="$work/bundle/rootfs"
  mkdir -p "$rootfs"/{bin,proc,sys,dev,etc,tmp,root,usr}
  cp "$busybox" "$rootfs/bin/busybox"
  for applet in $("$busybox" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$rootfs/bin/$applet"
  done
  ln -sfn ../bin "$rootfs/usr/bin"
  ln -sfn bin "$rootfs/sbin"
  echo 'root:x:0:0:root:/root:/bin/sh' > "$rootfs/etc/passwd"
  echo 'root:x:0:' > "$rootfs/etc/group"
  chmod 1777 "$rootfs/tmp"
  umoci repack --image "$layout:busybox" "$work/bundle"
  umoci config --image "$layout:busybox" --config.cmd sh \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.workingdir /
  umoci gc --layout "$layout"
  # Write under a temporary name and rename, so a concurrent caller never sees a half-written archive.
  tmp_tar=$(mktemp "$cache_dir/.busybox-image.XXXXXX")
  tar -C "$layout" -cf "$tmp_tar" .
  chmod 644 "$tmp_tar"
  mv -f "$tmp_tar" "$cached"
fi

if [ "$(realpath -m "$out")" != "$(realpath -m "$cached")" ]; then
  mkdir -p "$(dirname "$out")"
  cp -f "$cached" "$out"
fi
realpath "$out"
