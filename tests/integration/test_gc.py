"""Garbage collection with short durations (--unused-for 2s and 3s, so no
clock tricks): on local disk with in-process metadata (access recorded in
storage) a version downloaded again just before the run survives, an
untouched one goes, the newest version of each module stays, and what
remains still builds; POST /admin/gc answers the same report as JSON. On
S3 (a real Ceph RGW) with Redis: the dry run lists exactly the expected
versions, the real run deletes them and nothing else (bucket listings
before and after), a version downloaded during the run survives, and the
go client builds the kept graph afterwards with the upstream gone."""

import json
import os
import re
import select
import subprocess
import time

import harness  # noqa: I001  (puts tests/tools on sys.path)
import govmodules
from harness import check, eq, run_go

NEEDS_RGW = True

GOV = "example.com/gov"
LIB = "example.com/lib"


def cli_flags(gm):
    """gm's own configuration flags, for a gomirror gc against its storage
    and metadata (no --listen: a tool serves nothing)."""
    return [a for a in gm.argv[1:]
            if not a.startswith(("--listen=", "--log_level=", "--drain_delay="))]


def gc(t, gm, *args, timeout=60):
    p = subprocess.run([t.binary, "gc", *args, *cli_flags(gm), "--log_level=warn"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, cwd=t.tmp, env=gm.env)
    check(p.returncode == 0, f"gomirror gc {' '.join(args)} -> {p.returncode}\n"
                             f"{p.stdout}{p.stderr}")
    return p.stdout


def listed(out, verb):
    """The module@version pairs a gc report names after verb."""
    return sorted(m.group(1) for m in re.finditer(rf"^{verb} (\S+@\S+)", out, re.M))


def version_keys(keys, module, version):
    want = f"{govmodules.escape(module)}/@v/{version}."
    return sorted(k for k in keys if k.startswith(want))


def download(t, gm, *mvs):
    """go mod download into a fresh module cache: every request counts as a
    use of the version."""
    run_go(["mod", "download", "-json", *mvs], t.go_env(gm.url))


def test_gc_on_fs_with_memory_metadata(t):
    root = govmodules.layout(t.mkdtemp("layout"), {
        GOV: {"v1.0.0": 30, "v1.1.0": 20, "v1.2.0": 10}, LIB: {"v1.0.0": 30}})
    up = t.start_upstream(root=root)
    gm = t.start_gomirror(upstream=up, admin_token="gc-admin-token")
    download(t, gm, f"{GOV}@v1.0.0", f"{GOV}@v1.1.0", f"{GOV}@v1.2.0", f"{LIB}@v1.0.0")
    time.sleep(4.5)  # times are whole seconds: 3s unused is 4s to be sure
    download(t, gm, f"{GOV}@v1.1.0")  # used again just before the run
    time.sleep(1.2)  # the access record reaches storage within a second
    out = gc(t, gm, "--unused-for", "3s", "--dry-run")
    eq(listed(out, "would remove"), [f"{GOV}@v1.0.0"], f"the dry run:\n{out}")
    check("kept 1 used recently, 2 newest" in out, f"the dry run's counts:\n{out}")
    before = gm.stored_keys()
    eq(len(version_keys(before, GOV, "v1.0.0")), 3, "v1.0.0 stored before")
    download(t, gm, f"{GOV}@v1.1.0")
    time.sleep(1.2)
    out = gc(t, gm, "--unused-for", "3s", "--grace", "1s")
    eq(listed(out, "removed"), [f"{GOV}@v1.0.0"], f"the run:\n{out}")
    check(re.search(rf"^  {GOV}: 1 versions, \d+ bytes$", out, re.M) and
          re.search(r"^total: 1 versions, \d+ bytes freed", out, re.M),
          f"the per-module and total lines:\n{out}")
    after = gm.stored_keys()
    gone = sorted(set(before) - set(after))
    eq(gone, sorted(version_keys(before, GOV, "v1.0.0") +
                    [f"_gomirror/lastuse/{GOV}/@v/v1.0.0"]), "what left storage")
    eq(sorted(set(after) - set(before)), [], "what appeared in storage")
    # The kept versions build; the removed one is fetched again on demand.
    src = govmodules.program(t, {GOV: "v1.1.0", LIB: "v1.0.0"})
    run_go(["build", "./..."], t.go_env(gm.url), cwd=src)
    # The same through the admin endpoint: admin only, JSON.
    eq(harness.http_get(f"{gm.url}/admin/gc?unused_for=2s&dry_run=1",
                        method="POST").status, 401, "/admin/gc without the token")
    time.sleep(3.2)  # times are whole seconds
    auth = {"Authorization": "Bearer gc-admin-token"}
    keys = gm.stored_keys()
    r = harness.http_get(f"{gm.url}/admin/gc?unused_for=2s&dry_run=1&newest=1"
                         f"&keep=example.com/lib", method="POST", headers=auth, timeout=30)
    eq(r.status, 200, f"/admin/gc: {r.text}")
    rep = r.json()
    eq(rep["dry_run"], True, "dry_run")
    eq(sorted(f"{x['module']}@{x['version']}" for x in rep["would_remove"]),
       [f"{GOV}@v1.1.0", f"{GOV}@v1.2.0"], f"would_remove: {rep}")
    eq(rep["kept"]["keep"], 1, f"kept by --keep: {rep}")
    eq([m["module"] for m in rep["modules"]], [GOV], f"per module: {rep}")
    check(rep["bytes"] > 0 and rep["versions"] == 2, f"totals: {rep}")
    eq(gm.stored_keys(), keys, "storage after a dry run")
    r = harness.http_get(f"{gm.url}/admin/gc?unused_for=2s&keep=example.com/*",
                         method="POST", headers=auth, timeout=30)
    eq((r.status, r.json()["versions"]), (200, 0), f"--keep of everything: {r.text}")
    # The removed version is still there for whoever asks (fetched again,
    # or from the server's hot cache, which a separate gc process cannot
    # reach with meta=memory).
    eq(gm.get(f"/{GOV}/@v/v1.0.0.zip").status, 200, "the removed version on demand")


def test_gc_on_s3_with_redis(t):
    root = govmodules.layout(t.mkdtemp("layout"), {
        GOV: {"v1.0.0": 40, "v1.1.0": 30, "v1.2.0": 20, "v1.3.0": 10},
        LIB: {"v1.0.0": 40, "v1.1.0": 30}})
    up = t.start_upstream(root=root)
    redis = t.start_redis()
    gm = t.start_gomirror(upstream=up, storage="s3", meta=redis.url)
    everything = [f"{GOV}@v1.{i}.0" for i in range(4)] + [f"{LIB}@v1.0.0", f"{LIB}@v1.1.0"]
    download(t, gm, *everything)
    time.sleep(4.5)  # times are whole seconds: 3s unused is 4s to be sure
    download(t, gm, f"{GOV}@v1.1.0")  # used again just before the run
    time.sleep(1)  # the counters reach Redis every 500 ms
    out = gc(t, gm, "--unused-for", "3s", "--dry-run")
    expected = [f"{GOV}@v1.0.0", f"{GOV}@v1.2.0", f"{LIB}@v1.0.0"]
    eq(listed(out, "would remove"), expected, f"the dry run:\n{out}")
    before = gm.stored_keys()
    eq(len(before), 6 * 3, f"the bucket before: {before}")

    # The real run, with a download of one chosen version while it waits.
    download(t, gm, f"{GOV}@v1.1.0")
    time.sleep(1)
    argv = [t.binary, "gc", "--unused-for", "3s", "--grace", "4s", *cli_flags(gm),
            "--log_level=warn"]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         cwd=t.tmp, env=gm.env, start_new_session=True)
    try:
        line, deadline = "", time.time() + 30
        while "versions chosen" not in line and time.time() < deadline:
            if select.select([p.stdout], [], [], 1)[0]:
                line = p.stdout.readline()
                if not line:
                    break
        check("3 versions chosen" in line, f"gc did not say what it chose: {line!r}")
        eq(gm.get(f"/{GOV}/@v/v1.2.0.info").status, 200, "a download during the run")
        rest, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    out = line + rest
    eq(p.returncode, 0, f"gomirror gc: {out}{err}")
    eq(listed(out, "removed"), [f"{GOV}@v1.0.0", f"{LIB}@v1.0.0"], f"the run:\n{out}")
    eq(listed(out, "kept"), [f"{GOV}@v1.2.0:"], f"kept during the run:\n{out}")
    after = gm.stored_keys()
    eq(sorted(set(before) - set(after)),
       sorted(version_keys(before, GOV, "v1.0.0") + version_keys(before, LIB, "v1.0.0")),
       "what left the bucket")
    eq(sorted(set(after) - set(before)), [], "what appeared in the bucket")
    idx = redis.cli("HKEYS", f"gomirror:{{{GOV}}}:idx")
    check("v1.0.0.info" not in idx and "v1.1.0.info" in idx,
          f"the committed index after gc: {idx!r}")
    # The kept graph builds from storage alone.
    up.stop()
    src = govmodules.program(t, {GOV: "v1.3.0", LIB: "v1.1.0"})
    run_go(["build", "./..."], t.go_env(gm.url), cwd=src)
    src = govmodules.program(t, {GOV: "v1.2.0"}, name="example.com/prog2")
    run_go(["build", "./..."], t.go_env(gm.url), cwd=src)
    r = gm.get(f"/{GOV}/@v/v1.0.0.info")
    check(r.status >= 500, f"a removed version with the upstream gone: {r.status}")


if __name__ == "__main__":
    harness.main()
