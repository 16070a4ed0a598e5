#!/usr/bin/env python3
"""The real go command (Go 1.19) against gomirror, offline.

gomirror's upstream is tests/tools/upstream.py serving the fixtures' static
layout (made from local git repos by tests/tools/fixtures.py); the checksum
database is tests/tools/sumdb (golang.org/x/mod/sumdb). Every go command runs
with a fresh GOPATH/GOMODCACHE and GOPROXY=<gomirror> only, so anything it
gets came through gomirror.

    python3 tests/integration/test_go_client.py --binary build/gomirror [-k name] [--keep]
"""

import os
import re
import shutil
import subprocess
import zipfile

import harness
from harness import Failure, check, eq, run_go

SUMDB_NAME = "sumdb.test"


def downloads(fx):
    """The module@version queries of the suite: releases, a pre-release, a
    pseudo-version, a /v2 module, +incompatible, an upper-case path, a module
    with only pseudo-versions, and x/mod if the fixtures have it."""
    mods = fx["modules"]
    q = [("example.com/hello", v) for v in mods["example.com/hello"]["versions"]]
    q += [("example.com/hello", mods["example.com/hello"]["pseudo"][0]),
          ("example.com/hello/v2", "v2.0.0"),
          ("example.com/legacy", "v1.0.0"),
          ("example.com/legacy", "v2.0.0+incompatible"),
          ("example.com/Upper/Lib", "v1.0.0"),
          ("example.com/Upper/Lib", "v1.0.1"),
          ("example.com/notags", mods["example.com/notags"]["pseudo"][0])]
    if "golang.org/x/mod" in mods:
        q.append(("golang.org/x/mod", "v0.7.0"))
    return q


def escape(path):
    return "".join("!" + c.lower() if "A" <= c <= "Z" else c for c in path)


def download(t, env, queries):
    """go mod download -json; returns {(path, version): object}; fails on any Error."""
    r = run_go(["mod", "download", "-json"] + [f"{m}@{v}" for m, v in queries], env,
               timeout=180, check=False)
    objs = r.json_stream() if r.out.strip().startswith("{") else []
    errs = [o for o in objs if o.get("Error")]
    if not r.ok or errs:
        raise Failure(f"go mod download failed:\n{r}")
    got = {(o["Path"], o["Version"]): o for o in objs}
    for m, v in queries:
        check((m, v) in got, f"go mod download did not report {m}@{v}; got {sorted(got)}")
    return got


_REFERENCE = {}


def reference(t):
    """Sum and GoModSum of every query, downloaded with GOPROXY=file://<layout>
    (computed once per run), checked against the fixtures' manifest."""
    if not _REFERENCE:
        env = t.go_env("file://" + t.fx["upstream"])
        got = download(t, env, downloads(t.fx))
        for (m, v), o in got.items():
            want = t.fx["modules"][m]["sums"][v]
            eq((o["Sum"], o["GoModSum"]), (want["Sum"], want["GoModSum"]),
               f"file:// sums of {m}@{v} vs manifest")
            _REFERENCE[(m, v)] = (o["Sum"], o["GoModSum"])
    return _REFERENCE


def assert_same_sums(t, got, what):
    ref = reference(t)
    bad = []
    for key, o in got.items():
        if key in ref and (o.get("Sum"), o.get("GoModSum")) != ref[key]:
            bad.append(f"{key[0]}@{key[1]}: got {o.get('Sum')} {o.get('GoModSum')}, "
                       f"want {ref[key][0]} {ref[key][1]}")
    check(not bad, f"{what}: h1 sums differ from GOPROXY=file:// downloads:\n" + "\n".join(bad))


def mirror(t, **keys):
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, **keys)
    return up, gm


# ---------------------------------------------------------------- tests

def test_fixture_layout_via_file_proxy(t):
    """The fixtures themselves: GOPROXY=file:// yields the manifest's sums."""
    ref = reference(t)
    eq(len(ref), len(downloads(t.fx)), "reference downloads")


def test_fixture_layout_via_static_http(t):
    """The same through upstream.py directly (validates the static server)."""
    up = t.start_upstream()
    env = t.go_env(up.url)
    got = download(t, env, downloads(t.fx))
    assert_same_sums(t, got, "upstream.py")
    check(any("/example.com/!upper/!lib/@v/v1.0.1.zip" in l for l in up.requests()),
          f"upstream log lacks the escaped upper-case zip: {up.requests()[:20]}")


