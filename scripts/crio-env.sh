#!/usr/bin/env bash
# crio-env.sh DIR           set up a private CRI-O in DIR and print its environment
# crio-env.sh --teardown DIR  after stopping it: kill what it left running, unmount, remove DIR
#
# The CRI-O test rig (scripts/crio-rig.md). Setting up builds or finds CRI-O v1.26.4 with
# scripts/build-crio.sh (CRIO_SOURCE is passed on), writes every configuration file CRI-O and
# containers/{image,storage} read into DIR, loads the test images (scripts/make-pause-image.sh,
# scripts/make-busybox-image.sh) into DIR's image store with skopeo, and prints `export NAME=value`
# lines (also saved as DIR/crio.env) for `eval` or a test rig:
#   CRIO_BINARY CRIO_PINNS       the binaries (in build-crio.sh's cache)
#   CRIO_DIR                     DIR
#   CRIO_SOCKET                  the CRI endpoint (a unix socket path)
#   CRIO_CONFIG CRIO_CONFIG_DIR  crio.conf and its drop-in directory (empty: put runtime handlers there,
#                                e.g. what `veil install --crio --dry-run` prints)
#   CONTAINERS_REGISTRIES_CONF CONTAINERS_STORAGE_CONF
#                                containers/image and containers/storage read these instead of
#                                /etc/containers/*: give them to crio and to skopeo
#   CRIO_RUNTIME_ROOT            runc's --root for the default handler (runc --root ... list)
#   CRIO_CGROUP_PARENT           pass it as every pod's linux.cgroupParent (cgroupfs driver); the
#                                teardown removes that tree
#   CRIO_PAUSE_IMAGE CRIO_TEST_IMAGE  localhost/veil-test/{pause,busybox}:1, as the containerd rig
#   CRIO_LOG                     where the commands below send CRI-O's output
#   CRIO_COMMAND                 the start command (shell text: env ... crio --config ... --config-dir ...)
# Start it with `eval "$CRIO_COMMAND" &` (or the same argv from a rig) and wait until a CRI Version
# call answers on CRIO_SOCKET. Stop it with SIGTERM, then run `crio-env.sh --teardown DIR`: CRI-O
# leaves containers, conmon and mounts behind when it exits (remove pods over CRI first to stop them
# cleanly).
#
# Environment for setting up: CRIO_SOURCE (see build-crio.sh), CACHE_DIR, CRIO_STORAGE_DRIVER
# (overlay, the default, or vfs), CRIO_CNI (loopback, the default: pods get a network namespace
# with only lo; ptp: a veth and an address on a private /24 from host-local; or bridge: the same
# behind a Linux bridge of the rig's own (the gateway), as a kubeadm node's bridge CNI; ptp and
# bridge also turn on the host's net.ipv4.ip_forward until the teardown), CRIO_CGROUP_PARENT (default /veil-crio-<DIR's suffix>),
# CRIO_LOG_LEVEL (default info).
#
# Exit status: 0 done; 1 a failure; 2 bad usage; 3 skipped because build-crio.sh skipped (no CRI-O
# cached and no source): tests treat 3 as "skip".
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
say() { echo "crio-env.sh: $*" >&2; }
usage() { say "usage: crio-env.sh DIR | crio-env.sh --teardown DIR"; exit 2; }

