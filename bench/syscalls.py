#!/usr/bin/env python3
"""System-call cost inside a container, and the memory a sandbox's own processes take.

Usage (as root):
    python3 bench/syscalls.py --veil PATH [--rounds N] [--iterations N] [--runsc-iterations N]
                              [--runtimes LIST] [--out DIR] [--rss] [--rss-count N] [--rss-settle S]
                              [--rss-only]

Syscalls: bench/syscalls.c (built with gcc -static -O2 into a temp dir) runs as the process of
a busybox container (config from `runc spec`, rootfs writable, no seccomp in config.json: veil's
sandbox level brings its own policy) and times --iterations calls (default 200000, after 1%
warm-up) each of getppid, open+close of a 4 KiB file in the container's /tmp, stat, pread of
4 KiB, and uname (answered by the warden under veil's sandbox level). runsc (ptrace platform) is
about 100x slower per call, so it makes --runsc-iterations calls (default 20000); the per-call
figure does not depend on the count. Rounds (--rounds, default 20) are interleaved: round i runs
every runtime once, in an order rotated by i. Reported: the median ns/call over rounds, the ratio
to runc's median, min-max over rounds, and issue 6's targets for veil's sandbox level
(getppid, open+close, stat, pread <= 1.1x runc; uname <= 8 us).

Runtimes (--runtimes, default all): veil-sandbox (`veil --isolation sandbox run`), veil-native
(`veil --isolation native run`), runc (/usr/sbin/runc), runc-filter (runc with the smallest
seccomp profile: what any filter costs), runc-policy (runc with veil's filter), runsc (`runsc
--network=none --platform=ptrace`). A missing binary is left out with a note. --baseline-veil PATH
adds veil-base: another veil build (e.g. the revision before a change, from bench/baseline.sh) at
its sandbox level, and the verdicts then compare veil's sandbox with it (no regression: <= 1.05x).

--rss: starts --rss-count (default 20) long-running containers (`sleep 100000`, create +
start) per runtime side by side, waits --rss-settle seconds, then reads VmRSS, RssAnon and Pss
(/proc/PID/smaps_rollup) of the runtime's own processes that stay alive: for veil sandbox, the
`veil-warden STATE_DIR INIT_PID` processes whose state dir is one of these sandboxes (exactly one
per sandbox, else the run fails), plus any process running the veil binary that is not a
container's; for runsc, its sandbox and gofer per container (the ptrace stubs, which hold the
application, on a row of their own); runc and veil native leave none. Target: warden memory
<= 4 MiB per sandbox. --rss-only skips the syscall rounds.

Writes bench/results/<UTC time>-syscalls.md (+ .json with the raw samples, and a copy as
latest-syscalls.md; --out DIR to change). Exit status: 1 if a veil run failed or the wardens do
not match the sandboxes, 2 on setup errors, else 0. Python standard library only.
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
# runc-filter: runc with the smallest seccomp profile (allow everything, refuse acct): the floor
# any seccomp filter costs, since a filtered task takes the kernel's slower syscall entry path
# even when the filter's verdict is cached. runc-policy: runc with veil's sandbox filter
# (`veil sandbox policy --format oci`). Together they separate what seccomp itself costs, what
# veil's filter costs and what the rest of the sandbox adds.
RUNTIMES = ("veil-sandbox", "veil-native", "runc", "runc-filter", "runc-policy", "runsc", "veil-base")
HEADERS = {"veil-sandbox": "veil sandbox", "veil-native": "veil native", "veil-base": "veil-base sandbox", "runc": "runc",
           "runc-filter": "runc + 1-rule filter", "runc-policy": "runc + veil's filter", "runsc": "runsc"}
SMALLEST_PROFILE = {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64"],
                    "syscalls": [{"names": ["acct"], "action": "SCMP_ACT_ERRNO"}]}
CALLS = ("getppid", "open_close", "stat", "pread_4k", "uname")
CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "cpuset", "freezer", "devices", "blkio",
               "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc", "systemd", "unified")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


class Runtime:
    def __init__(self, name, binary, prefix, seccomp=None):
        self.name, self.binary, self.prefix = name, binary, prefix   # prefix: argv before --root
        self.seccomp = seccomp   # a linux.seccomp profile put in every bundle of this runtime

    def cmd(self, root, *args):
        return self.prefix + ["--root", str(root)] + list(args)


def find_runtimes(names, veil, baseline=None):
    found, notes = [], []
    for n in names:
        if n == "veil-base":
            if baseline and os.access(baseline, os.X_OK):
                found.append(Runtime(n, baseline, [baseline, "--isolation", "sandbox"]))
            else:
                notes.append(f"{HEADERS[n]}: left out, no baseline veil at {baseline}")
        elif n.startswith("veil-"):
            if veil and os.access(veil, os.X_OK):
                found.append(Runtime(n, veil, [veil, "--isolation", n.split("-", 1)[1]]))
            else:
                notes.append(f"{HEADERS[n]}: left out, veil not found at {veil}")
        elif n == "runc":
            if os.access(RUNC, os.X_OK):
                found.append(Runtime(n, RUNC, [RUNC]))
            else:
                notes.append(f"runc: left out, {RUNC} missing")
        elif n == "runc-filter":
            if os.access(RUNC, os.X_OK):
                found.append(Runtime(n, RUNC, [RUNC], seccomp=SMALLEST_PROFILE))
            else:
                notes.append(f"{HEADERS[n]}: left out, {RUNC} missing")
        elif n == "runc-policy":
            if os.access(RUNC, os.X_OK) and veil and os.access(veil, os.X_OK):
                policy = subprocess.run([veil, "sandbox", "policy", "--format", "oci"], check=True,
                                        capture_output=True, text=True).stdout
                found.append(Runtime(n, RUNC, [RUNC], seccomp=json.loads(policy)))
            else:
                notes.append(f"{HEADERS[n]}: left out, needs {RUNC} and veil")
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


def make_bundle(tmp, base_cfg, args, cid, seccomp=None):
    b = Path(tmp) / cid
    b.mkdir()
    cfg = json.loads(json.dumps(base_cfg))
    if seccomp is not None:
        cfg["linux"]["seccomp"] = seccomp
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
    bundle = make_bundle(tmp, base_cfg, ["/syscalls", str(iterations)], cid, rt.seccomp)
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
    """{exe, argv, comm, ppid, rss, anon, pss} (KiB) of a live process, or None."""
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return None
    fields = dict(l.split(":", 1) for l in status.splitlines() if ":" in l)

    def kib(key):
        return int(fields[key].split()[0]) if key in fields else 0
    pss = None
    try:
        for l in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if l.startswith("Pss:"):
                pss = int(l.split()[1])
    except OSError:
        pass
    return {"exe": exe.replace(" (deleted)", ""), "argv": argv, "comm": fields.get("Name", "").strip(),
            "ppid": int(fields.get("PPid", "0").strip() or 0), "rss": kib("VmRSS"), "anon": kib("RssAnon"),
            "pss": pss}


def runsc_role(info):
    """runsc re-execs itself (comm "exe", argv[0] runsc-sandbox / runsc-gofer): name its processes by
    subcommand; the sandbox's children under ptrace are the stubs that hold the application."""
    argv = info["argv"]
    if "boot" in argv:
        return "sandbox"
    if "gofer" in argv:
        return "gofer"
    return "stub"