def test_fixture_git_direct(t):
    """The fixtures' git repositories via the go-get trick (GOPROXY=direct):
    the path later private-module tests take. Same sums as the layout."""
    gp = t.start_gogetproxy()
    env = t.go_env("direct", GOPRIVATE="example.com", GOINSECURE=",".join(t.fx["hosts"]),
                   HTTP_PROXY=gp.url, HTTPS_PROXY=gp.url, NO_PROXY="",
                   GIT_CONFIG_GLOBAL=t.fx["gitconfig"])
    got = download(t, env, [("example.com/hello", "v1.1.0"), ("example.com/hello/v2", "v2.0.0"),
                            ("example.com/Upper/Lib", "v1.0.1")])
    assert_same_sums(t, got, "GOPROXY=direct from the fixtures' git repositories")


def test_mod_download(t):
    """go mod download -json of releases, a pre-release, a pseudo-version,
    /v2, +incompatible and an upper-case path through gomirror."""
    up, gm = mirror(t)
    env = t.go_env(gm.url)
    queries = downloads(t.fx)
    got = download(t, env, queries)
    assert_same_sums(t, got, "through gomirror")
    for (m, v), o in got.items():
        for k in ("Info", "GoMod", "Zip"):
            check(o.get(k) and os.path.isfile(o[k]), f"{m}@{v}: {k} file missing: {o.get(k)}")
        # Canonical requests: the .info must carry exactly the requested version.
        r = gm.get(f"/{escape(m)}/@v/{escape(v)}.info")
        eq(r.status, 200, f"GET {escape(m)}/@v/{v}.info status")
        eq(r.json().get("Version"), v, f"{m}@{v} .info Version")
    paths = up.paths()
    for m, v in queries:
        want = f"/{escape(m)}/@v/{escape(v)}.zip"
        check(want in paths, f"gomirror never fetched {want} from the upstream")


def test_notags_latest(t):
    """A module with only pseudo-versions: @latest resolves to the newest one."""
    up, gm = mirror(t)
    env = t.go_env(gm.url)
    want = t.fx["modules"]["example.com/notags"]["pseudo"][-1]
    r = run_go(["mod", "download", "-json", "example.com/notags@latest"], env, check=False)
    check(r.ok, f"go mod download example.com/notags@latest failed:\n{r}")
    o = r.json_stream()[0]
    eq(o.get("Version"), want, "example.com/notags@latest")
    assert_same_sums(t, {("example.com/notags", o["Version"]): o}, "notags@latest")


def test_list_versions(t):
    """go list -m -versions: tagged versions in order, no pseudo-versions."""
    up, gm = mirror(t)
    env = t.go_env(gm.url)
    r = run_go(["list", "-m", "-versions", "-json", "example.com/hello", "example.com/legacy",
                "example.com/Upper/Lib", "example.com/hello/v2"], env)
    got = {o["Path"]: o.get("Versions") for o in r.json_stream()}
    eq(got.get("example.com/hello"), ["v1.0.0", "v1.1.0", "v1.2.0-rc.1"], "example.com/hello versions")
    eq(got.get("example.com/legacy"), ["v1.0.0", "v2.0.0+incompatible"], "example.com/legacy versions")
    eq(got.get("example.com/Upper/Lib"), ["v1.0.0", "v1.0.1"], "example.com/Upper/Lib versions")
    eq(got.get("example.com/hello/v2"), ["v2.0.0"], "example.com/hello/v2 versions")
    r = run_go(["list", "-m", "-versions", "-json", "example.com/notags"], env)
    eq(r.json_stream()[0].get("Versions"), None, "example.com/notags versions (none tagged)")


def test_go_get_latest(t):
    """go get example.com/hello@latest picks v1.1.0: not the rc, not the pseudo-version."""
    up, gm = mirror(t)
    env = t.go_env(gm.url)
    d = t.scratch_module()
    run_go(["get", "example.com/hello@latest"], env, cwd=d)
    with open(os.path.join(d, "go.mod")) as f:
        mod = f.read()
    check(re.search(r"example\.com/hello v1\.1\.0\b", mod), f"go.mod after go get @latest:\n{mod}")
    with open(os.path.join(d, "go.sum")) as f:
        gosum = f.read()
    s = t.fx["modules"]["example.com/hello"]["sums"]["v1.1.0"]
    check(f"example.com/hello v1.1.0 {s['Sum']}" in gosum, f"go.sum lacks the v1.1.0 zip hash:\n{gosum}")
    # @upgrade and an explicit pre-release also resolve.
    run_go(["get", "example.com/hello@v1.2.0-rc.1"], env, cwd=d)
    with open(os.path.join(d, "go.mod")) as f:
        mod = f.read()
    check("example.com/hello v1.2.0-rc.1" in mod, f"go.mod after go get @v1.2.0-rc.1:\n{mod}")


