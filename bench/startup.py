#!/usr/bin/env python3
"""Container start-up on a busy node (issue 17): runc, veil (sandbox and native levels) and runsc side by side.

Usage (as root):
    python3 bench/startup.py --veil PATH [--veil-shim PATH] [--rounds N] [--runsc-rounds N]
                             [--burst-rounds N] [--runsc-burst-rounds N] [--bursts 20,50]
                             [--ctr-burst N] [--trace-rounds N] [--runtimes LIST]
                             [--scenarios LIST] [--busy auto|yes|stress-ng] [--out DIR]

Scenarios (--scenarios, default all: run-idle,run-busy,burst,ctr-burst,phases; one busybox
bundle from bench.py's make_bundles, rootfs read-only; in this order, the busy ones last):
  run-idle     `RT --root R run ID` of /bin/true, until it exits, on the idle machine; --rounds
               (21) after --warmup (2) discarded rounds, runsc in --runsc-rounds (7) of them
  run-busy     the same with two busy loops on the two cores (`stress-ng --cpu 2` if installed,
               else two `yes > /dev/null`), started before these rounds and killed after them
  burst        burst-20 and burst-50 (--bursts): N `RT --root R run --detach --bundle B ID` of a
               `sleep 100000` bundle launched at once (subprocess.Popen, each container its own
               id); as each command returns, `RT state ID` is asked (again while `created`); wall
               time from the first launch until every command has returned and every container
               has reported `running`. After each burst (untimed): `delete --force` of its
               containers, a wait until no process of the runtime is left, 0.5 s of rest.
               --burst-rounds (5); runsc in --runsc-burst-rounds (2) and only up to
               --runsc-burst-max (50) containers. Idle machine only.
  ctr-burst    --ctr-burst (20) concurrent `ctr -a SOCK -n bench run -d --runtime TYPE busybox
               ID sleep 100000` through bench.py's private containerd: io.containerd.veil.v1
               (--veil-shim, default containerd-shim-veil-v1 next to --veil; containerd's PATH
               is prefixed with its dir, so the shim finds veil) for veil and veil-native (a
               runtime config path saying isolation = "native"), io.containerd.runc.v2 for runc;
               wall time until all `ctr run -d` returned and `ctr task ls` lists every task
               RUNNING. Cleanup (untimed): `ctr task kill -s KILL`, `ctr task delete`, `ctr
               container rm`. --burst-rounds rounds.
  phases       veil's own trace of its create: `veil --debug [--isolation native] --root R run
               ID` of /bin/true, --trace-rounds (7) times per level on the idle machine and as
               many under the busy loops, apart from the timed rounds. Each debug line
               (`time="..." level=debug msg="create ID: stage 1 cloned (pid N) (+N ms)"`) is a
               phase (id, pids, paths, slot numbers and level names stripped from the label);
               its time is the line's nanosecond `time=` stamp minus the driver's wall clock
               just before posix_spawn (so the first phase includes exec and start-up of the
               binary) rather than veil's `(+N ms)` since its own start (whole ms, or 0.01 ms
               in newer builds), which is kept in the JSON.
               Reported: the median per phase and condition, and the median step from the
               previous phase.

Memory: during every burst a thread of the driver sums, every 20 ms, VmRSS and RssAnon
(/proc/PID/statm) of the processes started since the burst began whose /proc/PID/exe is the
runtime's: runc (and its memfd clone, runc init), veil and veil-warden, runsc (not its ptrace
stubs, which hold the application), the containerd shim under ctr-burst; never the
containers' processes. Reported: the peak of the sums per burst, median over rounds; and,
once all containers run (untimed), VmRSS and Pss (/proc/PID/smaps_rollup, too costly to
sample during the burst) of the runtime processes left (wardens, runsc sandboxes, shims).

Runtimes (--runtimes, default runc,veil,veil-native,runsc): runc (/usr/sbin/runc); veil, the
given binary at its default level, sandbox; veil-native, the same with `--isolation native`;
runsc (/usr/bin/runsc --network=none), with fewer rounds (--runsc-rounds, --runsc-burst-rounds)
and left out of bursts above --runsc-burst-max containers (default 50); not through containerd
(gVisor has its own shim).

Rounds are interleaved: round i runs every runtime once, in an order rotated by i.
Writes bench/results/<UTC>-startup.md (+ .json, copy as latest-startup.md; --out DIR).
Exit status: 1 if a veil run failed (any scenario), 2 on setup errors, else 0.
Python standard library only; bundle, containerd, process launching and reporting helpers come
from bench.py.
"""

import argparse
import concurrent.futures
import datetime
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import bench  # noqa: E402  (bench/bench.py: bundles, containerd, launcher, report helpers)

REPO = HERE.parent
SCENARIOS = ("run-idle", "run-busy", "burst", "ctr-burst", "phases")
DEFAULT_RUNTIMES = "runc,veil,veil-native,runsc"
VEIL_RUNTIMES = bench.VEIL_RUNTIMES
CTR_RUNTIMES = bench.CTR_RUNTIMES
SAMPLE_INTERVAL = 0.02        # memory sampler period, seconds
SETTLE_S = 0.5                # pause after each burst's cleanup, once the runtime's processes are gone
QUIESCE_TIMEOUT_S = 20.0
PARALLEL_CLEANUP = 8
# Issue 17's targets: (scenario, runtime) -> highest ratio to runc.
TARGETS = (("run-idle", "veil", 0.70), ("run-idle", "veil-native", 0.50),
           ("run-busy", "veil", 1.00), ("run-busy", "veil-native", 0.70),
           ("burst-20", "veil", 1.00), ("burst-20", "veil-native", 0.70),
           ("burst-50", "veil", 1.00), ("burst-50", "veil-native", 0.70),
           ("ctr-burst-20", "veil", 1.00), ("ctr-burst-20", "veil-native", 1.00))
log = bench.log


# --------------------------------------------------------------------------- machine state

def cpu_busy(seconds=1.0):
    """Share of the machine's CPU time that was not idle/iowait during `seconds` (/proc/stat)."""
    def read():
        f = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        return sum(f), f[3] + f[4]
    t1, i1 = read()
    time.sleep(seconds)
    t2, i2 = read()
    return 1.0 - (i2 - i1) / max(1, t2 - t1)