def bundle_arg(argv):
    for i, a in enumerate(argv):
        if a.startswith("--bundle="):
            return a.split("=", 1)[1]
        if a == "--bundle" and i + 1 < len(argv):
            return argv[i + 1]
    return ""


def all_pids():
    return {int(p) for p in os.listdir("/proc") if p.isdigit()}


def descendants(roots, infos):
    """Every pid in the trees rooted at `roots` (by PPid)."""
    children = {}
    for pid, info in infos.items():
        children.setdefault(info["ppid"], []).append(pid)
    seen, stack = set(), list(roots)
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        stack.extend(children.get(p, []))
    return seen


def same_binary(exe, binary):
    return exe == binary or os.path.basename(exe) == os.path.basename(binary)


WARDEN = "veil-warden"


def runtime_processes(rt, root, ids, init_pids, infos):
    """The runtime's own live processes of these sandboxes: [{pid, role, sandbox, rss, anon, pss}].
    veil sandbox: every `veil-warden STATE_DIR INIT_PID` whose state dir is one of ours (ROOT/ID);
    veil (either level): any process running the veil binary that is not a container's (none
    expected); runsc: every process running the runsc binary, sandbox and gofer by their --bundle
    (ROOT's bundle dir is named after the container), ptrace stubs by their sandbox ancestor."""
    found = []
    prefix = str(root) + "/"
    if rt.name.startswith("veil-"):
        containers = descendants(init_pids, infos)
        for pid, i in infos.items():
            is_warden = os.path.basename(i["exe"]) == WARDEN or (i["argv"] and os.path.basename(i["argv"][0]) == WARDEN)
            if is_warden and len(i["argv"]) > 1 and i["argv"][1].startswith(prefix):
                # the warden's sentinel (a fork that kills the sandbox if the warden dies) shares its argv
                role = "veil-sentinel" if i.get("comm") == "veil-sentinel" else "veil-warden"
                found.append((pid, role, os.path.basename(i["argv"][1])))
            elif same_binary(i["exe"], rt.binary) and pid not in containers:
                found.append((pid, "veil", "?"))
    elif rt.name == "runsc":
        mine = {p: i for p, i in infos.items() if same_binary(i["exe"], rt.binary)}
        for pid, i in mine.items():
            role = runsc_role(i)
            p, key = pid, ""
            while p in mine and not key:          # a stub's sandbox: the nearest ancestor with --bundle
                key = os.path.basename(bundle_arg(mine[p]["argv"]))
                p = mine[p]["ppid"]
            found.append((pid, role, key if key in ids else "?"))
    return [{"pid": p, "role": role, "sandbox": sb, "rss_kib": infos[p]["rss"], "anon_kib": infos[p]["anon"],
             "pss_kib": infos[p]["pss"]} for p, role, sb in found]