# ---- teardown ---------------------------------------------------------------------------------
# Everything below DIR, found from what is running or mounted rather than from CRI-O's records
# (CRI-O is stopped, perhaps killed). Only processes whose command line names DIR are killed.
teardown() {
  local dir=$1 pid id parent point hierarchy
  [ -d "$dir" ] || return 0
  dir=$(realpath "$dir")
  local runtime_root="$dir/run/runc" cgroup_parent=""
  if [ -f "$dir/crio.env" ]; then
    cgroup_parent=$(. "$dir/crio.env" && echo "$CRIO_CGROUP_PARENT")
  fi
  # A CRI-O still running from DIR: stop it first (it would recreate what we remove).
  for pid in $(pgrep -x crio || true); do
    if tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "--config $dir/"; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # Containers runc still knows of: kill and delete them (pause containers too).
  if [ -d "$runtime_root" ]; then
    for id in $(runc --root "$runtime_root" list -q 2>/dev/null || true); do
      runc --root "$runtime_root" kill "$id" KILL 2>/dev/null || true
      runc --root "$runtime_root" delete --force "$id" 2>/dev/null || true
    done
  fi
  # conmon processes of this rig (their arguments name paths below DIR).
  for pid in $(pgrep -x conmon || true); do
    if tr '\0' '\n' < "/proc/$pid/cmdline" 2>/dev/null | grep -q "^$dir/"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  # Mounts below DIR (pinned namespaces, shm, overlay roots), deepest first, lazily.
  for point in $(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r); do
    umount -l "$point" 2>/dev/null || true
  done
  # The pods' cgroup tree, in every hierarchy (v1 controllers, named and unified ones).
  if [ -n "$cgroup_parent" ] && [ "$cgroup_parent" != / ]; then
    for hierarchy in /sys/fs/cgroup /sys/fs/cgroup/*; do
      parent="$hierarchy$cgroup_parent"
      [ -d "$parent" ] || continue
      find "$parent" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
  fi
  # The bridge CNI's bridge, then ptp's and bridge's IP forwarding, back to what the set-up found.
  if [ -f "$dir/bridge" ]; then
    ip link del "$(cat "$dir/bridge")" 2>/dev/null || true
  fi
  if [ -f "$dir/ip_forward.before" ]; then
    cat "$dir/ip_forward.before" > /proc/sys/net/ipv4/ip_forward || true
  fi
  rm -rf --one-file-system "$dir"
}

if [ "${1:-}" = --teardown ]; then
  [ $# -eq 2 ] || usage
  teardown "$2"
  exit 0
fi
[ $# -eq 1 ] || usage

# ---- set up -----------------------------------------------------------------------------------
mkdir -p "$1"
dir=$(realpath "$1")
storage_driver=${CRIO_STORAGE_DRIVER:-overlay}
cni=${CRIO_CNI:-loopback}
# (the default: DIR's random suffix, e.g. /tmp/veil-crio.AbC123 -> /veil-crio-AbC123)
suffix=$(basename "$dir"); suffix=${suffix##*.}
cgroup_parent=${CRIO_CGROUP_PARENT:-/veil-crio-$(tr -c 'A-Za-z0-9_\n-' '-' <<< "$suffix")}
log_level=${CRIO_LOG_LEVEL:-info}
pause_image=localhost/veil-test/pause:1
test_image=localhost/veil-test/busybox:1
case "$storage_driver" in overlay|vfs) ;; *) say "CRIO_STORAGE_DRIVER must be overlay or vfs"; exit 2 ;; esac
case "$cni" in loopback|ptp|bridge) ;; *) say "CRIO_CNI must be loopback, ptp or bridge"; exit 2 ;; esac
# A unix socket path must fit in sun_path (108 bytes, with the NUL).
if [ ${#dir} -gt 90 ]; then say "$dir is too long for a socket path below it"; exit 2; fi

# CRI-O's binaries: exit 3 (skip) passes through.
status=0
crio_cache=$("$script_dir/build-crio.sh") || status=$?
[ $status -eq 0 ] || exit $status

# What CRI-O runs, all from Debian: conmon (container monitor), runc, the CNI plugins; skopeo
# copies the images into the store.
missing=()
[ -x /usr/bin/conmon ] || missing+=(conmon)
command -v runc >/dev/null || missing+=(runc)
command -v skopeo >/dev/null || missing+=(skopeo)
command -v umoci >/dev/null || missing+=(umoci)
[ -x /usr/lib/cni/loopback ] || missing+=(containernetworking-plugins)
if [ ${#missing[@]} -gt 0 ]; then
  say "missing: apt-get install ${missing[*]}"
  exit 1
fi
runc_path=$(command -v runc)

mkdir -p "$dir"/{crio.conf.d,cni/net.d,cni/ipam,hooks.d,images,logs,storage,tmp,run}
chmod 700 "$dir"

# Image signature policy: accept anything (the images are built locally).
cat > "$dir/policy.json" <<'EOF'
{ "default": [ { "type": "insecureAcceptAnything" } ] }
EOF

# No registry is searched for short names, and none is contacted (the tests pull nothing).
cat > "$dir/registries.conf" <<'EOF'
unqualified-search-registries = []
EOF

# containers/storage: the rig's own image and container store. crio.conf repeats these; skopeo
# reads only this file (CONTAINERS_STORAGE_CONF).
cat > "$dir/storage.conf" <<EOF
[storage]
driver = "$storage_driver"
graphroot = "$dir/storage"
runroot = "$dir/run/storage"
EOF

# The pod network CRI-O's ocicni sets up in each pod's pinned network namespace.
if [ "$cni" = loopback ]; then
  cat > "$dir/cni/net.d/10-veil-crio.conflist" <<'EOF'
{ "cniVersion": "0.4.0", "name": "veil-crio", "plugins": [ { "type": "loopback" } ] }
EOF
else
  # ptp and bridge turn on the host's IP forwarding: remember the value, the teardown puts it back.
  cat /proc/sys/net/ipv4/ip_forward > "$dir/ip_forward.before"
  subnet="10.$((RANDOM % 51 + 200)).$((RANDOM % 256)).0/24"
  ipam="\"ipam\": { \"type\": \"host-local\", \"ranges\": [ [ { \"subnet\": \"$subnet\" } ] ], \"dataDir\": \"$dir/cni/ipam\" }"
  if [ "$cni" = ptp ]; then
    plugin="{ \"type\": \"ptp\", \"ipMasq\": false, $ipam }"
  else
    # The rig's own bridge (a name from DIR's suffix, within IFNAMSIZ); the teardown deletes it.
    bridge=vcrio$(tr -dc 'a-z0-9' <<< "$suffix" | tail -c 8)
    echo "$bridge" > "$dir/bridge"
    plugin="{ \"type\": \"bridge\", \"bridge\": \"$bridge\", \"isGateway\": true, \"ipMasq\": false, $ipam }"
  fi
  cat > "$dir/cni/net.d/10-veil-crio.conflist" <<EOF
{ "cniVersion": "0.4.0", "name": "veil-crio", "plugins": [ $plugin ] }
EOF
fi

# CRI-O itself. Every path it or skopeo writes is below DIR, except CNI's result cache
# (/var/lib/cni/results, one file per pod while it exists) and containers/image's blob-info
# cache (/var/lib/containers/cache, which podman shares).
#   cgroup_manager cgroupfs: PID 1 is not systemd here (and cgroups are hybrid v1).
#   conmon_cgroup "pod": required with cgroupfs; conmon goes to <pod parent>/crio-conmon-<id>.
#   drop_infra_ctr false: keep the pause container (veil's sandbox level needs it; DESIGN §7).
#   seccomp_use_default_when_empty false: no profile unless asked, as containerd's default.
#   irqbalance_config_file: a path that does not exist, so CRI-O leaves the host's irqbalance alone.
#   stream_port "0": exec/attach/port-forward streams on a free port of 127.0.0.1.
cat > "$dir/crio.conf" <<EOF
[crio]
root = "$dir/storage"
runroot = "$dir/run/storage"
storage_driver = "$storage_driver"
log_dir = "$dir/logs"
version_file = "$dir/run/version"
version_file_persist = "$dir/version"
clean_shutdown_file = "$dir/clean.shutdown"

[crio.api]
listen = "$dir/crio.sock"
stream_address = "127.0.0.1"
stream_port = "0"

[crio.runtime]
default_runtime = "runc"
cgroup_manager = "cgroupfs"
conmon = "/usr/bin/conmon"
conmon_cgroup = "pod"
drop_infra_ctr = false
seccomp_use_default_when_empty = false
log_level = "$log_level"
namespaces_dir = "$dir/run/ns"
pinns_path = "$crio_cache/bin/pinns"
container_exits_dir = "$dir/run/exits"
container_attach_socket_dir = "$dir/run/attach"
hooks_dir = ["$dir/hooks.d"]
irqbalance_config_file = "$dir/no-irqbalance"

[crio.runtime.runtimes.runc]
runtime_path = "$runc_path"
runtime_type = "oci"
runtime_root = "$dir/run/runc"
monitor_path = "/usr/bin/conmon"

[crio.image]
pause_image = "$pause_image"
pause_command = "/pause"
signature_policy = "$dir/policy.json"
big_files_temporary_dir = "$dir/tmp"

[crio.network]
network_dir = "$dir/cni/net.d"
plugin_dirs = ["/usr/lib/cni"]
EOF

# The test images: OCI archives (cached by their scripts), copied into the store by skopeo.
export CONTAINERS_REGISTRIES_CONF="$dir/registries.conf" CONTAINERS_STORAGE_CONF="$dir/storage.conf"
load_image() {
  local script=$1 tag=$2 name=$3 archive
  archive=$("$script_dir/$script" "$dir/images/$tag.tar")
  # --tmpdir: where containers/image unpacks the archive (default /var/tmp).
  skopeo --policy "$dir/policy.json" --tmpdir "$dir/tmp" copy --quiet "oci-archive:$archive:$tag" "containers-storage:$name" >&2
  rm -f "$archive"
}
load_image make-pause-image.sh pause "$pause_image"
load_image make-busybox-image.sh busybox "$test_image"

# The environment, shell-quoted, printed and saved.
q() { printf '%q' "$1"; }
crio_command="env CONTAINERS_REGISTRIES_CONF=$(q "$dir/registries.conf") CONTAINERS_STORAGE_CONF=$(q "$dir/storage.conf")"
crio_command+=" $(q "$crio_cache/bin/crio") --config $(q "$dir/crio.conf") --config-dir $(q "$dir/crio.conf.d")"
crio_command+=" >>$(q "$dir/crio.log") 2>&1"
{
  for pair in \
    "CRIO_BINARY=$crio_cache/bin/crio" "CRIO_PINNS=$crio_cache/bin/pinns" "CRIO_DIR=$dir" \
    "CRIO_SOCKET=$dir/crio.sock" "CRIO_CONFIG=$dir/crio.conf" "CRIO_CONFIG_DIR=$dir/crio.conf.d" \
    "CONTAINERS_REGISTRIES_CONF=$dir/registries.conf" "CONTAINERS_STORAGE_CONF=$dir/storage.conf" \
    "CRIO_RUNTIME_ROOT=$dir/run/runc" "CRIO_CGROUP_PARENT=$cgroup_parent" \
    "CRIO_PAUSE_IMAGE=$pause_image" "CRIO_TEST_IMAGE=$test_image" "CRIO_LOG=$dir/crio.log" \
    "CRIO_COMMAND=$crio_command"; do
    echo "export ${pair%%=*}=$(q "${pair#*=}")"
  done
} | tee "$dir/crio.env"
