#!/bin/sh
# The checkpoint checks of issue #16, run inside the systemd guest (tests/vm/run-systemd-guest.sh
# --script tests/vm/guest-checkpoint-tests.sh): this guest's kernel (Debian's cloud kernel) runs
# Debian's CRIU, which fails `criu check` on the host's. Output, to the serial console and
# /vm/out/results.txt, is TAP-like, as guest-systemd-tests.sh's:
#     ok N - NAME | not ok N - NAME: reason | ok N - NAME # SKIP reason
#     VEIL-GUEST-RESULT: PASS n=<ok count> skip=<skip count> | VEIL-GUEST-RESULT: FAIL ...
#
# The payload's /vm/extra holds static binaries (tests/vm/run-checkpoint-guest.sh puts them there):
# busybox and secret-holder (tests/vm/secret-holder.c), the processes saved and read back.
# VEIL_GUEST_FIXTURE=1 (in /vm/env) also writes /vm/out/fixture/: the raw dump and veil's archive of
# the container, with crit's decoding of their images, which the host keeps as the fixture of
# Tests/VeilCheckpointTests (tests/vm/make-checkpoint-fixture.sh).
# Not `set -e`: a failing command is a check's result, never the end of the run.
export PATH=/vm/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
OUT=/vm/out
WORK=/run/veil-guest
mkdir -p "$OUT" "$WORK"
. /vm/guest-report.sh

section "checks start: $(uname -r), $(criu --version 2>&1 | head -1)"
criu check > "$OUT/criu-check.txt" 2>&1
check "criu check passes in the guest" "$([ $? = 0 ] || show "$OUT/criu-check.txt")"

# --- CRIU alone: a process tree dumped and decoded (what the host's fixture is made of) -------------
section "criu dump of a process tree"
raw=$WORK/raw
mkdir -p "$raw/images"
# A static busybox sh (the loop) with secret-holder (static, two threads, a secret in its heap) as its
# child, a variable in both environments: what inspect, memparse and coredump look for. Static
# binaries from the payload keep the dump small enough to be the host's test fixture.
EXTRA=/vm/extra
VEIL_FIXTURE_ENV=hello-from-the-guest setsid "$EXTRA/busybox" sh -c "$EXTRA/secret-holder $raw/holder-counter &
i=0; while :; do i=\$((i + 1)); echo \$i > $raw/counter.new; $EXTRA/busybox mv $raw/counter.new $raw/counter; $EXTRA/busybox sleep 0.2; done" < /dev/null > /dev/null 2>&1 &
loop=$!
sleep 2
criu dump -t "$loop" -D "$raw/images" -o dump.log -v4 > "$OUT/raw-dump.out" 2>&1
check "criu dump of a shell loop" "$([ $? = 0 ] || tail -5 "$raw/images/dump.log" | oneline)"
before=$(cat "$raw/counter")
criu restore -D "$raw/images" -o restore.log -d > "$OUT/raw-restore.out" 2>&1
rc=$?
sleep 1
after=$(cat "$raw/counter")
check "criu restore continues the loop" "$([ $rc = 0 ] && [ "$after" -gt "$before" ] || echo "restore exit $rc, counter $before then $after: $(tail -3 "$raw/images/restore.log" | oneline)")"
pkill -f 'raw/counter' 2> /dev/null
pkill -f 'secret-holder' 2> /dev/null


# --- veil checkpoint / restore at the native level -------------------------------------------------
# A bundle of the payload's busybox rootfs (writable copy) running secret-holder, which counts in
# /counter of the rootfs; its stdio reopened inside, so nothing of the host's is open in it.
section "veil checkpoint and restore (native)"
# On the guest's ext4 root, not /run: the sandbox level id-maps the rootfs, which this kernel's tmpfs cannot.
# holder_bundle DIR HOSTNAME CGROUP: the payload's busybox rootfs (a writable copy) running secret-holder.
holder_bundle() {
    mkdir -p "$1"
    cp -a /vm/bundle/rootfs "$1/rootfs"
    cp "$EXTRA/secret-holder" "$1/rootfs/secret-holder"
    jq --arg host "$2" --arg cgroup "$3" '.process.terminal = false | .root.readonly = false | .hostname = $host | .linux.cgroupsPath = $cgroup
        | .process.args = ["sh", "-c", "exec > /dev/null 2>&1 < /dev/null; exec /secret-holder /counter"]' /vm/bundle/config.json > "$1/config.json"
}
B=/var/lib/veil-guest/ck-bundle
holder_bundle "$B" ckpt-host /veil-checkpoint/ck
native() { native_root=$1; shift; timeout -s KILL 120 veil --isolation native --root "$native_root" "$@"; }
counter() { cat "$B/rootfs/counter" 2> /dev/null || echo 0; }
state_status() { native "$1" state "$2" 2> /dev/null | jq -r '.status // empty'; }
A=$WORK/ck1.tar.gz
if ! (cd "$B" && native "$WORK/root1" run -d ck1 > "$OUT/ck-run.out" 2>&1 < /dev/null); then
    not_ok "a native container runs" "$(show "$OUT/ck-run.out")"