def test_go_build_app(t):
    """Build and run example.com/app: go install app@v1.0.0, and a scratch
    module with the app's source whose imports are resolved through gomirror
    (prefix probes included)."""
    up, gm = mirror(t)
    app = t.fx["app"]
    env = t.go_env(gm.url)
    gobin = t.mkdtemp("bin")
    env["GOBIN"] = gobin
    run_go(["install", f"{app['module']}@{app['version']}"], env)
    out = subprocess.run([os.path.join(gobin, "app")], stdout=subprocess.PIPE, timeout=30).stdout
    eq(out.decode().splitlines(), app["output"], "output of go install'ed app")

    # The app's source in a scratch module with no requirements: go build
    # (-mod=mod) resolves every import to its latest version via gomirror.
    src = os.path.join(env["GOMODCACHE"], f"{app['module']}@{app['version']}", "main.go")
    with open(src) as f:
        main_go = f.read()
    env2 = t.go_env(gm.url)
    d = t.scratch_module("example.com/scratchapp", {"main.go": main_go})
    run_go(["build", "-o", "app", "."], env2, cwd=d)
    out = subprocess.run([os.path.join(d, "app")], stdout=subprocess.PIPE, timeout=30).stdout
    eq(out.decode().splitlines(), app["output"], "output of the scratch build")
    with open(os.path.join(d, "go.sum")) as f:
        gosum = f.read()
    for m, v in app["deps"]:
        s = t.fx["modules"][m]["sums"][v]
        check(f"{m} {v} {s['Sum']}" in gosum, f"scratch go.sum lacks {m} {v} {s['Sum']}:\n{gosum}")


def test_served_from_storage_when_upstream_is_gone(t):
    """After one download, gomirror serves the same versions with the upstream stopped."""
    up, gm = mirror(t)
    queries = [("example.com/hello", "v1.1.0"), ("example.com/Upper/Lib", "v1.0.1"),
               ("example.com/legacy", "v2.0.0+incompatible")]
    download(t, t.go_env(gm.url), queries)
    up.stop()
    got = download(t, t.go_env(gm.url), queries)
    assert_same_sums(t, got, "served from storage")


def test_storage_layout(t):
    """gomirror's fs storage is a $GOMODCACHE/cache/download layout: a
    GOPROXY=file:// client can use it directly."""
    up, gm = mirror(t)
    queries = [("example.com/hello", "v1.0.0"), ("example.com/Upper/Lib", "v1.0.1"),
               ("example.com/legacy", "v2.0.0+incompatible")]
    download(t, t.go_env(gm.url), queries)
    keys = set(gm.stored_keys())
    for m, v in queries:
        base = f"{escape(m)}/@v/{escape(v)}"
        for ext in (".info", ".mod", ".zip"):
            check(base + ext in keys, f"storage lacks {base + ext}: {sorted(keys)}")
    # On S3 the objects are copied out byte for byte into the same layout.
    root = gm.data_dir or gm.copy_out(t.mkdtemp("s3copy"))
    got = download(t, t.go_env("file://" + root), queries)
    assert_same_sums(t, got, "GOPROXY=file://<gomirror storage>")


def sumdb_setup(t, faults=None, **keys):
    sdb = t.start_sumdb(name=SUMDB_NAME)
    up = t.start_upstream(faults=faults)
    gm = t.start_gomirror(upstream=up, sumdb=sdb, **keys)  # strict, with its key
    # GOSUMDB without a URL: the go command must find it through the proxy.
    env = t.go_env(gm.url, gosumdb=sdb.key, GONOSUMDB=None, GOPRIVATE=None,
                   GOINSECURE=None)
    return sdb, up, gm, env


def test_sumdb_through_gomirror(t):
    """The same downloads verified by a real checksum database that the go
    command reaches only through gomirror's /sumdb/<name>/."""
    sdb, up, gm, env = sumdb_setup(t)
    r = gm.get(f"/sumdb/{SUMDB_NAME}/supported")
    eq(r.status, 200, f"GET /sumdb/{SUMDB_NAME}/supported")
    queries = downloads(t.fx)
    got = download(t, env, queries)
    assert_same_sums(t, got, "with the checksum database")
    log = sdb.requests()
    for m, v in queries:
        want = f"GET /lookup/{escape(m)}@{escape(v)}"
        check(want in log, f"checksum database never saw {want}; its log:\n" + "\n".join(log[:40]))
    check(any(l.startswith("GET /tile/") for l in log),
          "checksum database served no tiles; its log:\n" + "\n".join(log[:40]))
    # The go command wrote verified sums into its own sumdb cache.
    cached = os.path.join(env["GOPATH"], "pkg", "sumdb", SUMDB_NAME)
    check(os.path.isdir(cached), f"go command has no sumdb state at {cached}")

    # A build verified end to end.
    app = t.fx["app"]
    env["GOBIN"] = t.mkdtemp("bin")
    run_go(["install", f"{app['module']}@{app['version']}"], env)