def measure_rss(rt, tmp, base_cfg, count, timeout, settle):
    root = Path(tmp) / f"rss-root-{rt.name}"
    root.mkdir()
    before = all_pids()
    ids, errors = [], []
    started = 0
    try:
        for i in range(count):
            cid = f"rss-{rt.name}-{i}-{uuid.uuid4().hex[:6]}"
            # the bundle dir is named after the container: runsc's --bundle then names it too
            bundle = make_bundle(tmp, base_cfg, ["sleep", "100000"], cid)
            ids.append(cid)
            ok = True
            for step in (["create", "--bundle", str(bundle), cid], ["start", cid]):
                # stderr to a file: the container inherits it, a pipe would never reach EOF
                with tempfile.TemporaryFile(mode="w+") as err:
                    p = subprocess.run(rt.cmd(root, *step), cwd=bundle, stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=err, timeout=timeout)
                    if p.returncode != 0:
                        err.seek(0)
                        errors.append(f"`{step[0]} {cid}` exit {p.returncode}: "
                                      f"{(err.read().strip().splitlines() or ['no stderr'])[-1][:300]}")
                        ok = False
                        break
            started += ok
        time.sleep(settle)   # let lazily started helpers settle
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
        procs = runtime_processes(rt, root, set(ids), init_pids, infos)
        if rt.name in ("veil-sandbox", "veil-base"):
            # one warden per sandbox, or the figures mean nothing: say so loudly
            wardens = [p for p in procs if p["role"] == "veil-warden"]
            served = {p["sandbox"] for p in wardens}
            missing = [c for c in ids if c not in served]
            if len(wardens) != started or missing:
                errors.append(f"expected one {WARDEN} per sandbox ({started} started), found {len(wardens)} "
                              f"serving {len(served)} sandboxes" +
                              (f"; none for {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}" if missing else ""))
        return {"count": count, "started": started, "procs": procs, "errors": errors}
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
    return f"{kib / 1024:.2f}"