else
    sleep 2
    native "$WORK/root1" ps ck1 > "$OUT/ck-ps.txt" 2>&1
    native "$WORK/root1" checkpoint --export "$A" ck1 > "$OUT/ck-checkpoint.out" 2>&1
    rc=$?
    stopped_at=$(counter)
    sleep 1
    check "veil checkpoint --export saves the container and ends it, as runc" \
        "$([ $rc = 0 ] && [ -s "$A" ] && [ -z "$(state_status "$WORK/root1" ck1)" ] && [ "$(counter)" = "$stopped_at" ] ||
           echo "exit $rc: $(show "$OUT/ck-checkpoint.out"); archive $(ls -la "$A" 2>&1); state '$(state_status "$WORK/root1" ck1)'; counter $stopped_at then $(counter)")"
    native "$WORK/root2" restore -d --import "$A" --bundle "$B" ck1r > "$OUT/ck-restore.out" 2>&1
    rc=$?
    sleep 2
    now=$(counter)
    check "veil restore --import in a fresh state root continues the counter" \
        "$([ $rc = 0 ] && [ "$(state_status "$WORK/root2" ck1r)" = running ] && [ "$now" -gt "$stopped_at" ] && [ "$now" -lt $((stopped_at + 30)) ] ||
           echo "exit $rc: $(show "$OUT/ck-restore.out"); state '$(state_status "$WORK/root2" ck1r)'; counter $stopped_at then $now")"

    lo=$(native "$WORK/root2" exec ck1r cat /sys/class/net/lo/flags 2>&1)
    check "the restored container takes exec, and its network namespace has its loopback up" \
        "$([ "$lo" = 0x9 ] || echo "exec: lo flags '$lo'")"

    # The archive, read back.
    veil checkpoint inspect "$A" --ps-tree --files --mounts > "$OUT/ck-inspect.txt" 2>&1
    check "checkpoint inspect shows the process tree, hostname and mounts" \
        "$(grep -q 'secret-holder /counter' "$OUT/ck-inspect.txt" && grep -q 'Hostname: ckpt-host' "$OUT/ck-inspect.txt" &&
           grep -q '^/proc ' "$OUT/ck-inspect.txt" && grep -q 'ck1 ' "$OUT/ck-inspect.txt" || show "$OUT/ck-inspect.txt")"
    veil checkpoint memparse "$A" --search veil-secret-5eedc0ffee123456 > "$OUT/ck-memparse.txt" 2>&1
    secret_pid=$(sed -n 's/^pid \([0-9]*\) (secret-holder) address.*/\1/p' "$OUT/ck-memparse.txt" | head -1)
    address=$(sed -n 's/^pid [0-9]* (secret-holder) address \(0x[0-9a-f]*\) .*/\1/p' "$OUT/ck-memparse.txt" | head -1)
    check "checkpoint memparse finds the secret in secret-holder's memory" \
        "$([ -n "$secret_pid" ] && [ -n "$address" ] || show "$OUT/ck-memparse.txt")"
    rm -rf "$WORK/cores"
    veil checkpoint coredump "$A" -o "$WORK/cores" > "$OUT/ck-coredump.out" 2>&1
    gdb=$(command -v gdb || command -v gdb-minimal)
    "$gdb" -nx -batch -ex "info threads" -ex bt -ex "x/s $address" -c "$WORK/cores/core.$secret_pid" "$B/rootfs/secret-holder" > "$OUT/ck-gdb.txt" 2>&1
    check "checkpoint coredump writes cores gdb reads (threads, backtrace, the secret)" \
        "$(grep -q 'veil-secret-5eedc0ffee123456' "$OUT/ck-gdb.txt" && [ "$(grep -cE '^[* ] +[0-9]+ +Thread .*\(LWP [0-9]+\)' "$OUT/ck-gdb.txt")" = 2 ] && grep -q '^#0 ' "$OUT/ck-gdb.txt" || show "$OUT/ck-gdb.txt")"
    veil checkpoint dump "$A" pstree.img > "$OUT/ck-pstree.json" 2>&1
    uts=$(tar -tzf "$A" | sed -n 's,^\./checkpoint/\(utsns-[0-9]*\.img\)$,\1,p; s,^checkpoint/\(utsns-[0-9]*\.img\)$,\1,p' | head -1)
    veil checkpoint dump "$A" "$uts" > "$OUT/ck-utsns.json" 2>&1
    check "checkpoint dump decodes pstree.img and utsns-*.img" \
        "$(jq -e '.magic == "PSTREE" and (.entries | length) >= 1' "$OUT/ck-pstree.json" > /dev/null &&
           jq -e '.entries[0].nodename == "ckpt-host"' "$OUT/ck-utsns.json" > /dev/null || echo "$(show "$OUT/ck-pstree.json") / $uts: $(show "$OUT/ck-utsns.json")")"

    # --leave-running after a pre-dump, then a restore of that chain.
    native "$WORK/root2" checkpoint --pre-dump --image-path "$WORK/pre1" ck1r > "$OUT/ck-predump.out" 2>&1
    rc1=$?
    native "$WORK/root2" checkpoint --image-path "$WORK/full2" --parent-path ../pre1 --leave-running ck1r > "$OUT/ck-leave.out" 2>&1
    rc2=$?
    check "pre-dump, then checkpoint --leave-running on top of it: the container keeps running" \
        "$([ $rc1 = 0 ] && [ $rc2 = 0 ] && [ "$(state_status "$WORK/root2" ck1r)" = running ] && [ -L "$WORK/full2/parent" ] ||
           echo "pre-dump $rc1: $(show "$OUT/ck-predump.out"); dump $rc2: $(show "$OUT/ck-leave.out"); state '$(state_status "$WORK/root2" ck1r)'")"
    native "$WORK/root2" kill ck1r KILL > /dev/null 2>&1
    sleep 1
    native "$WORK/root2" delete --force ck1r > /dev/null 2>&1
    before=$(counter)
    native "$WORK/root3" restore -d --image-path "$WORK/full2" --bundle "$B" ck1p > "$OUT/ck-restore2.out" 2>&1
    rc=$?
    sleep 2
    check "restore from the pre-dump chain continues the counter" \
        "$([ $rc = 0 ] && [ "$(counter)" -gt "$before" ] || echo "exit $rc: $(show "$OUT/ck-restore2.out"); counter $before then $(counter)")"
    native "$WORK/root3" delete --force ck1p > /dev/null 2>&1
fi
# --- lazy migration, as runc's own test of it ---------------------------------------------------------
# checkpoint --lazy-pages keeps the memory with the frozen container and serves it on the page
# server's port (a byte on --status-fd once it listens); `criu lazy-pages` fetches it for a restore
# --lazy-pages under another name and cgroup; the checkpoint ends once every page has gone.
section "lazy migration: checkpoint --lazy-pages --page-server --status-fd, criu lazy-pages, restore --lazy-pages"
if ! criu check --feature uffd-noncoop > "$OUT/lazy-feature.txt" 2>&1; then
    skip "checkpoint --lazy-pages and restore" "this CRIU or kernel has no userfaultfd for lazy pages: $(show "$OUT/lazy-feature.txt")"
else
    L=/var/lib/veil-guest/lazy-bundle
    holder_bundle "$L" lazy-host /veil-checkpoint/lazy
    lazy_counter() { cat "$L/rootfs/counter" 2> /dev/null || echo 0; }
    (cd "$L" && native "$WORK/rootl1" run -d lz1 > "$OUT/lz-run.out" 2>&1 < /dev/null)
    sleep 2
    mkdir -p "$WORK/lz-images"
    rm -f "$WORK/lz-status"; mkfifo "$WORK/lz-status"
    exec 7<> "$WORK/lz-status"
    native "$WORK/rootl1" checkpoint --lazy-pages --page-server 0.0.0.0:27277 --status-fd 7 --manage-cgroups-mode=ignore \
        --image-path "$WORK/lz-images" lz1 > "$OUT/lz-checkpoint.out" 2>&1 &
    dumper=$!
    ready=$(timeout 20 dd bs=1 count=1 <&7 2> /dev/null | od -An -tx1 | tr -d ' \n')
    exec 7>&-
    before=$(lazy_counter)
    check "checkpoint --lazy-pages writes its status byte once CRIU serves the pages, the images without them" \
        "$([ "$ready" = 00 ] && [ -e "$WORK/lz-images/inventory.img" ] || echo "status byte '$ready': $(show "$OUT/lz-checkpoint.out") $(grep -B3 Error "$WORK/lz-images/dump.log" 2>/dev/null | oneline)")"
    criu lazy-pages --page-server --address 127.0.0.1 --port 27277 -D "$WORK/lz-images" > "$OUT/lz-daemon.out" 2>&1 &
    daemon=$!
    # As runc's test: another cgroup (the original's is frozen until the last page has gone, and
    # then emptied), the same rootfs.
    mkdir -p "$L-2"
    ln -sfn "$L/rootfs" "$L-2/rootfs"
    jq '.linux.cgroupsPath = "/veil-checkpoint/lazy2"' "$L/config.json" > "$L-2/config.json"
    native "$WORK/rootl2" restore -d --lazy-pages --manage-cgroups-mode=ignore --image-path "$WORK/lz-images" --bundle "$L-2" lz2 > "$OUT/lz-restore.out" 2>&1
    rc=$?
    timeout -s KILL 60 sh -c "while kill -0 $dumper 2> /dev/null; do sleep 0.2; done"
    wait "$dumper"; dumped=$?
    timeout -s KILL 30 sh -c "while kill -0 $daemon 2> /dev/null; do sleep 0.2; done"
    sleep 2
    after=$(lazy_counter)
    check "restore --lazy-pages runs on the pages fetched from the checkpoint; the checkpoint then ends the original, as runc's" \
        "$([ $rc = 0 ] && [ $dumped = 0 ] && [ "$(state_status "$WORK/rootl2" lz2)" = running ] && [ -z "$(state_status "$WORK/rootl1" lz1)" ] &&
           [ "$after" -gt "$before" ] ||
           echo "restore $rc: $(show "$OUT/lz-restore.out") $(grep -B3 Error "$WORK/lz-images/restore.log" 2>/dev/null | oneline); checkpoint $dumped: $(show "$OUT/lz-checkpoint.out"); state lz2 '$(state_status "$WORK/rootl2" lz2)' lz1 '$(state_status "$WORK/rootl1" lz1)'; counter $before then $after")"
    native "$WORK/rootl2" delete --force lz2 > /dev/null 2>&1
    native "$WORK/rootl1" delete --force lz1 > /dev/null 2>&1
    kill "$daemon" 2> /dev/null

    # --page-server alone: the pages go to `criu page-server`, here into the same directory, from
    # which a plain restore brings the container back.
    (cd "$L" && native "$WORK/rootl1" run -d ps1 > "$OUT/ps-run.out" 2>&1 < /dev/null)
    sleep 2
    mkdir -p "$WORK/ps-images"
    criu page-server --images-dir "$WORK/ps-images" --port 27278 > "$OUT/ps-server.out" 2>&1 &
    server=$!
    sleep 1
    native "$WORK/rootl1" checkpoint --page-server 127.0.0.1:27278 --image-path "$WORK/ps-images" ps1 > "$OUT/ps-checkpoint.out" 2>&1
    rc=$?
    timeout -s KILL 30 sh -c "while kill -0 $server 2> /dev/null; do sleep 0.2; done"
    before=$(lazy_counter)
    native "$WORK/rootl2" restore -d --image-path "$WORK/ps-images" --bundle "$L" ps2 > "$OUT/ps-restore.out" 2>&1
    rc2=$?
    sleep 2
    check "checkpoint --page-server sends the pages to criu page-server; a restore from its images goes on" \
        "$([ $rc = 0 ] && ls "$WORK/ps-images"/pages-*.img > /dev/null 2>&1 && [ $rc2 = 0 ] && [ "$(lazy_counter)" -gt "$before" ] ||
           echo "checkpoint $rc: $(show "$OUT/ps-checkpoint.out") $(grep -B3 Error "$WORK/ps-images/dump.log" 2>/dev/null | oneline); restore $rc2: $(show "$OUT/ps-restore.out"); images: $(ls "$WORK/ps-images" | oneline)")"
    native "$WORK/rootl2" delete --force ps2 > /dev/null 2>&1
    kill "$server" 2> /dev/null