def loadavg():
    return "%.2f %.2f %.2f" % os.getloadavg()


class BusyLoops:
    """Two CPU hogs, one per core: `stress-ng --cpu N` if installed (and wanted), else N `yes > /dev/null`."""

    def __init__(self, n, kind="auto"):
        self.n, self.procs = n, []
        stress = shutil.which("stress-ng")
        if kind == "stress-ng" and not stress:
            raise RuntimeError("--busy stress-ng: stress-ng is not installed")
        self.use_stress = bool(stress) and kind in ("auto", "stress-ng")
        self.what = (f"`stress-ng --cpu {n}`" if self.use_stress else f"{n} x `yes > /dev/null`")

    def start(self):
        argvs = ([[shutil.which("stress-ng"), "--cpu", str(self.n), "--quiet"]] if self.use_stress
                 else [[shutil.which("yes") or "/usr/bin/yes"]] * self.n)
        for argv in argvs:
            self.procs.append(subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                               stderr=subprocess.DEVNULL, start_new_session=True))
        time.sleep(0.5)        # let them reach the run queue before the first round
        dead = [p.args[0] for p in self.procs if p.poll() is not None]
        if dead:
            raise RuntimeError(f"busy loop {dead[0]} exited at once")

    def stop(self):
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)     # stress-ng's workers are in its session
            except OSError:
                pass
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                pass
        self.procs = []


# --------------------------------------------------------------------------- runtime processes & memory

def _real(path):
    return os.path.realpath(path) if path else ""


PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


def _read(path):
    """A small /proc file's bytes, or b"" (cheaper than pathlib's read_bytes)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        return os.read(fd, 65536)
    except OSError:
        return b""
    finally:
        os.close(fd)


class ProcWatch:
    """The runtime's own processes started after construction (pids alive then are ignored): those
    whose /proc/PID/exe is one of `exes` (runc also as its memfd clone `runc_cloned`). With
    `skip_stubs` (runsc), a process of the runtime's exe with an empty cmdline, a ptrace stub holding
    the application, is not counted. A pid whose exe is neither a runtime's nor a launcher's (python,
    containerd: they fork and then exec runtimes) is the container's and is never looked at again."""

    def __init__(self, exes, memfd_tag=None, skip_stubs=False):
        self.exes = {_real(e) for e in exes if e}
        self.memfd_tag, self.skip_stubs = memfd_tag, skip_stubs
        self.launchers = {_real(sys.executable), _real(shutil.which("containerd") or "")}
        self.baseline = set(self._pids())
        self.excluded, self.counted = set(), set()

    @staticmethod
    def _pids():
        return [int(e) for e in os.listdir("/proc") if e.isdigit()]

    def processes(self):
        out = []
        for pid in self._pids():
            if pid in self.baseline or pid in self.excluded:
                continue
            try:
                exe = os.readlink(f"/proc/{pid}/exe")       # read every time: a runtime process may exec
            except OSError:
                continue                                     # gone, or a kernel thread
            if exe.endswith(" (deleted)"):
                exe = exe[:-10]
            if exe in self.exes or (self.memfd_tag and self.memfd_tag in exe):
                if pid not in self.counted:
                    if self.skip_stubs and not _read(f"/proc/{pid}/cmdline"):
                        self.excluded.add(pid)              # a stub (or a zombie)
                        continue
                    self.counted.add(pid)
                out.append(pid)
            elif exe not in self.launchers:
                self.excluded.add(pid)
        return out


def rss_kib(pid):
    """(VmRSS, RssAnon) in KiB from /proc/PID/statm: resident pages, and resident minus shared (file-backed
    and shmem) pages; a third of the cost of parsing /proc/PID/status."""
    f = _read(f"/proc/{pid}/statm").split()
    return (int(f[1]) * PAGE_KIB, (int(f[1]) - int(f[2])) * PAGE_KIB) if len(f) > 2 else (0, 0)


class MemSampler(threading.Thread):
    """Every `interval` s, the sum of VmRSS over ProcWatch's processes; keeps the peak. Pss
    (smaps_rollup, ~4x the cost of VmRSS per process) is read once, after the burst (finish())."""

    def __init__(self, watch, interval=SAMPLE_INTERVAL, pss=True):
        super().__init__(daemon=True)
        self.watch, self.interval, self.pss = watch, interval, pss
        self.stop_ev = threading.Event()
        self.peak_rss = self.peak_anon = self.procs_at_peak = self.max_procs = self.samples = 0
        self.cost_s = 0.0             # the sampler's own CPU time

    def sample(self):
        t = time.thread_time()
        pids = self.watch.processes()
        mem = [rss_kib(p) for p in pids]
        rss, anon = sum(m[0] for m in mem), sum(m[1] for m in mem)
        if rss > self.peak_rss:
            self.peak_rss, self.procs_at_peak = rss, len(pids)
        self.peak_anon = max(self.peak_anon, anon)
        self.max_procs = max(self.max_procs, len(pids))
        self.samples += 1
        self.cost_s += time.thread_time() - t

    def run(self):
        nxt = time.monotonic()
        while not self.stop_ev.is_set():
            self.sample()
            nxt += self.interval
            self.stop_ev.wait(max(0.0, nxt - time.monotonic()))

    def finish(self):
        """Stops sampling; then (outside any timing) VmRSS and Pss of the runtime processes left."""
        self.stop_ev.set()
        self.join(10)
        cost = 1000 * self.cost_s / max(1, self.samples)
        self.sample()
        pids = self.watch.processes()
        return {"peak_rss_kib": self.peak_rss, "peak_anon_kib": self.peak_anon, "procs_at_peak": self.procs_at_peak,
                "max_procs": self.max_procs, "samples": self.samples, "cpu_ms_per_sample": cost,
                "after_procs": len(pids), "after_rss_kib": sum(rss_kib(p)[0] for p in pids),
                "after_pss_kib": sum(bench._proc_kib(f"/proc/{p}/smaps_rollup", "Pss") or 0 for p in pids)
                if self.pss else None}