def tampered_zip(t, module, version):
    """A valid zip for module@version whose content differs from the real one."""
    src = os.path.join(t.fx["upstream"], escape(module), "@v", escape(version) + ".zip")
    dst = t.path("tampered", f"{escape(version)}.zip")
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        changed = False
        for info in zin.infolist():
            data = zin.read(info)
            if info.filename.endswith(".go") and not changed:
                data += b"\n// tampered\nfunc init() { println(\"owned\") }\n"
                changed = True
            zout.writestr(info, data)
    check(changed, "no .go file to tamper with")
    return dst


def test_sumdb_tampered_zip(t):
    """Wrong zip bytes from the upstream: gomirror refuses them itself (502,
    one line naming the mismatch, nothing stored), and so does the go
    command."""
    m, v = "example.com/hello", "v1.0.0"
    bad = tampered_zip(t, m, v)
    zpath = f"/{escape(m)}/@v/{escape(v)}.zip"
    faults = {zpath: {"body_file": bad}}
    sdb, up, gm, env = sumdb_setup(t, faults=faults)
    r = run_go(["mod", "download", "-json", f"{m}@{v}"], env, check=False)
    check(not r.ok, f"go mod download of a tampered zip succeeded:\n{r}")
    text = r.out + r.err
    check(re.search(r"SECURITY ERROR|checksum mismatch", text, re.I),
          f"go command failed without a checksum error:\n{r}")
    zip_in_cache = os.path.join(env["GOMODCACHE"], "cache", "download", m, "@v", v + ".zip")
    check(not os.path.exists(zip_in_cache), f"tampered zip landed in the module cache: {zip_in_cache}")
    check(os.path.exists(os.path.join(env["GOMODCACHE"], f"{m}@{v}")) is False,
          "tampered module was extracted into the module cache")
    # What gomirror itself answered and kept.
    check(zpath in up.paths(), f"gomirror never fetched the zip: {up.paths()}")
    zr = gm.get(zpath)
    eq(zr.status, 502, f"gomirror's status for the tampered zip ({zr.text[:200]!r})")
    eq(zr.headers.get("Content-Type"), "text/plain; charset=utf-8", "error content type")
    check(zr.text.count("\n") == 1 and "checksum mismatch" in zr.text and SUMDB_NAME in zr.text,
          f"reason for the tampered zip: {zr.text!r}")
    keys = gm.stored_keys()
    check(not any(k.endswith(".zip") for k in keys), f"a zip was stored: {keys}")
    check(f"{escape(m)}/@v/{escape(v)}.mod" in keys, f"the good .mod was not kept: {keys}")


def test_sumdb_tampered_zip_not_cached(t):
    """A zip that contradicts the checksum database gomirror proxies must not
    stay in its storage: once the upstream serves the right bytes again, a
    fresh client gets the right module (DESIGN: corrupt upstream data is not
    stored; hashes are checked against the checksum database)."""
    m, v = "example.com/hello", "v1.0.0"
    bad = tampered_zip(t, m, v)
    zpath = f"/{escape(m)}/@v/{escape(v)}.zip"
    # negative_ttl=0: no refusal is remembered, so the next request refetches.
    sdb, up, gm, env = sumdb_setup(t, faults={zpath: {"body_file": bad}}, negative_ttl=0)
    r = run_go(["mod", "download", "-json", f"{m}@{v}"], env, check=False)
    check(not r.ok, f"go mod download of a tampered zip succeeded:\n{r}")
    up.set_faults({})
    env2 = t.go_env(gm.url, gosumdb=sdb.key)
    r = run_go(["mod", "download", "-json", f"{m}@{v}"], env2, check=False)
    fetched = up.paths().count(zpath)
    check(r.ok, f"after the upstream was fixed, gomirror still serves a zip that fails "
                f"verification (upstream asked for {zpath} {fetched} time(s)):\n{r}")
    assert_same_sums(t, {(m, v): r.json_stream()[0]}, "after the upstream was fixed")


