#!/usr/bin/env python3
"""Side-by-side benchmark of OCI runtimes: runc, veil (sandbox and native levels) and runsc (gVisor).

Usage: python3 bench/bench.py --veil PATH [--veil-shim PATH] [--rounds N] [--runsc-rounds N]
                               [--ctr-rounds N] [--workloads LIST] [--out DIR]

Workloads (all on one busybox bundle built by scripts/make-bundle.sh, rootfs read-only):
  run              `RT --root R run ID` of /bin/true in the bundle dir, until it exits
  lifecycle        create (sleep 1000) / start / kill KILL / poll state until stopped / delete
  lifecycle-nokill create (/bin/true) / start / poll state until stopped / delete
  exec             `RT --root R exec ID true` in a long-running container (sleep 100000,
                   created and started once per runtime before the rounds), until it exits
  pause-resume     `pause ID` + `resume ID` of that same long-running container
  ctr-run          `ctr run --rm --runc-binary RT --runc-root DIR busybox ID true` through a
                   private containerd 1.6 (own config, socket and state in /tmp/vb-XXXX);
                   runc and veil only (gVisor has its own shim)
  ctr-shim         `ctr run --rm --runtime TYPE busybox ID true` through the same containerd:
                   io.containerd.veil.v1 (containerd-shim-veil-v1 + veil) vs io.containerd.runc.v2
                   (containerd-shim-runc-v2 + runc); afterwards the resident memory (VmRSS, Pss)
                   of each shim serving one `ctr run -d ... sleep 100000` task

Runtimes (--runtimes, default runc,veil,veil-native,runsc): runc (/usr/sbin/runc); veil, the given
binary at its default isolation level, sandbox; veil-native, the same binary with
`--isolation native` (through containerd: the runc shim runs it as `veil-native`, a link veil reads
as --isolation native; the veil shim gets a runtime config path with isolation = "native", as
`veil install` writes for its veil-native handler); runsc
(/usr/bin/runsc --network=none, fewer rounds). With --baseline-veil PATH, veil-base: another
veil build (e.g. the revision before a change, built by bench/baseline.sh) at its sandbox level, in
the same rounds, for the direct workloads only; the report then gives veil/veil-base per workload.

Rounds are interleaved: round i runs every runtime once, in an order rotated by i.
Wall times are taken around direct posix_spawn()+wait4() of the runtime command.
Peak RSS comes from a separate, untimed invocation per round (see README.md).
Exit status: 1 if veil failed (any sample), 2 on usage/setup errors, else 0.
Python standard library only.
"""

import argparse
import datetime
import hashlib
import json
import math
import os
import platform
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RUNC = "/usr/sbin/runc"
RUNSC = "/usr/bin/runsc"
TIMEOUT_S = 60.0          # per runtime command
STOP_POLL_TIMEOUT_S = 15.0
WORKLOADS = ("run", "lifecycle", "lifecycle-nokill", "exec", "pause-resume", "ctr-run", "ctr-shim")
LONG_WORKLOADS = ("exec", "pause-resume")      # share one long-running container per runtime
CTR_WORKLOADS = ("ctr-run", "ctr-shim")        # need the private containerd
CTR_RUNTIMES = ("runc", "veil", "veil-native")  # runtimes driven through containerd
# ctr-shim: each runtime with its own containerd shim (runtime type, shim binary name)
SHIM_RUNTIMES = {"runc": ("io.containerd.runc.v2", "containerd-shim-runc-v2"),
                 "veil": ("io.containerd.veil.v1", "containerd-shim-veil-v1"),
                 "veil-native": ("io.containerd.veil.v1", "containerd-shim-veil-v1")}
# Isolation level through containerd: the shim and `--runc-binary` cannot pass veil's global
# flags, so veil-native is the operator's way: the shim reads a runtime config path saying
# isolation = "native" (see Containerd.native_config), the runc shim runs veil under the name
# veil-native (Containerd.native_link). A pod's annotation may not lower the level.


def shim_flags(cd, name):
    """ctr run flags that give the veil shim the runtime's isolation level."""
    return ["--runtime-config-path", cd.native_config()] if name == "veil-native" else []
DEFAULT_RUNTIMES = "runc,veil,veil-native,runsc"
VEIL_RUNTIMES = ("veil", "veil-native")
BASELINE_TOLERANCE = 1.05   # a change's "no regression" against the baseline build (issue 11)
# Issue 6: `run` of /bin/true under veil's sandbox level against runsc and runc.
SANDBOX_RUN_TARGETS = (("runsc", 0.25), ("runc", 1.50))
VERDICT_TARGET = 0.80
VERDICT_TARGETS = {"ctr-shim": 1.00}           # per-workload exceptions to VERDICT_TARGET
SHIM_MEM_TARGET = 0.50                         # veil shim RSS / runc shim RSS
SHIM_MEM_SAMPLES = 5
SHIM_MEM_SETTLE = 13.0                         # seconds idle before the shim memory samples
TMP_DIRS = []  # set in main(); scrubbed from error messages


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def scrub(text):
    """A message without the run's temp paths (comparable between runs and rounds)."""
    for d in TMP_DIRS:
        text = text.replace(d, "$TMP")
    return text


def rotated(items, i):
    """Round i's order: the items rotated by i, so that every one runs first, second, ... in turn."""
    k = i % max(1, len(items))
    return items[k:] + items[:k]


# --------------------------------------------------------------------------- process launching

class Result:
    __slots__ = ("argv", "rc", "ms", "rss_kib", "out", "err", "timed_out", "spawned_ns")

    def __init__(self, argv, rc, ms, rss_kib, out, err, timed_out=False, spawned_ns=None):
        self.argv, self.rc, self.ms, self.rss_kib = argv, rc, ms, rss_kib
        self.out, self.err, self.timed_out = out, err, timed_out
        self.spawned_ns = spawned_ns      # wall clock (time.time_ns()) just before posix_spawn

    @property
    def ok(self):
        return self.rc == 0

    def describe(self, label):
        what = "timed out" if self.timed_out else (
            f"killed by signal {-self.rc}" if self.rc < 0 else f"exit {self.rc}")
        msg = [l.strip() for l in (self.err or "").strip().splitlines() if l.strip()]
        # the last line naming an error (a usage hint may follow it), else the last line
        errs = [l for l in msg if "error" in l.lower()]
        detail = (errs or msg)[-1][:200] if msg else ""
        # make messages of different rounds comparable: no temp paths, no container ids
        text = scrub(f"`{label}` {what}" + (f": {detail}" if detail else ""))
        text = re.sub(r'time="[^"]*" ', "", text)      # runc's logrus timestamps
        return re.sub(r"vb\d+-[A-Za-z0-9_-]+", "ID", text)