def syscall_table(runtimes, samples):
    cols = [HEADERS[rt.name] for rt in runtimes]
    lines = ["| call (ns/call, median) | " + " | ".join(cols) + " |", "|---" + "|---:" * len(cols) + "|"]
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


def spread_table(runtimes, samples):
    cols = [HEADERS[rt.name] for rt in runtimes]
    lines = ["| call (ns/call, min - max over rounds) | " + " | ".join(cols) + " |", "|---" + "|---:" * len(cols) + "|"]
    for c in CALLS:
        cells = [f"{min(v):.0f} - {max(v):.0f}" if v else "-" for v in (samples[rt.name][c] for rt in runtimes)]
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def rss_summary(r, roles):
    """Figures over the processes whose role is in `roles`: per-sandbox sums, their median, sums / N."""
    procs = [p for p in r["procs"] if p["role"] in roles]
    n = max(r["started"], 1)
    per_sandbox = {}
    for p in procs:
        per_sandbox[p["sandbox"]] = per_sandbox.get(p["sandbox"], 0) + p["rss_kib"]
    counts = {}
    for p in procs:
        counts[p["role"]] = counts.get(p["role"], 0) + 1
    pss = [p["pss_kib"] for p in procs if p["pss_kib"] is not None]
    return {
        "processes": len(procs),
        "roles": ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())) or "none",
        "median_rss": statistics.median(per_sandbox.values()) if per_sandbox else 0,
        "rss_per": sum(p["rss_kib"] for p in procs) / n,
        "anon_per": sum(p["anon_kib"] for p in procs) / n,
        "pss_per": sum(pss) / n,
        "rss_sum": sum(p["rss_kib"] for p in procs),
        "pss_sum": sum(pss),
    }


RSS_ROWS = {  # runtime -> [(row label suffix, roles counted)]
    "veil-sandbox": [("", ("veil-warden", "veil-sentinel", "veil"))],
    "veil-native": [("", ("veil-warden", "veil"))],
    "runc": [("", ())],
    "runsc": [(" (sandbox + gofer)", ("sandbox", "gofer")), (" ptrace stubs (the application's address spaces)", ("stub",))],
}
RSS_ROWS["veil-base"] = RSS_ROWS["veil-sandbox"]   # another build, the same processes