def fork_layout(t, orig, fork, v):
    """A static layout holding fork@v: orig@v's files under the fork's path,
    with orig's go.mod (module line included) kept as it is, as when a fork
    keeps its module path."""
    root = t.mkdtemp("forklayout")
    src = os.path.join(t.fx["upstream"], escape(orig), "@v", escape(v))
    dst_dir = os.path.join(root, escape(fork), "@v")
    os.makedirs(dst_dir)
    shutil.copy(src + ".info", os.path.join(dst_dir, v + ".info"))
    shutil.copy(src + ".mod", os.path.join(dst_dir, v + ".mod"))
    with open(os.path.join(dst_dir, "list"), "w") as f:
        f.write(v + "\n")
    with zipfile.ZipFile(src + ".zip") as zin, \
            zipfile.ZipFile(os.path.join(dst_dir, v + ".zip"), "w", zipfile.ZIP_DEFLATED) as zout:
        for info in zin.infolist():
            name = f"{fork}@{v}/" + info.filename.split("/", 2)[-1] \
                if info.filename.startswith(f"{orig}@{v}/") else info.filename
            zout.writestr(name, zin.read(info))
    return root


def test_fork_in_a_replace_directive(t):
    """A fork that kept its original module line (example.com/fork@v1.0.0
    whose go.mod says `module example.com/hello`) is served: the go command
    fetches its .mod through the proxy and accepts it in a replace
    directive, so validate_mod must not refuse it."""
    fork, v = "example.com/fork", "v1.0.0"
    up = t.start_upstream(root=fork_layout(t, "example.com/hello", fork, v))
    gm = t.start_gomirror(upstream=up)
    d = t.scratch_module("example.com/usesfork", {"main.go": (
        'package main\n\nimport (\n\t"fmt"\n\n\t"example.com/hello"\n)\n\n'
        'func main() { fmt.Println(hello.Hello()) }\n')})
    with open(os.path.join(d, "go.mod"), "a") as f:
        f.write(f"\nrequire example.com/hello {v}\n\nreplace example.com/hello => {fork} {v}\n")
    env = t.go_env(gm.url)
    run_go(["build", "-o", "app", "."], env, cwd=d)
    check(f"/{fork}/@v/{v}.mod" in up.paths(), f"the fork's .mod was not fetched: {up.paths()}")
    r = gm.get(f"/{fork}/@v/{v}.mod")
    eq((r.status, r.text.splitlines()[:1]), (200, ["module example.com/hello"]),
       "the fork's .mod through gomirror")


def test_info_without_mod(t):
    """A version whose .info the upstream serves but whose .mod it does not:
    list and @latest resolution still work for the go command, the .info is
    served without committing anything, and the .mod answers 404."""
    root = t.mkdtemp("half-upstream")
    d = os.path.join(root, "example.com", "half", "@v")
    os.makedirs(d)
    for v, with_mod in (("v1.0.0", True), ("v1.1.0", False)):
        with open(os.path.join(d, f"{v}.info"), "w") as f:
            f.write(f'{{"Version":"{v}","Time":"2024-01-0{1 if with_mod else 2}T00:00:00Z"}}')
        if with_mod:
            with open(os.path.join(d, f"{v}.mod"), "w") as f:
                f.write("module example.com/half\n")
    with open(os.path.join(d, "list"), "w") as f:
        f.write("v1.0.0\nv1.1.0\n")
    up = t.start_upstream(root=root)
    gm = t.start_gomirror(upstream=up)
    eq(gm.get("/example.com/half/@v/v1.1.0.mod").status, 404, "the missing .mod")
    r = gm.get("/example.com/half/@v/v1.1.0.info")
    eq(r.status, 200, "the .info of a version without .mod")
    check('"v1.1.0"' in r.text, f"the .info: {r.text!r}")
    check(not [k for k in gm.stored_keys() if "v1.1.0" in k],
          f"something of v1.1.0 was committed: {gm.stored_keys()}")
    env = t.go_env(gm.url)
    r = run_go(["list", "-m", "-json", "example.com/half@latest"], env)
    eq(r.json_stream()[0].get("Version"), "v1.1.0", "@latest")
    # (-versions without -retracted makes the go command itself read the
    # newest version's go.mod for retractions, which fails against any proxy
    # serving this upstream.)
    r = run_go(["list", "-m", "-retracted", "-versions", "-json", "example.com/half"], env)
    eq(r.json_stream()[0].get("Versions"), ["v1.0.0", "v1.1.0"], "versions")
    r = run_go(["mod", "download", "-json", "example.com/half@v1.1.0"], env, check=False)
    check(not r.ok and "404" in r.out + r.err, f"downloading v1.1.0 should fail with 404:\n{r}")


if __name__ == "__main__":
    harness.main()