def runtime_watch(rt, veil_shim=None, via_ctr=False):
    """A ProcWatch of a runtime's own processes (with its containerd shim under ctr), from now on."""
    if rt.name == "runc":
        exes = [rt.path] + ([shutil.which("containerd-shim-runc-v2")] if via_ctr else [])
        return ProcWatch(exes, memfd_tag="runc_cloned")
    if rt.name in VEIL_RUNTIMES:
        exes = [rt.path, os.path.join(os.path.dirname(rt.path), "veil-warden")]
        return ProcWatch(exes + ([veil_shim] if via_ctr else []))
    return ProcWatch([rt.path], skip_stubs=True)


def quiesce(watch, timeout=QUIESCE_TIMEOUT_S):
    """Waits until none of the watched runtime processes is left; returns how many still are."""
    deadline = time.monotonic() + timeout
    while True:
        left = watch.processes()
        if not left or time.monotonic() > deadline:
            return len(left)
        time.sleep(0.05)


# --------------------------------------------------------------------------- bursts

def run_many(argvs, parallel=PARALLEL_CLEANUP, timeout=60):
    """Runs commands concurrently (at most `parallel` at once); [(rc, stdout, stderr)] in order."""
    def one(argv):
        try:
            p = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout,
                               start_new_session=True)
            return p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired:
            return -9, "", "timed out"
        except OSError as e:
            return 127, "", str(e)
    if not argvs:
        return []
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, min(parallel, len(argvs)))) as ex:
        return list(ex.map(one, argvs))


class BurstProcs:
    """The commands of one burst in flight: Popen objects watched through pidfds, killed on abort."""

    def __init__(self):
        self.poller = select.poll()
        self.live = {}            # pidfd -> (kind, cid, Popen)

    def add(self, kind, cid, p):
        fd = os.pidfd_open(p.pid)
        self.live[fd] = (kind, cid, p)
        self.poller.register(fd, select.POLLIN)

    def wait_some(self, timeout_s):
        """[(kind, cid, Popen, t)] of the commands that exited (reaped), waiting up to timeout_s."""
        done = []
        for fd, _ in self.poller.poll(max(0, int(timeout_s * 1000))):
            kind, cid, p = self.live.pop(fd)
            self.poller.unregister(fd)
            os.close(fd)
            p.wait()
            done.append((kind, cid, p, time.perf_counter()))
        return done

    def kill_all(self):
        for fd, (_, _, p) in list(self.live.items()):
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            p.wait()
            for f in (p.stdout, p.stderr):
                if f:
                    f.close()
            self.poller.unregister(fd)
            os.close(fd)
        self.live.clear()


def _describe(argv, rc, err, label):
    return bench.Result(argv, rc, 0.0, None, "", err).describe(label)


def burst(ids, launch, io_dir, timeout, state=None, task_ls=None, sampler=None):
    """Launches launch(cid) for every id at once; a container is confirmed when `state(cid)` (argv, run
    as soon as its command returned) prints status running, or, with task_ls instead, once every command
    has returned and task_ls() ({cid: status}, called until all RUNNING) says so.
    Returns a bench.Sample: ms = first launch .. last confirmation; steps: returned, launched."""
    s = bench.Sample()
    s.pids = {}
    errf = {cid: open(io_dir / f"{cid}.err", "w+b") for cid in ids}
    procs = BurstProcs()
    returned, confirmed, failed = {}, {}, {}
    tries = {}
    deadline = time.monotonic() + timeout
    if sampler:
        sampler.start()
    t0 = time.perf_counter()
    try:
        for cid in ids:
            procs.add("run", cid, subprocess.Popen(launch(cid), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                                   stderr=errf[cid], start_new_session=True))
        s.steps["launched"] = (time.perf_counter() - t0) * 1000

        def ask(cid):
            tries[cid] = tries.get(cid, 0) + 1
            procs.add("state", cid, subprocess.Popen(state(cid), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                                     stderr=subprocess.PIPE, start_new_session=True))
        while procs.live and time.monotonic() < deadline:
            for kind, cid, p, t in procs.wait_some(deadline - time.monotonic()):
                if kind == "run":
                    returned[cid] = t
                    if p.returncode != 0:
                        errf[cid].seek(0)
                        failed[cid] = _describe(p.args, p.returncode, errf[cid].read().decode(errors="replace"),
                                                "run --detach")
                    elif state:
                        ask(cid)
                    continue
                out, err = p.stdout.read().decode(errors="replace"), p.stderr.read().decode(errors="replace")
                p.stdout.close()
                p.stderr.close()
                try:
                    st = json.loads(out)
                    status = st.get("status")
                except (ValueError, AttributeError):
                    st, status = {}, None
                if p.returncode == 0 and status == "running":
                    confirmed[cid] = t
                    s.pids[cid] = st.get("pid")
                elif p.returncode == 0 and status in ("created", "creating") and tries[cid] < 200:
                    ask(cid)            # started but not yet running: ask again
                else:
                    failed[cid] = (_describe(p.args, p.returncode, err, "state") if p.returncode != 0
                                   else f"`state` says {status!r} after `run --detach` returned")
        if procs.live:
            failed.update({cid: f"burst timed out after {timeout:.0f}s" for _, cid, _ in procs.live.values()})
            procs.kill_all()
        if task_ls and not failed:
            pending = set(ids)
            while pending and time.monotonic() < deadline:
                st = task_ls()
                t = time.perf_counter()
                for cid in [c for c in pending if st.get(c) == "RUNNING"]:
                    confirmed[cid] = t
                    pending.discard(cid)
                bad = [c for c in pending if st.get(c) not in (None, "CREATED", "RUNNING")]
                for cid in bad:
                    failed[cid] = f"task is {st.get(cid)} after `ctr run -d` returned"
                    pending.discard(cid)
            failed.update({cid: "task not RUNNING in `ctr task ls`" for cid in pending})
    finally:
        procs.kill_all()
        s.memory = sampler.finish() if sampler else None
        for f in errf.values():
            f.close()
    if returned:
        s.steps["returned"] = (max(returned.values()) - t0) * 1000
    if failed:
        errors = sorted(set(failed.values()))
        s.fail(f"{len(failed)}/{len(ids)} containers failed: {errors[0]}")
        s.errors = errors
    else:
        s.ms = (max(confirmed.values()) - t0) * 1000
    return s


