#!/usr/bin/env python3
"""Benchmark: memory of gomirror while 200 clients download a 100 MiB zip at
once, against nginx serving the same file.

The zip (100 MiB of incompressible payload) sits in gomirror's disk storage
(--storage=fs://<copy of the layout>, --upstream=off); it is larger than a
hot-cache item, so every download streams from storage. nginx serves the
layout itself (sendfile). The client is N curl processes started together
(--output /dev/null, --max-time bounded). While they run, /proc/<pid>/status
is sampled every 20 ms: VmRSS of gomirror (and VmHWM at the end); for nginx
the master and every worker, and their sum.

Reported: idle RSS (after one warm-up download), peak sampled RSS, VmHWM,
peak minus idle, downloads completed, wall time. Target for gomirror: peak
minus idle at most 64 MiB plus hot_cache_mb.

Usage: tests/bench/bench_rss.py [--binary build/gomirror] [--clients 200]
          [--size-mb 100] [--threads 50,256] [--hot-cache-mb 64]
          [--limit-rate RATE] [--max-time 120]
Prints Markdown tables; asserts nothing."""

import argparse
import os
import shutil
import subprocess
import threading
import time

import common

PATH = "/example.com/big/@v/v1.0.0.zip"


class Sampler(threading.Thread):
    """Samples VmRSS of pids() every interval seconds; keeps the peak of
    each pid and the peak of their sum."""

    def __init__(self, pids, interval=0.02):
        super().__init__(daemon=True)
        self.pids, self.interval = pids, interval
        self.peak_each, self.peak_sum, self.samples = {}, 0, 0
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            total = 0
            for pid in self.pids():
                kb = common.proc_status_kb(pid, ("VmRSS",)).get("VmRSS", 0)
                total += kb
                self.peak_each[pid] = max(self.peak_each.get(pid, 0), kb)
            self.peak_sum = max(self.peak_sum, total)
            self.samples += 1
            self.halt.wait(self.interval)

    def stop(self):
        self.halt.set()
        self.join(5)


def download_all(url, clients, max_time, limit_rate, size):
    """Starts `clients` curls at once; returns (completed, failed, seconds)."""
    argv = ["curl", "-s", "-o", "/dev/null", "--noproxy", "*", "--max-time", str(max_time),
            "-w", "%{http_code} %{size_download}\n"]
    if limit_rate:
        argv += ["--limit-rate", limit_rate]
    t0 = time.time()
    procs = [subprocess.Popen(argv + [url], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              stdin=subprocess.DEVNULL, start_new_session=True)
             for _ in range(clients)]
    ok = 0
    try:
        for p in procs:
            out, _ = p.communicate(timeout=max_time + 30)
            parts = out.decode().split()
            if p.returncode == 0 and parts == ["200", str(size)]:
                ok += 1
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return ok, clients - ok, time.time() - t0


def mb(kb):
    return kb / 1024.0


def measure(name, url, pids, args, size):
    """Warm-up download, idle sample, then the burst under the sampler."""
    ok, _, _ = download_all(url, 1, args.max_time, None, size)
    if ok != 1:
        raise SystemExit(f"bench: warm-up download from {name} failed")
    time.sleep(1.0)
    idle_each = {pid: common.proc_status_kb(pid, ("VmRSS",)).get("VmRSS", 0) for pid in pids()}
    s = Sampler(pids)
    s.start()
    done, failed, secs = download_all(url, args.clients, args.max_time, args.limit_rate, size)
    time.sleep(0.1)
    s.stop()
    hwm_each = {pid: common.proc_status_kb(pid, ("VmHWM",)).get("VmHWM", 0) for pid in pids()}
    return {"idle_each": idle_each, "idle": sum(idle_each.values()),
            "peak_each": s.peak_each, "peak": s.peak_sum, "hwm_each": hwm_each,
            "hwm": sum(hwm_each.values()), "done": done, "failed": failed, "secs": secs,
            "samples": s.samples}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(common.TOP, "build", "gomirror"))
    ap.add_argument("--clients", type=int, default=200)
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--threads", default="50,256",
                    help="gomirror --threads values to measure, comma-separated")
    ap.add_argument("--hot-cache-mb", type=int, default=64)
    ap.add_argument("--limit-rate", help="curl --limit-rate per client (slow clients)")
    ap.add_argument("--max-time", type=int, default=120, help="curl --max-time per client")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    common.need_all([("nginx", "nginx"), ("curl", "curl")])
    common.need_binary(args.binary)
    size_payload = args.size_mb << 20

    with common.Bench("rss", keep=args.keep) as b:
        layout = b.path("layout")
        common.module(layout, "example.com/big", "v1.0.0", size_payload)
        zip_size = os.path.getsize(os.path.join(layout, PATH.lstrip("/")))
        store = b.path("store")
        shutil.copytree(layout, store)
        workers = os.cpu_count() or 2
        rows = []

        for threads in [int(t) for t in args.threads.split(",") if t]:
            port = common.free_port()
            name = f"gomirror-t{threads}"
            p = common.start_gomirror(
                b, args.binary, port, f"--storage=fs://{store}", "--upstream=off", "--sumdb=",
                "--log_level=warn", f"--threads={threads}", f"--hot_cache_mb={args.hot_cache_mb}",
                name=name)
            r = measure(name, f"http://127.0.0.1:{port}{PATH}", lambda: [p.pid], args, zip_size)
            rows.append((f"gomirror (threads={threads}, hot_cache_mb={args.hot_cache_mb})", r,
                         f"{mb(r['peak'] - r['idle']):.1f}"))
            b.stop(p)

        ng_port = common.free_port()
        ng = common.start_nginx(b, layout, ng_port, workers=workers)

        def nginx_pids():
            return [ng.pid] + common.children(ng.pid)

        r = measure("nginx", f"http://127.0.0.1:{ng_port}{PATH}", nginx_pids, args, zip_size)
        workers_peak = sum(v for pid, v in r["peak_each"].items() if pid != ng.pid)
        workers_idle = sum(v for pid, v in r["idle_each"].items() if pid != ng.pid)
        rows.append((f"nginx (master + {workers} workers; sendfile)", r,
                     f"{mb(r['peak'] - r['idle']):.1f}"))

        header = ("| server | idle RSS MiB | peak RSS MiB | VmHWM MiB | peak - idle MiB |"
                  " downloads ok/failed | seconds | samples |")
        lines = []
        for label, r, delta in rows:
            lines.append(f"| {label} | {mb(r['idle']):.1f} | {mb(r['peak']):.1f} | "
                         f"{mb(r['hwm']):.1f} | {delta} | {r['done']}/{r['failed']} | "
                         f"{r['secs']:.1f} | {r['samples']} |")
        rate = f", curl --limit-rate {args.limit_rate}" if args.limit_rate else ""
        common.print_table(
            f"RSS while {args.clients} curl clients download one {zip_size / (1 << 20):.0f} MiB zip "
            f"at once ({zip_size} bytes, VmRSS sampled every 20 ms{rate}), "
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.2f} at the end", header, lines)
        print(f"nginx workers alone: idle {mb(workers_idle):.1f} MiB, peak {mb(workers_peak):.1f} MiB "
              f"(sum of per-worker peaks); per pid peak KiB: "
              + ", ".join(f"{pid}={kb}" for pid, kb in sorted(r["peak_each"].items())))
        target = 64 + args.hot_cache_mb
        print(f"target for gomirror: peak - idle <= 64 MiB + hot_cache_mb ({args.hot_cache_mb}) "
              f"= {target} MiB")


if __name__ == "__main__":
    main()
