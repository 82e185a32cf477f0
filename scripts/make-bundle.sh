#!/usr/bin/env bash
# make-bundle.sh DIR [ARGS...]: an OCI bundle with a busybox-static rootfs.
# config.json comes from `veil spec` (VEIL, default: the release build) when it exists, else `runc spec`;
# ARGS, when given, replace process.args and turn the terminal off.
set -euo pipefail
dir=${1:?usage: make-bundle.sh DIR [ARGS...]}
shift
busybox=$(command -v busybox)
mkdir -p "$dir/rootfs"/{bin,proc,sys,dev,etc,tmp,root}
cp "$busybox" "$dir/rootfs/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$dir/rootfs/bin/$applet"
done
mkdir -p "$dir/rootfs/usr"; ln -sfn ../bin "$dir/rootfs/usr/bin"; ln -sfn bin "$dir/rootfs/sbin"
echo 'root:x:0:0:root:/root:/bin/sh' > "$dir/rootfs/etc/passwd"
echo 'root:x:0:' > "$dir/rootfs/etc/group"
veil=${VEIL:-$(cd "$(dirname "$0")/.." && pwd)/.build/release/veil}
rm -f "$dir/config.json"
if [ -x "$veil" ]; then (cd "$dir" && "$veil" spec); else (cd "$dir" && runc spec); fi
if [ $# -gt 0 ]; then
  # Through argv, so arguments may hold newlines and look like jq's own options.
  args=$(python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@")
  jq --argjson a "$args" '.process.args = $a | .process.terminal = false' "$dir/config.json" > "$dir/config.json.new"
  mv "$dir/config.json.new" "$dir/config.json"
fi