def delete_direct(L, rt, ids):
    """Untimed: `delete --force` of a burst's containers, a few at a time; sequential retry of failures."""
    res = run_many([rt.cmd("delete", "--force", cid) for cid in ids], timeout=bench.TIMEOUT_S)
    for cid, (rc, _, _) in zip(ids, res):
        if rc != 0:
            bench.force_delete(L, rt, cid)
            if L.run(rt.cmd("state", cid), timeout=20).ok:
                continue            # still there: left in rt.ids for the final cleanup
        rt.ids.discard(cid)


def delete_ctr(cd, ids):
    """Untimed: ctr task kill -s KILL, task delete (retried until stopped), container rm."""
    run_many([cd.ctr_cmd("task", "kill", "-s", "KILL", cid) for cid in ids])
    left, deadline = list(ids), time.monotonic() + 15
    while left and time.monotonic() < deadline:
        res = run_many([cd.ctr_cmd("task", "delete", cid) for cid in left])
        left = [cid for cid, (rc, _, err) in zip(left, res) if rc != 0 and "not found" not in err]
        if left:
            time.sleep(0.1)
    if left:
        run_many([cd.ctr_cmd("task", "rm", "-f", cid) for cid in left])
    res = run_many([cd.ctr_cmd("container", "rm", cid) for cid in ids])
    for cid, (rc, _, _) in zip(ids, res):
        if rc == 0:
            cd.ids.discard(cid)


def ctr_task_ls(L, cd):
    r = L.run(cd.ctr_cmd("task", "ls"), timeout=15)
    st = {}
    for line in r.out.splitlines()[1:] if r.ok else []:
        f = line.split()
        if len(f) >= 3:
            st[f[0]] = f[2]
    return st


# --------------------------------------------------------------------------- veil's create phases

DEBUG_LINE = re.compile(r'time="([^"]+)"\s+level=debug\s+msg="((?:[^"\\]|\\.)*)"')
PLUS_MS = re.compile(r"\s*\(\+(\d+(?:\.\d+)?) ms\)\s*$")   # whole ms, or 0.01 ms in newer builds


