#!/usr/bin/env bash
# crio-smoke.sh: proves the CRI-O rig works. Sets up a private CRI-O with scripts/crio-env.sh in a
# temporary directory, starts it, and through CRI (veil-cri-driver, the project's own client:
# crictl is not in Debian 12) runs
#   1. a pod (pause container under runc, pinned namespaces, loopback CNI) and a busybox container
#      in it: it runs, logs, answers ExecSync, and runc knows both with conmon as their parent;
#   2. a privileged host-network pod and a privileged container (exercises
#      scripts/crio-patches/0002: the container gets CRI-O's own bounding set);
# then removes everything over CRI, stops CRI-O and tears the directory down. One line per check;
# exits 0 when all passed, 1 on a failure, 3 when skipped (no CRI-O cached and no source).
#
# Environment: CRIO_SOURCE (for a first build, see build-crio.sh), VEIL_CRI_DRIVER (default: the
# one `swift build -c release` or `--build-tests` left in .build), KEEP=1 keeps the directory and
# CRI-O's log for a look afterwards (run `crio-env.sh --teardown DIR` later).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
say() { echo "crio-smoke.sh: $*" >&2; }

driver=${VEIL_CRI_DRIVER:-}
if [ -z "$driver" ]; then
  for candidate in "$root/.build/release/veil-cri-driver" "$root/.build/debug/veil-cri-driver"; do
    if [ -x "$candidate" ]; then driver=$candidate; break; fi
  done
fi
if [ -z "$driver" ]; then
  say "no veil-cri-driver (swift build --build-tests builds it; or set VEIL_CRI_DRIVER)"
  exit 1
fi
command -v jq >/dev/null || { say "jq is missing: apt-get install jq"; exit 1; }

dir=$(mktemp -d /tmp/veil-crio.XXXXXX)
crio_pid=""
finish() {
  local status=$?
  if [ -n "$crio_pid" ]; then kill -TERM "$crio_pid" 2>/dev/null || true; wait "$crio_pid" 2>/dev/null || true; fi
  if [ "${KEEP:-0}" = 1 ]; then
    say "kept $dir (CRI-O's log: $dir/crio.log); remove it with: $root/scripts/crio-env.sh --teardown $dir"
  else
    "$root/scripts/crio-env.sh" --teardown "$dir"
  fi
  exit $status
}
trap finish EXIT

# The rig's environment (exit 3, "skip", passes through).
status=0
env_text=$("$root/scripts/crio-env.sh" "$dir") || status=$?
[ $status -eq 0 ] || exit $status
eval "$env_text"

failures=0
check() { # check NAME CONDITION-COMMAND...
  local name=$1; shift
  if "$@"; then echo "ok    $name"; else echo "FAIL  $name"; failures=$((failures + 1)); fi
}
cri() { "$driver" "$CRIO_SOCKET" "$@"; }

# Start CRI-O exactly as CRIO_COMMAND says (env ... crio --config ... --config-dir ...), here as
# an argv so that $! is crio's own pid.
env CONTAINERS_REGISTRIES_CONF="$CONTAINERS_REGISTRIES_CONF" CONTAINERS_STORAGE_CONF="$CONTAINERS_STORAGE_CONF" \
  "$CRIO_BINARY" --config "$CRIO_CONFIG" --config-dir "$CRIO_CONFIG_DIR" >>"$CRIO_LOG" 2>&1 &
crio_pid=$!
started=$(date +%s%N)
for _ in $(seq 300); do
  if cri Version >/dev/null 2>&1; then break; fi
  kill -0 "$crio_pid" 2>/dev/null || { say "crio exited; its log:"; tail -n 30 "$CRIO_LOG" >&2; exit 1; }
  sleep 0.1
done
version=$(cri Version)
echo "crio answers after $(( ($(date +%s%N) - started) / 1000000 )) ms: $(jq -c . <<< "$version")"

# The container's pid according to runc, and its parent's command.
runc_pid() { runc --root "$CRIO_RUNTIME_ROOT" state "$1" | jq -r .pid; }
parent_command() { local ppid; ppid=$(awk '{ print $4 }' "/proc/$1/stat"); basename "$(tr '\0' '\n' < "/proc/$ppid/cmdline" | head -1)"; }
runc_status() { runc --root "$CRIO_RUNTIME_ROOT" state "$1" 2>/dev/null | jq -r .status; }

# 1. A pod on the pod network and a container in it.
pod_config=$(jq -nc --arg logs "$CRIO_DIR/logs/smoke" --arg parent "$CRIO_CGROUP_PARENT" '{
  metadata: { name: "smoke", namespace: "veil", uid: "smoke-uid", attempt: 0 },
  hostname: "smoke", logDirectory: $logs,
  linux: { cgroupParent: $parent, securityContext: { namespaceOptions: { network: "POD" } } } }')
t0=$(date +%s%N)
pod=$(cri RunPodSandbox "$(jq -nc --argjson c "$pod_config" '{ config: $c }')" | jq -r .podSandboxId)
echo "RunPodSandbox: $(( ($(date +%s%N) - t0) / 1000000 )) ms, pod $pod"
pod_status=$(cri PodSandboxStatus "$(jq -nc --arg id "$pod" '{ podSandboxId: $id, verbose: true }')")
# (protobuf JSON leaves out an enum at its default: SANDBOX_READY is 0)
check "pod is SANDBOX_READY" test "$(jq -r '.status.state // "SANDBOX_READY"' <<< "$pod_status")" = SANDBOX_READY
check "the pause container runs under runc" test "$(runc_status "$pod")" = running
check "the pause container's parent is conmon" test "$(parent_command "$(runc_pid "$pod")")" = conmon
echo "pod IP: $(jq -r '.status.network.ip // "none"' <<< "$pod_status")"
spec=$(jq -r .info.info <<< "$pod_status")
check "the pod's ipc/uts/net namespaces are pins below the rig" \
  test "$(jq -r --arg d "$CRIO_DIR/run/ns/" '[.runtimeSpec.linux.namespaces[] | select(.path != null) | .path | startswith($d)] | length' <<< "$spec")" = 3

