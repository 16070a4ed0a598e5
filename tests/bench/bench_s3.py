#!/usr/bin/env python3
"""Benchmark: gomirror on S3 (a real Ceph RGW) against RGW's own GET of the
same objects, measured in one run with wrk (2 threads, 50 connections):
a cached .info and a cached 1 MB .zip. RGW is reached through pre-signed
URLs, so both sides serve the same bytes without client-side signing cost.

Usage: tests/bench/bench_s3.py [--binary build/gomirror] [--seconds 10]
Prints a Markdown table for BENCHMARKS.md."""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import common  # noqa: I001  (sets sys.path)
import harness
import rgw as rgwmod


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(common.TOP, "build", "gomirror"))
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    common.need("wrk", "wrk")
    tmp = tempfile.mkdtemp(prefix="gomirror-bench-s3-")
    try:
        run(args, tmp)
    except rgwmod.RGWError as e:
        sys.exit(f"bench: Ceph RGW: {e}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run(args, tmp):
    layout = os.path.join(tmp, "layout")
    common.module(layout, "example.com/bench", "v1.0.0", 1 << 20)
    procs = []
    with rgwmod.RGW(os.path.join(tmp, "rgw"), log=lambda *a: None) as rgw:
        up_port, gm_port = harness.free_port(), harness.free_port()
        procs.append(subprocess.Popen(
            [sys.executable, os.path.join(common.TOP, "tests/tools/upstream.py"), "--root",
             layout, "--port", str(up_port), "--log", os.path.join(tmp, "up.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            [args.binary, f"--listen=127.0.0.1:{gm_port}", f"--storage=s3://{rgw.bucket}/bench/",
             f"--s3_endpoint={rgw.endpoint}", f"--s3_access_key={rgw.access_key}",
             f"--s3_secret_key={rgw.secret_key}", f"--upstream=http://127.0.0.1:{up_port}",
             "--log_level=warn", "--threads=64"],
            stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "gm.log"), "w")))
        try:
            gm = f"http://127.0.0.1:{gm_port}"
            for _ in range(200):
                if harness.port_open(gm_port) and harness.port_open(up_port):
                    break
                time.sleep(0.05)
            base = "/example.com/bench/@v/v1.0.0"
            for ext in (".info", ".zip"):  # warm: fetched once, then cached
                urllib.request.urlopen(gm + base + ext).read()
            # RGW's own GET of the very objects gomirror stored.
            presigned = {}
            for ext in (".info", ".zip"):
                key = f"bench/example.com/bench/@v/v1.0.0{ext}"
                out = rgw.aws("s3", "presign", f"s3://{rgw.bucket}/{key}",
                              "--expires-in", "3600", check=True).stdout.strip()
                presigned[ext] = out
                urllib.request.urlopen(out).read()
            rows = []
            header = None
            for name, ext in (("cached .info", ".info"), ("cached 1 MB .zip", ".zip")):
                ours = common.wrk(gm + base + ext, args.seconds)
                peer = common.wrk(presigned[ext], args.seconds)
                r, header = common.row(name, ours, peer, "RGW")
                rows.append(r)
            print(f"gomirror on Ceph RGW vs RGW's own GET, wrk -t2 -c50 -d{args.seconds}s, "
                  f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores")
            print()
            print(header)
            print("|---" * (header.count("|") - 1) + "|")
            for r in rows:
                print(r)
        finally:
            for p in procs:
                p.terminate()
                p.wait(10)


if __name__ == "__main__":
    main()