fi

# --- the systemd cgroup driver: a restored container in a scope systemd starts -----------------------
# As runc's systemd driver: CRIU's process is made the scope's before it restores, so every restored
# process is in the scope; delete stops the unit. At both levels.
section "the systemd cgroup driver: checkpoint and restore into a scope"
for level in native sandbox; do
    SD=/var/lib/veil-guest/sd-$level
    holder_bundle "$SD" sd-host "system.slice:veil:sd$level"
    sdrt() { timeout -s KILL 120 veil --systemd-cgroup --isolation "$level" --root "$WORK/sdroot-$level" "$@"; }
    sd_counter() { cat "$SD/rootfs/counter" 2> /dev/null || echo 0; }
    (cd "$SD" && sdrt run -d "sd${level}1" > "$OUT/sd-run-$level.out" 2>&1 < /dev/null)
    sleep 2
    sdrt checkpoint --image-path "/var/lib/veil-guest/sd-images-$level" "sd${level}1" > "$OUT/sd-checkpoint-$level.out" 2>&1
    rc=$?
    gone=$(systemctl is-active "veil-sd$level.scope" 2>&1)
    before=$(sd_counter)
    sdrt restore -d --image-path "/var/lib/veil-guest/sd-images-$level" --bundle "$SD" "sd${level}2" > "$OUT/sd-restore-$level.out" 2>&1
    rc2=$?
    sleep 2
    rpid=$(sdrt state "sd${level}2" 2> /dev/null | jq -r '.pid // empty')
    placed=$(sed -n 's/^0:://p' "/proc/$rpid/cgroup" 2> /dev/null)
    active=$(systemctl is-active "veil-sd$level.scope" 2>&1)
    check "systemd driver ($level): checkpoint ends the scope, restore runs on in a scope of the same name (the restored init in it)" \
        "$([ $rc = 0 ] && [ "$gone" != active ] && [ $rc2 = 0 ] && [ "$active" = active ] && [ "$placed" = "/system.slice/veil-sd$level.scope" ] &&
           [ "$(sd_counter)" -gt "$before" ] ||
           echo "checkpoint $rc: $(show "$OUT/sd-checkpoint-$level.out"), unit after it '$gone'; restore $rc2: $(show "$OUT/sd-restore-$level.out") $(grep -B2 Error "/var/lib/veil-guest/sd-images-$level/restore.log" 2>/dev/null | oneline); unit '$active', init $rpid in '$placed'; counter $before then $(sd_counter)")"
    sdrt delete --force "sd${level}2" > "$OUT/sd-delete-$level.out" 2>&1
    after=$(systemctl is-active "veil-sd$level.scope" 2>&1)
    check "systemd driver ($level): delete of the restored container stops its scope" \
        "$([ "$after" != active ] && [ -z "$(sdrt list -q)" ] || echo "unit '$after', left: $(sdrt list -q | oneline) $(show "$OUT/sd-delete-$level.out")")"
done

# --- restore in the foreground (no --detach), as runc's and as run: veil waits for the restored init ---
section "restore without --detach waits for the container and exits with its status"
for level in native sandbox; do
    F=/var/lib/veil-guest/fg-$level
    holder_bundle "$F" fg-host "/veil-checkpoint/fg-$level"
    fgrt() { timeout -s KILL 120 veil --isolation "$level" "$@"; }
    (cd "$F" && fgrt --root "$WORK/fgroot-$level" run -d fg1 > "$OUT/fg-run-$level.out" 2>&1 < /dev/null)
    sleep 2
    fgrt --root "$WORK/fgroot-$level" checkpoint --image-path "/var/lib/veil-guest/fg-images-$level" fg1 > "$OUT/fg-checkpoint-$level.out" 2>&1
    before=$(cat "$F/rootfs/counter")
    fgrt --root "$WORK/fgroot2-$level" restore --image-path "/var/lib/veil-guest/fg-images-$level" --bundle "$F" fg2 > "$OUT/fg-restore-$level.out" 2>&1 < /dev/null &
    restorer=$!
    sleep 3
    running=$(fgrt --root "$WORK/fgroot2-$level" state fg2 2> /dev/null | jq -r '.status // empty')
    alive=$(kill -0 "$restorer" 2> /dev/null && echo yes)
    # The init (PID 1 of its namespace, no handler) ignores a forwarded SIGTERM, as under runc: killed.
    fgrt --root "$WORK/fgroot2-$level" kill fg2 KILL > /dev/null 2>&1
    timeout -s KILL 30 sh -c "while kill -0 $restorer 2> /dev/null; do sleep 0.2; done"
    wait "$restorer"
    rc=$?
    check "restore without --detach ($level): runs on while veil waits; veil exits with the container's status (137) and deletes it" \
        "$([ "$running" = running ] && [ "$alive" = yes ] && [ "$(cat "$F/rootfs/counter")" -gt "$before" ] && [ $rc = 137 ] &&
           [ -z "$(fgrt --root "$WORK/fgroot2-$level" list -q)" ] ||
           echo "state '$running', veil waiting '$alive', counter $before then $(cat "$F/rootfs/counter"), exit $rc: $(show "$OUT/fg-restore-$level.out") $(grep -B2 Error "/var/lib/veil-guest/fg-images-$level/restore.log" 2>/dev/null | oneline); left: $(fgrt --root "$WORK/fgroot2-$level" list -q | oneline)")"
    fgrt --root "$WORK/fgroot2-$level" delete --force fg2 > /dev/null 2>&1
