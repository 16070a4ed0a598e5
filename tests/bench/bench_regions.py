#!/usr/bin/env python3
"""Benchmark: time to first byte in region B of two regions (the topology
of tests/integration/test_multiregion.py: each region 2 gomirror replicas
behind HAProxy, its own Redis and its own prefix of a real Ceph RGW bucket;
B's upstream is "A|public", both verify against a checksum database).

For fresh versions of a module with a 1 MiB zip, it measures in B, one
version at a time, the time until the response headers of the version's
.info (the go command's first request for a version) and then its .zip
arrive, for a version
  - B holds (committed in B: the cached path),
  - A holds and B does not (B fetches it through A),
  - that reached B's bucket by `aws s3 sync` from A's (B checks it against
    the checksum database on its first request),
  - neither region holds (A fetches it from the public stand-in).
The public stand-in sleeps --internet-ms before every answer, standing in
for the internet's latency; the regions are on loopback, so add the real
round trip between regions (a few per fetch) to the second row. The peer
is the public stand-in asked directly, as a developer would without
gomirror.

Usage: tests/bench/bench_regions.py [--binary build/gomirror] [--versions 10]
       [--internet-ms 50]
Prints a Markdown table for docs/deploy.md and BENCHMARKS.md."""

import argparse
import http.client
import os
import shutil
import statistics
import sys
import tempfile
import time
import types
import urllib.parse

import common  # noqa: I001  (sets sys.path)
import fixtures
import harness
import rgw as rgwmod
from test_cluster import wait_backends_up

MOD = "example.com/ttfb"


def ttfb(url):
    """Seconds until the status line and headers of GET url arrived, and
    the status; the body is then read and dropped."""
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
    t0 = time.perf_counter()
    c.request("GET", u.path)
    r = c.getresponse()
    t = time.perf_counter() - t0
    r.read()
    c.close()
    return t, r.status


def region(t, name, upstream, sumdb):
    redis = t.start_redis()
    prefix = f"bench/{name}/"
    reps = [t.start_gomirror(upstream=upstream, sumdb=sumdb, storage="s3", s3_prefix=prefix,
                             meta=redis.url, region=name, threads=64, connect_timeout=2,
                             log_level="warn")
            for _ in range(2)]
    lb = t.start_haproxy(reps)
    wait_backends_up(lb, reps)
    return lb, prefix


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(common.TOP, "build", "gomirror"))
    ap.add_argument("--versions", type=int, default=10)
    ap.add_argument("--internet-ms", type=float, default=50)
    args = ap.parse_args()
    for tool, pkg in (("redis-server", "redis-server"), ("haproxy", "haproxy"),
                      ("aws", "awscli"), ("radosgw", "radosgw")):
        common.need(tool, pkg)
    binary = os.path.abspath(args.binary)
    tmp = tempfile.mkdtemp(prefix="gomirror-bench-regions-")
    t = None
    try:
        fx = fixtures.ensure(os.path.join(os.path.dirname(binary), "fixtures"))
        with rgwmod.RGW(os.path.join(tmp, "rgw"), log=lambda *a: None) as rgw:
            runner = types.SimpleNamespace(binary=binary, fixtures=fx, tmp=tmp, storage="s3",
                                           rgw=rgw)
            t = harness.T(runner, "regions")
            run(args, t, rgw)
    except rgwmod.RGWError as e:
        sys.exit(f"bench: Ceph RGW: {e}")
    finally:
        if t:
            t.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, t, rgw):
    n = args.versions
    layout = t.mkdtemp("layout")
    kinds = ("b", "a", "synced", "none")
    versions = {k: [f"v1.{i}.{j}" for j in range(n)] for i, k in enumerate(kinds)}
    for vs in versions.values():
        for v in vs:
            common.module(layout, MOD, v, 1 << 20)
    sdb = t.start_sumdb(root=layout)
    public = t.start_upstream(root=layout, delay=args.internet_ms / 1000.0)
    public_b = t.start_upstream(root=layout, delay=args.internet_ms / 1000.0)
    lb_a, prefix_a = region(t, "a", public, sdb)
    lb_b, prefix_b = region(t, "b", f"{lb_a.url}|{public_b.url}", sdb)

    def fetch(lb, v):
        for ext in ("info", "mod", "zip"):
            _, st = ttfb(f"{lb.url}/{MOD}/@v/{v}.{ext}")
            if st != 200:
                sys.exit(f"bench: {v}.{ext}: status {st}")

    for v in versions["b"]:
        fetch(lb_b, v)
    for v in versions["a"] + versions["synced"]:
        fetch(lb_a, v)
    for v in versions["synced"]:
        for ext in ("mod", "zip", "info"):  # .info last, as gomirror writes
            key = f"{MOD}/@v/{v}.{ext}"
            rgw.aws("s3", "cp", "--only-show-errors", f"s3://{rgw.bucket}/{prefix_a}{key}",
                    f"s3://{rgw.bucket}/{prefix_b}{key}", check=True)

    rows = []
    names = {"b": "B holds it (cached in B)",
             "a": "A holds it, B does not (fetched through A)",
             "synced": "copied into B's bucket (aws s3 sync), first request (checked)",
             "none": "neither holds it (A fetches it from the public stand-in)"}
    for k in kinds:
        info, zipt = [], []
        for v in versions[k]:
            ti, st = ttfb(f"{lb_b.url}/{MOD}/@v/{v}.info")
            tm, sm = ttfb(f"{lb_b.url}/{MOD}/@v/{v}.mod")
            tz, sz = ttfb(f"{lb_b.url}/{MOD}/@v/{v}.zip")
            if (st, sm, sz) != (200, 200, 200):
                sys.exit(f"bench: {k} {v}: statuses {st} {sm} {sz}")
            info.append(ti * 1000)
            zipt.append(tz * 1000)
        rows.append(f"| {names[k]} | {statistics.median(info):.1f} | {max(info):.1f} | "
                    f"{statistics.median(zipt):.1f} | {max(zipt):.1f} |")
    # The peer: the public stand-in asked directly, as a developer without
    # gomirror would (GOPROXY=public).
    info = [ttfb(f"{public.url}/{MOD}/@v/{v}.info")[0] * 1000 for v in versions["none"]]
    zipt = [ttfb(f"{public.url}/{MOD}/@v/{v}.zip")[0] * 1000 for v in versions["none"]]
    rows.append(f"| peer: the public stand-in asked directly (no gomirror) | "
                f"{statistics.median(info):.1f} | {max(info):.1f} | "
                f"{statistics.median(zipt):.1f} | {max(zipt):.1f} |")
    print(f"Time to first byte in region B, {n} versions each with a 1 MiB zip, public "
          f"stand-in {args.internet_ms:.0f} ms per answer, regions on loopback, "
          f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
    print()
    print("| version | .info median ms | .info max ms | .zip median ms | .zip max ms |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(r)


if __name__ == "__main__":
    main()