container_config=$(jq -nc --arg image "$CRIO_TEST_IMAGE" '{
  metadata: { name: "box" }, image: { image: $image }, logPath: "box.log",
  command: ["sh", "-c", "echo hello from cri-o; exec sleep 600"], linux: {} }')
t0=$(date +%s%N)
container=$(cri CreateContainer "$(jq -nc --arg pod "$pod" --argjson c "$container_config" --argjson s "$pod_config" \
  '{ podSandboxId: $pod, config: $c, sandboxConfig: $s }')" | jq -r .containerId)
cri StartContainer "$(jq -nc --arg id "$container" '{ containerId: $id }')" >/dev/null
echo "CreateContainer+StartContainer: $(( ($(date +%s%N) - t0) / 1000000 )) ms, container $container"
check "the container is CONTAINER_RUNNING" \
  test "$(cri ContainerStatus "$(jq -nc --arg id "$container" '{ containerId: $id }')" | jq -r .status.state)" = CONTAINER_RUNNING
check "the container runs under runc" test "$(runc_status "$container")" = running
check "the container's parent is conmon" test "$(parent_command "$(runc_pid "$container")")" = conmon
for _ in $(seq 50); do grep -q 'hello from cri-o' "$CRIO_DIR/logs/smoke/box.log" 2>/dev/null && break; sleep 0.1; done
check "the container's output is in its CRI log" grep -q 'stdout F hello from cri-o' "$CRIO_DIR/logs/smoke/box.log"
exec_reply=$(cri ExecSync "$(jq -nc --arg id "$container" '{ containerId: $id, cmd: ["sh", "-c", "cat /proc/1/cmdline; hostname"], timeout: 10 }')")
exec_out=$(jq -r '.stdout // ""' <<< "$exec_reply" | base64 -d | tr '\0' ' ')
echo "ExecSync output: $(echo $exec_out)"
check "ExecSync sees the pod's pause as pid 1 and the pod's hostname" test "$(echo $exec_out)" = "/pause smoke"

# 2. A privileged container in a privileged host-network pod.
priv_pod_config=$(jq -nc --arg logs "$CRIO_DIR/logs/priv" --arg parent "$CRIO_CGROUP_PARENT" '{
  metadata: { name: "priv", namespace: "veil", uid: "priv-uid", attempt: 0 },
  hostname: "priv", logDirectory: $logs,
  linux: { cgroupParent: $parent, securityContext: { privileged: true, namespaceOptions: { network: "NODE" } } } }')
priv_pod=$(cri RunPodSandbox "$(jq -nc --argjson c "$priv_pod_config" '{ config: $c }')" | jq -r .podSandboxId)
priv_config=$(jq -nc --arg image "$CRIO_TEST_IMAGE" '{
  metadata: { name: "privileged" }, image: { image: $image }, logPath: "privileged.log",
  command: ["sleep", "600"], linux: { securityContext: { privileged: true } } }')
priv=$(cri CreateContainer "$(jq -nc --arg pod "$priv_pod" --argjson c "$priv_config" --argjson s "$priv_pod_config" \
  '{ podSandboxId: $pod, config: $c, sandboxConfig: $s }')" | jq -r .containerId)
cri StartContainer "$(jq -nc --arg id "$priv" '{ containerId: $id }')" >/dev/null
own_bounding=$(awk '/^CapBnd/ { print $2 }' /proc/self/status)
priv_bounding=$(awk '/^CapBnd/ { print $2 }' "/proc/$(runc_pid "$priv")/status")
echo "privileged container's bounding set: $priv_bounding (this shell's: $own_bounding)"
check "the privileged container runs under runc with CRI-O's bounding set" test "$priv_bounding" = "$own_bounding"

# Clean removal over CRI; afterwards runc knows no container.
for id in "$container" "$priv"; do
  cri StopContainer "$(jq -nc --arg id "$id" '{ containerId: $id, timeout: 5 }')" >/dev/null
  cri RemoveContainer "$(jq -nc --arg id "$id" '{ containerId: $id }')" >/dev/null
done
for id in "$pod" "$priv_pod"; do
  cri StopPodSandbox "$(jq -nc --arg id "$id" '{ podSandboxId: $id }')" >/dev/null
  cri RemovePodSandbox "$(jq -nc --arg id "$id" '{ podSandboxId: $id }')" >/dev/null
done
check "after removal runc lists no container" test -z "$(runc --root "$CRIO_RUNTIME_ROOT" list -q)"
check "after removal no pin is mounted" test -z "$(awk -v d="$CRIO_DIR/run/ns/" 'index($5, d) == 1' /proc/self/mountinfo)"

if [ $failures -gt 0 ]; then
  say "$failures check(s) failed; CRI-O's log: $CRIO_LOG (KEEP=1 keeps it)"
  exit 1
fi
echo "all checks passed"