done

# --- runc's container-specific CRIU configuration (org.criu.config) at the native level ------------------
# As runc's test of it: the annotation's file wins over /etc/criu/default.conf (its log-file is the one
# written, in the work directory), at checkpoint and at restore.
section "org.criu.config: a container's own CRIU configuration"
C=/var/lib/veil-guest/criu-config-bundle
holder_bundle "$C" cfg-host /veil-checkpoint/cfg
jq '.annotations["org.criu.config"] = "/var/lib/veil-guest/container-criu.conf"' "$C/config.json" > "$C/config.json.new" && mv "$C/config.json.new" "$C/config.json"
mkdir -p /etc/criu
echo "log-file=default-conf.log" > /etc/criu/default.conf
echo "log-file=container-conf.log" > /var/lib/veil-guest/container-criu.conf
(cd "$C" && native "$WORK/cfgroot" run -d cfg1 > "$OUT/cfg-run.out" 2>&1 < /dev/null)
sleep 2
mkdir -p "$WORK/cfg-work"
native "$WORK/cfgroot" checkpoint --work-path "$WORK/cfg-work" --image-path "$WORK/cfg-images" cfg1 > "$OUT/cfg-checkpoint.out" 2>&1
rc=$?
dumped=$([ -f "$WORK/cfg-work/container-conf.log" ] && [ ! -e "$WORK/cfg-work/default-conf.log" ] && echo yes)
rm -f "$WORK/cfg-work/container-conf.log"
native "$WORK/cfgroot" restore -d --work-path "$WORK/cfg-work" --image-path "$WORK/cfg-images" --bundle "$C" cfg2 > "$OUT/cfg-restore.out" 2>&1
rc2=$?
check "org.criu.config: checkpoint and restore write the log the container's CRIU configuration names, not default.conf's" \
    "$([ $rc = 0 ] && [ "$dumped" = yes ] && [ $rc2 = 0 ] && [ -f "$WORK/cfg-work/container-conf.log" ] && [ ! -e "$WORK/cfg-work/default-conf.log" ] ||
       echo "checkpoint $rc: $(show "$OUT/cfg-checkpoint.out") (log named: '$dumped'); restore $rc2: $(show "$OUT/cfg-restore.out"); work dir: $(ls "$WORK/cfg-work" | oneline)")"
native "$WORK/cfgroot" delete --force cfg2 > /dev/null 2>&1
rm -f /etc/criu/default.conf

# --- a container with a terminal, as runc's own checkpoint tests run theirs ---------------------------
# The pty's master is the console socket's; the checkpoint saves the slave and /dev/console (a bind
# of it) as external, and restore --console-socket gives a new pty whose master goes to the socket.
section "a terminal container: checkpoint, then restore --console-socket"
for level in native sandbox; do
    TT=/var/lib/veil-guest/tty-$level
    mkdir -p "$TT"
    cp -a /vm/bundle/rootfs "$TT/rootfs"
    jq --arg cg "/veil-checkpoint/tty-$level" '.process.terminal = true | .root.readonly = false | .linux.cgroupsPath = $cg
        | .process.args = ["sh", "-c", "i=0; while :; do i=$((i + 1)); echo tick $i; echo $i > /counter.new; mv /counter.new /counter; sleep 0.3; done"]' \
        /vm/bundle/config.json > "$TT/config.json"
    "$EXTRA/console-receiver" "$WORK/console-$level.sock" "$OUT/tty-$level.txt" &
    receiver=$!
    sleep 0.5
    ttyrt() { timeout -s KILL 120 veil --isolation "$level" "$@"; }
    ttyrt --root "$WORK/ttyroot-$level" run -d --console-socket "$WORK/console-$level.sock" --bundle "$TT" tty1 > "$OUT/tty-run-$level.out" 2>&1
    sleep 2
    ttyrt --root "$WORK/ttyroot-$level" checkpoint --image-path "/var/lib/veil-guest/tty-images-$level" tty1 > "$OUT/tty-checkpoint-$level.out" 2>&1
    rc=$?
    ttyrt --root "$WORK/ttyroot2-$level" restore -d --image-path "/var/lib/veil-guest/tty-images-$level" --bundle "$TT" tty2 > "$OUT/tty-refused-$level.out" 2>&1
    refused=$?
    check "terminal ($level): checkpoint without --shell-job saves it; a restore without --console-socket is refused naming it, nothing left" \
        "$([ $rc = 0 ] && [ $refused != 0 ] && grep -q -- --console-socket "$OUT/tty-refused-$level.out" && [ ! -e "$WORK/ttyroot2-$level/tty2" ] ||
           echo "checkpoint $rc: $(show "$OUT/tty-checkpoint-$level.out") $(grep -B2 Error "/var/lib/veil-guest/tty-images-$level/dump.log" 2>/dev/null | oneline); refusal $refused: $(show "$OUT/tty-refused-$level.out")")"
    before=$(cat "$TT/rootfs/counter")
    lines=$(grep -c tick "$OUT/tty-$level.txt")
    ttyrt --root "$WORK/ttyroot2-$level" restore -d --console-socket "$WORK/console-$level.sock" --image-path "/var/lib/veil-guest/tty-images-$level" --bundle "$TT" tty2 > "$OUT/tty-restore-$level.out" 2>&1
    rc=$?
    sleep 2
    rpid=$(ttyrt --root "$WORK/ttyroot2-$level" state tty2 2> /dev/null | jq -r '.pid // empty')
    check "terminal ($level): restore --console-socket runs on, writing to the new pty's master that the socket received" \
        "$([ $rc = 0 ] && [ "$(cat "$TT/rootfs/counter")" -gt "$before" ] && [ "$(grep -c tick "$OUT/tty-$level.txt")" -gt "$lines" ] &&
           [ "$(readlink "/proc/$rpid/fd/1" | cut -c1-9)" = /dev/pts/ ] ||
           echo "restore $rc: $(show "$OUT/tty-restore-$level.out") $(grep -B2 Error "/var/lib/veil-guest/tty-images-$level/restore.log" 2>/dev/null | oneline); counter $before then $(cat "$TT/rootfs/counter"); ticks $lines then $(grep -c tick "$OUT/tty-$level.txt"); fd 1 $(readlink "/proc/$rpid/fd/1")")"
    ttyrt --root "$WORK/ttyroot2-$level" delete --force tty2 > /dev/null 2>&1
    kill "$receiver" 2> /dev/null
done

# --- stdio the caller gave: a pipe (as a shim's) and the host's /dev/null ----------------------------
# The container writes to its stdout, a pipe to a `cat` of this script's; after the checkpoint, the
# restore's caller gives it a new pipe (CRIU's --inherit-fd), and its lines go on there.
section "stdio: a caller's pipe and the host's /dev/null"
P=/var/lib/veil-guest/pipe-bundle
mkdir -p "$P"
ln -sfn "$B/rootfs" "$P/rootfs"
jq '.process.terminal = false | .linux.cgroupsPath = "/veil-checkpoint/pipe"
    | .process.args = ["sh", "-c", "i=0; while :; do i=$((i + 1)); echo tick $i; sleep 0.2; done"]' "$B/config.json" > "$P/config.json"
