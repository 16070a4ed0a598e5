"""Shared pieces of the benchmark scripts: wrk runs parsed into req/s, p50
and p99, and a module layout with a zip of a chosen size. Benchmarks print
numbers; they assert nothing."""

import json
import os
import re
import subprocess
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "tools"))
sys.path.insert(0, os.path.join(TOP, "tests", "integration"))


def need(tool, package):
    if not any(os.access(os.path.join(d, tool), os.X_OK)
               for d in os.environ.get("PATH", "").split(os.pathsep)):
        sys.exit(f"bench: {tool} not found: apt-get install {package} "
                 f"(or deploy/install-deps.sh bench)")


def _ms(v, unit):
    return float(v) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def wrk(url, seconds=10, connections=50, threads=2):
    """Runs wrk --latency; returns {"rps", "p50_ms", "p99_ms", "errors"}."""
    out = subprocess.run(["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
                          "--latency", url], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=seconds + 60).stdout
    res = {"rps": 0.0, "p50_ms": None, "p99_ms": None, "errors": 0, "raw": out}
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if m:
        res["rps"] = float(m.group(1))
    for q, key in (("50%", "p50_ms"), ("99%", "p99_ms")):
        m = re.search(rf"^\s+{q}\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        if m:
            res[key] = _ms(m.group(1), m.group(2))
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if m:
        res["errors"] += int(m.group(1))
    m = re.search(r"Socket errors:.*?(\d+) timeout", out)
    if m:
        res["errors"] += int(m.group(1))
    return res


def module(root, path, version, payload_bytes):
    """A module version whose zip holds payload_bytes of incompressible data."""
    d = os.path.join(root, path, "@v")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, version + ".info"), "w") as f:
        json.dump({"Version": version, "Time": "2024-01-02T03:04:05Z"}, f)
    with open(os.path.join(d, version + ".mod"), "w") as f:
        f.write(f"module {path}\n")
    with zipfile.ZipFile(os.path.join(d, version + ".zip"), "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{path}@{version}/go.mod", f"module {path}\n")
        z.writestr(f"{path}@{version}/data.bin", os.urandom(payload_bytes))
    with open(os.path.join(d, "list"), "w") as f:
        f.write(version + "\n")
    return os.path.join(d, version)


def row(name, ours, peer, peer_name):
    ratio = ours["rps"] / peer["rps"] if peer["rps"] else float("nan")
    return (f"| {name} | {ours['rps']:.0f} | {ours['p50_ms']:.2f} | {ours['p99_ms']:.2f} | "
            f"{peer['rps']:.0f} | {peer['p50_ms']:.2f} | {peer['p99_ms']:.2f} | {ratio:.2f}x |"
            f" {ours['errors']}/{peer['errors']} |"), \
        (f"| measure | gomirror req/s | p50 ms | p99 ms | {peer_name} req/s | p50 ms | p99 ms |"
         f" gomirror/{peer_name} | errors (ours/peer) |")
