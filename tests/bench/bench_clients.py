#!/usr/bin/env python3
"""Benchmark: a thousand developers at once. --clients keep-alive clients
(default 2,000; CI machines run `go mod download` with many connections
each) ask for a cached .info for --seconds (default 30), each waiting
about --think ms between its requests (wrk with a Lua delay(), so the load
is the clients' own pace, not whatever the server can absorb; the first
request of each connection waits 5 s more, so the start-up burst of
connects and TLS handshakes is not in the latency figures), against:

  nginx                 serving the same files (the peer)
  gomirror              one replica, threads = clients + 64 (CivetWeb gives
                        each open connection a thread), max_client_conns=0
                        (every client comes from 127.0.0.1 here)
  haproxy -> 3 gomirror the shipped deploy/haproxy.cfg (TLS on, certificate
                        and loopback addresses put in by
                        tests/tools/shipped_haproxy.py) in front of three
                        replicas with the default configuration
  haproxy -> nginx      the same HAProxy configuration in front of nginx
                        (what the topology costs by itself)

It prints p50/p99 latency, requests, errors (socket errors and non-2xx) and
the peak RSS of the server processes (gomirror: the largest replica; nginx:
master and workers summed), sampled every 100 ms.

Usage: tests/bench/bench_clients.py [--binary build/gomirror] [--clients 2000]
                                    [--seconds 30] [--think 200]
Prints a Markdown table; asserts nothing."""

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time

import common
import shipped_haproxy  # tests/tools (common puts it on sys.path)
import tls

PATH = "/example.com/bench/@v/v1.0.0.info"

# wrk calls delay() before every request of every connection of its thread,
# the first one included. The first request of each connection (its
# thread's first `per_thread` calls) waits WARMUP ms plus up to a second:
# connections and TLS handshakes all happen at start, and their cost is not
# what a client sees once connected. Then each client waits think ms, give
# or take half, so the clients do not march in step.
LUA = """
local calls = 0
function delay()
   calls = calls + 1
   if calls <= {per_thread} then
      return {warmup} + math.random(0, 1000)
   end
   return math.floor({think} * (0.5 + math.random()))
end
"""
WARMUP_MS = 5000


def sample_rss(pids_fn, stop, out):
    """Peak RSS in kB: max over processes (largest) and their sum."""
    while not stop.is_set():
        vals = [common.proc_status_kb(p).get("VmRSS", 0) for p in pids_fn()]
        if vals:
            out["max"] = max(out.get("max", 0), max(vals))
            out["sum"] = max(out.get("sum", 0), sum(vals))
        stop.wait(0.1)


