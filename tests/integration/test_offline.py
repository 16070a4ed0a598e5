"""Upstream down after warming: what gomirror holds still downloads and
builds with the real go command, and lists are served stale."""

import os
import subprocess
import time

import harness  # noqa: I001  (puts tests/tools on sys.path)
import fixtures
from harness import check, eq, run_go


def app_module(t):
    req = "".join(f"\t{m} {v}\n" for m, v in fixtures.APP_DEPS)
    main = fixtures.APP_MAIN.replace('"example.com/hello/v2"', 'hello2 "example.com/hello/v2"')
    return t.scratch_module("example.com/app", {
        "go.mod": f"module example.com/app\n\ngo 1.19\n\nrequire (\n{req})\n",
        "main.go": main,
    })


def build_and_run(t, gm, src):
    env = t.go_env(gm.url)
    out = os.path.join(t.tmp, "app-bin")
    run_go(["build", "-o", out, "."], env, cwd=src)
    got = subprocess.run([out], stdout=subprocess.PIPE, timeout=30).stdout.decode().split("\n")
    eq([l for l in got if l], t.fx["app"]["output"], "app output")


def test_cached_graph_builds_with_upstream_down(t):
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, list_ttl=1)
    src = app_module(t)
    build_and_run(t, gm, src)
    check(up.requests(), "warming made no upstream request")
    up.stop()
    check(not harness.port_open(up.port), "upstream still up")
    time.sleep(1.5)  # let the cached lists go stale
    # A fresh module cache: everything must come from gomirror alone.
    build_and_run(t, gm, src)
    env = t.go_env(gm.url)
    r = run_go(["list", "-m", "-versions", "example.com/hello"], env, cwd=src)
    versions = r.out.split()[1:]
    check("v1.1.0" in versions, f"stale list lacks v1.1.0: {r.out!r}")
    r = run_go(["list", "-m", "-json", "example.com/hello@latest"], env, cwd=src)
    check('"Version": "v1.1.0"' in r.out, f"@latest with upstream down: {r.out}")
    # A version that was never fetched is a clear gateway error, not a 404.
    v = [x for x in t.fx["modules"]["example.com/hello"]["versions"] if x != "v1.1.0"][0]
    resp = gm.get(f"/example.com/hello/@v/{v}.info")
    eq(resp.status, 502, f"uncached {v} with upstream down")
    check("unreachable" in resp.text, f"reason: {resp.text!r}")


if __name__ == "__main__":
    harness.main()