def rss_table(rss):
    lines = ["| runtime | sandboxes | processes | VmRSS per sandbox, median MiB | VmRSS sum/N MiB | "
             "RssAnon sum/N MiB | Pss sum/N MiB | VmRSS sum MiB | Pss sum MiB |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in rss.items():
        for suffix, roles in RSS_ROWS[name]:
            f = rss_summary(r, roles)
            lines.append(f"| {HEADERS[name]}{suffix} | {r['started']}/{r['count']} | {f['processes']} ({f['roles']}) | "
                         f"{mib(f['median_rss'])} | {mib(f['rss_per'])} | {mib(f['anon_per'])} | {mib(f['pss_per'])} | "
                         f"{mib(f['rss_sum'])} | {mib(f['pss_sum'])} |")
    return "\n".join(lines)


# Issue 6's targets for veil's sandbox level.
RATIO_TARGETS = {"getppid": 1.10, "open_close": 1.10, "stat": 1.10, "pread_4k": 1.10}
UNAME_TARGET_NS = 8000
WARDEN_TARGET_MIB = 4.0


def met(value, target):
    return "met" if value <= target else "MISSED"


BASELINE_TOLERANCE = 1.05   # a change's "no regression" against the baseline build (issue 11)


def baseline_verdicts(med, rss, by_round=None):
    """veil's sandbox against the baseline build's sandbox: every call and the memory per sandbox.
    A call is judged on the median of its per-round ratios (both builds run back to back in each
    round, so the ratio cancels the load that drifts between rounds); the ratio of the medians is
    shown beside it."""
    lines = []
    tail = f"(target <= {BASELINE_TOLERANCE:.2f})"
    sb, base = med.get("veil-sandbox"), med.get("veil-base")
    rounds = by_round or {}
    if sb and base:
        for c in CALLS:
            if sb.get(c) is not None and base.get(c):
                v = sb[c] / base[c]
                now, then = rounds.get("veil-sandbox", {}), rounds.get("veil-base", {})
                ratios = [now[r][c] / then[r][c] for r in now if r in then and then[r][c]]
                if ratios:
                    paired = statistics.median(ratios)
                    lines.append(f"veil sandbox/veil-base {c}: {paired:.3f} per round ({v:.3f} of the medians) "
                                 f"{tail} {met(paired, BASELINE_TOLERANCE)}")
                else:
                    lines.append(f"veil sandbox/veil-base {c}: {v:.3f} {tail} {met(v, BASELINE_TOLERANCE)}")
    if rss.get("veil-sandbox") and rss.get("veil-base"):
        now, then = (rss_summary(rss[n], RSS_ROWS[n][0][1]) for n in ("veil-sandbox", "veil-base"))
        for key, label in (("rss_per", "VmRSS"), ("pss_per", "Pss")):
            if then[key]:
                v = now[key] / then[key]
                lines.append(f"veil sandbox/veil-base warden {label} per sandbox: {mib(now[key])} / "
                             f"{mib(then[key])} MiB = {v:.3f} {tail} {met(v, BASELINE_TOLERANCE)}")
    return lines


def verdicts(med, rss, count, by_round=None):
    lines = baseline_verdicts(med, rss, by_round)
    if med:
        sb, rc = med.get("veil-sandbox"), med.get("runc")
        for c, target in RATIO_TARGETS.items():
            head = f"issue 6: veil sandbox/runc {c} ratio:"
            if not sb or sb.get(c) is None or not rc or not rc.get(c):
                lines.append(f"{head} n/a (veil sandbox or runc has no sample) (target <= {target:.2f})")
            else:
                v = sb[c] / rc[c]
                lines.append(f"{head} {v:.3f} (target <= {target:.2f}) {met(v, target)}")
                floor = med.get("runc-filter", {}).get(c)
                if floor:
                    lines.append(f"  beside it, runc + a 1-rule seccomp filter/runc: {floor / rc[c]:.3f}; "
                                 f"veil sandbox/(runc + 1-rule filter): {sb[c] / floor:.3f}")
        head = "issue 6: veil sandbox uname (mediated by the warden):"
        if sb and sb.get("uname") is not None:
            lines.append(f"{head} {sb['uname'] / 1000:.2f} us/call (target <= {UNAME_TARGET_NS / 1000:g} us) "
                         f"{met(sb['uname'], UNAME_TARGET_NS)}")
        else:
            lines.append(f"{head} n/a (no sample) (target <= {UNAME_TARGET_NS / 1000:g} us)")
    if rss:
        r = rss.get("veil-sandbox")
        tail = f"(target <= {WARDEN_TARGET_MIB:g} MiB)"
        if r is None or not any(p["role"] == "veil-warden" for p in r["procs"]) or r["errors"]:
            why = "not measured" if r is None else (r["errors"][-1] if r["errors"] else "no warden found")
            lines.append(f"issue 6: veil sandbox warden memory per sandbox: n/a ({why}) {tail}")
        else:
            f = rss_summary(r, ("veil-warden", "veil-sentinel"))
            lines.append(f"issue 6: veil sandbox warden + sentinel VmRSS per sandbox (median of {r['started']}): "
                         f"{f['median_rss'] / 1024:.2f} MiB {tail} {met(f['median_rss'] / 1024, WARDEN_TARGET_MIB)}")
            lines.append(f"issue 6: veil sandbox warden + sentinel Pss per sandbox (sum/{r['started']}): "
                         f"{f['pss_per'] / 1024:.2f} MiB {tail} {met(f['pss_per'] / 1024, WARDEN_TARGET_MIB)}")
    return lines


def machine(runtimes):
    def read(p):
        try:
            return Path(p).read_text().strip()
        except OSError:
            return "?"
    cpu = next((l.split(":", 1)[1].strip() for l in read("/proc/cpuinfo").splitlines() if l.startswith("model name")), "?")
    os_name = next((l.split("=", 1)[1].strip().strip('"') for l in read("/etc/os-release").splitlines()
                    if l.startswith("PRETTY_NAME=")), "?")
    try:
        commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10).stdout.strip() or "?"
    except (OSError, subprocess.SubprocessError):
        commit = "?"
    info = [("kernel (uname -r)", os.uname().release), ("os", os_name),
            ("nproc", f"{len(os.sched_getaffinity(0))} (cpu_count {os.cpu_count()})"), ("cpu", cpu),
            ("repo commit", commit)]
    for rt in runtimes:
        try:
            p = subprocess.run([rt.binary, "--version"], capture_output=True, text=True, timeout=20)
            version = "; ".join(l.strip() for l in (p.stdout + p.stderr).splitlines()[:2] if l.strip())
        except (OSError, subprocess.SubprocessError) as e:
            version = f"? ({e})"
        info.append((f"{HEADERS[rt.name]}", f"`{' '.join(rt.prefix)}`: {version}"))
    return info