(cd "$P" && native "$WORK/root4" run -d ckp < /dev/null 2>&1 | cat > "$WORK/ticks-before.txt") &
sleep 2
native "$WORK/root4" checkpoint --image-path "$WORK/pipe-images" ckp > "$OUT/ck-pipe-checkpoint.out" 2>&1
rc=$?
wait
last=$(tail -1 "$WORK/ticks-before.txt" | cut -d' ' -f2)
(native "$WORK/root5" restore -d --image-path "$WORK/pipe-images" --bundle "$P" ckp2 < /dev/null 2> "$OUT/ck-pipe-restore.out" | cat > "$WORK/ticks-after.txt") &
for _ in $(seq 100); do [ -s "$WORK/ticks-after.txt" ] && break; sleep 0.1; done
first=$(head -1 "$WORK/ticks-after.txt" | cut -d' ' -f2)
check "a container writing to its caller's pipe: checkpointed, restored onto a new pipe, it writes on from where it was" \
    "$([ $rc = 0 ] && [ -n "$last" ] && [ "$first" = $((last + 1)) ] ||
       echo "checkpoint $rc: $(show "$OUT/ck-pipe-checkpoint.out"); descriptors $(cat "$WORK/pipe-images/descriptors.json" 2>&1); last before '$last', first after '$first'; restore: $(show "$OUT/ck-pipe-restore.out")")"
native "$WORK/root5" delete --force ckp2 > /dev/null 2>&1
wait

# --- a paused container, and restore's own flags -------------------------------------------------------
section "a paused container; restore's --empty-ns and --manage-cgroups-mode"
if (cd "$B" && native "$WORK/root6" run -d ckz > "$OUT/ck-zrun.out" 2>&1 < /dev/null); then
    sleep 1
    native "$WORK/root6" pause ckz > "$OUT/ck-pause.out" 2>&1
    native "$WORK/root6" checkpoint --leave-running --image-path "$WORK/paused-images" ckz > "$OUT/ck-paused.out" 2>&1
    rc=$?
    status=$(state_status "$WORK/root6" ckz)
    frozen_at=$(counter)
    sleep 1
    still=$(counter)
    native "$WORK/root6" resume ckz > /dev/null 2>&1
    sleep 1
    check "checkpoint --leave-running of a paused container saves it and leaves it paused, then resume goes on" \
        "$([ $rc = 0 ] && [ "$status" = paused ] && [ "$still" = "$frozen_at" ] && [ "$(counter)" -gt "$still" ] ||
           echo "exit $rc: $(show "$OUT/ck-paused.out"); state '$status'; counter $frozen_at, $still, then $(counter) after resume")"
    native "$WORK/root6" delete --force ckz > /dev/null 2>&1
    native "$WORK/root7" restore -d --manage-cgroups-mode full --image-path "$WORK/paused-images" --bundle "$B" ckf > "$OUT/ck-full.out" 2>&1
    rc=$?
    check "restore --manage-cgroups-mode full is refused, naming the flag, and leaves no state" \
        "$([ $rc != 0 ] && grep -q -- '--manage-cgroups-mode' "$OUT/ck-full.out" && [ ! -e "$WORK/root7/ckf" ] || echo "exit $rc: $(show "$OUT/ck-full.out")")"
    native "$WORK/root7" restore -d --empty-ns network --auto-dedup --image-path "$WORK/paused-images" --bundle "$B" cke > "$OUT/ck-emptyns.out" 2>&1
    rc=$?
    lo=$(native "$WORK/root7" exec cke cat /sys/class/net/lo/flags 2>&1)
    check "restore --empty-ns network --auto-dedup: the new network namespace stays as CRIU makes it (lo down)" \
        "$([ $rc = 0 ] && [ "$lo" = 0x8 ] || echo "exit $rc: $(show "$OUT/ck-emptyns.out"); lo flags '$lo'")"
    native "$WORK/root7" delete --force cke > /dev/null 2>&1
else
    not_ok "a paused container is checkpointed" "the container did not run: $(show "$OUT/ck-zrun.out")"
fi

# --- an overlay rootfs: its changes in the archive (rootfs-diff.tar, deleted.files), applied at import ---
# Two overlays of the same lower tree, as containerd's or CRI-O's snapshots of one image would be:
# the container adds a file and a directory, removes /bin/true, and is exported; the archive is
# imported onto the second, fresh overlay.
section "rootfs changes: an overlay's diff exported, applied at import"
O=/var/lib/veil-guest/overlay
mkdir -p "$O/lower" "$O/upper1" "$O/work1" "$O/upper2" "$O/work2" "$O/b1/rootfs" "$O/b2/rootfs"
cp -a "$B/rootfs/." "$O/lower/"
rm -f "$O/lower/counter"
for layer in 1 2; do
    mount -t overlay overlay -o "lowerdir=$O/lower,upperdir=$O/upper$layer,workdir=$O/work$layer" "$O/b$layer/rootfs"
    jq '.linux.cgroupsPath = "/veil-checkpoint/ov'$layer'"
        | .process.args = ["sh", "-c", "echo added > /added; mkdir -p /newdir; echo inside > /newdir/file; rm /bin/true; exec > /dev/null 2>&1 < /dev/null; exec /secret-holder /counter"]' \
        "$B/config.json" > "$O/b$layer/config.json"
done
ov_counter() { cat "$O/b$1/rootfs/counter" 2> /dev/null || echo 0; }
OA=$WORK/ov.tar
if ! (cd "$O/b1" && native "$WORK/root8" run -d ov1 > "$OUT/ov-run.out" 2>&1 < /dev/null); then
    not_ok "rootfs changes: a container on an overlay runs" "$(show "$OUT/ov-run.out")"
else
    sleep 2
    native "$WORK/root8" checkpoint --export "$OA" ov1 > "$OUT/ov-checkpoint.out" 2>&1
    rc=$?
    stopped_at=$(ov_counter 1)
    tar -xOf "$OA" rootfs-diff.tar 2> /dev/null | tar -t > "$OUT/ov-diff.txt" 2>&1
    tar -xOf "$OA" deleted.files > "$OUT/ov-deleted.txt" 2>&1
    veil checkpoint inspect "$OA" --format json > "$OUT/ov-inspect.txt" 2>&1
    check "checkpoint --export of an overlay rootfs: rootfs-diff.tar holds what was added, deleted.files what was removed, inspect shows its size" \
        "$([ $rc = 0 ] && grep -qx 'added' "$OUT/ov-diff.txt" && grep -qx 'newdir/file' "$OUT/ov-diff.txt" && ! grep -q 'bin/true' "$OUT/ov-diff.txt" &&
           jq -e 'index("/bin/true") != null' "$OUT/ov-deleted.txt" > /dev/null &&
           jq -e '.[0].checkpoint_size.root_fs_diff_size > 0' "$OUT/ov-inspect.txt" > /dev/null ||
           echo "exit $rc: $(show "$OUT/ov-checkpoint.out"); diff: $(show "$OUT/ov-diff.txt"); deleted: $(show "$OUT/ov-deleted.txt"); $(show "$OUT/ov-inspect.txt")")"
    native "$WORK/root9" restore -d --import "$OA" --bundle "$O/b2" ov2 > "$OUT/ov-restore.out" 2>&1
    rc=$?
    sleep 2
    added=$(native "$WORK/root9" exec ov2 cat /added /newdir/file 2>&1 | tr '\n' ' ')
    gone=$(native "$WORK/root9" exec ov2 sh -c 'test -e /bin/true && echo present || echo gone' 2>&1)
    check "restore --import onto a fresh overlay applies the diff (files back, /bin/true gone) and the counter goes on" \
        "$([ $rc = 0 ] && [ "$added" = "added inside " ] && [ "$gone" = gone ] && [ "$(ov_counter 2)" -gt "$stopped_at" ] ||
           echo "exit $rc: $(show "$OUT/ov-restore.out"); /added and /newdir/file '$added', /bin/true $gone; counter $stopped_at then $(ov_counter 2)")"
