#!/usr/bin/env python3
"""Benchmark: `go mod download all` of a real module graph (35 modules built
from Debian's Go sources by tests/tools/graph_fixtures.py; at least 15)
through a warm gomirror against GOPROXY=file://<the same layout>, and
against nginx serving that layout over HTTP (a static HTTP peer), measured
with hyperfine, a fresh GOMODCACHE for every run (--prepare 'rm -rf ...').

gomirror starts with empty disk storage and --upstream=file://<layout>; one
`go mod download all` through it fills its storage (that cold run is timed
and printed too), after which every artifact is a cache hit. GOSUMDB=off:
the root module's go.sum checks every download.

Usage: tests/bench/bench_graph.py [--binary build/gomirror] [--runs 10]
                                  [--no-nginx] [--fixtures DIR]
Prints a Markdown table; asserts nothing."""

import argparse
import json
import math
import os
import shutil
import signal
import subprocess
import time

import common
import graph_fixtures  # tests/tools (common puts it on sys.path)


def go_env(tmp, modcache):
    """A clean environment for the go command: no GO* or proxy settings from
    outside; GOPATH, build cache and HOME under tmp; the module cache in
    modcache."""
    env = {k: v for k, v in os.environ.items()
           if not k.upper().endswith("_PROXY") and not k.startswith("GO")
           and not k.startswith("GIT_")}
    env.update({
        "HOME": os.path.join(tmp, "home"),
        "GOPATH": os.path.join(tmp, "gopath"),
        "GOMODCACHE": modcache,
        "GOCACHE": os.path.join(tmp, "gocache"),
        "GOFLAGS": "-mod=mod -modcacherw",
        "GOSUMDB": "off",
        "GOENV": "off",
        "GOWORK": "off",
        "CGO_ENABLED": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "NO_PROXY": "*",
    })
    os.makedirs(env["HOME"], exist_ok=True)
    return env


def download_all(env, cwd, goproxy):
    """One `go mod download all` into a fresh module cache: (seconds, zips)."""
    common.rmtree(env["GOMODCACHE"])
    t0 = time.time()
    p = subprocess.run(["go", "mod", "download", "all"], env=dict(env, GOPROXY=goproxy),
                       cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=600)
    secs = time.time() - t0
    if p.returncode != 0:
        raise SystemExit(f"bench: go mod download all with GOPROXY={goproxy} failed:\n{p.stdout}")
    zips = 0
    for _, _, files in os.walk(os.path.join(env["GOMODCACHE"], "cache", "download")):
        zips += sum(1 for f in files if f.endswith(".zip"))
    return secs, zips


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default=os.path.join(common.TOP, "build", "gomirror"))
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--no-nginx", action="store_true", help="skip the nginx row")
    ap.add_argument("--fixtures", help="graph fixtures cache directory "
                                       "(default $GOMIRROR_GRAPH_FIXTURES or build/graph-fixtures)")
    ap.add_argument("--modcache-dir", help="where the per-run GOMODCACHE lives "
                                           "(default /dev/shm, a tmpfs, when writable)")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    tools = [("go", "golang-go"), ("git", "git"), ("hyperfine", "hyperfine")]
    if not args.no_nginx:
        tools.append(("nginx", "nginx"))
    common.need_all(tools)
    common.need_binary(args.binary)

    try:
        fx = graph_fixtures.ensure(args.fixtures, log=lambda s: print(s, flush=True))
    except graph_fixtures.FixtureError as e:
        raise SystemExit(f"bench: graph fixtures: {e}")
    n = fx["count"]

    with common.Bench("graph", keep=args.keep) as b:
        root = b.path("root")
        shutil.copytree(fx["root"], root)
        # The module cache on tmpfs when there is one: on disk, deleting the
        # previous run's cache (with ext4 `discard`) makes the next run wait
        # for the disk, which swamps what is measured (0.8 s vs 2-4 s here).
        shm = args.modcache_dir or ("/dev/shm" if os.path.isdir("/dev/shm")
                                    and os.access("/dev/shm", os.W_OK) else b.tmp)
        env = go_env(b.tmp, os.path.join(b.mkdtemp(shm), "modcache"))
        upstream = fx["upstream"]

        gm_port = common.free_port()
        common.start_gomirror(b, args.binary, gm_port, f"--storage=fs://{b.path('store')}",
                              f"--upstream=file://{upstream}", "--sumdb=", "--log_level=warn")
        proxies = [("gomirror (warm)", f"http://127.0.0.1:{gm_port}"),
                   ("file:// layout", f"file://{upstream}")]
        if not args.no_nginx:
            ng_port = common.free_port()
            common.start_nginx(b, upstream, ng_port, workers=os.cpu_count() or 2)
            proxies.append(("nginx (static HTTP)", f"http://127.0.0.1:{ng_port}"))

        # Cold: gomirror fetches and validates everything from its upstream once.
        cold, zips = download_all(env, root, proxies[0][1])
        if zips != n:
            raise SystemExit(f"bench: cold run through gomirror downloaded {zips} zips, want {n}")
        for name, goproxy in proxies:  # every proxy gives the whole graph
            _, zips = download_all(env, root, goproxy)
            if zips != n:
                raise SystemExit(f"bench: {name} downloaded {zips} zips, want {n}")

        out = b.path("hyperfine.json")
        argv = ["hyperfine", "--style", "basic", "--runs", str(args.runs), "--warmup", "1",
                "--prepare", f"rm -rf {env['GOMODCACHE']}", "--export-json", out]
        for name, goproxy in proxies:
            argv += ["-n", name, f"env GOPROXY={goproxy} go mod download all"]
        # Its own process group, so that an interrupted run takes the go
        # command hyperfine is running down with it.
        p = subprocess.Popen(argv, env=env, cwd=root, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            hf_out, _ = p.communicate(timeout=120 + 60 * args.runs * len(proxies))
        finally:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()
        if p.returncode != 0:
            raise SystemExit(f"bench: hyperfine failed:\n{hf_out}")
        with open(out) as f:
            results = json.load(f)["results"]

        base = results[1]  # file://
        rows = []
        for (name, _), r in zip(proxies, results):
            ratio = r["mean"] / base["mean"]
            err = ratio * math.sqrt((r["stddev"] / r["mean"]) ** 2
                                    + (base["stddev"] / base["mean"]) ** 2)
            rows.append(f"| {name} | {r['mean'] * 1000:.0f} ± {r['stddev'] * 1000:.0f} | "
                        f"{r['min'] * 1000:.0f} | {r['max'] * 1000:.0f} | {len(r['times'])} | "
                        f"{ratio:.2f}x ± {err:.2f} |")
        header = "| GOPROXY | mean ± sd ms | min ms | max ms | runs | vs file:// |"
        common.print_table(
            f"`go mod download all` of {n} modules ({fx['edges']} requires, "
            f"{fx['zip_bytes'] / 1e6:.1f} MB of zips, from Debian's Go sources), fresh GOMODCACHE "
            f"each run (in {os.path.dirname(os.path.dirname(env['GOMODCACHE']))}), hyperfine --runs {args.runs} --warmup 1, GOSUMDB=off with go.sum, "
            f"{time.strftime('%Y-%m-%d')}, {os.cpu_count()} cores, load average "
            f"{os.getloadavg()[0]:.2f} at the end", header, rows)
        print(f"cold run through gomirror (storage empty, upstream file://, fetch + validate + "
              f"store all {n}): {cold * 1000:.0f} ms (one run)")
        print(f"target: gomirror at most 1.1x file:// "
              f"(measured {results[0]['mean'] / base['mean']:.2f}x)")


if __name__ == "__main__":
    main()
