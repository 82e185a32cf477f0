#!/usr/bin/env python3
"""Start-up cost of a seccomp profile pulled from a registry (issue #14).

Usage: python3 bench/seccomp_artifacts.py --veil PATH [--rounds N] [--out DIR]

One busybox bundle running /bin/true, `veil run` until it exits, at both levels (sandbox, native),
with the same profile (runc's default-like: allow all but a few calls) given three ways:
  localhost   linux.seccomp in config.json (what a Localhost profile file becomes)
  warm        annotation seccomp-profile.kubernetes.cri-o.io/POD=REF, profile already cached
  cold        the same annotation after the cache is emptied: one pull from the registry
and, beside them, runc with the localhost config (the reference of every other benchmark).
The registry is Debian's docker-registry on 127.0.0.1, plain HTTP (registries.conf marks it
insecure), started and stopped by this script. Rounds are interleaved; medians and ratios to
the localhost case of the same level. Target: warm <= 1.05x localhost.
Python standard library only.
"""

import argparse
import datetime
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RUNC = "/usr/sbin/runc"
ANNOTATION = "seccomp-profile.kubernetes.cri-o.io/POD"


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def profile():
    """Allow everything but a handful of calls the workload never makes."""
    return {"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
            "syscalls": [{"names": ["acct", "kexec_load", "open_by_handle_at", "swapon", "swapoff", "reboot"],
                          "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]}


class Registry:
    def __init__(self, tmp):
        self.port = free_port()
        self.dir = Path(tmp) / "registry"
        self.dir.mkdir()
        config = self.dir / "config.yml"
        config.write_text(f"""version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {self.dir}/data
http:
  addr: 127.0.0.1:{self.port}
""")
        self.conf = self.dir / "registries.conf"
        self.conf.write_text(f'[[registry]]\nlocation = "127.0.0.1:{self.port}"\ninsecure = true\n')
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=1)
                return
            except Exception:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise SystemExit("bench: docker-registry did not start")
                time.sleep(0.1)

    def stop(self):
        self.proc.kill()
        self.proc.wait()


def timed(argv, cwd):
    start = time.perf_counter()
    result = subprocess.run(argv, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    elapsed = (time.perf_counter() - start) * 1000
    if result.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed ({result.returncode}): {result.stderr.decode()[-400:]}")
    return elapsed


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--veil", required=True)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--out", default=str(HERE / "results"))
    args = parser.parse_args()
    veil = os.path.abspath(args.veil)
    if not shutil.which("docker-registry"):
        log("bench: docker-registry is not installed (make deps): seccomp-artifact benchmark skipped")
        return 2

    tmp = tempfile.mkdtemp(prefix="vbs-", dir="/tmp")
    registry = None
    try:
        registry = Registry(tmp)
        reference = f"127.0.0.1:{registry.port}/bench/profile:v1"
        profile_path = Path(tmp) / "profile.json"
        profile_path.write_text(json.dumps(profile()))
        registry_flags = ["--registries-conf", str(registry.conf)]
        pushed = subprocess.run([veil, "seccomp", "push", *registry_flags, reference, str(profile_path)],
                                capture_output=True, text=True)
        if pushed.returncode != 0:
            raise SystemExit(f"bench: veil seccomp push failed: {pushed.stderr}")

        env = dict(os.environ, VEIL="/nonexistent/veil")
        bundles = {}
        for name in ("localhost", "annotation"):
            bundle = Path(tmp) / name
            subprocess.run(["bash", str(REPO / "scripts" / "make-bundle.sh"), str(bundle), "true"], check=True, env=env,
                           stdout=subprocess.DEVNULL)
            config = json.loads((bundle / "config.json").read_text())
            config["root"]["readonly"] = True
            config["linux"].pop("seccomp", None)
            if name == "localhost":
                config["linux"]["seccomp"] = profile()
            else:
                config.setdefault("annotations", {})[ANNOTATION] = reference
            (bundle / "config.json").write_text(json.dumps(config))
            bundles[name] = str(bundle)

        root = Path(tmp) / "state"
        cases = []
        for level in ("sandbox", "native"):
            base = [veil, "--root", str(root), "--isolation", level, *registry_flags]
            cases.append((f"veil {level} localhost", base, "localhost", None))
            cases.append((f"veil {level} warm", base, "annotation", None))
            cases.append((f"veil {level} cold", base, "annotation", "cold"))
        cases.append(("runc localhost", [RUNC, "--root", str(Path(tmp) / "runc")], "localhost", None))

        # The cache directory is veil's default; a cold case empties it before its run.
        cache_dir = Path("/run/veil-cache/seccomp")
        samples = {name: [] for name, *_ in cases}
        for index in range(args.rounds):
            order = cases[index % len(cases):] + cases[:index % len(cases)]
            for name, base, bundle, mode in order:
                if mode == "cold":
                    shutil.rmtree(cache_dir, ignore_errors=True)
                cid = f"b{index}-{abs(hash(name)) % 10000}"
                samples[name].append(timed([*base, "run", cid], bundles[bundle]))

        medians = {name: statistics.median(values) for name, values in samples.items()}
        stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        lines = [f"# seccomp profiles from a registry: start-up ({stamp})", "",
                 f"{args.rounds} interleaved rounds of `run` (/bin/true, busybox), medians in ms; ratio to the "
                 "localhost profile (linux.seccomp in config.json) of the same level. Target: warm <= 1.05x.", "",
                 "| case | median ms | ratio to localhost |", "|---|---|---|"]
        verdicts = []
        for name, _, _, _ in cases:
            level = name.split()[1] if name.startswith("veil") else None
            reference_median = medians[f"veil {level} localhost"] if level else medians[name]
            ratio = medians[name] / reference_median
            lines.append(f"| {name} | {medians[name]:.1f} | {ratio:.2f} |")
            if name.endswith("warm"):
                verdicts.append(f"{name}: {ratio:.2f}x localhost ({'met' if ratio <= 1.05 else 'NOT met'})")
        lines += ["", *[f"- {v}" for v in verdicts], ""]
        report = "\n".join(lines)
        print(report)
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"{stamp}-seccomp-artifacts.md").write_text(report)
        (out / f"{stamp}-seccomp-artifacts.json").write_text(json.dumps({"rounds": args.rounds, "samples_ms": samples,
                                                                          "medians_ms": medians}, indent=1))
        return 0
    finally:
        if registry:
            registry.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