fi
native "$WORK/root8" delete --force ov1 > /dev/null 2>&1
native "$WORK/root9" delete --force ov2 > /dev/null 2>&1
umount "$O/b1/rootfs" "$O/b2/rootfs" 2> /dev/null

# --- containerd: the veil shim's Checkpoint, and a Create from a checkpoint ---------------------------
# A private containerd (own config, root, state, socket); the task counts in a host directory bound
# into it (two files in turn, a symlink renamed onto the one written: a kill between truncate and
# write never leaves the counter empty, and the file a --leave-running checkpoint may catch open is
# never renamed away before the restore) and prints ticks to its stdout (the shim's pipes, given
# anew at restore).
section "containerd: ctr c checkpoint --task, ctr c restore --live (io.containerd.veil.v1)"
CTRD=/run/veil-guest/containerd
# The snapshots on the root's ext4, as in guest-systemd-tests.sh.
CTRD_ROOT=/var/lib/veil-guest/containerd
CO=/var/lib/veil-guest/ctr-out
mkdir -p "$CTRD" "$CTRD_ROOT" "$CO"
printf 'version = 2\nroot = "%s"\nstate = "%s/state"\n[grpc]\n  address = "%s/containerd.sock"\n' "$CTRD_ROOT" "$CTRD" "$CTRD" > "$CTRD/config.toml"
printf 'isolation = "native"\n' > "$CTRD/veil-native.toml"
ctr_() { timeout -s KILL 120 ctr --address "$CTRD/containerd.sock" --namespace veil-guest "$@"; }
ctr_count() { cat "$CO/counter" 2> /dev/null || echo 0; }
task_status() { ctr_ task ls 2> /dev/null | awk -v id="$1" '$1 == id { print $3 }'; }
task_gone() {
    ctr_ task kill -s SIGKILL "$1" > /dev/null 2>&1
    for _ in $(seq 60); do [ "$(task_status "$1")" = STOPPED ] && break; sleep 0.5; done
}
# PATH (with /vm/bin) is inherited: containerd finds containerd-shim-veil-v1 there.
containerd --config "$CTRD/config.toml" > "$OUT/containerd.log" 2>&1 &
containerd_pid=$!
for _ in $(seq 120); do ctr_ version > /dev/null 2>&1 && break; sleep 0.5; done
ctr_ image import --index-name busybox /vm/busybox.tar > "$OUT/ctr-import.out" 2>&1
# ctr_round LEVEL ID [ctr run flags]: the round at one isolation level (the handler's TOML for native,
# the operator's default, the sandbox, without).
ctr_round() {
level=$1 id=$2
shift 2
rm -f "$CO"/counter*
if ! ctr_ run -d --runtime io.containerd.veil.v1 "$@" \
        --mount "type=bind,src=$CO,dst=/out,options=rbind:rw" busybox "$id" \
        sh -c 'i=0; while :; do i=$((i + 1)); f=counter.$((i % 2)); echo $i > /out/$f; ln -sf $f /out/counter.link; mv /out/counter.link /out/counter; echo tick $i; sleep 0.2; done' \
        > "$OUT/ctr-$level-run.out" 2>&1 < /dev/null; then
    not_ok "containerd ($level): ctr run through the veil shim" "$(show "$OUT/ctr-$level-run.out"); $(tail -3 "$OUT/containerd.log" | oneline)"
else
    sleep 2
    ctr_ container checkpoint --task $id veil-guest/$id:checkpoint > "$OUT/ctr-$level-checkpoint.out" 2>&1
    rc=$?
    at=$(ctr_count)
    sleep 1
    check "containerd ($level): ctr c checkpoint --task through the veil shim saves the task (an image) and leaves it running" \
        "$([ $rc = 0 ] && [ "$(task_status $id)" = RUNNING ] && [ "$(ctr_count)" -gt "$at" ] && ctr_ image ls -q | grep -qx "veil-guest/$id:checkpoint" ||
           echo "exit $rc: $(show "$OUT/ctr-$level-checkpoint.out"); task '$(task_status $id)'; counter $at then $(ctr_count); $(tail -3 "$OUT/containerd.log" | oneline)")"
    task_gone $id
    ctr_ task delete $id > /dev/null 2>&1
    ctr_ container delete $id > /dev/null 2>&1
    before=$(ctr_count)
    ctr_ container restore --live $id veil-guest/$id:checkpoint > "$OUT/ctr-$level-restore.out" 2>&1
    rc=$?
    # Under emulation the restored task may take a while to run again.
    for _ in $(seq 20); do [ "$(ctr_count)" -gt "$before" ] && break; sleep 0.5; done
    now=$(ctr_count)
    check "containerd ($level): ctr c restore --live through the veil shim continues the task from where it was" \
        "$([ $rc = 0 ] && [ "$(task_status $id)" = RUNNING ] && [ "$now" -gt "$before" ] && [ "$now" -lt $((before + 40)) ] ||
           echo "exit $rc: $(show "$OUT/ctr-$level-restore.out"); task '$(task_status $id)'; counter $before then $now; $(tail -3 "$OUT/containerd.log" | oneline)")"
    ctr_ task exec --exec-id probe $id cat /out/counter > "$OUT/ctr-$level-exec.out" 2>&1
    check "containerd ($level): the restored task takes exec" "$(grep -qx '[0-9][0-9]*' "$OUT/ctr-$level-exec.out" || show "$OUT/ctr-$level-exec.out")"
    task_gone $id
    ctr_ task delete $id > "$OUT/ctr-$level-delete.out" 2>&1
    ctr_ container delete $id >> "$OUT/ctr-$level-delete.out" 2>&1
    left=$(veil --root /run/containerd/veil/veil-guest list -q 2>&1)
    check "containerd ($level): the restored task is deleted, and veil keeps no state of it" \
        "$([ -z "$(task_status $id)" ] && [ -z "$left" ] || echo "task '$(task_status $id)', veil list '$left': $(show "$OUT/ctr-$level-delete.out")")"
fi
}
ctr_round native ctrck --runtime-config-path "$CTRD/veil-native.toml"
ctr_round sandbox ctrsb
kill "$containerd_pid" 2> /dev/null
wait "$containerd_pid" 2> /dev/null

# Whatever a failed step left running.
for pair in root1:ck1 root2:ck1r root3:ck1p root4:ckp root5:ckp2 root6:ckz root7:cke root8:ov1 root9:ov2; do native "$WORK/${pair%%:*}" delete --force "${pair#*:}" > /dev/null 2>&1; done