class Launcher:
    """Runs commands with stdin=/dev/null and stdout/stderr captured to fresh temp files.

    Timing wraps posix_spawn() .. wait4() only. With rss_wrapper set, the command is run
    under GNU time (or busybox time) so that ru_maxrss is taken by a freshly exec'd tiny
    process: a direct child of this driver would inherit the driver's own RSS high-water
    mark across fork/exec and report at least that much.
    """

    def __init__(self, tmp):
        self.tmp = Path(tmp)
        self.devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self.seq = 0
        self.rss_wrapper, self.rss_scale, self.rss_tool = self._find_rss_wrapper()

    @staticmethod
    def _find_rss_wrapper():
        if os.access("/usr/bin/time", os.X_OK):
            return ["/usr/bin/time", "-f", "%M", "-o"], 1.0, "GNU time (/usr/bin/time)"
        bb = shutil.which("busybox")
        if bb:
            # busybox `time` treats ru_maxrss as pages and multiplies by pagesize/1024.
            return [bb, "time", "-f", "%M", "-o"], 1024.0 / os.sysconf("SC_PAGE_SIZE"), "busybox time"
        return None, 1.0, "direct wait4 (includes the driver's own RSS as a floor)"

    def run(self, argv, rss=False, timeout=None):
        timeout = TIMEOUT_S if timeout is None else timeout
        self.seq += 1
        outp = self.tmp / f"out.{self.seq}"
        errp = self.tmp / f"err.{self.seq}"
        rssp = self.tmp / f"rss.{self.seq}"
        full = list(argv)
        if rss and self.rss_wrapper:
            full = self.rss_wrapper + [str(rssp)] + full
        out_fd = os.open(outp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        err_fd = os.open(errp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        fa = [(os.POSIX_SPAWN_DUP2, self.devnull, 0),
              (os.POSIX_SPAWN_DUP2, out_fd, 1),
              (os.POSIX_SPAWN_DUP2, err_fd, 2)]
        timed_out = False
        try:
            wall0 = time.time_ns()
            t0 = time.perf_counter_ns()
            try:
                pid = os.posix_spawn(full[0], full, os.environ, file_actions=fa, setpgroup=0,
                                     setsigdef=(signal.SIGPIPE, signal.SIGXFSZ))
            except OSError as e:
                return Result(argv, 127, 0.0, None, "", f"spawn failed: {e}")
            pidfd = os.pidfd_open(pid)
            try:
                ready, _, _ = select.select([pidfd], [], [], timeout)
                if not ready:
                    timed_out = True
                    try:
                        os.killpg(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                _, status, ru = os.wait4(pid, 0)
                t1 = time.perf_counter_ns()
            finally:
                os.close(pidfd)
        finally:
            os.close(out_fd)
            os.close(err_fd)
        rc = os.waitstatus_to_exitcode(status)
        rss_kib = ru.ru_maxrss
        if rss and self.rss_wrapper:
            rss_kib = None
            try:
                lines = rssp.read_text(errors="replace").strip().splitlines()
                rss_kib = float(lines[-1].strip()) * self.rss_scale
            except (OSError, ValueError, IndexError):
                pass
            try:
                rssp.unlink()
            except OSError:
                pass
        out = outp.read_text(errors="replace")
        err = errp.read_text(errors="replace")
        for p in (outp, errp):
            try:
                p.unlink()
            except OSError:
                pass
        if timed_out:
            rc = rc if rc != 0 else -9
        return Result(argv, rc, (t1 - t0) / 1e6, rss_kib, out, err, timed_out, wall0)


# --------------------------------------------------------------------------- runtimes

class Runtime:
    def __init__(self, name, path, root, flags=(), rounds=None):
        self.name, self.path, self.root = name, path, str(root)
        self.flags = list(flags)
        self.rounds = rounds          # set of round indices it takes part in (None = all)
        self.version = ""
        self.ids = set()              # containers created (for final cleanup)
        self.long_id = None           # the long-running container of exec / pause-resume
        self.long_error = None        # why it could not be set up (every sample then fails)
        self.long_seq = 0
        self.level_seen = None        # user namespace of the long-running container's init (uid_map)

    def cmd(self, *args):
        return [self.path, *self.flags, "--root", self.root, *args]

    def fetch_version(self):
        try:
            p = subprocess.run([self.path, "--version"], capture_output=True, text=True, timeout=20)
            lines = [l.strip() for l in (p.stdout + p.stderr).splitlines() if l.strip()]
            self.version = "; ".join(lines[:2]) if lines else f"(exit {p.returncode}, no output)"
        except (OSError, subprocess.SubprocessError) as e:
            self.version = f"(version unavailable: {e})"


def runtime_spec(name, veil, baseline=None, runsc_flags="--network=none"):
    """(binary, global flags) of a runtime column (veil = sandbox, the default level), or None if unknown."""
    return {"runc": (RUNC, []),
            "veil": (veil, []),
            "veil-native": (veil, ["--isolation", "native"]),
            "veil-base": (baseline, []),
            "runsc": (RUNSC, runsc_flags.split())}.get(name)


# --------------------------------------------------------------------------- workloads

class Sample:
    def __init__(self):
        self.ok = True
        self.ms = None
        self.rss_kib = None
        self.steps = {}
        self.polls = 0
        self.error = None

    def add(self, name, r):
        self.steps[name] = self.steps.get(name, 0.0) + r.ms
        if r.rss_kib is not None:
            self.rss_kib = max(self.rss_kib or 0, r.rss_kib)

    def fail(self, r_or_msg, label=""):
        self.ok = False
        self.error = r_or_msg if isinstance(r_or_msg, str) else r_or_msg.describe(label)


def force_delete(L, rt, cid):
    """Best-effort, untimed cleanup of a container that may be left behind."""
    L.run(rt.cmd("kill", cid, "KILL"), timeout=min(TIMEOUT_S, 20))
    L.run(rt.cmd("delete", "--force", cid), timeout=min(TIMEOUT_S, 30))


def wl_run(L, rt, cid, bundles, rss):
    s = Sample()
    r = L.run(rt.cmd("run", cid), rss=rss)   # cwd is the `true` bundle
    s.add("run", r)
    s.ms = r.ms
    if not r.ok:
        s.fail(r, "run")
        force_delete(L, rt, cid)
    return s


def _lifecycle(L, rt, cid, bundle, rss, kill):
    s = Sample()
    rt.ids.add(cid)
    t0 = time.perf_counter_ns()

    def step(name, *args):
        r = L.run(rt.cmd(*args), rss=rss)
        s.add(name, r)
        if not r.ok:
            s.fail(r, args[0])
        return r

    if step("create", "create", "--bundle", bundle, cid).ok and step("start", "start", cid).ok \
            and (not kill or step("kill", "kill", cid, "KILL").ok):
        deadline = time.monotonic() + STOP_POLL_TIMEOUT_S
        stopped = False
        while s.ok and time.monotonic() < deadline:
            r = step("wait", "state", cid)
            s.polls += 1
            if not r.ok:
                break
            try:
                status = json.loads(r.out).get("status")
            except (ValueError, AttributeError):
                s.fail(f"`state` printed no JSON status: {r.out.strip()[:120]!r}")
                break
            if status == "stopped":
                stopped = True
                break
        if s.ok and not stopped:
            s.fail(f"`state` not stopped after {STOP_POLL_TIMEOUT_S:.0f}s")
        if s.ok:
            step("delete", "delete", cid)
    s.ms = (time.perf_counter_ns() - t0) / 1e6
    if not s.ok:
        force_delete(L, rt, cid)
    rt.ids.discard(cid)
    return s


def wl_lifecycle(L, rt, cid, bundles, rss):
    return _lifecycle(L, rt, cid, bundles["sleep"], rss, kill=True)


def wl_lifecycle_nokill(L, rt, cid, bundles, rss):
    return _lifecycle(L, rt, cid, bundles["true"], rss, kill=False)


def start_long(L, rt, bundles):
    """Creates and starts the long-running container (untimed). Sets rt.long_id or rt.long_error."""
    rt.long_seq += 1
    cid = f"vb{os.getpid()}-{rt.name}-long{rt.long_seq}"
    rt.long_id, rt.long_error = None, None
    rt.ids.add(cid)
    for args in (("create", "--bundle", bundles["long"], cid), ("start", cid)):
        r = L.run(rt.cmd(*args))
        if not r.ok:
            rt.long_error = "setting up the long-running container: " + r.describe(args[0])
            force_delete(L, rt, cid)
            rt.ids.discard(cid)
            return
    status = long_status(L, rt, cid)
    if status != "running":
        rt.long_error = f"the long-running container is {status!r} after `start`, not running"
        force_delete(L, rt, cid)
        rt.ids.discard(cid)
        return
    rt.long_id = cid
    if rt.level_seen is None:
        pid = container_pid(L, rt, cid)
        rt.level_seen = observed_level(pid) if pid else "? (no pid in `state`)"


def observed_level(pid):
    """What the init process's uid_map says about its isolation: the check that veil-native really
    ran without, and veil (sandbox) with, a user namespace."""
    try:
        first = Path(f"/proc/{pid}/uid_map").read_text().split()
    except OSError as e:
        return f"? (uid_map of pid {pid}: {e.strerror})"
    if first[:3] == ["0", "0", "4294967295"]:
        return "host user namespace"
    return f"own user namespace (uid 0 = host {first[1]})" if len(first) >= 3 else "?"


def container_pid(L, rt, cid):
    r = L.run(rt.cmd("state", cid), timeout=min(TIMEOUT_S, 20))
    try:
        return int(json.loads(r.out)["pid"]) if r.ok else None
    except (ValueError, KeyError, TypeError):
        return None


def long_status(L, rt, cid):
    r = L.run(rt.cmd("state", cid), timeout=min(TIMEOUT_S, 20))
    if not r.ok:
        return f"unknown (`state` {'timed out' if r.timed_out else f'exit {r.rc}'})"
    try:
        return json.loads(r.out).get("status")
    except (ValueError, AttributeError):
        return "unknown (`state` printed no JSON status)"


def check_long(L, rt, bundles):
    """After a failed sample: make sure the next one again finds a running container
    (a failed resume may leave it paused, a failed exec may have killed it)."""
    if rt.long_id is None:
        return
    if long_status(L, rt, rt.long_id) == "running":
        return
    force_delete(L, rt, rt.long_id)
    rt.ids.discard(rt.long_id)
    start_long(L, rt, bundles)


def wl_exec(L, rt, cid, bundles, rss):
    s = Sample()
    if rt.long_id is None:
        s.fail(rt.long_error or "no long-running container")
        return s
    r = L.run(rt.cmd("exec", rt.long_id, "true"), rss=rss)
    s.add("exec", r)
    s.ms = r.ms
    if not r.ok:
        s.fail(r, "exec")
        check_long(L, rt, bundles)
    return s


def wl_pause_resume(L, rt, cid, bundles, rss):
    s = Sample()
    if rt.long_id is None:
        s.fail(rt.long_error or "no long-running container")
        return s
    t0 = time.perf_counter_ns()
    for step in ("pause", "resume"):
        r = L.run(rt.cmd(step, rt.long_id), rss=rss)
        s.add(step, r)
        if not r.ok:
            s.fail(r, step)
            break
    s.ms = (time.perf_counter_ns() - t0) / 1e6
    if not s.ok:
        check_long(L, rt, bundles)
    return s


class Containerd:
    """A private containerd 1.6 for the ctr-run and ctr-shim workloads: config, sockets, state and
    the runtimes' --runc-root dirs all live in one short temp dir (unix socket paths are limited to
    108 bytes, and the shims' socket names derive from ours). containerd runs with PATH prefixed by
    `path_prefix` (where it looks up containerd-shim-veil-v1, and the veil shim veil).
    `state_roots` are (runtime binary, --root) pairs of the shims' own runtime state dirs
    (/run/containerd/{runc,veil}/bench): stop() force-deletes leftover containers of ours there.
    stop() tears everything down and never raises."""

    NAMESPACE = "bench"
    IMAGE = "busybox"

    def __init__(self, launcher, path_prefix=(), state_roots=()):
        self.L = launcher
        self.path_prefix = [d for d in path_prefix if d]
        self.state_roots = list(state_roots)
        self.dir = tempfile.mkdtemp(prefix="vb-", dir="/tmp")
        TMP_DIRS.append(self.dir)
        self.sock = os.path.join(self.dir, "c.sock")
        self.log_path = os.path.join(self.dir, "containerd.log")
        self.proc = None
        self.ctr = shutil.which("ctr") or "/usr/bin/ctr"
        self.ids = set()
        self.version = ""

    @classmethod
    def shim_state_roots(cls, veil=None):
        """(runtime binary, --root) of the runc and veil shims' runtime state of our namespace."""
        roots = [(RUNC, f"/run/containerd/runc/{cls.NAMESPACE}")]
        return roots + ([(veil, f"/run/containerd/veil/{cls.NAMESPACE}")] if veil else [])

    def native_config(self):
        """The veil shim's runtime options for veil-native, as `veil install` writes for its veil-native handler."""
        path = os.path.join(self.dir, "veil-native.toml")
        if not os.path.exists(path):
            with open(path, "w") as f:
                f.write('isolation = "native"\n')
        return path

    def native_link(self, veil):
        """veil under the name veil-native, which it reads as --isolation native (for --runc-binary)."""
        path = os.path.join(self.dir, "veil-native")
        if not os.path.islink(path):
            os.symlink(veil, path)
        return path

    def runc_root(self, rt):
        d = os.path.join(self.dir, "rt-" + rt.name)
        os.makedirs(d, exist_ok=True)
        return d

    def ctr_cmd(self, *args, ns=True):
        return [self.ctr, "--address", self.sock] + (["-n", self.NAMESPACE] if ns else []) + list(args)

    def log_tail(self, n=5):
        try:
            lines = Path(self.log_path).read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return " | ".join(l[:200] for l in lines[-n:])

    def start(self):
        """Starts containerd and imports the image; raises RuntimeError with the reason."""
        binary = shutil.which("containerd")
        if not binary or not os.access(self.ctr, os.X_OK):
            raise RuntimeError("containerd and ctr must be installed (apt-get install containerd)")
        config = os.path.join(self.dir, "config.toml")
        Path(config).write_text(f"""version = 2
root = "{self.dir}/root"
state = "{self.dir}/state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.snapshotter.v1.aufs",
  "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.zfs",
  "io.containerd.tracing.processor.v1.otlp",
]

[grpc]
  address = "{self.sock}"

[ttrpc]
  address = "{self.sock}.ttrpc"
""")
        env = dict(os.environ)
        env["PATH"] = ":".join(list(dict.fromkeys(self.path_prefix)) +
                               [env.get("PATH") or "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"])
        with open(self.log_path, "ab") as logf:
            self.proc = subprocess.Popen([binary, "--config", config], stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, start_new_session=True, env=env)
        deadline = time.monotonic() + 20
        last = ""
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"containerd exited at start-up ({self.proc.returncode}): {self.log_tail()}")
            if os.path.exists(self.sock):
                r = self.L.run(self.ctr_cmd("version", ns=False), timeout=5)
                if r.ok:
                    # ctr version: "Client:\n  Version: ...\n ...\nServer:\n  Version: ..."
                    vers = [l.split(":", 1)[1].strip() for l in r.out.splitlines()
                            if l.strip().startswith("Version:")]
                    self.version = vers[-1] if vers else ""
                    break
                last = r.describe("ctr version")
            if time.monotonic() > deadline:
                raise RuntimeError(f"containerd did not answer within 20s: {last}")
            time.sleep(0.05)
        tar = os.path.join(self.dir, "busybox-image.tar")
        p = subprocess.run(["bash", str(REPO / "scripts" / "make-busybox-image.sh"), tar],
                           capture_output=True, text=True, timeout=300)
        if p.returncode != 0:
            raise RuntimeError(f"make-busybox-image.sh failed: {p.stderr.strip()[-300:]}")
        tar = p.stdout.strip().splitlines()[-1]
        r = self.L.run(self.ctr_cmd("image", "import", "--index-name", self.IMAGE, tar), timeout=120)
        if not r.ok:
            raise RuntimeError(r.describe("ctr image import"))

    def remove(self, cid):
        """Untimed, best-effort removal of what a failed `ctr run --rm` left behind."""
        self.L.run(self.ctr_cmd("task", "rm", "-f", cid), timeout=15)
        self.L.run(self.ctr_cmd("container", "rm", cid), timeout=15)

    # ---- teardown

    def _shims(self):
        """(pid, id) of live shims started for this containerd (`-address SOCK` on their command line)."""
        found = []
        for e in os.listdir("/proc"):
            if not e.isdigit():
                continue
            try:
                argv = Path(f"/proc/{e}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            argv = [a.decode(errors="replace") for a in argv]
            if argv and "containerd-shim" in argv[0] and (self.sock in argv or self.sock + ".ttrpc" in argv):
                cid = next((b for a, b in zip(argv, argv[1:]) if a == "-id"), None)
                found.append((int(e), cid))
        return found

    @staticmethod
    def _descendants(root):
        children = {}
        for e in os.listdir("/proc"):
            if not e.isdigit():
                continue
            try:
                stat = Path(f"/proc/{e}/stat").read_text()
                ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(e))
        out, queue = [], [root]
        while queue:
            for c in children.get(queue.pop(), []):
                out.append(c)
                queue.append(c)
        return out

    def _cgroup_dirs(self, cid):
        base = "/sys/fs/cgroup"
        cands = [os.path.join(base, self.NAMESPACE, cid)]
        try:
            cands += [os.path.join(base, h, self.NAMESPACE, cid) for h in os.listdir(base)]
        except OSError:
            pass
        return [d for d in cands if os.path.isfile(os.path.join(d, "cgroup.procs"))]

    def _mounts_below(self):
        res = []
        try:
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                mp = line.split()[4].encode().decode("unicode_escape")
                if mp == self.dir or mp.startswith(self.dir + "/"):
                    res.append(mp)
        except (OSError, IndexError):
            pass
        return res

    def stop(self):
        ids = set(self.ids)
        try:
            if self.proc is not None and self.proc.poll() is None:
                r = self.L.run(self.ctr_cmd("task", "ls", "-q"), timeout=5)
                for cid in r.out.split() if r.ok else []:
                    self.L.run(self.ctr_cmd("task", "rm", "-f", cid), timeout=10)
                r = self.L.run(self.ctr_cmd("container", "ls", "-q"), timeout=5)
                for cid in r.out.split() if r.ok else []:
                    ids.add(cid)
                    self.L.run(self.ctr_cmd("container", "rm", cid), timeout=10)
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        except Exception as e:  # teardown must go on
            log(f"bench: containerd teardown: {e}")
        # A hung runtime is the shim's child, not in the container's cgroup: kill whole shim trees.
        shims = self._shims()
        for pid, cid in shims:
            if cid:
                ids.add(cid)
            for p in [pid] + self._descendants(pid):
                try:
                    os.kill(p, signal.SIGKILL)
                except OSError:
                    pass
        deadline = time.monotonic() + 5
        while shims and self._shims() and time.monotonic() < deadline:
            time.sleep(0.05)
        for cid in ids:
            # containerd 1.6's shim socket: /run/containerd/s/sha256("ADDRESS/NAMESPACE/ID")
            h = hashlib.sha256(f"{self.sock}/{self.NAMESPACE}/{cid}".encode()).hexdigest()
            try:
                os.unlink(f"/run/containerd/s/{h}")
            except OSError:
                pass
            for d in self._cgroup_dirs(cid):
                try:
                    for pid in Path(d, "cgroup.procs").read_text().split():
                        os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        time.sleep(0.1 if ids else 0)
        for cid in ids:
            for d in self._cgroup_dirs(cid):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        # state a killed shim left in its runtime's root (/run/containerd/{runc,veil}/bench/ID)
        for binary, root in self.state_roots:
            for cid in ids:
                if os.path.isdir(os.path.join(root, cid)) and os.access(binary, os.X_OK):
                    self.L.run([binary, "--root", root, "delete", "--force", cid], timeout=20)
            try:
                os.rmdir(root)           # only if empty: the namespace dir of ours
            except OSError:
                pass
        # containerd's default cgroup parent for ctr run is /NAMESPACE: remove it if now empty
        # (rmdir fails harmlessly while anything else still uses it).
        base = "/sys/fs/cgroup"
        for d in [os.path.join(base, self.NAMESPACE)] + [
                os.path.join(base, h, self.NAMESPACE) for h in (os.listdir(base) if os.path.isdir(base) else [])]:
            if os.path.isfile(os.path.join(d, "cgroup.procs")):
                try:
                    os.rmdir(d)
                except OSError:
                    pass
        for mp in sorted(self._mounts_below(), key=len, reverse=True):
            subprocess.run(["umount", "-l", mp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        left = self._mounts_below()
        if left:
            log(f"bench: warning: mounts left under {self.dir}, not removing it: {left[:3]}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)


def _ctr_run_rm(L, cd, cid, step, run_flags):
    """One timed `ctr run --rm RUN_FLAGS busybox ID true`; removes leftovers on failure."""
    s = Sample()
    if cd is None:
        s.fail("containerd not set up")
        return s
    cd.ids.add(cid)
    r = L.run(cd.ctr_cmd("run", "--rm", *run_flags, cd.IMAGE, cid, "true"))
    s.add(step, r)
    s.ms = r.ms
    if not r.ok:
        s.fail(r, "ctr run")
        cd.remove(cid)
    else:
        cd.ids.discard(cid)
    return s


def wl_ctr_run(L, rt, cid, bundles, rss):
    cd = bundles.get("containerd")
    binary = (cd.native_link(rt.path) if rt.name == "veil-native" else rt.path) if cd else rt.path
    flags = ["--runc-binary", binary, "--runc-root", cd.runc_root(rt)] if cd else []
    return _ctr_run_rm(L, cd, cid, "ctr-run", flags)


def wl_ctr_shim(L, rt, cid, bundles, rss):
    cd = bundles.get("containerd")
    return _ctr_run_rm(L, cd, cid, "ctr-shim",
                       ["--runtime", SHIM_RUNTIMES[rt.name][0]] + (shim_flags(cd, rt.name) if cd else []))


WORKLOAD_FUNCS = {"run": wl_run, "lifecycle": wl_lifecycle, "lifecycle-nokill": wl_lifecycle_nokill,
                  "exec": wl_exec, "pause-resume": wl_pause_resume, "ctr-run": wl_ctr_run,
                  "ctr-shim": wl_ctr_shim}
NO_RSS = {"ctr-run", "ctr-shim"}   # ctr's RSS says nothing about the runtime (a grandchild of the shim)


# --------------------------------------------------------------------------- shim memory

def _proc_kib(path, key):
    """The `key:  N kB` value of a /proc file, in KiB, or None."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _ppid(pid):
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return int(stat[stat.rindex(")") + 2:].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _argv0(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except (OSError, IndexError):
        return ""


def _task_pid(L, cd, cid):
    """PID of the task's init process from `ctr task ls` (TASK PID STATUS), or None."""
    r = L.run(cd.ctr_cmd("task", "ls"), timeout=15)
    for line in r.out.splitlines() if r.ok else []:
        f = line.split()
        if len(f) >= 3 and f[0] == cid and f[1].isdigit() and f[2] == "RUNNING":
            return int(f[1])
    return None


def measure_shim_memory(L, cd, names, samples=SHIM_MEM_SAMPLES, interval=0.2, settle=SHIM_MEM_SETTLE):
    """Starts one `ctr run -d --runtime TYPE busybox ID sleep 100000` per runtime (all at once),
    finds each task's shim (the parent of its init pid; else the live shim with `-id ID`) and
    reads its VmRSS, RssAnon, RssFile (/proc/PID/status) and Pss (/proc/PID/smaps_rollup)
    `samples` times, alternating between the runtimes, once the shims have sat idle `settle`
    seconds (a pod's shim spends its life idle); VmRSS is also read 0.5 s after the start
    ("start_rss_kib"). Then kills and removes the tasks (untimed).
    Returns {name: {"runtime", "shim", "pid", "rss_kib": [...], "pss_kib": [...],
    "anon_kib": [...], "file_kib": [...], "start_rss_kib", "error"}}."""
    res = {}
    cids = {}
    try:
        for name in names:
            rtype, shim_name = SHIM_RUNTIMES[name]
            cid = f"vb{os.getpid()}-{name}-shimmem"
            e = res[name] = {"runtime": rtype, "shim": shim_name, "pid": None,
                             "rss_kib": [], "pss_kib": [], "anon_kib": [], "file_kib": [], "start_rss_kib": None,
                             "settle": settle, "error": None, "level_seen": None}
            cd.ids.add(cid)
            cids[name] = cid
            r = L.run(cd.ctr_cmd("run", "-d", "--runtime", rtype, *shim_flags(cd, name),
                                 cd.IMAGE, cid, "sleep", "100000"))
            if not r.ok:
                e["error"] = r.describe("ctr run -d")
                continue
            deadline = time.monotonic() + 10
            init = _task_pid(L, cd, cid)
            while init is None and time.monotonic() < deadline:
                time.sleep(0.05)
                init = _task_pid(L, cd, cid)
            if init is None:
                e["error"] = "the task is not RUNNING in `ctr task ls` after `ctr run -d`"
                continue
            e["level_seen"] = observed_level(init)
            shim = _ppid(init)
            if shim is None or shim_name not in os.path.basename(_argv0(shim)):
                shim = next((p for p, i in cd._shims() if i == cid and shim_name in _argv0(p)), None)
            if shim is None:
                e["error"] = f"no {shim_name} process found for the task (init pid {init})"
                continue
            e["pid"] = shim
        time.sleep(0.5)           # let the shims settle after start/create/start
        for name in names:
            if res[name]["pid"] is not None:
                res[name]["start_rss_kib"] = _proc_kib(f"/proc/{res[name]['pid']}/status", "VmRSS")
        time.sleep(max(0.0, settle - 0.5))
        for k in range(samples):
            if k:
                time.sleep(interval)
            for name in names:
                e = res[name]
                if e["error"] or e["pid"] is None:
                    continue
                rss = _proc_kib(f"/proc/{e['pid']}/status", "VmRSS")
                pss = _proc_kib(f"/proc/{e['pid']}/smaps_rollup", "Pss")
                if rss is None:
                    e["error"] = f"shim pid {e['pid']} gone (no VmRSS)"
                    continue
                e["rss_kib"].append(rss)
                for key, val in (("pss_kib", pss),
                                 ("anon_kib", _proc_kib(f"/proc/{e['pid']}/status", "RssAnon")),
                                 ("file_kib", _proc_kib(f"/proc/{e['pid']}/status", "RssFile"))):
                    if val is not None:
                        e[key].append(val)
    finally:
        for name, cid in cids.items():
            L.run(cd.ctr_cmd("task", "rm", "-f", cid), timeout=20)
            # containerd refuses to remove a container whose task still exists
            if L.run(cd.ctr_cmd("container", "rm", cid), timeout=15).ok:
                cd.ids.discard(cid)
    return res


# --------------------------------------------------------------------------- bundles

def make_bundles(tmp):
    script = REPO / "scripts" / "make-bundle.sh"
    btrue = Path(tmp) / "bundle"
    env = dict(os.environ)
    # Always take config.json from `runc spec` so every runtime gets the same config
    # (make-bundle.sh prefers `veil spec` when a release build exists).
    env["VEIL"] = "/nonexistent/veil"
    subprocess.run(["bash", str(script), str(btrue), "true"], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    cfgp = btrue / "config.json"
    cfg = json.loads(cfgp.read_text())
    cfg.setdefault("root", {})["readonly"] = True
    cfg.setdefault("process", {})["terminal"] = False
    if cfg["process"].get("args") != ["true"]:
        log(f"bench: note: make-bundle.sh left process.args = {cfg['process'].get('args')!r}; "
            "setting [\"true\"]")
        cfg["process"]["args"] = ["true"]
    cfgp.write_text(json.dumps(cfg, indent=2))
    # Second bundle: same config and same rootfs (absolute path), long sleep.
    bsleep = Path(tmp) / "bundle-sleep"
    bsleep.mkdir()
    cfg2 = json.loads(json.dumps(cfg))
    cfg2["process"]["args"] = ["sleep", "1000"]
    root_path = Path(cfg["root"].get("path", "rootfs"))
    cfg2["root"]["path"] = str(root_path if root_path.is_absolute() else btrue / root_path)
    (bsleep / "config.json").write_text(json.dumps(cfg2, indent=2))
    # Third: the long-running container of exec / pause-resume.
    blong = Path(tmp) / "bundle-long"
    blong.mkdir()
    cfg2["process"]["args"] = ["sleep", "100000"]
    (blong / "config.json").write_text(json.dumps(cfg2, indent=2))
    return {"true": str(btrue), "sleep": str(bsleep), "long": str(blong)}


# --------------------------------------------------------------------------- statistics & report

def p90(xs):
    ys = sorted(xs)
    return ys[max(0, math.ceil(0.9 * len(ys)) - 1)]


def fmt(x, nd=1):
    return "-" if x is None else f"{x:.{nd}f}"


def machine_info(runtimes, launcher, veil_note):
    def read(p):
        try:
            return Path(p).read_text()
        except OSError:
            return ""
    cpu = next((l.split(":", 1)[1].strip() for l in read("/proc/cpuinfo").splitlines()
                if l.startswith("model name")), "?")
    mem = next((l.split(":", 1)[1].strip() for l in read("/proc/meminfo").splitlines()
                if l.startswith("MemTotal")), "?")
    os_name = next((l.split("=", 1)[1].strip().strip('"') for l in read("/etc/os-release").splitlines()
                    if l.startswith("PRETTY_NAME=")), "?")
    commit = "?"
    try:
        p = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                           capture_output=True, text=True, timeout=10)
        commit = p.stdout.strip() if p.returncode == 0 else "(no commit)"
    except (OSError, subprocess.SubprocessError):
        pass
    info = [
        ("kernel", platform.release()),
        ("os", os_name),
        ("nproc", f"{len(os.sched_getaffinity(0))} (cpu_count {os.cpu_count()})"),
        ("cpu", cpu),
        ("memory", mem),
        ("python", platform.python_version()),
        ("repo commit", commit),
        ("rss method", launcher.rss_tool),
    ]
    for rt in runtimes:
        info.append((f"{rt.name} version", f"{rt.path}: {rt.version}"))
    if veil_note:
        info.append(("veil", veil_note))
    return info


def build_report(args, runtimes, results, info, load_before, load_after, started, duration,
                 rss_floor_kib, errors, notes, shim_mem=None):
    names = [rt.name for rt in runtimes]
    L = []
    L.append(f"# veil benchmark {started.strftime('%Y-%m-%d %H:%M:%S')} UTC")
    L.append("")
    ctr_wls = [w for w in CTR_WORKLOADS if w in args.workloads]
    ctr = f", {'/'.join(ctr_wls)}: {args.ctr_rounds}" if ctr_wls else ""
    L.append(f"Rounds: {args.rounds} (runsc: {args.runsc_rounds}{ctr}), warm-up rounds discarded: "
             f"{args.warmup}, interleaved in rotating order; duration {duration:.0f}s; "
             f"load average before {load_before}, after {load_after}.")
    L.append("")
    L.append("| workload | runtime | ok | median ms | p90 ms | min ms | peak RSS MiB | ratio to runc | ratio to runsc |")
    L.append("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for wl in args.workloads:
        runc_med = _median_ms(results, "runc", wl)
        runsc_med = _median_ms(results, "runsc", wl)
        for name in names:
            r = results.get((name, wl))
            if r is None:
                continue
            timed = r["timed"]
            oks, okcol = ok_times(timed)
            rss = [s.rss_kib for s in r["rss"] if s is not None and s.ok and s.rss_kib is not None]
            if oks:
                med = statistics.median(oks)
                ratio = f"{med / runc_med:.2f}" if runc_med else "-"
                ratio_sc = f"{med / runsc_med:.2f}" if runsc_med else "-"
                row = [fmt(med, 2), fmt(p90(oks), 2), fmt(min(oks), 2)]
            else:
                ratio, ratio_sc, row = "-", "-", ["-", "-", "-"]
            rsscol = fmt(statistics.median(rss) / 1024, 1) if rss else "-"
            L.append(f"| {wl} | {name} | {okcol} | {' | '.join(row)} | {rsscol} | {ratio} | {ratio_sc} |")
    L.append("")
    L.append("- Wall time: posix_spawn() of the runtime command until wait4() returns, measured by the "
             "driver; `lifecycle*` is the whole command sequence including `state` polling, "
             "`pause-resume` the two commands; `ctr-run` and `ctr-shim` are `ctr run --rm` (containerd, "
             "shim, runtime create/start/delete) as a whole.")
    L.append("- Peak RSS: median over rounds of ru_maxrss from wait4() of the top-level runtime "
             "process, taken in a separate untimed invocation per round (via "
             f"{info_get(info, 'rss method')}; floor of the method {rss_floor_kib / 1024:.1f} MiB); "
             "for `lifecycle*` the largest of its commands. On Linux ru_maxrss from wait4() is the "
             "maximum over the process and the descendants it reaped itself (e.g. `runc init` and the "
             "container process reaped by `runc run`); processes that outlive the command (the "
             "container left by `create`, runsc's sandbox/gofer daemons) are not included. "
             "None for `ctr-run`/`ctr-shim` (the runtime is a grandchild of containerd's shim, not of "
             "ctr; see the shim memory table for `ctr-shim`).")
    L.append("- Runtimes: `veil` is veil at its default isolation level, sandbox (user namespace, id-mapped "
             "rootfs, time namespace, deny-by-default seccomp, one `veil-warden` per sandbox); `veil-native` is "
             "the same binary with `--isolation native` (through containerd: `ctr-run` runs it as `veil-native`, "
             "`ctr-shim` gives it a runtime config path saying isolation = \"native\"), runc semantics.")
    if "veil-base" in names:
        L.append("- `veil-base` is another veil build (`--baseline-veil`, e.g. from bench/baseline.sh REV) at its "
                 "sandbox level, in the same rounds, for the direct workloads only; the verdicts compare `veil` with it.")
    seen = [f"{rt.name}: {rt.level_seen}" for rt in runtimes if rt.level_seen]
    if seen:
        L.append("- Isolation seen (`/proc/PID/uid_map` of the long-running container's init): " +
                 "; ".join(seen) + ".")
    L.append("- Ratio: runtime median / runc (runsc) median for the same workload (< 1 is faster). runsc "
             "takes part in fewer rounds, spread evenly over the run.")
    L.append("- A sandbox's warden is started by veil but detached from it (its parent is PID 1), so its "
             "start-up is in the wall time, its memory is not in peak RSS: `bench/syscalls.py --rss` "
             "measures it.")
    for n in notes:
        L.append(f"- {n}")
    L.append("")
    # lifecycle step breakdown
    steps_rows = []
    for wl in args.workloads:
        if not wl.startswith("lifecycle"):
            continue
        for name in names:
            r = results.get((name, wl))
            if not r:
                continue
            oks = [s for s in r["timed"] if s.ok]
            if not oks:
                continue
            cols = []
            for st in ("create", "start", "kill", "wait", "delete"):
                vals = [s.steps[st] for s in oks if st in s.steps]
                cols.append(fmt(statistics.median(vals), 2) if vals else "-")
            polls = statistics.median([s.polls for s in oks])
            steps_rows.append(f"| {wl} | {name} | {' | '.join(cols)} | {polls:g} |")
    if steps_rows:
        L.append("Lifecycle step medians (ms; `wait` = all `state` polls until stopped):")
        L.append("")
        L.append("| workload | runtime | create | start | kill | wait | delete | state polls |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|")
        L.extend(steps_rows)
        L.append("")
    pr_rows = []
    if "pause-resume" in args.workloads:
        for name in names:
            r = results.get((name, "pause-resume"))
            oks = [s for s in r["timed"] if s.ok] if r else []
            if oks:
                cols = [fmt(statistics.median([s.steps[st] for s in oks]), 2) for st in ("pause", "resume")]
                pr_rows.append(f"| {name} | {' | '.join(cols)} |")
    if pr_rows:
        L.append("pause-resume step medians (ms):")
        L.append("")
        L.append("| runtime | pause | resume |")
        L.append("|---|---:|---:|")
        L.extend(pr_rows)
        L.append("")
    if shim_mem:
        L.extend(shim_memory_table(shim_mem))
    L.extend(verdict_lines(args.workloads, results, shim_mem))
    L.append("")
    L.extend(report_tail(errors, info, "Counts include warm-up rounds and the untimed RSS invocations."))
    return "\n".join(L)


def report_tail(errors, info, failures_note=None):
    """A report's closing lines: the failures ((runtime, workload, message) -> count), the machine, the command."""
    L = []
    if errors:
        L += ["## Failures", ""] + ([failures_note, ""] if failures_note else [])
        L += [f"- {name} {wl} ({n}x): {msg}" for (name, wl, msg), n in sorted(errors.items())] + [""]
    L += ["## Machine", ""] + [f"- {k}: {v}" for k, v in info] + [""]
    L += [f"Command: `{' '.join(sys.argv)}`", ""]
    return L


def info_get(info, key):
    return next((v for k, v in info if k == key), "?")


def shim_memory_table(shim_mem):
    """Markdown lines for the ctr-shim shim memory measurement."""
    def med_mib(e, key):
        return statistics.median(e[key]) / 1024 if e and e[key] else None
    runc = shim_mem.get("runc")
    base_rss, base_pss = med_mib(runc, "rss_kib"), med_mib(runc, "pss_kib")
    L = ["Shim memory per pod (`ctr-shim`; one `ctr run -d --runtime TYPE busybox ID sleep 100000` "
         "task per runtime, shim = parent of the task's init pid; median of the samples, MiB):", "",
         "| runtime | shim | task's user namespace | samples | VmRSS at start MiB | VmRSS MiB | Pss MiB | RssAnon MiB "
         "| RssFile MiB | RSS ratio to runc | PSS ratio to runc |",
         "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, e in shim_mem.items():
        rss, pss = med_mib(e, "rss_kib"), med_mib(e, "pss_kib")
        n = len(e["rss_kib"])
        okcol = f"{n}/{SHIM_MEM_SAMPLES}" + ("" if n == SHIM_MEM_SAMPLES and not e["error"] else " **FAIL**")
        r1 = f"{rss / base_rss:.2f}" if rss is not None and base_rss else "-"
        r2 = f"{pss / base_pss:.2f}" if pss is not None and base_pss else "-"
        start = e["start_rss_kib"] / 1024 if e.get("start_rss_kib") else None
        L.append(f"| {name} | {e['shim']} | {e.get('level_seen') or '?'} | {okcol} | {fmt(start, 2)} | {fmt(rss, 2)} | {fmt(pss, 2)} "
                 f"| {fmt(med_mib(e, 'anon_kib'), 2)} | {fmt(med_mib(e, 'file_kib'), 2)} | {r1} | {r2} |")
    L.append("")
    L.append("- VmRSS, RssAnon (private heap/stack) and RssFile (mapped files: the shim's own "
             "executable and libraries) from /proc/PID/status, Pss from /proc/PID/smaps_rollup "
             "(shared pages divided among their users); the shim process only, not the container. "
             "With one shim per pod, RssFile pages of the same binary are shared between pods, so "
             "the memory each further pod adds is closer to RssAnon. The verdict uses VmRSS.")
    settle = next((e.get("settle") for e in shim_mem.values() if e.get("settle") is not None), SHIM_MEM_SETTLE)
    L.append(f"- Sampled after the shims sat idle {settle:g} s (`--shim-settle`); \"VmRSS at start\" is 0.5 s "
             "after `ctr run -d` returned. veil's shim unmaps its clean code pages and trims malloc 2 s and "
             "12 s after its last request (the page cache keeps them; the next request maps what it needs).")
    L.append("")
    return L


def _met(value, target):
    return "met" if value <= target else "MISSED"


def shim_memory_verdict(shim_mem, name="veil"):
    head = f"{name}/runc shim memory ratio:"
    tail = f"(target <= {SHIM_MEM_TARGET:.2f})"
    shim_mem = shim_mem or {}
    meds = {}
    for n in (name, "runc"):
        e = shim_mem.get(n)
        if e is None:
            return f"{head} n/a ({n} shim not measured) {tail}"
        if not e["rss_kib"]:
            return f"{head} n/a ({n}: {e['error'] or 'no samples'}) {tail}"
        meds[n] = statistics.median(e["rss_kib"])
    return f"{head} {meds[name] / meds['runc']:.2f} {tail}"


def ok_times(timed):
    """The successful samples' ms, and the report's `ok` column: N/M, **FAIL** when any failed."""
    oks = [s.ms for s in timed if s.ok]
    return oks, f"{len(oks)}/{len(timed)}" + ("" if len(oks) == len(timed) else " **FAIL**")


def _median_ms(results, name, wl):
    r = results.get((name, wl))
    oks = ok_times(r["timed"])[0] if r else []
    return statistics.median(oks) if oks else None


def paired_ratio(results, wl, name, base):
    """The median over rounds of name's time / base's time in the same round, or None when the two
    did not run in the same rounds. Both run back to back in every round, so a round's ratio cancels
    the load that drifts from round to round on a shared machine; the ratio of the medians does not."""
    now, then = (results[(n, wl)]["timed"] for n in (name, base))
    if len(now) != len(then):
        return None
    ratios = [a.ms / b.ms for a, b in zip(now, then) if a.ok and b.ok and b.ms]
    return statistics.median(ratios) if ratios else None


def ratio_verdict(results, wl, name, base, target, head, with_met=False):
    """`HEAD X.XX (target <= T)`: name's median / base's median for one workload, or n/a and why.
    With `with_met` (an issue's target) the verdict is on the per-round ratio (`paired_ratio`) where
    the two ran in the same rounds, the ratio of the medians printed beside it."""
    tail = f"(target <= {target:.2f})"
    for n in (name, base):
        if (n, wl) not in results:
            return f"{head} n/a ({n} not benchmarked) {tail}"
    v, c = _median_ms(results, name, wl), _median_ms(results, base, wl)
    if v is None:
        return f"{head} n/a ({name}: no successful samples) {tail}"
    if not c:
        return f"{head} n/a ({base}: no successful samples) {tail}"
    if with_met:      # the targets: three decimals, so that a miss by a hair shows
        paired = paired_ratio(results, wl, name, base)
        if paired is not None:
            return f"{head} {paired:.3f} per round ({v / c:.3f} of the medians) {tail} {_met(paired, target)}"
        return f"{head} {v / c:.3f} {tail} {_met(v / c, target)}"
    return f"{head} {v / c:.2f} {tail}"


def verdict_line(results, wl="run", name="veil"):
    return ratio_verdict(results, wl, name, "runc", VERDICT_TARGETS.get(wl, VERDICT_TARGET),
                         f"{name}/runc {wl} ratio:")


def sandbox_run_verdicts(results):
    """Issue 6's targets for `run` of /bin/true under veil's sandbox level."""
    return [ratio_verdict(results, "run", "veil", base, target,
                          f"issue 6: veil sandbox/{base} run ratio:", with_met=True)
            for base, target in SANDBOX_RUN_TARGETS]


def baseline_verdicts(workloads, results, target=BASELINE_TOLERANCE):
    """veil's sandbox level against the baseline build's, per workload (no regression: <= 1.05)."""
    return [ratio_verdict(results, wl, "veil", "veil-base", target,
                          f"veil sandbox/veil-base {wl} ratio:", with_met=True)
            for wl in workloads if ("veil-base", wl) in results]


def verdict_lines(workloads, results, shim_mem=None):
    lines = sandbox_run_verdicts(results) if "run" in workloads else []
    lines += baseline_verdicts(workloads, results)
    names = [n for n in VEIL_RUNTIMES if any(k == (n, wl) for k in results for wl in workloads)] or ["veil"]
    for name in names:
        lines += [verdict_line(results, wl, name) for wl in workloads]
        if "ctr-shim" in workloads:
            lines.append(shim_memory_verdict(shim_mem, name))
    return lines


# --------------------------------------------------------------------------- main

def spread(n_total, n_pick):
    """Evenly spaced indices out of range(n_total)."""
    n_pick = max(0, min(n_pick, n_total))
    return {int(k * n_total / n_pick) for k in range(n_pick)} if n_pick else set()


def main():
    global TIMEOUT_S
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--veil", default=str(REPO / ".build" / "release" / "veil"),
                    help="veil binary (skipped with a message if missing)")
    ap.add_argument("--veil-shim", default=None,
                    help="veil's containerd shim for ctr-shim (default: containerd-shim-veil-v1 "
                         "next to --veil)")
    ap.add_argument("--baseline-veil", default=None,
                    help="another veil binary (e.g. from bench/baseline.sh REV), run as `veil-base` "
                         "at its sandbox level in the same rounds (direct workloads only)")
    ap.add_argument("--rounds", type=int, default=20, help="measured rounds (default 20)")
    ap.add_argument("--runsc-rounds", type=int, default=None,
                    help="measured rounds for runsc (default: min(rounds, 10))")
    ap.add_argument("--shim-settle", type=float, default=SHIM_MEM_SETTLE,
                    help=f"ctr-shim: seconds the shims sit idle before their memory is sampled (default {SHIM_MEM_SETTLE:g})")
    ap.add_argument("--ctr-rounds", type=int, default=None,
                    help="measured rounds for ctr-run and ctr-shim (default: same as --rounds)")
    ap.add_argument("--warmup", type=int, default=2, help="discarded warm-up rounds (default 2)")
    ap.add_argument("--out", default=str(HERE / "results"), help="results directory")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma-separated subset of {','.join(WORKLOADS)}")
    ap.add_argument("--runtimes", default=DEFAULT_RUNTIMES,
                    help=f"comma-separated subset of {DEFAULT_RUNTIMES} (veil = sandbox level, "
                         "veil-native = --isolation native)")
    ap.add_argument("--timeout", type=float, default=TIMEOUT_S,
                    help=f"seconds before a runtime command is killed (default {TIMEOUT_S:.0f})")
    ap.add_argument("--runsc-flags", default="--network=none",
                    help="global flags for runsc (default: --network=none)")
    args = ap.parse_args()
    TIMEOUT_S = args.timeout
    args.workloads = [w for w in args.workloads.split(",") if w]
    bad = [w for w in args.workloads if w not in WORKLOAD_FUNCS]
    if bad or args.rounds < 1:
        ap.error(f"unknown workload(s) {bad}" if bad else "--rounds must be >= 1")
    if args.runsc_rounds is None:
        args.runsc_rounds = min(args.rounds, 10)
    args.runsc_rounds = min(args.runsc_rounds, args.rounds)
    if args.ctr_rounds is None:
        args.ctr_rounds = args.rounds
    args.ctr_rounds = min(args.ctr_rounds, args.rounds)
    wanted = [r for r in args.runtimes.split(",") if r]
    if args.baseline_veil and "veil-base" not in wanted:
        wanted.append("veil-base")

    def interrupted(signum, frame):
        # turn SIGTERM/SIGHUP into an exception, so the cleanup in `finally` still runs
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    if os.geteuid() != 0:
        log("bench: needs root (runtimes create namespaces, mounts and cgroups)")
        return 2
    out_dir = Path(args.out).resolve()
    veil_path = os.path.abspath(args.veil) if args.veil else ""
    shim_path = os.path.abspath(args.veil_shim) if args.veil_shim else (
        os.path.join(os.path.dirname(veil_path), SHIM_RUNTIMES["veil"][1]) if veil_path else "")

    tmp = tempfile.mkdtemp(prefix="veil-bench-")
    TMP_DIRS.append(tmp)
    runtimes = []
    veil_note = ""
    total_rounds = args.warmup + args.rounds
    for name in wanted:
        spec = runtime_spec(name, veil_path, os.path.abspath(args.baseline_veil or ""), args.runsc_flags)
        if spec is None:
            log(f"bench: unknown runtime {name!r}, ignored")
            continue
        path, flags = spec
        rounds = None
        if name == "runsc":
            rounds = set(range(args.warmup)) | {args.warmup + i for i in spread(args.rounds, args.runsc_rounds)}
        if not (path and os.path.isfile(path) and os.access(path, os.X_OK)):
            msg = f"{name}: binary {path or '(none)'} not found or not executable -- SKIPPED"
            log(f"bench: {msg}")
            if name in VEIL_RUNTIMES:
                veil_note = f"not benchmarked: {path} missing (build it with `swift build -c release`)"
            continue
        root = Path(tmp) / f"root-{name}"
        root.mkdir()
        rt = Runtime(name, path, root, flags, rounds)
        rt.fetch_version()
        runtimes.append(rt)
    if not any(rt.name == "runc" for rt in runtimes):
        log("bench: warning: runc not available, ratios cannot be computed")

    (Path(tmp) / "io").mkdir()
    L = Launcher(Path(tmp) / "io")
    results = {}
    errors = {}
    notes = []
    setup_failed = False
    containerd = None
    shim_mem = None              # ctr-shim's shim memory measurement, filled after the rounds
    # Which rounds each (runtime, workload) takes part in, on top of rt.rounds.
    ctr_rounds = set(range(args.warmup)) | {args.warmup + i for i in spread(args.rounds, args.ctr_rounds)}
    wl_rounds = {wl: ctr_rounds for wl in CTR_WORKLOADS}
    skip = set()
    for wl in CTR_WORKLOADS:
        if wl not in args.workloads:
            continue
        for rt in runtimes:
            if rt.name == "veil-base":
                skip.add((rt.name, wl))
            elif rt.name not in CTR_RUNTIMES:
                skip.add((rt.name, wl))
                notes.append(f"{rt.name}: not run for `{wl}` (gVisor has its own containerd shim, "
                             "containerd-shim-runsc-v1" +
                             ("; the runc shim cannot pass runsc's flags)." if wl == "ctr-run" else
                              ", not part of this comparison)."))
    shim_dirs = []
    if "ctr-shim" in args.workloads and any(rt.name in VEIL_RUNTIMES for rt in runtimes):
        if os.path.isfile(shim_path) and os.access(shim_path, os.X_OK):
            # containerd looks the shim up on its PATH; the shim takes veil from its own dir or PATH
            shim_dirs = [os.path.dirname(shim_path), os.path.dirname(veil_path)]
        else:
            skip.update((n, "ctr-shim") for n in VEIL_RUNTIMES)
            msg = f"veil: not run for `ctr-shim`: shim {shim_path or '(none)'} not found or not executable"
            log(f"bench: {msg}")
            notes.append(msg + " (build it with `swift build -c release`, or pass --veil-shim).")
    veil_rt = next((rt for rt in runtimes if rt.name in VEIL_RUNTIMES), None)
    state_roots = Containerd.shim_state_roots(veil_rt.path if veil_rt else None)
    try:
        try:
            bundles = make_bundles(tmp)
        except (OSError, ValueError, subprocess.CalledProcessError) as e:
            log(f"bench: cannot build the bundle: {e}")
            return 2
        os.chdir(bundles["true"])            # `run` is started inside the bundle dir
        ctr_wls = [w for w in CTR_WORKLOADS if w in args.workloads]
        if ctr_wls:
            what = " and ".join(ctr_wls)
            log(f"bench: starting a private containerd for {what}")
            containerd = Containerd(L, path_prefix=shim_dirs, state_roots=state_roots)
            try:
                containerd.start()
                bundles["containerd"] = containerd
                notes.append(f"`{'`/`'.join(ctr_wls)}`: containerd {containerd.version or '?'} on a "
                             f"private socket, namespace `{Containerd.NAMESPACE}`, image `busybox` from "
                             "scripts/make-busybox-image.sh." +
                             (" `ctr-run` of veil-native runs veil as `veil-native` (a link veil reads as "
                              "--isolation native: the runc shim passes no global flags to the runtime)."
                              if "ctr-run" in ctr_wls else ""))
                if "ctr-shim" in ctr_wls:
                    notes.append("`ctr-shim`: `--runtime io.containerd.runc.v2` "
                                 f"({shutil.which('containerd-shim-runc-v2') or 'containerd-shim-runc-v2'} "
                                 f"+ runc from PATH) vs `--runtime io.containerd.veil.v1` "
                                 f"({shim_path if shim_dirs else 'not run'}; veil-native adds `--runtime-config-path` "
                                 "of a TOML with isolation = \"native\", as veil install's veil-native handler); containerd's PATH is "
                                 f"prefixed with {', '.join(dict.fromkeys(shim_dirs)) or 'nothing'}.")
            except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                msg = scrub(str(e))
                log(f"bench: {what} not run: {msg}")
                notes.append(f"`{'`/`'.join(ctr_wls)}` not run: {msg}")
                setup_failed = True
                for rt in runtimes:
                    for wl in ctr_wls:
                        skip.add((rt.name, wl))
        if any(w in args.workloads for w in LONG_WORKLOADS):
            for rt in runtimes:
                start_long(L, rt, bundles)
                if rt.long_error:
                    log(f"bench: {rt.name}: {rt.long_error}")
        floor = L.run([shutil.which("busybox") or "/bin/true", "true"], rss=True).rss_kib or 0
        started = datetime.datetime.now(datetime.timezone.utc)
        load_before = "%.2f %.2f %.2f" % os.getloadavg()
        t_start = time.monotonic()
        log(f"bench: runtimes {', '.join(rt.name for rt in runtimes)}; workloads "
            f"{', '.join(args.workloads)}; {args.warmup} warm-up + {args.rounds} rounds "
            f"(runsc {args.runsc_rounds})")
        for i in range(total_rounds):
            order = rotated(runtimes, i)
            warm = i < args.warmup
            done = []
            for rt in order:
                if rt.rounds is not None and i not in rt.rounds:
                    continue
                done.append(rt.name)
                for wl in args.workloads:
                    if (rt.name, wl) in skip or (wl in wl_rounds and i not in wl_rounds[wl]):
                        continue
                    fn = WORKLOAD_FUNCS[wl]
                    cid = f"vb{os.getpid()}-{rt.name}-{wl}-{i}"
                    s = fn(L, rt, cid, bundles, rss=False)
                    s_rss = None if (warm or wl in NO_RSS) else fn(L, rt, cid + "-m", bundles, rss=True)
                    for x in (s, s_rss):
                        if x is not None and not x.ok:
                            key = (rt.name, wl, x.error)
                            errors[key] = errors.get(key, 0) + 1
                    if warm:
                        continue
                    r = results.setdefault((rt.name, wl), {"timed": [], "rss": []})
                    r["timed"].append(s)
                    r["rss"].append(s_rss)
            log(f"bench: round {i + 1}/{total_rounds}{' (warm-up)' if warm else ''}: {' '.join(done)}")
        duration = time.monotonic() - t_start
        load_after = "%.2f %.2f %.2f" % os.getloadavg()
        mem_names = [rt.name for rt in runtimes
                     if rt.name in CTR_RUNTIMES and (rt.name, "ctr-shim") not in skip]
        if "ctr-shim" in args.workloads and mem_names:
            log(f"bench: shim memory: one `sleep 100000` task each for {', '.join(mem_names)}")
            shim_mem = measure_shim_memory(L, containerd, mem_names, settle=args.shim_settle)
            for name, e in shim_mem.items():
                if e["error"]:
                    log(f"bench: shim memory {name}: {e['error']}")
                    key = (name, "shim-memory", e["error"])
                    errors[key] = errors.get(key, 0) + 1
    finally:
        os.chdir("/")
        if containerd is not None:
            containerd.stop()
        for rt in runtimes:
            for cid in list(rt.ids):
                force_delete(L, rt, cid)
        shutil.rmtree(tmp, ignore_errors=True)

    info = machine_info(runtimes, L, veil_note)
    report = build_report(args, runtimes, results, info, load_before, load_after, started,
                          duration, floor, errors, notes, shim_mem)
    print(report)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    out_md = out_dir / f"{stamp}-bench.md"
    out_md.write_text(report)
    shutil.copyfile(out_md, out_dir / "latest.md")
    raw = {
        "started": started.isoformat(), "args": vars(args), "info": dict(info),
        "samples": {f"{n}/{w}": {
            "timed": [{"ok": s.ok, "ms": s.ms, "steps": s.steps, "polls": s.polls,
                       "direct_maxrss_kib": s.rss_kib, "error": s.error} for s in r["timed"]],
            "rss_kib": [None if s is None else s.rss_kib for s in r["rss"]],
        } for (n, w), r in results.items()},
        "shim_memory": shim_mem,
    }
    (out_dir / f"{stamp}-bench.json").write_text(json.dumps(raw, indent=1))
    log(f"bench: wrote {out_md} and {out_dir / 'latest.md'}")
    for line in verdict_lines(args.workloads, results, shim_mem):
        print(line)

    veil_failed = any(not s.ok for (n, _), r in results.items() if n in VEIL_RUNTIMES
                      for s in r["timed"] + [x for x in r["rss"] if x is not None])
    veil_failed = veil_failed or any(k[0] in VEIL_RUNTIMES for k in errors)
    return 1 if veil_failed else (2 if setup_failed else 0)


if __name__ == "__main__":
    sys.exit(main())
