#!/usr/bin/env python3
"""System-call cost inside a container, and the memory a sandbox's own processes take.

Usage (as root):
    python3 bench/syscalls.py --veil PATH [--rounds N] [--iterations N] [--runsc-iterations N]
                              [--runtimes LIST] [--out DIR] [--rss] [--rss-count N] [--rss-only]

Syscalls: bench/syscalls.c (built with gcc -static -O2 into a temp dir) runs as the process of
a busybox container (config from `runc spec`, rootfs writable, no seccomp) and times
--iterations calls (default 1000000, after 1% warm-up) each of getppid, open+close of a 4 KiB
file in the container's /tmp, stat, pread of 4 KiB, and uname. runsc (ptrace platform) is
about 100x slower per call, so it makes --runsc-iterations calls (default 100000); the
per-call figure does not depend on the count. Rounds (--rounds, default 5) are interleaved:
round i runs every runtime once, in an order rotated by i. Reported: the median ns/call over
rounds and the ratio to runc's median.

Runtimes (--runtimes, default all): veil-sandbox (`veil --isolation sandbox run`), veil-native
(`veil --isolation native run`), runc (/usr/sbin/runc), runsc (`runsc --network=none
--platform=ptrace`). A missing binary is left out with a note.

--rss: starts --rss-count (default 20) long-running containers (`sleep 100000`, create +
start) per runtime side by side, then reads VmRSS and Pss (/proc/PID/smaps_rollup) of the
runtime's own processes that stay alive: for veil, every process running the veil binary that
is not a container's process (the sandbox supervisor, once there is one); for runsc, every
process running the runsc binary (sandbox, gofer and ptrace stubs); runc leaves none. Printed
as a table: per runtime the process count, sums, per-sandbox figures and the median process.
--rss-only skips the syscall rounds.

Writes bench/results/<UTC time>-syscalls.md (--out DIR to change). Exit status: 1 if a veil
run failed, 2 on setup errors, else 0. Python standard library only.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RUNC = "/usr/sbin/runc"
RUNSC_FLAGS = ["--network=none", "--platform=ptrace"]
RUNTIMES = ("veil-sandbox", "veil-native", "runc", "runsc")
HEADERS = {"veil-sandbox": "veil sandbox", "veil-native": "veil native", "runc": "runc", "runsc": "runsc"}
CALLS = ("getppid", "open_close", "stat", "pread_4k", "uname")
CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "cpuset", "freezer", "devices", "blkio",
               "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc", "systemd", "unified")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Runtime:
    def __init__(self, name, binary, prefix):
        self.name, self.binary, self.prefix = name, binary, prefix   # prefix: argv before --root

    def cmd(self, root, *args):
        return self.prefix + ["--root", str(root)] + list(args)


def find_runtimes(names, veil):
    found, notes = [], []
    for n in names:
        if n.startswith("veil-"):
            if veil and os.access(veil, os.X_OK):
                found.append(Runtime(n, veil, [veil, "--isolation", n.split("-", 1)[1]]))
            else:
                notes.append(f"{HEADERS[n]}: left out, veil not found at {veil}")
        elif n == "runc":
            if os.access(RUNC, os.X_OK):
                found.append(Runtime(n, RUNC, [RUNC]))
            else:
                notes.append(f"runc: left out, {RUNC} missing")
        elif n == "runsc":
            runsc = shutil.which("runsc") or "/usr/bin/runsc"
            if os.access(runsc, os.X_OK):
                found.append(Runtime(n, runsc, [runsc] + RUNSC_FLAGS))
            else:
                notes.append("runsc: n/a, not installed (apt-get install runsc)")
    return found, notes


# --------------------------------------------------------------------------- bundles

def make_rootfs(tmp, binary):
    """One busybox rootfs (scripts/make-bundle.sh) holding the benchmark as /syscalls; returns
    (rootfs path, base config from `runc spec`)."""
    base = Path(tmp) / "base"
    env = dict(os.environ, VEIL="/nonexistent/veil")   # `runc spec`, as bench/bench.py does
    subprocess.run(["bash", str(REPO / "scripts" / "make-bundle.sh"), str(base), "true"], check=True,
                   env=env, stdout=subprocess.DEVNULL)
    if binary:
        shutil.copy(binary, base / "rootfs" / "syscalls")
        os.chmod(base / "rootfs" / "syscalls", 0o755)
    cfg = json.loads((base / "config.json").read_text())
    cfg["root"] = {"path": str(base / "rootfs"), "readonly": False}
    cfg["process"]["terminal"] = False
    cfg.setdefault("linux", {}).pop("seccomp", None)
    return cfg


def make_bundle(tmp, base_cfg, args, cid):
    b = Path(tmp) / cid
    b.mkdir()
    cfg = json.loads(json.dumps(base_cfg))
    cfg["process"]["args"] = args
    cfg["linux"]["cgroupsPath"] = f"/veil-test/{cid}"
    (b / "config.json").write_text(json.dumps(cfg, indent=2))
    return b


def remove_cgroups(cid):
    for c in CONTROLLERS:
        path = Path("/sys/fs/cgroup") / c / "veil-test" / cid
        for sub in sorted([p for p in path.rglob("*") if p.is_dir()] + [path], key=lambda p: -len(str(p))):
            try:
                sub.rmdir()
            except OSError:
                pass


# --------------------------------------------------------------------------- syscall rounds

def run_syscalls(rt, tmp, base_cfg, iterations, timeout):
    cid = f"sc-{rt.name}-{uuid.uuid4().hex[:8]}"
    bundle = make_bundle(tmp, base_cfg, ["/syscalls", str(iterations)], cid)
    root = Path(tmp) / f"root-{rt.name}"
    root.mkdir(exist_ok=True)
    try:
        p = subprocess.run(rt.cmd(root, "run", "--bundle", str(bundle), cid), cwd=bundle,
                           stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=timeout)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired:
        out, err, rc = "", "timed out", -9
    finally:
        subprocess.run(rt.cmd(root, "delete", "--force", cid), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        remove_cgroups(cid)
        shutil.rmtree(bundle, ignore_errors=True)
    values, where = {}, ""
    for line in out.splitlines():
        parts = line.split("\t")
        if len(parts) == 2 and parts[0] in CALLS:
            values[parts[0]] = float(parts[1])
        elif len(parts) == 2 and parts[0] == "file":
            where = parts[1]
    ok = rc == 0 and all(c in values for c in CALLS)
    error = "" if ok else f"exit {rc}: {(err.strip().splitlines() or ['no stderr'])[-1][:200]}"
    return values, where, error


# --------------------------------------------------------------------------- RSS

def proc_info(pid):
    """(exe, comm, ppid, VmRSS KiB, Pss KiB) of a live process, or None."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)
    rss = int(fields.get("VmRSS", "0 kB").split()[0]) if "VmRSS" in fields else 0
    pss = None
    try:
        for l in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if l.startswith("Pss:"):
                pss = int(l.split()[1])
    except OSError:
        pass
    return exe, fields.get("Name", "").strip(), int(fields.get("PPid", "0").strip() or 0), rss, pss