# --- the sandbox level: the sandbox comes back with its policy and a new warden ---------------------
# secret-holder counts in a sandbox; checkpoint ends it; restore in a fresh state root brings it back
# in a new id range, its network namespace the host's, its /proc views and device nodes the new
# sandbox's, each process's listener taken by veil (none left in the container) and a new warden
# answering: uname shows the sandbox's kernel identity again.
section "sandbox level"
sandbox() { timeout -s KILL 120 veil --root "$WORK/sroot" "$@"; }
S=/var/lib/veil-guest/sb-bundle
holder_bundle "$S" sb-host /veil-checkpoint/sb
if (cd "$S" && sandbox run -d sb1 > "$OUT/sb-run.out" 2>&1 < /dev/null) && sleep 2; then
    first_map=$(awk '{print $2}' "/proc/$(sandbox state sb1 | jq -r .pid)/uid_map")
    # A pre-dump, a --leave-running checkpoint on top of it, then the export that ends the sandbox.
    sandbox checkpoint --pre-dump --image-path "/var/lib/veil-guest/spre" sb1 > "$OUT/sb-predump.out" 2>&1 &&
        sandbox checkpoint --leave-running --parent-path ../spre --image-path "/var/lib/veil-guest/schain" sb1 >> "$OUT/sb-predump.out" 2>&1
    rc=$?
    at=$(cat "$S/rootfs/counter"); sleep 1
    check "sandbox: pre-dump, then checkpoint --leave-running on top of it: the sandbox keeps running" \
        "$([ $rc = 0 ] && [ "$(sandbox state sb1 | jq -r .status)" = running ] && [ "$(cat "$S/rootfs/counter")" -gt "$at" ] ||
           echo "exit $rc: $(show "$OUT/sb-predump.out")")"
    sandbox checkpoint --export "$WORK/sb.tar.gz" sb1 > "$OUT/sb-checkpoint.out" 2>&1
    rc=$?
    check "veil checkpoint --export of a sandboxed container saves it and ends it, as at the native level" \
        "$([ $rc = 0 ] && [ -z "$(sandbox list -q)" ] && [ -s "$WORK/sb.tar.gz" ] || echo "exit $rc: $(show "$OUT/sb-checkpoint.out")")"
    before=$(cat "$S/rootfs/counter")
    veil checkpoint inspect "$WORK/sb.tar.gz" --ps-tree > "$OUT/sb-inspect.txt" 2>&1
    veil checkpoint memparse "$WORK/sb.tar.gz" --search veil-secret-5eedc0ffee123456 > "$OUT/sb-memparse.txt" 2>&1
    check "the sandbox's archive reads as any: inspect shows secret-holder and the hostname, memparse finds the secret" \
        "$(grep -q secret-holder "$OUT/sb-inspect.txt" && grep -q sb-host "$OUT/sb-inspect.txt" && grep -q '(secret-holder) address' "$OUT/sb-memparse.txt" ||
           echo "$(show "$OUT/sb-inspect.txt") / $(show "$OUT/sb-memparse.txt")")"
    native "$WORK/root-sbn" restore -d --import "$WORK/sb.tar.gz" --bundle "$S" sbn > "$OUT/sb-native-restore.out" 2>&1
    rc=$?
    check "a sandbox's checkpoint is not restored at the native level, naming why; nothing left" \
        "$([ $rc != 0 ] && grep -q 'sandbox level' "$OUT/sb-native-restore.out" && [ ! -e "$WORK/root-sbn/sbn" ] || echo "exit $rc: $(show "$OUT/sb-native-restore.out")")"
    sandbox restore -d --import "$WORK/sb.tar.gz" --bundle "$S" sb1r > "$OUT/sb-restore.out" 2>&1
    rc=$?
    sleep 2
    after=$(cat "$S/rootfs/counter")
    check "veil restore --import at the sandbox level, in a fresh state root, continues the counter" \
        "$([ $rc = 0 ] && [ "$(sandbox state sb1r | jq -r .status)" = running ] && [ "$after" -gt "$before" ] 2>/dev/null ||
           echo "exit $rc, counter $before -> $after: $(show "$OUT/sb-restore.out") $(grep -E 'Error' "$WORK/simg/restore.log" | tail -3 | oneline)")"
    rpid=$(sandbox state sb1r | jq -r .pid)
    new_map=$(awk '{print $2}' "/proc/$rpid/uid_map" 2>/dev/null)
    check "the restored sandbox runs in a sandbox id range, its network namespace the host's" \
        "$([ -n "$new_map" ] && [ "$new_map" != 0 ] && [ "$(stat -L -c %u "/proc/$rpid")" = "$new_map" ] &&
           nsenter --net="/proc/$rpid/ns/net" ip -o link show lo | grep -q 'UP' || echo "uid_map base '$new_map' (was $first_map)")"
    sandbox exec sb1r sh -c 'uname -r; cat /proc/sys/kernel/osrelease; hostname' > "$OUT/sb-exec.out" 2>&1
    check "the restored sandbox's warden answers: uname and /proc show the sandbox's kernel identity, the hostname is kept" \
        "$(r=$(sed -n 1p "$OUT/sb-exec.out"); [ -n "$r" ] && [ "$r" != "$(uname -r)" ] && [ "$(sed -n 2p "$OUT/sb-exec.out")" = "$r" ] &&
           [ "$(sed -n 3p "$OUT/sb-exec.out")" = sb-host ] || show "$OUT/sb-exec.out")"
    kept="" seen=0
    for p in $(cat /sys/fs/cgroup/veil-checkpoint/sb/cgroup.procs 2>/dev/null); do
        seen=$((seen + 1)); ls -l "/proc/$p/fd" 2>/dev/null | grep -q 'seccomp notify' && kept="$kept $p"
    done
    check "no process of the restored sandbox holds a seccomp listener (veil took them all)" "$([ "$seen" -gt 0 ] && [ -z "$kept" ] || echo "$seen processes, listeners kept by:$kept")"
    sandbox delete --force sb1r > "$OUT/sb-delete.out" 2>&1
    # The pre-dump chain restores too (older than the counter's file: it counts on from its own value).
    timeout -s KILL 120 veil --debug --root "$WORK/sroot2" restore -d --image-path "/var/lib/veil-guest/schain" --bundle "$S" sb2 > "$OUT/sb-chain-restore.out" 2>&1
    rc=$?
    sleep 1; c1=$(cat "$S/rootfs/counter"); sleep 1; c2=$(cat "$S/rootfs/counter")
    check "sandbox: restore from the pre-dump chain runs and counts" \
        "$([ $rc = 0 ] && [ "$c2" != "$c1" ] || echo "exit $rc, counter $c1 then $c2: $(show "$OUT/sb-chain-restore.out")")"
    # On ext4 the memory images were read through an id-mapped view of the caller's directories
    # (the /run images of the import above, on this kernel's tmpfs, were copied): the caller's
    # images keep their owner, nothing staged or mounted is left.
    check "sandbox: the chain's memory images went through an id-mapped view, stay the caller's (owner root); no staged copy or view is left" \
        "$(grep -q 'images staged (memory through an id-mapped view)' "$OUT/sb-chain-restore.out" && [ "$(stat -c %u /var/lib/veil-guest/schain/pages-1.img /var/lib/veil-guest/spre/pages-1.img | sort -u)" = 0 ] &&
           ! grep -q veil-source /proc/self/mountinfo && [ -z "$(ls -d "$WORK"/sroot2/sb2/criu-images* 2>/dev/null)" ] ||
           echo "$(grep -o 'images staged ([^)]*)' "$OUT/sb-chain-restore.out"); $(stat -c '%n %u' /var/lib/veil-guest/schain/pages-1.img /var/lib/veil-guest/spre/pages-1.img | oneline); $(grep veil-source /proc/self/mountinfo | oneline); $(ls -d "$WORK"/sroot2/sb2/criu-images* 2>&1 | oneline)")"
    timeout -s KILL 120 veil --root "$WORK/sroot2" delete --force sb2 > /dev/null 2>&1
    check "the restored sandbox deletes cleanly: no state, warden or sandbox directory left" \
        "$([ -z "$(sandbox list -q)" ] && ! pgrep -f "veil-warden $WORK/sroot/sb1r" > /dev/null && [ -z "$(ls -d /run/veil-sandbox/sb1r-* 2>/dev/null)" ] ||
           echo "$(sandbox list -q) $(show "$OUT/sb-delete.out")")"