def run(url, args, lua, pids_fn):
    stop, rss = threading.Event(), {}
    th = threading.Thread(target=sample_rss, args=(pids_fn, stop, rss), daemon=True)
    th.start()
    try:
        res = common.wrk_counts(common.wrk(url, args.seconds + WARMUP_MS // 1000 + 1,
                                           args.clients, args.wrk_threads, script=lua))
    finally:
        stop.set()
        th.join()
    res["rss_max_mb"] = rss.get("max", 0) / 1024
    res["rss_sum_mb"] = rss.get("sum", 0) / 1024
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(common.TOP, "build", "gomirror"))
    ap.add_argument("--clients", type=int, default=2000)
    ap.add_argument("--seconds", type=int, default=30)
    ap.add_argument("--think", type=int, default=200, help="ms each client waits between requests")
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--only", default="", help="comma-separated variants to run")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    common.need_all([("wrk", "wrk"), ("nginx", "nginx"), ("haproxy", "haproxy"),
                     ("openssl", "openssl")])
    common.need_binary(args.binary)
    soft = int(subprocess.run(["sh", "-c", "ulimit -n"], stdout=subprocess.PIPE).stdout)
    if soft < 4 * args.clients + 1000:
        sys.exit(f"bench: ulimit -n is {soft}; {args.clients} clients through HAProxy need "
                 f"about {4 * args.clients + 1000} descriptors (ulimit -n 20000)")

    with common.Bench("clients", keep=args.keep) as b:
        layout = b.path("layout")
        common.module(layout, "example.com/bench", "v1.0.0", 1 << 10)
        with open(os.path.join(layout, "readyz"), "w") as f:
            f.write("ready\n")  # HAProxy's health check, for nginx
        lua = b.path("think.lua")
        with open(lua, "w") as f:
            f.write(LUA.format(think=args.think, warmup=WARMUP_MS,
                               per_thread=-(-args.clients // args.wrk_threads)))
        # ECDSA P-256, as a production certificate would be today; wrk does
        # not verify certificates.
        ca = tls.make_ca(b.path("tls"), key="ec")

        def gomirror(name, *flags):
            store = b.path(name + "-store")
            shutil.copytree(layout, store)
            port = common.free_port()
            p = common.start_gomirror(b, args.binary, port, f"--storage=fs://{store}",
                                      f"--upstream=file://{layout}", "--sumdb=",
                                      "--log_level=warn", *flags, name=name)
            url = f"http://127.0.0.1:{port}"
            for _ in range(2):
                st, _ = common.http_get(url + PATH)
                if st != 200:
                    raise SystemExit(f"bench: {name} answered {st}")
            return p, port

        def haproxy(name, backend_ports):
            https, http = common.free_port(), common.free_port()
            cfg = b.path(name + ".cfg")
            with open(cfg, "w") as f:
                f.write(shipped_haproxy.config(ca["pem"], https, http, backend_ports))
            p = b.start(name, ["haproxy", "-db", "-f", cfg], port=https)
            time.sleep(1.5)  # health checks mark the servers up
            return p, f"https://127.0.0.1:{https}"

        variants = []
        only = set(args.only.split(",")) - {""}
        ng_port = common.free_port()
        ng = common.start_nginx(b, layout, ng_port, workers=os.cpu_count() or 2)

        def ng_pids():
            return [ng.pid] + common.children(ng.pid)

        if not only or "nginx" in only:
            variants.append(("nginx", f"http://127.0.0.1:{ng_port}{PATH}", ng_pids))
        if not only or "gomirror" in only:
            g, port = gomirror("gomirror-1", f"--threads={args.clients + 64}",
                               "--max_client_conns=0")
            variants.append((f"gomirror (threads={args.clients + 64})",
                             f"http://127.0.0.1:{port}{PATH}", lambda g=g: [g.pid]))
        if not only or "haproxy-gomirror" in only:
            # As in deploy/docker-compose.yml: the replicas believe HAProxy
            # (and do not cap its connections).
            reps = [gomirror(f"replica{i}", "--trusted_proxies=127.0.0.1/32")
                    for i in range(3)]
            hp, url = haproxy("haproxy-gm", [port for _, port in reps])
            variants.append(("haproxy (shipped, TLS) -> 3 gomirror (defaults)", url + PATH,
                             lambda reps=reps: [r.pid for r, _ in reps]))
        if not only or "haproxy-nginx" in only:
            hp2, url2 = haproxy("haproxy-ng", [ng_port])
            variants.append(("haproxy (shipped, TLS) -> nginx", url2 + PATH, ng_pids))

        rows = []
        load0 = os.getloadavg()[0]
        for name, url, pids in variants:
            res = run(url, args, lua, pids)
            errs = res["socket_errors"] + res["non2xx"]
            rows.append(f"| {name} | {res['requests']} | {res['rps']:.0f} | {res['p50_ms']:.2f} | "
                        f"{res['p99_ms']:.2f} | {errs} | {res['rss_max_mb']:.1f} | "
                        f"{res['rss_sum_mb']:.1f} |")
        common.print_table(
            f"{args.clients} keep-alive clients, one cached .info each every {args.think} ms, "
            f"wrk -t{args.wrk_threads} -c{args.clients} -d{args.seconds}s --latency, "
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores (load average {load0:.2f} "
            f"before, {os.getloadavg()[0]:.2f} after)",
            "| server | requests | req/s | p50 ms | p99 ms | errors | peak RSS MiB (largest "
            "process) | peak RSS MiB (all) |", rows)


if __name__ == "__main__":
    main()
