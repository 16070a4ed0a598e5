#!/usr/bin/env python3
"""Benchmark: first-response latency when more clients hold keep-alive
connections than gomirror has worker threads, against nginx.

N connections (default 100, twice gomirror's default 50 threads) each send
one GET of a cached .info at the same moment and then stay open and idle,
as the go command's HTTP client keeps idle connections to its GOPROXY
between requests. Every connection's time to its response is measured (up
to --deadline seconds). A server that gives each connection a thread for
as long as the connection lives answers the first `threads` and makes the
rest wait for an idle connection to time out; wrk does not show this (its
extra connections simply never report).

Usage: tests/bench/bench_keepalive.py [--binary build/gomirror]
          [--connections 100] [--threads 50] [--deadline 40]
Prints a Markdown table; asserts nothing."""

import argparse
import os
import selectors
import shutil
import socket
import time

import common

PATH = "/example.com/bench/@v/v1.0.0.info"


def first_responses(port, n, deadline):
    """Opens n connections, sends one request on each at once, returns each
    connection's seconds to the end of its response headers (None: none
    within deadline). Connections stay open (idle) until all are done."""
    req = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
    sel = selectors.DefaultSelector()
    got = {}
    try:
        t0 = time.monotonic()
        for i, s in enumerate(socks):
            s.sendall(req)
            s.setblocking(False)
            sel.register(s, selectors.EVENT_READ, (i, bytearray()))
        while len(got) < n and time.monotonic() - t0 < deadline:
            for key, _ in sel.select(timeout=0.2):
                i, buf = key.data
                try:
                    chunk = key.fileobj.recv(65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    got[i] = None  # closed without an answer
                    sel.unregister(key.fileobj)
                    continue
                buf += chunk
                if b"\r\n\r\n" in buf:
                    got[i] = time.monotonic() - t0
                    sel.unregister(key.fileobj)
    finally:
        sel.close()
        for s in socks:
            s.close()
    return [got.get(i) for i in range(n)]


def summary(lat):
    ok = sorted(x for x in lat if x is not None)
    n = len(lat)

    def q(p):
        return ok[min(len(ok) - 1, int(p * len(ok)))] * 1000 if ok else float("nan")
    return {"n": n, "ok": len(ok), "fast": sum(1 for x in ok if x < 0.1),
            "slow": sum(1 for x in ok if x >= 1.0), "p50": q(0.5), "p99": q(0.99),
            "max": ok[-1] * 1000 if ok else float("nan")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(common.TOP, "build", "gomirror"))
    ap.add_argument("--connections", type=int, default=100)
    ap.add_argument("--threads", type=int, default=256, help="gomirror --threads (256: its default)")
    ap.add_argument("--deadline", type=float, default=40.0,
                    help="seconds to wait for the last response")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    common.need_all([("nginx", "nginx")])
    common.need_binary(args.binary)

    with common.Bench("keepalive", keep=args.keep) as b:
        layout = b.path("layout")
        common.module(layout, "example.com/bench", "v1.0.0", 1024)
        store = b.path("store")
        shutil.copytree(layout, store)
        gm_port, ng_port = common.free_port(), common.free_port()
        common.start_gomirror(b, args.binary, gm_port, f"--storage=fs://{store}",
                              "--upstream=off", "--sumdb=", "--log_level=warn",
                              f"--threads={args.threads}")
        common.start_nginx(b, layout, ng_port, workers=os.cpu_count() or 2)
        for port in (gm_port, ng_port):  # warm
            st, _ = common.http_get(f"http://127.0.0.1:{port}{PATH}")
            if st != 200:
                raise SystemExit(f"bench: warm-up GET on port {port} answered {st}")
        rows = []
        for name, port in ((f"gomirror (threads={args.threads})", gm_port), ("nginx", ng_port)):
            s = summary(first_responses(port, args.connections, args.deadline))
            rows.append(f"| {name} | {s['ok']}/{s['n']} | {s['fast']} | {s['slow']} | "
                        f"{s['p50']:.1f} | {s['p99']:.1f} | {s['max']:.1f} |")
        header = ("| server | answered | under 100 ms | 1 s or more | p50 ms | p99 ms | max ms |")
        common.print_table(
            f"{args.connections} keep-alive connections, one GET of a cached .info each at once, "
            f"then idle; time to each response (deadline {args.deadline:.0f} s), "
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores", header, rows)


if __name__ == "__main__":
    main()
