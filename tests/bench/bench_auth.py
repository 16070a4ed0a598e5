#!/usr/bin/env python3
"""Benchmark: what access control costs on the cached path. The same cached
.info (53 bytes, from the hot cache) is measured with wrk against gomirror

  auth off          no identity source (today's open behaviour)
  auth on           htpasswd user (bcrypt), rules file, every request with
                    the same Basic credential (cached after the first), audit
                    log off
  auth on + audit   the same, with the audit log written to a file (one JSON
                    line per request: public downloads are audited by default)
  auth on + limits  the same as "auth on", with a rate limit too high to bite
                    (the token bucket is still taken on every request)

Each variant runs in its own gomirror process (all started at once, same
flags otherwise: fs storage, --log_level=warn, --threads=max(64,
connections)), and the variants are measured round-robin --rounds times, so
drift on the machine spreads over all of them; the table gives each
variant's median req/s and its ratio to "auth off" (target: >= 0.9x).

Usage: tests/bench/bench_auth.py [--binary build/gomirror] [--seconds 10]
                                 [--connections 50] [--rounds 3]
Prints a Markdown table for BENCHMARKS.md; asserts nothing."""

import argparse
import base64
import os
import shutil
import statistics
import subprocess
import time

import common

PATH = "/example.com/bench/@v/v1.0.0.info"
USER, PASSWORD = "bench", "bench-password-1"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(common.TOP, "build", "gomirror"))
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--connections", type=int, default=50)
    ap.add_argument("--wrk-threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = ap.parse_args()
    common.need_all([("wrk", "wrk"), ("htpasswd", "apache2-utils")])
    common.need_binary(args.binary)

    with common.Bench("auth", keep=args.keep) as b:
        layout = b.path("layout")
        common.module(layout, "example.com/bench", "v1.0.0", 1 << 10)
        store = b.path("store")
        shutil.copytree(layout, store)
        users = b.path("htpasswd")
        subprocess.run(["htpasswd", "-cbB", users, USER, PASSWORD], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        rules = b.path("rules")
        with open(rules, "w") as f:
            f.write("allow group:payments git.corp.example/payments/*\n"
                    "deny * git.corp.example/payments/*\n"
                    "allow authenticated *\n")
        threads = max(64, args.connections)
        base = [f"--storage=fs://{store}", f"--upstream=file://{layout}", "--sumdb=",
                "--log_level=warn", f"--threads={threads}"]
        auth = [f"--auth_htpasswd={users}", f"--auth_rules={rules}"]
        variants = [
            ("auth off", base),
            ("auth on", base + auth + ["--audit_log=off"]),
            ("auth on + audit", base + auth + [f"--audit_log={b.path('audit.log')}"]),
            ("auth on + limits", base + auth + ["--audit_log=off", "--rate_limit=1000000"]),
        ]
        hdr = "Authorization: Basic " + base64.b64encode(
            f"{USER}:{PASSWORD}".encode()).decode()
        urls = []
        for i, (name, flags) in enumerate(variants):
            port = common.free_port()
            common.start_gomirror(b, args.binary, port, *flags, name=f"gomirror{i}")
            url = f"http://127.0.0.1:{port}{PATH}"
            for _ in range(2):  # warm the hot cache and the credential cache
                st = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                     "-H", hdr, url], stdout=subprocess.PIPE).stdout
                if st != b"200":
                    raise SystemExit(f"bench: {name} answered {st!r} for {PATH}")
            urls.append(url)

        results = {name: [] for name, _ in variants}
        load0 = os.getloadavg()[0]
        for _ in range(args.rounds):
            for (name, _), url in zip(variants, urls):
                res = common.wrk_counts(common.wrk(url, args.seconds, args.connections,
                                                   args.wrk_threads, headers=[hdr]))
                if res["non2xx"] or res["socket_errors"]:
                    raise SystemExit(f"bench: {name}: {res['non2xx']} non-2xx, "
                                     f"{res['socket_errors']} socket errors\n{res['raw']}")
                results[name].append(res)
        off = statistics.median(r["rps"] for r in results["auth off"])
        rows = []
        for name, _ in variants:
            rs = results[name]
            rps = statistics.median(r["rps"] for r in rs)
            p50 = statistics.median(r["p50_ms"] for r in rs)
            p99 = statistics.median(r["p99_ms"] for r in rs)
            each = ", ".join(f"{r['rps']:.0f}" for r in rs)
            rows.append(f"| {name} | {rps:.0f} | {p50:.2f} | {p99:.2f} | {rps / off:.2f}x | "
                        f"{each} |")
        common.print_table(
            f"cached .info, one Basic credential, wrk -t{args.wrk_threads} -c{args.connections} "
            f"-d{args.seconds}s --latency x {args.rounds} rounds (round-robin), "
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, gomirror threads {threads} "
            f"(load average {load0:.2f} before, {os.getloadavg()[0]:.2f} after)",
            "| variant | median req/s | p50 ms | p99 ms | vs auth off | each round req/s |",
            rows)


if __name__ == "__main__":
    main()