def role(pid, comm):
    """runsc re-execs itself (comm "exe"): name its processes by subcommand instead."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return comm
    for word, name in ((b"boot", "sandbox"), (b"gofer", "gofer")):
        if word in argv:
            return name
    return comm if comm != "exe" else "stub"


def all_pids():
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def descendants(roots, infos):
    """Every pid in the trees rooted at `roots` (by PPid)."""
    children = {}
    for pid, info in infos.items():
        children.setdefault(info[2], []).append(pid)
    seen, stack = set(), list(roots)
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        stack.extend(children.get(p, []))
    return seen


def same_binary(exe, binary):
    exe = exe.replace(" (deleted)", "")
    return exe == binary or os.path.basename(exe) == os.path.basename(binary)


def measure_rss(rt, tmp, base_cfg, count, timeout):
    root = Path(tmp) / f"rss-root-{rt.name}"
    root.mkdir()
    before = all_pids()
    ids, errors = [], []
    try:
        for i in range(count):
            cid = f"rss-{rt.name}-{i}-{uuid.uuid4().hex[:6]}"
            bundle = make_bundle(tmp, base_cfg, ["sleep", "100000"], cid)
            ids.append(cid)
            for step in (["create", "--bundle", str(bundle), cid], ["start", cid]):
                # stderr to a file: the container inherits it, a pipe would never reach EOF
                with tempfile.TemporaryFile(mode="w+") as err:
                    p = subprocess.run(rt.cmd(root, *step), cwd=bundle, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=err, timeout=timeout)
                    if p.returncode != 0:
                        err.seek(0)
                        errors.append(f"{step[0]} {cid}: {(err.read().strip().splitlines() or ['?'])[-1][:200]}")
                        break
        time.sleep(1.0)   # let lazily started helpers settle
        init_pids = []
        for cid in ids:
            p = subprocess.run(rt.cmd(root, "state", cid), capture_output=True, text=True, timeout=timeout)
            try:
                init_pids.append(int(json.loads(p.stdout)["pid"]))
            except (ValueError, KeyError, TypeError):
                pass
        infos = {}
        for pid in all_pids() - before:
            info = proc_info(pid)
            if info:
                infos[pid] = info
        if rt.name == "runsc":
            # the sandbox is the runtime's processes themselves (sentry, gofer, ptrace stubs)
            mine = [p for p, i in infos.items() if same_binary(i[0], rt.binary)]
        else:
            containers = descendants(init_pids, infos)
            mine = [p for p, i in infos.items() if same_binary(i[0], rt.binary) and p not in containers]
        procs = [{"pid": p, "comm": role(p, infos[p][1]), "rss_kib": infos[p][3], "pss_kib": infos[p][4]} for p in mine]
        return {"count": len(ids), "started": len(ids) - len(errors), "procs": procs, "errors": errors}
    finally:
        for cid in ids:
            subprocess.run(rt.cmd(root, "kill", cid, "KILL"), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
        for cid in ids:
            subprocess.run(rt.cmd(root, "delete", "--force", cid), stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
            remove_cgroups(cid)


# --------------------------------------------------------------------------- report

def mib(kib):
    return f"{kib / 1024:.1f}"


def syscall_table(runtimes, samples):
    cols = [HEADERS[rt.name] for rt in runtimes]
    lines = ["| call (ns/call, median) | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    med = {rt.name: {c: statistics.median(samples[rt.name][c]) if samples[rt.name][c] else None for c in CALLS}
           for rt in runtimes}
    for c in CALLS:
        cells = []
        base = med.get("runc", {}).get(c)
        for rt in runtimes:
            v = med[rt.name][c]
            if v is None:
                cells.append("-")
            elif base and rt.name != "runc":
                cells.append(f"{v:.0f} ({v / base:.2f}x)")
            else:
                cells.append(f"{v:.0f}")
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines), med


def rss_table(rss):
    lines = ["| runtime | sandboxes | processes (comm) | sum VmRSS MiB | VmRSS per sandbox MiB | median process VmRSS MiB | sum Pss MiB | Pss per sandbox MiB |",
             "|---|---|---|---|---|---|---|---|"]
    for name, r in rss.items():
        procs = r["procs"]
        n = max(r["started"], 1)
        comms = {}
        for p in procs:
            comms[p["comm"]] = comms.get(p["comm"], 0) + 1
        comm_text = ", ".join(f"{k} x{v}" for k, v in sorted(comms.items())) or "none"
        rss_sum = sum(p["rss_kib"] for p in procs)
        pss_vals = [p["pss_kib"] for p in procs if p["pss_kib"] is not None]
        pss_sum = sum(pss_vals)
        median = statistics.median([p["rss_kib"] for p in procs]) if procs else 0
        lines.append(f"| {HEADERS[name]} | {r['started']}/{r['count']} | {len(procs)} ({comm_text}) | {mib(rss_sum)} | "
                     f"{mib(rss_sum / n)} | {mib(median)} | {mib(pss_sum)} | {mib(pss_sum / n)} |")
    return "\n".join(lines)


def machine():
    def read(p):
        try:
            return Path(p).read_text().strip()
        except OSError:
            return "?"
    cpu = next((l.split(":", 1)[1].strip() for l in read("/proc/cpuinfo").splitlines() if l.startswith("model name")), "?")
    return f"kernel {os.uname().release}, {os.cpu_count()} CPUs ({cpu}), load {read('/proc/loadavg').split(' ')[:3]}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--veil", default=str(REPO / ".build" / "release" / "veil"))
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--iterations", type=int, default=1_000_000)
    ap.add_argument("--runsc-iterations", type=int, default=100_000)
    ap.add_argument("--runtimes", default=",".join(RUNTIMES))
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--rss", action="store_true", help="also measure the RSS of N side-by-side sandboxes")
    ap.add_argument("--rss-count", type=int, default=20)
    ap.add_argument("--rss-only", action="store_true", help="only the RSS section")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per runtime command")
    args = ap.parse_args()
    # SIGTERM/SIGHUP unwind like Ctrl-C, so the containers and temp dirs are cleaned up
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    if os.geteuid() != 0:
        log("syscalls.py: must run as root")
        return 2
    names = [n.strip() for n in args.runtimes.split(",") if n.strip()]
    bad = [n for n in names if n not in RUNTIMES]
    if bad or args.rounds < 1 or args.iterations < 1 or args.runsc_iterations < 1 or args.rss_count < 1:
        log(f"syscalls.py: bad arguments{': unknown runtime ' + ', '.join(bad) if bad else ''}")
        return 2
    runtimes, notes = find_runtimes(names, os.path.abspath(args.veil))
    for n in notes:
        log(f"syscalls.py: {n}")
    if not runtimes:
        return 2

    tmp = tempfile.mkdtemp(prefix="veil-syscalls-")
    samples = {rt.name: {c: [] for c in CALLS} for rt in runtimes}
    failures, where = [], {}
    rss = {}
    veil_failed = False
    try:
        binary = None
        if not args.rss_only:
            binary = Path(tmp) / "syscalls"
            try:
                subprocess.run([str(REPO / "scripts" / "build-static-c.sh"), str(HERE / "syscalls.c"), str(binary)], check=True)
            except (subprocess.CalledProcessError, OSError) as e:
                log(f"syscalls.py: building syscalls.c failed: {e}")
                return 2
        base_cfg = make_rootfs(tmp, binary)
        if not args.rss_only:
            for rnd in range(args.rounds):
                order = runtimes[rnd % len(runtimes):] + runtimes[:rnd % len(runtimes)]
                for rt in order:
                    n = args.runsc_iterations if rt.name == "runsc" else args.iterations
                    values, file_, error = run_syscalls(rt, tmp, base_cfg, n, args.timeout)
                    where[rt.name] = file_ or where.get(rt.name, "")
                    if error:
                        failures.append(f"round {rnd + 1}, {HEADERS[rt.name]}: {error}")
                        veil_failed |= rt.name.startswith("veil")
                        continue
                    for c in CALLS:
                        samples[rt.name][c].append(values[c])
                    log(f"syscalls.py: round {rnd + 1}/{args.rounds} {rt.name}: " +
                        " ".join(f"{c}={values[c]:.0f}" for c in CALLS))
        if args.rss or args.rss_only:
            for rt in runtimes:
                log(f"syscalls.py: RSS: {args.rss_count} x {rt.name} ...")
                rss[rt.name] = measure_rss(rt, tmp, base_cfg, args.rss_count, args.timeout)
                for e in rss[rt.name]["errors"]:
                    failures.append(f"RSS, {HEADERS[rt.name]}: {e}")
                    veil_failed |= rt.name.startswith("veil")
    finally:
        subprocess.run(["umount", "-R", "-l", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)

    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    report = [f"# syscalls inside a container ({stamp})", "", machine(), ""]
    if not args.rss_only:
        table, _ = syscall_table(runtimes, samples)
        counts = ", ".join(f"{HEADERS[rt.name]} {args.runsc_iterations if rt.name == 'runsc' else args.iterations}"
                           for rt in runtimes)
        report += [f"{args.rounds} interleaved rounds; calls per round: {counts} (after 1% warm-up). "
                   "Median ns/call over rounds; in parentheses the ratio to runc's median.", "", table, ""]
        files = sorted({v for v in where.values() if v})
        if files:
            report += ["Test file (inside the container): " + ", ".join(files), ""]
    if rss:
        report += [f"## Resident memory of {args.rss_count} side-by-side sandboxes (`sleep 100000` each)", "",
                   "The runtime's own live processes (veil: processes running the veil binary that are not a "
                   "container's; runsc: every process running the runsc binary). Pss shares pages fairly between "
                   "processes, so its sum is what the sandboxes really cost together.", "", rss_table(rss), ""]
    if notes:
        report += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    if failures:
        report += ["Failures:", ""] + [f"- {f}" for f in failures] + [""]
    text = "\n".join(report)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stamp}-syscalls.md").write_text(text + "\n")
    log(f"syscalls.py: wrote {out / (stamp + '-syscalls.md')}")
    return 1 if veil_failed else 0


if __name__ == "__main__":
    sys.exit(main())
