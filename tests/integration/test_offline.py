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


def test_disable_module_fetch_and_offline(t):
    """Disable-Module-Fetch: true (Athens' header) answers from storage only;
    offline=true does it for every request, checksum database included."""
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, data_dir=os.path.join(t.tmp, "store"))
    hello = t.fx["modules"]["example.com/hello"]["versions"]
    stored, other = hello[0], hello[1]
    eq(gm.get(f"/example.com/hello/@v/{stored}.zip").status, 200, "warm one version")
    before = len(up.requests())
    no_fetch = {"Disable-Module-Fetch": "true"}
    r = gm.get(f"/example.com/hello/@v/{other}.info", headers=no_fetch)
    eq(r.status, 404, "an unstored version with Disable-Module-Fetch")
    check("fetching is disabled (Disable-Module-Fetch)" in r.text, f"reason: {r.text!r}")
    eq(gm.get(f"/example.com/hello/@v/{stored}.mod", headers=no_fetch).status, 200,
       "a stored version with Disable-Module-Fetch")
    r = gm.get("/example.com/hello/@v/list", headers=no_fetch)
    eq((r.status, r.text.split()), (200, [stored]), "the list is what storage holds")
    r = gm.get("/example.com/hello/@latest", headers=no_fetch)
    eq(r.status, 200, "@latest from storage")
    check(f'"Version":"{stored}"' in r.text.replace(" ", ""), f"@latest: {r.text!r}")
    eq(gm.get("/example.com/nothere/@v/list", headers=no_fetch).status, 404,
       "a module with nothing stored")
    eq(len(up.requests()), before, "Disable-Module-Fetch requests reached the upstream")
    # Without the header the same version is fetched.
    eq(gm.get(f"/example.com/hello/@v/{other}.info").status, 200, "a normal request fetches")
    check(len(up.requests()) > before, "the normal request made no upstream request")
    gm.stop()

    off = t.start_gomirror(upstream=up, data_dir=os.path.join(t.tmp, "store"), offline="true",
                           sumdb="sumdb.test=http://127.0.0.1:9")
    before = len(up.requests())
    eq(off.get(f"/example.com/hello/@v/{stored}.zip").status, 200, "offline: a stored zip")
    r = off.get(f"/example.com/hello/@v/{hello[2]}.info")
    eq(r.status, 404, "offline: an unstored version")
    check("(offline)" in r.text, f"reason: {r.text!r}")
    r = off.get("/sumdb/sumdb.test/lookup/example.com/hello@" + hello[2])
    eq(r.status, 404, "offline: a checksum-database lookup not stored")
    eq(len(up.requests()), before, "offline gomirror reached the upstream")


if __name__ == "__main__":
    harness.main()