else
    not_ok "veil checkpoint of a sandboxed container" "the sandboxed container did not run: $(show "$OUT/sb-run.out")"
fi
sandbox restore -d --import "$A" --bundle "$B" ck3 > "$OUT/ck-srestore.out" 2>&1
rc=$?
check "a native checkpoint is not restored at the sandbox level (the operator's default), naming why; no state left" \
    "$([ $rc != 0 ] && grep -q 'sandbox level' "$OUT/ck-srestore.out" && [ ! -e "$WORK/sroot/ck3" ] || echo "exit $rc: $(show "$OUT/ck-srestore.out")")"

# --- benchmark (VEIL_GUEST_BENCH=N rounds; a measurement, never a check) -----------------------------
# Checkpoint and restore of a container holding 64 MiB of touched memory, runc 1.1.5 (CRIU's RPC),
# veil native (CRIU's command line) and veil's sandbox level (which also copies the images, makes a
# host-owned network namespace, id-maps the rootfs and starts a warden) interleaved round by round,
# medians and ratios to runc (#16's target: veil <= 1.0x runc); then `veil checkpoint inspect` of
# such an archive (target <= 0.5 s).
if [ "${VEIL_GUEST_BENCH:-0}" -gt 0 ]; then
    section "bench: ${VEIL_GUEST_BENCH} rounds"
    BB=/var/lib/veil-guest/bench-bundle
    mkdir -p "$BB"
    cp -a "$B/rootfs" "$BB/rootfs"
    jq '.process.args = ["sh", "-c", "exec > /dev/null 2>&1 < /dev/null; exec /secret-holder /counter 64"] | .linux.cgroupsPath = "/veil-checkpoint/bench"' \
        "$B/config.json" > "$BB/config.json"
    ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
    # Until secret-holder has touched its 64 MiB and counts.
    bench_ready() { rm -f "$BB/rootfs/counter"; for _ in $(seq 300); do [ -s "$BB/rootfs/counter" ] && return 0; sleep 0.1; done; return 1; }
    : > "$OUT/bench.txt"
    for round in $(seq "$VEIL_GUEST_BENCH"); do
        case $((round % 3)) in 0) order="runc veil veil-sandbox" ;; 1) order="veil veil-sandbox runc" ;; *) order="veil-sandbox runc veil" ;; esac
        for name in $order; do
            case $name in
                runc) rtb() { timeout -s KILL 300 runc --root "$WORK/bench-runc" "$@"; } ;;
                veil) rtb() { timeout -s KILL 300 veil --isolation native --root "$WORK/bench-veil" "$@"; } ;;
                veil-sandbox) rtb() { timeout -s KILL 300 veil --root "$WORK/bench-sandbox" "$@"; } ;;
            esac
            # On the guest's disk, where kubelet and containerd keep checkpoints (not /run's tmpfs).
            images=/var/lib/veil-guest/bench-images-$name
            rm -rf "$images"
            rm -f "$BB/rootfs/counter"
            rtb run -d --bundle "$BB" "b$round" > "$OUT/bench-run.out" 2>&1 < /dev/null
            if ! bench_ready; then emit "# bench: $name round $round: the container did not start: $(show "$OUT/bench-run.out")"; rtb delete --force "b$round" > /dev/null 2>&1; continue; fi
            start=$(date +%s%N)
            rtb checkpoint --image-path "$images" "b$round" > "$OUT/bench-checkpoint.out" 2>&1 || emit "# bench: $name checkpoint failed: $(show "$OUT/bench-checkpoint.out")"
            checkpoint=$(ms "$start")
            start=$(date +%s%N)
            rtb restore -d --image-path "$images" --bundle "$BB" "r$round" > "$OUT/bench-restore.out" 2>&1 || emit "# bench: $name restore failed: $(show "$OUT/bench-restore.out")"
            restore=$(ms "$start")
            echo "checkpoint $name $checkpoint" >> "$OUT/bench.txt"
            echo "restore $name $restore" >> "$OUT/bench.txt"
            echo "size $name $(du -sm "$images" | cut -f1)" >> "$OUT/bench.txt"
            cp "$images/dump.log" "$OUT/bench-$name-dump.log" 2> /dev/null
            cp "$images/restore.log" "$OUT/bench-$name-restore.log" 2> /dev/null
            rtb delete --force "r$round" > /dev/null 2>&1
            rtb delete --force "b$round" > /dev/null 2>&1
        done
    done
    median() { grep "^$1 $2 " "$OUT/bench.txt" | cut -d' ' -f3 | sort -n | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : int((v[NR / 2] + v[NR / 2 + 1]) / 2)) }'; }
    for what in checkpoint restore; do
        base=$(median "$what" runc)
        for name in runc veil veil-sandbox; do
            m=$(median "$what" "$name")
            emit "# bench: $what (64 MiB touched) $name median ${m:-?} ms ratio $(awk -v a="${m:-0}" -v b="${base:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')"
        done
    done
    emit "# bench: image size runc $(median size runc) MiB, veil $(median size veil) MiB, veil-sandbox $(median size veil-sandbox) MiB"
    # An exported archive of the same container (uncompressed, as kubelet writes them), copied back
    # for the host to time `inspect` on (bench/checkpoint-guest.sh): emulation would time tar, not veil.
    timeout -s KILL 300 veil --isolation native --root "$WORK/bench-veil" run -d --bundle "$BB" ba > /dev/null 2>&1 < /dev/null
    bench_ready
    veil --isolation native --root "$WORK/bench-veil" checkpoint --export "$OUT/bench.tar" ba > "$OUT/bench-export.out" 2>&1 ||
        emit "# bench: export failed: $(show "$OUT/bench-export.out")"
    emit "# bench: exported archive $(du -h "$OUT/bench.tar" | cut -f1)"
fi

# --- the host's fixture (VEIL_GUEST_FIXTURE=1): the raw dump and veil's archive, with crit's decoding -----
if [ "${VEIL_GUEST_FIXTURE:-0}" = 1 ]; then
    section "fixture"
    fixture=$OUT/fixture
    crit_all() {  # IMAGES-DIR OUT-DIR: crit's JSON of every image it can decode
        for image in "$1"/*.img; do
            crit decode -i "$image" > "$2/$(basename "$image" .img).crit.json" 2> /dev/null || rm -f "$2/$(basename "$image" .img).crit.json"
        done
    }
    mkdir -p "$fixture/raw-tree" "$fixture/container-crit" "$WORK/unpacked"
    cp -a "$raw/images/." "$fixture/raw-tree/"
    crit_all "$raw/images" "$fixture/raw-tree"
    if [ -s "$A" ]; then
        cp "$A" "$fixture/container.tar.gz"
        tar -xzf "$A" -C "$WORK/unpacked"
        crit_all "$WORK/unpacked/checkpoint" "$fixture/container-crit"
    else
        not_ok "fixture: veil's archive of a container" "no $A"
    fi
    emit "# fixture: $(du -sh "$fixture" | cut -f1) in $fixture"
fi

section "done"
dmesg > "$OUT/dmesg.txt" 2>&1
report_result