def loadavg():
    return "%.2f %.2f %.2f" % os.getloadavg()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--veil", default=str(REPO / ".build" / "release" / "veil"))
    ap.add_argument("--baseline-veil", default=None,
                    help="another veil binary (bench/baseline.sh REV) measured as veil-base, sandbox level")
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--iterations", type=int, default=200_000)
    ap.add_argument("--runsc-iterations", type=int, default=20_000)
    ap.add_argument("--runtimes", default=",".join(r for r in RUNTIMES if r != "veil-base"))
    ap.add_argument("--out", default=str(HERE / "results"))
    ap.add_argument("--rss", action="store_true", help="also measure the RSS of N side-by-side sandboxes")
    ap.add_argument("--rss-count", type=int, default=20)
    ap.add_argument("--rss-settle", type=float, default=2.0,
                    help="seconds the N sandboxes run before their memory is read (default 2)")
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
    if args.baseline_veil and "veil-base" not in names:
        names.append("veil-base")
    bad = [n for n in names if n not in RUNTIMES]
    if bad or args.rounds < 1 or args.iterations < 1 or args.runsc_iterations < 1 or args.rss_count < 1:
        log(f"syscalls.py: bad arguments{': unknown runtime ' + ', '.join(bad) if bad else ''}")
        return 2
    runtimes, notes = find_runtimes(names, os.path.abspath(args.veil),
                                    os.path.abspath(args.baseline_veil) if args.baseline_veil else None)
    for n in notes:
        log(f"syscalls.py: {n}")
    if not runtimes:
        return 2

    started_at = datetime.datetime.now(datetime.timezone.utc)
    load_before, t0 = loadavg(), time.monotonic()
    tmp = tempfile.mkdtemp(prefix="veil-syscalls-")
    samples = {rt.name: {c: [] for c in CALLS} for rt in runtimes}
    by_round = {}   # runtime -> round -> {call: ns}, for the per-round ratios against veil-base
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
                        log(f"syscalls.py: round {rnd + 1}/{args.rounds} {rt.name}: FAILED {error}")
                        veil_failed |= rt.name.startswith("veil")
                        continue
                    for c in CALLS:
                        samples[rt.name][c].append(values[c])
                    by_round.setdefault(rt.name, {})[rnd] = values
                    log(f"syscalls.py: round {rnd + 1}/{args.rounds} {rt.name}: " +
                        " ".join(f"{c}={values[c]:.0f}" for c in CALLS))
        syscall_load = loadavg()
        if args.rss or args.rss_only:
            for rt in (rt for rt in runtimes if rt.name not in ("runc-policy", "runc-filter")):  # runc's processes
                log(f"syscalls.py: RSS: {args.rss_count} x {rt.name} ...")
                rss[rt.name] = measure_rss(rt, tmp, base_cfg, args.rss_count, args.timeout, args.rss_settle)
                for e in rss[rt.name]["errors"]:
                    failures.append(f"RSS, {HEADERS[rt.name]}: {e}")
                    log(f"syscalls.py: ERROR: RSS, {rt.name}: {e}")
                    veil_failed |= rt.name.startswith("veil")
    finally:
        subprocess.run(["umount", "-R", "-l", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(tmp, ignore_errors=True)

    stamp = started_at.strftime("%Y%m%dT%H%M%SZ")
    duration = time.monotonic() - t0
    med = {}
    report = [f"# syscalls inside a container, and sandbox memory ({started_at.strftime('%Y-%m-%d %H:%M:%S')} UTC)", "",
              f"Duration {duration:.0f} s; load average before {load_before}"
              + ("" if args.rss_only else f", after the syscall rounds {syscall_load}")
              + f", at the end {loadavg()}.", ""]
    if not args.rss_only:
        table, med = syscall_table(runtimes, samples)
        counts = ", ".join(f"{HEADERS[rt.name]} {args.runsc_iterations if rt.name == 'runsc' else args.iterations}"
                           for rt in runtimes)
        oks = ", ".join(f"{HEADERS[rt.name]} {len(samples[rt.name][CALLS[0]])}/{args.rounds}" for rt in runtimes)
        report += [f"{args.rounds} interleaved rounds (one container per runtime per round, order rotated by the "
                   f"round); calls per operation per round: {counts} (after 1% warm-up). Rounds that succeeded: {oks}. "
                   "Median ns/call over rounds; in parentheses the ratio to runc's median.", "", table, "",
                   spread_table(runtimes, samples), ""]
        files = sorted({v for v in where.values() if v})
        if files:
            report += ["Test file (inside the container): " + ", ".join(files), ""]
    if rss:
        report += [f"## Resident memory of {args.rss_count} side-by-side sandboxes (`sleep 100000` each)", "",
                   f"Read {args.rss_settle:g} s after the last `start`, from /proc/PID/status (VmRSS, RssAnon) and "
                   "/proc/PID/smaps_rollup (Pss) of the runtime's own live processes, never the containers' "
                   f"processes. veil sandbox: the `{WARDEN} STATE_DIR INIT_PID` processes whose state dir is one "
                   "of the N sandboxes (exactly one per sandbox is required, else the run fails), plus any "
                   "process running the veil binary that is not a container's (none expected). runc and veil "
                   "native leave no process. runsc: its sandbox (`runsc boot`) and gofer per container; its "
                   "ptrace stubs run the application's code and hold its address space, so they are listed on "
                   "their own row, not counted as runtime cost. 'Per sandbox, median' is the median over "
                   "sandboxes of the VmRSS of that sandbox's processes; the wardens (or runsc's processes) share "
                   "their binary's pages, which VmRSS counts in full for each, so Pss sum/N is the fair "
                   "per-sandbox cost.", "", rss_table(rss), ""]
    vlines = verdicts(med, rss, args.rss_count, by_round)
    if vlines:
        report += ["## Targets (issue 6; veil-base lines: no regression against the baseline build)", ""] + [f"- {v}" for v in vlines] + [""]
    if notes:
        report += ["Notes:", ""] + [f"- {n}" for n in notes] + [""]
    if failures:
        report += ["## Failures", ""] + [f"- {f}" for f in failures] + [""]
    report += ["## Machine", ""] + [f"- {k}: {v}" for k, v in machine(runtimes)] + [
        "", f"Command: `{' '.join(sys.argv)}`", ""]
    text = "\n".join(report)
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stamp}-syscalls.md").write_text(text)
    shutil.copyfile(out / f"{stamp}-syscalls.md", out / "latest-syscalls.md")
    raw = {"started": started_at.isoformat(), "args": vars(args), "samples_ns": samples, "rss": rss,
           "failures": failures}
    (out / f"{stamp}-syscalls.json").write_text(json.dumps(raw, indent=1))
    log(f"syscalls.py: wrote {out / (stamp + '-syscalls.md')} (+ .json, latest-syscalls.md)")
    for v in vlines:
        print(v)
    return 1 if veil_failed else 0


if __name__ == "__main__":
    sys.exit(main())
