#!/usr/bin/env python3
"""Benchmark: gomirror serving cached artifacts from disk storage against
nginx serving the very same files, measured in one run with wrk (2 threads,
50 connections, keep-alive):

  cached .info        a module version's .info (53 bytes)
  cached 1 MB .zip    its zip: 1,048,576 bytes of incompressible payload
  404 prefix probe    /github.com/@v/list, the request the go command makes
                      for every path prefix of an import path: for nginx a
                      missing file; for gomirror a path its upstream does
                      not have, answered from its negative cache (warmed
                      once before measuring)

gomirror: --storage=fs://<copy of the layout>, --upstream=file://<layout>
(only the 404 probe ever reaches it), --log_level=warn, --threads=max(64,
connections) (CivetWeb holds a thread per connection). With --info-log the
three rows are measured again with --log_level=info (one access-log line
per request, written to a file). nginx: sendfile, tcp_nopush, tcp_nodelay,
open_file_cache (errors too), keepalive_requests 100000, access_log off,
worker_processes = CPU count.

Usage: tests/bench/bench_cached.py [--binary build/gomirror] [--seconds 10]
                                   [--connections 50] [--info-log]
Prints Markdown tables for BENCHMARKS.md; asserts nothing."""

import argparse
import os
import shutil
import time

import common


CASES = [
    ("cached .info", "/example.com/bench/@v/v1.0.0.info", 200),
    ("cached 1 MB .zip", "/example.com/bench/@v/v1.0.0.zip", 200),
    ("404 prefix probe", "/github.com/@v/list", 404),
]


def errors(res, want):
    """Unexpected answers: socket errors plus responses of the wrong class."""
    bad = res["non2xx"] if want < 300 else res["requests"] - res["non2xx"]
    return res["socket_errors"] + bad


def measure(url, want, args):
    res = common.wrk_counts(common.wrk(url, args.seconds, args.connections, args.wrk_threads))
    res["errors"] = errors(res, want)
    if res["p50_ms"] is None or res["p99_ms"] is None:
        raise SystemExit(f"bench: wrk printed no latency for {url}:\n{res['raw']}")
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(common.TOP, "build", "gomirror"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--info-log", action="store_true",
                    help="also measure gomirror with --log_level=info (access log on)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    common.need_all([("wrk", "wrk"), ("nginx", "nginx")])
    common.need_binary(args.binary)

    with common.Bench("cached", keep=args.keep) as b:
        layout = b.path("layout")
        common.module(layout, "example.com/bench", "v1.0.0", 1 << 20)
        store = b.path("store")
        shutil.copytree(layout, store)
        workers = os.cpu_count() or 2
        # CivetWeb gives each connection a thread for as long as it lives:
        # with fewer threads than wrk connections the rest are never served
        # and wrk does not report them (see bench_keepalive.py).
        gm_threads = max(64, args.connections)

        ng_port = common.free_port()
        common.start_nginx(b, layout, ng_port, workers=workers)
        ng = f"http://127.0.0.1:{ng_port}"

        def gomirror(level, name):
            port = common.free_port()
            common.start_gomirror(
                b, args.binary, port, f"--storage=fs://{store}",
                f"--upstream=file://{layout}", "--sumdb=", f"--log_level={level}",
                f"--threads={gm_threads}", "--negative_ttl=3600", name=name)
            url = f"http://127.0.0.1:{port}"
            for _, path, want in CASES:  # warm: hot cache and negative cache
                for _ in range(2):
                    st, _ = common.http_get(url + path)
                    if st != want:
                        raise SystemExit(f"bench: gomirror answered {st} for {path}, want {want}")
            return url

        for _, path, want in CASES:
            st, _ = common.http_get(ng + path)
            if st != want:
                raise SystemExit(f"bench: nginx answered {st} for {path}, want {want}")

        variants = [("warn", "gomirror (log_level=warn) vs nginx")]
        if args.info_log:
            variants.append(("info", "gomirror (log_level=info: one access-log line per "
                                     "request, to a file) vs nginx"))
        date = time.strftime("%Y-%m-%d")
        for level, label in variants:
            gm = gomirror(level, f"gomirror-{level}")
            load0 = os.getloadavg()[0]
            rows, header = [], None
            for name, path, want in CASES:
                ours = measure(gm + path, want, args)
                peer = measure(ng + path, want, args)
                r, header = common.row(name, ours, peer, "nginx")
                rows.append(r)
            common.print_table(
                f"{label}, same files, wrk -t{args.wrk_threads} -c{args.connections} "
                f"-d{args.seconds}s --latency, {date}, {os.cpu_count()} cores "
                f"(nginx worker_processes {workers}; gomirror threads {gm_threads}; load average "
                f"{load0:.2f} before, {os.getloadavg()[0]:.2f} after)", header, rows)
            for p in [p for p in b.procs if p.name == f"gomirror-{level}"]:
                b.stop(p)


if __name__ == "__main__":
    main()