def parse_time_ns(stamp):
    """`2026-12-04T21:36:29.428077135Z` (RFC 3339, any fraction) -> ns since the epoch."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:?\d\d)$", stamp)
    if not m:
        return None
    tz = "+0000" if m.group(3) == "Z" else m.group(3).replace(":", "")
    secs = datetime.datetime.strptime(m.group(1) + tz, "%Y-%m-%dT%H:%M:%S%z").timestamp()
    frac = (m.group(2) or "0")[:9].ljust(9, "0")
    return int(secs) * 1_000_000_000 + int(frac)


def phase_label(msg, cid):
    """A debug message without what differs between runs: id, pids, paths, slot numbers, level names."""
    msg = PLUS_MS.sub("", msg)
    msg = re.sub(r"\s*\((?:pid|pids) [\d, ]+\)", "", msg)
    msg = re.sub(r'(?<![\w.])/[^\s,;()"]*', "PATH", msg)
    msg = re.sub(rf"\s*\b{re.escape(cid)}\b", "", msg)
    msg = re.sub(r"\bslot \d+", "slot N", msg)
    msg = re.sub(r"\blevel (sandbox|native)\b( \(default\))?", "level L", msg)
    return re.sub(r"\s+", " ", msg).strip()


def trace_run(L, rt, cid):
    """One `veil --debug ... run ID` of /bin/true; (ok, wall ms, [(label, ms since spawn, +ms)], error)."""
    argv = [rt.path, "--debug", *rt.flags, "--root", rt.root, "run", cid]
    r = L.run(argv)
    t_wall = r.spawned_ns or 0
    phases, seen = [], {}
    for line in r.err.splitlines():
        m = DEBUG_LINE.search(line)
        if not m:
            continue
        ns = parse_time_ns(m.group(1))
        msg = m.group(2).replace('\\"', '"')
        plus = PLUS_MS.search(msg)
        label = phase_label(msg, cid)
        seen[label] = seen.get(label, 0) + 1
        if seen[label] > 1:
            label += f" ({seen[label]})"
        phases.append((label, None if ns is None or not t_wall else (ns - t_wall) / 1e6, float(plus.group(1)) if plus else None))
    error = None
    if not r.ok:
        error = r.describe("veil --debug run")
        bench.force_delete(L, rt, cid)
    elif not phases:
        error = "`veil --debug run` printed no debug lines"
    return error is None, r.ms, phases, error


# --------------------------------------------------------------------------- report

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def mib(kib):
    return None if kib is None else kib / 1024


def scenario_names(args):
    names = [s for s in ("run-idle", "run-busy") if s in args.scenarios]
    if "burst" in args.scenarios:
        names += [f"burst-{n}" for n in args.bursts]
    if "ctr-burst" in args.scenarios:
        names.append(f"ctr-burst-{args.ctr_burst}")
    return names


def phase_tables(traces, conditions):
    """Markdown: median ms since spawn per phase and condition, and median ms since the previous phase."""
    runs_by = {c: [t for t in traces.get(c, []) if t["ok"]] for c in conditions}
    pos = {}
    for runs in runs_by.values():
        for t in runs:
            n = len(t["phases"])
            for k, (label, _, _) in enumerate(t["phases"]):
                pos.setdefault(label, []).append(k / max(1, n - 1))
    labels = sorted(pos, key=lambda lb: (statistics.median(pos[lb]), lb))
    cum, step = [], []
    head = "| phase | " + " | ".join(c.replace("veil-native", "native").replace("veil", "sandbox").replace("/", " ")
                                     for c in conditions) + " |"
    sep = "|---|" + "---:|" * len(conditions)
    for label in labels + ["(command returned)"]:
        row_c, row_s = [], []
        for c in conditions:
            vals, deltas = [], []
            for t in runs_by[c]:
                prev = 0.0
                for lb, ms, _ in t["phases"] + [("(command returned)", t["wall_ms"], None)]:
                    if ms is None:
                        continue
                    if lb == label:
                        vals.append(ms)
                        deltas.append(ms - prev)
                        break
                    prev = ms
            row_c.append(bench.fmt(med(vals), 2))
            row_s.append(bench.fmt(med(deltas), 2))
        cum.append(f"| {label} | {' | '.join(row_c)} |")
        step.append(f"| {label} | {' | '.join(row_s)} |")
    n = {c: len(runs_by[c]) for c in conditions}
    return [head, sep] + cum, [head, sep] + step, n


def build_report(args, runtimes, results, traces, info, meta, errors, notes):
    names = [rt.name for rt in runtimes]
    scen = scenario_names(args)
    L = [f"# veil start-up benchmark (issue 17) {meta['started'].strftime('%Y-%m-%d %H:%M:%S')} UTC", ""]
    L.append(f"Duration {meta['duration']:.0f} s. Rounds: `run` {args.rounds} (runsc {args.runsc_rounds}) after "
             f"{args.warmup} discarded warm-up rounds; bursts {args.burst_rounds} (runsc {args.runsc_burst_rounds}); "
             f"veil traces {args.trace_rounds} per level and condition; interleaved, order rotated by round. "
             f"Busy loops: {meta['busy_what']}. Load average before {meta['load_before']}, after "
             f"{meta['load_after']}; CPU busy in the second before the run {meta['cpu_before'] * 100:.0f}%.")
    L.append("")
    L.append("## Start-up times")
    L.append("")
    L.append("| scenario | runtime | ok | median ms | p90 ms | min ms | all returned ms | ratio to runc |")
    L.append("|---|---|---|---:|---:|---:|---:|---:|")
    for sc in scen:
        base = bench._median_ms(results, "runc", sc)
        for name in names:
            r = results.get((name, sc))
            if r is None:
                continue
            timed = r["timed"]
            oks, okcol = bench.ok_times(timed)
            ret = med([s.steps.get("returned") for s in timed if s.ok]) if sc != "run-idle" and sc != "run-busy" else None
            if oks:
                m = statistics.median(oks)
                row = [bench.fmt(m, 1), bench.fmt(bench.p90(oks), 1), bench.fmt(min(oks), 1), bench.fmt(ret, 1),
                       f"{m / base:.2f}" if base else "-"]
            else:
                row = ["-"] * 5
            L.append(f"| {sc} | {name} | {okcol} | {' | '.join(row)} |")
    L.append("")
    L.append("- `run-*`: wall time of `RT --root R run ID` (/bin/true) from posix_spawn() to wait4(), bench.py's "
             "launcher. `burst-N`: N `RT --root R run --detach --bundle B ID` (`sleep 100000`) started at once with "
             "subprocess.Popen; as each returns, `RT state ID` is run (again while `created`); the time runs "
             "from the first launch until the last container has reported `running`; \"all returned\" is "
             "until the last `run --detach` returned. `ctr-burst-N`: N `ctr run -d --runtime TYPE busybox ID sleep "
             "100000` at once, until all returned and `ctr task ls` lists every task RUNNING.")
    L.append("- Ratio: the runtime's median / runc's median in the same scenario (< 1 is faster than runc).")
    for n in notes:
        L.append(f"- {n}")
    L.append("")
    if "phases" in args.scenarios and traces:
        conds = [c for c in ("veil/idle", "veil/busy", "veil-native/idle", "veil-native/busy") if c in traces]
        cum, step, n = phase_tables(traces, conds)
        L.append("## veil's create, phase by phase")
        L.append("")
        L.append("Median ms from the driver's posix_spawn() of `veil --debug [--isolation native] --root R run ID` "
                 "(/bin/true) to each debug line of veil, by the line's nanosecond `time=` stamp (runs per "
                 "column: " + ", ".join(f"{c} {k}" for c, k in n.items()) + "; busy = under the same busy loops "
                 "as `run-busy`; these runs are not in the table above):")
        L.append("")
        L.extend(cum)
        L.append("")
        L.append("Median ms since the previous phase (the cost of each step and handoff):")
        L.append("")
        L.extend(step)
        L.append("")
        L.append("- Labels are veil's messages with the container id, pids, paths, slot numbers and level names "
                 "stripped. A phase missing at a level shows `-`. The first line's time includes exec and "
                 "start-up of veil's binary; the `(+N ms)` veil prints (since the command started) "
                 "is kept in the JSON.")
        L.append("")
    mem_rows, costs = [], []
    for sc in [sc for sc in scen if sc.startswith(("burst", "ctr-burst"))]:
        def memo(name, key):
            r = results.get((name, sc))
            return med([s.memory[key] for s in r["timed"] if s.ok and s.memory]) if r else None
        base = memo("runc", "peak_rss_kib")
        for name in names:
            r = results.get((name, sc))
            ms = [s.memory for s in r["timed"] if s.ok and s.memory] if r else []
            if not ms:
                continue
            costs += [m["cpu_ms_per_sample"] for m in ms]
            peak = memo(name, "peak_rss_kib")
            mem_rows.append(f"| {sc} | {name} | {len(ms)} | {bench.fmt(mib(peak), 1)} | "
                            f"{bench.fmt(memo(name, 'procs_at_peak'), 0)} | {bench.fmt(mib(memo(name, 'peak_anon_kib')), 1)} | "
                            f"{f'{peak / base:.2f}' if base and peak is not None else '-'} | "
                            f"{bench.fmt(memo(name, 'after_procs'), 0)} | {bench.fmt(mib(memo(name, 'after_rss_kib')), 1)} | "
                            f"{bench.fmt(mib(memo(name, 'after_pss_kib')), 1)} |")
    if mem_rows:
        L.append("## Memory of the runtime's own processes during the bursts")
        L.append("")
        L.append("| scenario | runtime | bursts | peak VmRSS MiB | procs at peak | peak RssAnon MiB "
                 "| VmRSS peak ratio to runc | procs left | left VmRSS MiB | left Pss MiB |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
        L.extend(mem_rows)
        L.append("")
        L.append(f"- Peak: every {SAMPLE_INTERVAL * 1000:.0f} ms during the timed burst, a thread of the driver sums "
                 "VmRSS (/proc/PID/statm) over the processes started since the burst began whose /proc/PID/exe is "
                 "the runtime's: runc (also as its memfd clone, `runc init`); veil (its create processes until they "
                 "exec the container's program) and veil-warden (a sandbox's warden and sentinel); runsc (sandbox, "
                 "gofer, not its ptrace stubs, which hold the application); under ctr-burst also the containerd "
                 "shim; the `state` checks count too. Never the containers' own processes. Peak of the sums per "
                 "burst, median over the successful bursts; procs = processes counted at that peak. RssAnon "
                 "(resident minus shared pages, same file): the private part, without the binary's pages that "
                 "VmRSS counts again for every process; its peak is taken separately.")
        L.append(f"- Left: the same processes once every container runs (after the timing): their number, VmRSS and "
                 "Pss (/proc/PID/smaps_rollup, which shares the binary's pages out among the processes mapping "
                 "them). Pss is not sampled during the burst: at ~4x the cost of VmRSS per process it would take "
                 "a noticeable share of the 2 cores the burst competes for.")
        L.append(f"- The sampler's own CPU time: median {bench.fmt(med(costs), 2)} ms per sample "
                 f"({bench.fmt(100 * (med(costs) or 0) / (SAMPLE_INTERVAL * 1000), 0)}% of one core), inside the "
                 "timed bursts, the same way for every runtime; it grows with the number of runtime processes.")
        L.append("")
    L.append("## Issue 17 targets")
    L.append("")
    for sc, name, target in TARGETS:
        if sc not in scen or name not in names:
            continue
        L.append("- " + bench.ratio_verdict(results, sc, name, "runc", target, f"{sc}: {name}/runc", with_met=True))
    L.append("")
    L.extend(bench.report_tail(errors, info))
    return "\n".join(L)


# --------------------------------------------------------------------------- main

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--veil", default=str(REPO / ".build" / "release" / "veil"),
                    help="veil binary (veil-warden is taken from its directory)")
    ap.add_argument("--veil-shim", default=None,
                    help="veil's containerd shim (default: containerd-shim-veil-v1 next to --veil)")
    ap.add_argument("--rounds", type=int, default=21, help="run-idle/run-busy rounds (default 21)")
    ap.add_argument("--runsc-rounds", type=int, default=None, help="runsc's run rounds (default min(rounds, 7))")
    ap.add_argument("--warmup", type=int, default=2, help="discarded warm-up rounds before run-idle/run-busy (2)")
    ap.add_argument("--burst-rounds", type=int, default=5, help="rounds of every burst (default 5)")
    ap.add_argument("--runsc-burst-rounds", type=int, default=None,
                    help="runsc's burst rounds (default min(burst-rounds, 2))")
    ap.add_argument("--runsc-burst-max", type=int, default=50,
                    help="runsc is left out of bursts larger than this (default 50)")
    ap.add_argument("--bursts", default="20,50", help="burst sizes (default 20,50)")
    ap.add_argument("--ctr-burst", type=int, default=20, help="containers per ctr-burst (default 20)")
    ap.add_argument("--trace-rounds", type=int, default=7,
                    help="veil --debug runs per level, idle and busy (default 7)")
    ap.add_argument("--runtimes", default=DEFAULT_RUNTIMES, help=f"subset of {DEFAULT_RUNTIMES}")
    ap.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"subset of {','.join(SCENARIOS)}")
    ap.add_argument("--busy", default="auto", choices=("auto", "yes", "stress-ng"),
                    help="busy loops: stress-ng --cpu 2 if installed (auto), or 2 x yes")
    ap.add_argument("--no-pss", action="store_true", help="burst memory: no Pss (smaps_rollup) of the processes left after each burst")
    ap.add_argument("--timeout", type=float, default=bench.TIMEOUT_S, help="seconds per runtime command (60)")
    ap.add_argument("--runsc-flags", default="--network=none", help="global flags for runsc")
    ap.add_argument("--out", default=str(HERE / "results"), help="results directory")
    args = ap.parse_args()
    bench.TIMEOUT_S = args.timeout
    args.scenarios = [s for s in args.scenarios.split(",") if s]
    try:
        args.bursts = sorted({int(x) for x in args.bursts.split(",") if x})
    except ValueError:
        ap.error("--bursts: comma-separated numbers")
    bad = [s for s in args.scenarios if s not in SCENARIOS]
    if bad or args.rounds < 1 or args.burst_rounds < 1 or not args.bursts or min(args.bursts) < 1:
        ap.error(f"unknown scenario(s) {bad}" if bad else "rounds and burst sizes must be >= 1")
    args.runsc_rounds = min(args.rounds, 7 if args.runsc_rounds is None else args.runsc_rounds)
    args.runsc_burst_rounds = min(args.burst_rounds,
                                  2 if args.runsc_burst_rounds is None else args.runsc_burst_rounds)

    def interrupted(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")    # unwinds through the cleanup in `finally`
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    if os.geteuid() != 0:
        log("startup: needs root (runtimes create namespaces, mounts and cgroups)")
        return 2

    veil_path = os.path.abspath(args.veil)
    shim_path = os.path.abspath(args.veil_shim) if args.veil_shim else os.path.join(
        os.path.dirname(veil_path), bench.SHIM_RUNTIMES["veil"][1])
    try:
        busy = BusyLoops(len(os.sched_getaffinity(0)), args.busy)
    except RuntimeError as e:
        log(f"startup: {e}")
        return 2
    tmp = tempfile.mkdtemp(prefix="veil-startup-")
    bench.TMP_DIRS.append(tmp)
    notes, errors = [], {}
    setup_failed = False
    runtimes = []
    for name in [r for r in args.runtimes.split(",") if r]:
        spec = bench.runtime_spec(name, veil_path, runsc_flags=args.runsc_flags) if name != "veil-base" else None
        if spec is None:
            log(f"startup: unknown runtime {name!r}, ignored")
            continue
        path, flags = spec
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            log(f"startup: {name}: {path} not found or not executable -- SKIPPED")
            notes.append(f"{name}: not benchmarked, {path} missing.")
            setup_failed |= name == "runc"
            continue
        root = Path(tmp) / f"root-{name}"
        root.mkdir()
        rt = bench.Runtime(name, path, root, flags)
        rt.fetch_version()
        runtimes.append(rt)
    if not any(rt.name == "runc" for rt in runtimes):
        log("startup: runc is not among the runtimes: no ratios")
    run_rounds = {rt.name: (set(range(args.warmup)) | {args.warmup + i for i in bench.spread(args.rounds, args.runsc_rounds)}
                            if rt.name == "runsc" else None) for rt in runtimes}
    burst_rounds = {rt.name: (bench.spread(args.burst_rounds, args.runsc_burst_rounds) if rt.name == "runsc" else None)
                    for rt in runtimes}
    (Path(tmp) / "io").mkdir()
    io_dir = Path(tmp) / "bursts"
    io_dir.mkdir()
    L = bench.Launcher(Path(tmp) / "io")
    results, traces = {}, {}
    containerd = None
    started = datetime.datetime.now(datetime.timezone.utc)
    meta = {"started": started, "busy_what": busy.what}
    t_start = time.monotonic()
    veil_failed = False

    def record(name, sc, s, warm=False):
        nonlocal veil_failed
        if not s.ok:
            key = (name, sc, s.error)
            errors[key] = errors.get(key, 0) + 1
            veil_failed |= name in VEIL_RUNTIMES
        if not warm:
            results.setdefault((name, sc), {"timed": []})["timed"].append(s)

    def run_rounds_of(sc):
        total = args.warmup + args.rounds
        for i in range(total):
            done = []
            for rt in bench.rotated(runtimes, i):
                if run_rounds[rt.name] is not None and i not in run_rounds[rt.name]:
                    continue
                s = bench.wl_run(L, rt, f"vb{os.getpid()}-{rt.name}-{sc}-{i}", bundles, rss=False)
                record(rt.name, sc, s, warm=i < args.warmup)
                done.append(f"{rt.name}={bench.fmt(s.ms, 1)}" + ("" if s.ok else "(FAIL)"))
            log(f"startup: {sc} round {i + 1}/{total}{' (warm-up)' if i < args.warmup else ''}: {' '.join(done)}")

    def trace_rounds_of(cond):
        vrts = [rt for rt in runtimes if rt.name in VEIL_RUNTIMES]
        for i in range(args.trace_rounds):
            for rt in bench.rotated(vrts, i):
                ok, wall, phases, error = trace_run(L, rt, f"vb{os.getpid()}-{rt.name}-trace-{cond}-{i}")
                traces.setdefault(f"{rt.name}/{cond}", []).append(
                    {"ok": ok, "wall_ms": wall, "phases": phases, "error": error})
                if not ok:
                    s = bench.Sample()
                    s.fail(error)
                    record(rt.name, f"phases-{cond}", s, warm=True)
        if vrts:
            log(f"startup: phases ({cond}): {args.trace_rounds} traced runs per level")

    try:
        try:
            bundles = bench.make_bundles(tmp)
        except (OSError, ValueError, subprocess.CalledProcessError) as e:
            log(f"startup: cannot build the bundle: {e}")
            return 2
        os.chdir(bundles["true"])             # `run` is started in the bundle dir
        if "ctr-burst" in args.scenarios:
            ctr_rts = [rt for rt in runtimes if rt.name in CTR_RUNTIMES]
            if any(rt.name == "runsc" for rt in runtimes):
                notes.append("runsc: not run through containerd (gVisor has its own shim, containerd-shim-runsc-v1).")
            if any(rt.name in VEIL_RUNTIMES for rt in ctr_rts) and not os.access(shim_path, os.X_OK):
                log(f"startup: veil shim {shim_path} missing: veil left out of ctr-burst")
                notes.append(f"ctr-burst: veil not run, shim {shim_path} missing (--veil-shim).")
                setup_failed = True
            veil_rt = next((rt for rt in runtimes if rt.name in VEIL_RUNTIMES), None)
            state_roots = bench.Containerd.shim_state_roots(veil_rt.path if veil_rt else None)
            if ctr_rts:
                log("startup: starting a private containerd for ctr-burst")
                containerd = bench.Containerd(L, path_prefix=[os.path.dirname(shim_path), os.path.dirname(veil_path)],
                                              state_roots=state_roots)
                try:
                    containerd.start()
                    notes.append(f"ctr-burst: containerd {containerd.version or '?'} on a private socket (bench.py's), "
                                 f"image `busybox`; veil's shim {shim_path} (veil-native: `--runtime-config-path` of "
                                 "a TOML with isolation = \"native\"), runc's containerd-shim-runc-v2 + runc.")
                except (RuntimeError, OSError, subprocess.SubprocessError) as e:
                    msg = bench.scrub(str(e))
                    log(f"startup: ctr-burst not run: {msg}")
                    notes.append(f"ctr-burst not run: {msg}")
                    setup_failed = True
                    containerd.stop()
                    containerd = None
        # warm the page cache with each binary once (untimed), also when run-idle is not chosen
        for rt in runtimes:
            bench.wl_run(L, rt, f"vb{os.getpid()}-{rt.name}-warm", bundles, rss=False)
        meta["cpu_before"] = cpu_busy()
        meta["load_before"] = loadavg()
        if meta["cpu_before"] > 0.25:
            log(f"startup: warning: the machine is {meta['cpu_before'] * 100:.0f}% busy before the run")

        # ---- idle machine
        if "run-idle" in args.scenarios:
            run_rounds_of("run-idle")
        if "burst" in args.scenarios:
            runsc_note = False
            for i in range(args.burst_rounds):
                for n in args.bursts:
                    sc = f"burst-{n}"
                    for rt in bench.rotated(runtimes, i):
                        if rt.name == "runsc" and (n > args.runsc_burst_max or i not in burst_rounds["runsc"]):
                            if n > args.runsc_burst_max and not runsc_note:
                                notes.append(f"runsc: left out of bursts above {args.runsc_burst_max} containers "
                                             "(--runsc-burst-max).")
                                runsc_note = True
                            continue
                        # fixed width: no id is a prefix of another (runsc accepts unique id prefixes)
                        ids = [f"vb{os.getpid()}-{rt.name}-b{n}-{i}-{k:03d}" for k in range(n)]
                        rt.ids.update(ids)
                        sampler = MemSampler(runtime_watch(rt), pss=not args.no_pss)
                        s = burst(ids, lambda cid: rt.cmd("run", "--detach", "--bundle", bundles["long"], cid), io_dir,
                                  timeout=max(60.0, 3.0 * n), state=lambda cid: rt.cmd("state", cid), sampler=sampler)
                        if rt.level_seen is None and s.pids:
                            rt.level_seen = bench.observed_level(next(iter(s.pids.values())))
                        record(rt.name, sc, s)
                        delete_direct(L, rt, ids)
                        left = quiesce(sampler.watch)
                        time.sleep(SETTLE_S)
                        log(f"startup: {sc} round {i + 1}/{args.burst_rounds} {rt.name}: "
                            f"{bench.fmt(s.ms, 0)} ms (returned {bench.fmt(s.steps.get('returned'), 0)}), peak VmRSS "
                            f"{bench.fmt(mib(s.memory['peak_rss_kib']), 1)} MiB"
                            + ("" if s.ok else f" FAILED: {s.error}")
                            + (f"; {left} runtime processes still alive after cleanup" if left else ""))
                        if left:
                            notes.append(f"{sc} {rt.name} round {i + 1}: {left} runtime processes still alive "
                                         f"{QUIESCE_TIMEOUT_S:.0f} s after the cleanup.")
        if containerd is not None:
            cd = containerd
            sc = f"ctr-burst-{args.ctr_burst}"
            ctr_rts = [rt for rt in runtimes if rt.name in CTR_RUNTIMES and
                       (rt.name == "runc" or os.access(shim_path, os.X_OK))]
            for i in range(args.burst_rounds):
                for rt in bench.rotated(ctr_rts, i):
                    rtype = bench.SHIM_RUNTIMES[rt.name][0]
                    ids = [f"vb{os.getpid()}-{rt.name}-c{i}-{k:03d}" for k in range(args.ctr_burst)]
                    cd.ids.update(ids)
                    sampler = MemSampler(runtime_watch(rt, shim_path, via_ctr=True), pss=not args.no_pss)
                    s = burst(ids, lambda cid: cd.ctr_cmd("run", "-d", "--runtime", rtype,
                                                          *bench.shim_flags(cd, rt.name), cd.IMAGE, cid,
                                                          "sleep", "100000"),
                              io_dir, timeout=max(60.0, 3.0 * args.ctr_burst),
                              task_ls=lambda: ctr_task_ls(L, cd), sampler=sampler)
                    record(rt.name, sc, s)
                    delete_ctr(cd, ids)
                    left = quiesce(sampler.watch)
                    time.sleep(SETTLE_S)
                    log(f"startup: {sc} round {i + 1}/{args.burst_rounds} {rt.name}: {bench.fmt(s.ms, 0)} ms, "
                        f"peak VmRSS {bench.fmt(mib(s.memory['peak_rss_kib']), 1)} MiB"
                        + ("" if s.ok else f" FAILED: {s.error}")
                        + (f"; {left} runtime processes still alive after cleanup" if left else ""))
        if "phases" in args.scenarios:
            trace_rounds_of("idle")

        # ---- two busy loops
        if "run-busy" in args.scenarios or "phases" in args.scenarios:
            busy.start()
            try:
                if "run-busy" in args.scenarios:
                    run_rounds_of("run-busy")
                if "phases" in args.scenarios:
                    trace_rounds_of("busy")
                meta["load_busy"] = loadavg()
            finally:
                busy.stop()
        meta["load_after"] = loadavg()
    except KeyboardInterrupt as e:
        log(f"startup: interrupted ({str(e) or 'Ctrl-C'}), cleaning up")
        raise
    finally:
        busy.stop()
        os.chdir("/")
        if containerd is not None:
            containerd.stop()
        for rt in runtimes:
            for cid in list(rt.ids):
                bench.force_delete(L, rt, cid)
            # anything else of ours still in the runtime's root (e.g. an id a killed launch left)
            r = L.run(rt.cmd("list", "-q"), timeout=30)
            for cid in r.out.split() if r.ok else []:
                bench.force_delete(L, rt, cid)
        subprocess.run(["umount", "-R", "-l", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)
    meta["duration"] = time.monotonic() - t_start

    info = [(k, v) for k, v in bench.machine_info(runtimes, L, "") if k != "rss method"]
    info.append(("load average under the busy loops", meta.get("load_busy", "-")))
    seen = [f"{rt.name}: {rt.level_seen}" for rt in runtimes if rt.level_seen]
    if seen:
        notes.append("Isolation seen (`/proc/PID/uid_map` of a burst container's init): " + "; ".join(seen) + ".")
    report = build_report(args, runtimes, results, traces, info, meta, errors, notes)
    print(report)
    out_dir = Path(args.out).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    out_md = out_dir / f"{stamp}-startup.md"
    out_md.write_text(report)
    shutil.copyfile(out_md, out_dir / "latest-startup.md")
    raw = {"started": started.isoformat(), "args": vars(args), "info": dict(info),
           "meta": {k: v for k, v in meta.items() if k != "started"},
           "samples": {f"{n}/{sc}": [{"ok": s.ok, "ms": s.ms, "steps": s.steps, "error": s.error,
                                      "errors": getattr(s, "errors", None), "memory": getattr(s, "memory", None)}
                                     for s in r["timed"]] for (n, sc), r in results.items()},
           "phases": traces}
    (out_dir / f"{stamp}-startup.json").write_text(json.dumps(raw, indent=1))
    log(f"startup: wrote {out_md} (+ .json, latest-startup.md)")
    return 1 if veil_failed else (2 if setup_failed else 0)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        sys.exit(130)
