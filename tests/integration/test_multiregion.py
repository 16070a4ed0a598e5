"""Two regions on loopback (issue 15), each with 2 gomirror replicas behind
HAProxy, its own Redis and its own prefix of the real RGW bucket. Region A
asks the public stand-in; region B asks A first and falls through to the
public stand-in ("A|public", a second stand-in process over the same
layout, so its log shows B's direct requests only). Checksum-database
requests can go through A's /sumdb/ relay too (region C).

- the real go client in B builds the fixture app: A fetched each version
  once from the public stand-in, B nothing from it directly;
- objects copied from A's prefix to B's with `aws s3 sync` appear in B's
  list and @latest within list_ttl and are served without asking A; a .zip
  copied without its .info is not served;
- A killed: B builds everything it holds with 0 failures, misses come from
  the fallback, B's circuit for A opens (metric, /readyz), and after A
  returns B goes back to A (circuit closed);
- a loop A->B->A answers 508 at once;
- private modules in B (no git credentials there) come from A's fetch from
  git (private_upstream) and never reach a public upstream or the checksum
  database."""

import json
import os
import re
import shutil
import subprocess
import time
import zipfile

import harness  # noqa: I001  (puts tests/tools on sys.path)
import fixtures
import private_fixtures
from harness import check, eq, run_go
from test_cluster import wait_backends_up
from test_offline import app_module, build_and_run

NEEDS_RGW = True
MOD = "example.com/replicated"
PRIVATE = "git.corp.example/team/alpha"


def add_module(root, module, versions, listed, latest):
    """versions of module in layout root; `list` names only `listed`."""
    d = os.path.join(root, module, "@v")
    os.makedirs(d, exist_ok=True)
    for v in versions:
        with open(os.path.join(d, v + ".info"), "w") as f:
            json.dump({"Version": v, "Time": "2024-01-02T03:04:05Z"}, f)
        with open(os.path.join(d, v + ".mod"), "w") as f:
            f.write(f"module {module}\n")
        with zipfile.ZipFile(os.path.join(d, v + ".zip"), "w") as z:
            z.writestr(f"{module}@{v}/go.mod", f"module {module}\n")
            z.writestr(f"{module}@{v}/r.go", f"package replicated\n\nconst V = {v!r}\n"
                       .replace("'", '"'))
    with open(os.path.join(d, "list"), "w") as f:
        f.write("".join(v + "\n" for v in listed))
    with open(os.path.join(root, module, "@latest"), "w") as f:
        json.dump({"Version": latest, "Time": "2024-01-02T03:04:05Z"}, f)


def region(t, name, upstream, sumdb, **keys):
    redis = t.start_redis()
    prefix = f"{t.name}/{name}/"
    reps = [t.start_gomirror(upstream=upstream, sumdb=sumdb, storage="s3", s3_prefix=prefix,
                             meta=redis.url, region=name, threads=64, connect_timeout=2,
                             upstream_circuit_cooldown=1, **keys) for _ in range(2)]
    lb = t.start_haproxy(reps)
    lb.get = lambda path, **kw: harness.http_get(lb.url + path, **kw)
    wait_backends_up(lb, reps)
    return reps, lb, prefix


def access_lines(reps, needle):
    n = 0
    for r in reps:
        with open(r.log, errors="replace") as f:
            n += sum(1 for line in f if " access " in line and needle in line)
    return n


def metric(rep, name):
    m = re.search(r"^%s (\d+)$" % re.escape(name), rep.get("/metrics").text, re.M)
    check(m, f"no metric {name}")
    return int(m.group(1))


def circuit_open(rep, url):
    body = rep.get("/metrics").text
    m = re.search(r'gomirror_upstream_circuit_open\{upstream="%s"\} (\d)' % re.escape(url), body)
    check(m, f"no circuit metric for {url}")
    return m.group(1) == "1"


def test_two_regions(t):
    root = t.mkdtemp("public")
    shutil.copytree(t.fx["upstream"], root, dirs_exist_ok=True)
    add_module(root, MOD, ["v1.0.0", "v1.1.0", "v1.3.0", "v1.4.0", "v1.5.0", "v1.6.0"],
               ["v1.0.0"], "v1.0.0")
    sdb = t.start_sumdb(root=root)
    public = t.start_upstream(root=root)       # what A sees
    public_b = t.start_upstream(root=root)     # the same, as B's fallback
    reps_a, lb_a, prefix_a = region(t, "a", public, sdb, list_ttl=600)
    reps_b, lb_b, prefix_b = region(
        t, "b", f"{lb_a.url}|{public_b.url}", sdb, list_ttl=2)

    # 1. The go client in B builds the app through A.
    src = app_module(t)
    build_and_run(t, lb_b, src)
    got = public.paths()
    for p in set(got):
        if p.endswith((".zip", ".mod", ".info")):
            eq(got.count(p), 1, f"A's fetches of {p} from the public stand-in")
    check(any(p.endswith(".zip") for p in got), "A fetched no zip")
    eq(public_b.paths(), [], "B's direct requests to the public stand-in")
    check(sdb.requests(), "the checksum database was never asked")
    # A's checksum-database relay serves another region's gomirror as its
    # sumdb: a gomirror whose sumdb is A's /sumdb/ commits with proof.
    c = t.start_gomirror(upstream=lb_a.url, storage="fs", region="c",
                         sumdb=f"{sdb.key}={lb_a.url}/sumdb/{sdb.name}",
                         sumdb_verify="strict")
    eq(c.get("/example.com/hello/@v/v1.1.0.zip").status, 200, "C's proven zip via A's relay")
    c.stop()

    # 2. Replication: B lists the module and caches @latest (through A, which
    # caches its answers for 600 s); then A fetches v1.1.0, which the public
    # list does not name, and the bucket is synced to B.
    eq(lb_b.get(f"/{MOD}/@v/list").text, "v1.0.0\n", "B's list before")
    check('"v1.0.0"' in lb_b.get(f"/{MOD}/@latest").text, "B's @latest before")
    want = {}
    for ext in ("info", "mod", "zip"):
        r = lb_a.get(f"/{MOD}/@v/v1.1.0.{ext}")
        eq(r.status, 200, f"A's v1.1.0.{ext}")
        want[ext] = r.body
    s3 = reps_a[0].rgw
    r = s3.aws("s3", "sync", "--only-show-errors", f"s3://{s3.bucket}/{prefix_a}",
               f"s3://{s3.bucket}/{prefix_b}")
    eq(r.returncode, 0, f"aws s3 sync: {r.stderr}")
    # Half-replicated: v1.3.0's zip arrives without its .info.
    half = os.path.join(root, MOD, "@v", "v1.3.0.zip")
    r = s3.aws("s3", "cp", "--only-show-errors", half,
               f"s3://{s3.bucket}/{prefix_b}{MOD}/@v/v1.3.0.zip")
    eq(r.returncode, 0, f"aws s3 cp: {r.stderr}")
    asked_a = access_lines(reps_a, f"/{MOD}/@v/v1.1.0")
    deadline = time.time() + 10
    while "v1.1.0" not in lb_b.get(f"/{MOD}/@v/list").text and time.time() < deadline:
        time.sleep(0.3)
    listed = lb_b.get(f"/{MOD}/@v/list").text
    eq(listed, "v1.0.0\nv1.1.0\n", "B's list after replication (list_ttl 2 s)")
    check('"v1.1.0"' in lb_b.get(f"/{MOD}/@latest").text, "B's @latest after replication")
    for ext in ("info", "mod", "zip"):
        r = lb_b.get(f"/{MOD}/@v/v1.1.0.{ext}")
        eq(r.status, 200, f"B's replicated v1.1.0.{ext}")
        eq(r.body, want[ext], f"B's replicated v1.1.0.{ext} bytes")
    eq(access_lines(reps_a, f"/{MOD}/@v/v1.1.0"), asked_a, "requests to A for v1.1.0")
    check(f"/{MOD}/@v/v1.1.0.zip" not in public_b.paths(), "B asked the public stand-in")
    r = lb_b.get(f"/{MOD}/@v/v1.3.0.zip", headers={"Disable-Module-Fetch": "true"})
    eq(r.status, 404, f"half-replicated zip served: {r.text!r}")
    check("v1.3.0" not in lb_b.get(f"/{MOD}/@v/list").text, "half-replicated version listed")
    # A version that arrived from elsewhere is checked against the checksum
    # database before it is first served: B hashed v1.1.0's .mod and zip.
    eq(sum(metric(r, "gomirror_stored_checked_total") for r in reps_b), 1,
       "versions B checked after the sync")
    # The .info of v1.3.0 now comes through the chain; its zip, which
    # arrived alone, is hashed before it is served.
    eq(lb_b.get(f"/{MOD}/@v/v1.3.0.info").status, 200, "v1.3.0.info through A")
    r = lb_b.get(f"/{MOD}/@v/v1.3.0.zip")
    eq(r.status, 200, f"the half-replicated zip, once its .info came: {r.text!r}")
    with open(half, "rb") as f:
        eq(r.body, f.read(), "v1.3.0.zip bytes")
    # Tampered copies: v1.4.0 complete with an altered zip; v1.5.0's altered
    # zip alone, its .info fetched later. Neither is ever served, and each
    # refusal is one SECURITY line.
    bad = os.path.join(t.tmp, "bad.zip")
    for v in ("v1.4.0", "v1.5.0"):
        with zipfile.ZipFile(bad, "w") as z:
            z.writestr(f"{MOD}@{v}/go.mod", f"module {MOD}\n")
            z.writestr(f"{MOD}@{v}/r.go", "package replicated\n\nfunc init() { evil() }\n")
        names = ["zip"] if v == "v1.5.0" else ["zip", "mod", "info"]
        for ext in names:
            src_file = bad if ext == "zip" else os.path.join(root, MOD, "@v", f"{v}.{ext}")
            r = s3.aws("s3", "cp", "--only-show-errors", src_file,
                       f"s3://{s3.bucket}/{prefix_b}{MOD}/@v/{v}.{ext}")
            eq(r.returncode, 0, f"aws s3 cp: {r.stderr}")
    for path in (f"/{MOD}/@v/v1.4.0.zip", f"/{MOD}/@v/v1.4.0.mod",
                 f"/{MOD}/@v/v1.4.0.info"):
        r = lb_b.get(path)
        eq(r.status, 502, f"tampered {path}: {r.text!r}")
        check("SECURITY" not in r.text and "v1.4.0" in r.text and "zip" in r.text,
              f"the refusal's line: {r.text!r}")
    eq(lb_b.get(f"/{MOD}/@v/v1.5.0.info").status, 200, "v1.5.0.info through A")
    r = lb_b.get(f"/{MOD}/@v/v1.5.0.zip")
    eq(r.status, 502, f"tampered half-replicated zip: {r.text!r}")
    # Replication keeps no order: v1.6.0's .info arrived, its .mod not yet.
    # The .mod comes through the chain (a miss), not a 503.
    info_only = os.path.join(root, MOD, "@v", "v1.6.0.info")
    r = s3.aws("s3", "cp", "--only-show-errors", info_only,
               f"s3://{s3.bucket}/{prefix_b}{MOD}/@v/v1.6.0.info")
    eq(r.returncode, 0, f"aws s3 cp: {r.stderr}")
    r = lb_b.get(f"/{MOD}/@v/v1.6.0.mod")
    eq(r.status, 200, f"v1.6.0.mod while its .info came alone: {r.text!r}")
    eq(r.text, f"module {MOD}\n", "v1.6.0.mod")
    eq(lb_b.get(f"/{MOD}/@v/v1.6.0.zip").status, 200, "v1.6.0.zip")
    security = [line for rep in reps_b for line in open(rep.log, errors="replace")
                if "SECURITY:" in line]
    check(any("v1.4.0" in line for line in security) and
          any("v1.5.0" in line for line in security), f"SECURITY lines: {security}")
    check(sum(metric(r, "gomirror_stored_mismatch_total") for r in reps_b) >= 2,
          "gomirror_stored_mismatch_total")

    # 3. Region A down.
    for p in [lb_a] + reps_a:
        p.kill()
    env = t.go_env(lb_b.url)
    out = os.path.join(t.tmp, "app-bin-2")
    run_go(["build", "-o", out, "."], env, cwd=src)  # fresh cache: all from B
    # Misses fall through to the fallback; each B replica opens A's circuit.
    hello = t.fx["modules"]["example.com/hello"]["versions"]
    for mod, v in [("example.com/hello", v) for v in hello] + [(MOD, "v1.0.0")]:
        for rep in reps_b:
            r = rep.get(f"/{mod}/@v/{v}.info")
            check(r.status == 200, f"B {mod}@{v} with A down: {r.status} {r.text}")
    check(f"/{MOD}/@v/v1.0.0.info" in public_b.paths(), "fallback not used")
    for k, rep in enumerate(reps_b):  # misses on each replica: 3 failures
        for i in range(3):
            eq(rep.get(f"/example.com/nx{k}x{i}/@v/list").status, 404, "a missing module")
    for rep in reps_b:
        check(circuit_open(rep, lb_a.url), "B's circuit for A is not open")
        ready = rep.get("/readyz")
        eq(ready.status, 200, "B ready with A down")
        check(f"upstream {lb_a.url} circuit open" in ready.text, f"/readyz: {ready.text!r}")

    # 4. A returns: after the cool-down (1 s, doubled per failed probe) a
    # probe closes B's circuit and misses go to A again.
    for p in reps_a + [lb_a]:
        p.start()
    wait_backends_up(lb_a, reps_a)
    deadline = time.time() + 20
    closed = False
    i = 0
    while time.time() < deadline and not closed:
        for rep in reps_b:
            i += 1  # a new name each time: the negative cache is shared
            rep.get(f"/example.com/nonexistent{i}/@v/list")  # asks A: the probe
        closed = not any(circuit_open(rep, lb_a.url) for rep in reps_b)
        time.sleep(0.5)
    check(closed, "B's circuit for A did not close after A returned")
    before_b = len(public_b.paths())  # misses skipped A while it was open
    r = lb_b.get(f"/{MOD}/@v/v1.0.0.zip")  # B holds no zip of v1.0.0 yet
    eq(r.status, 200, "B's new zip after A returned")
    check(f"/{MOD}/@v/v1.0.0.zip" in public.paths(), "A did not fetch it after it returned")
    check(f"/{MOD}/@v/v1.0.0.zip" not in public_b.paths(), "B fetched it directly")
    eq(len(public_b.paths()), before_b, "B's direct requests after A returned")


def test_loop_answers_508(t):
    """A's upstream is B and B's is A: the second visit to A answers 508,
    which travels back, instead of bouncing until the fetch times out."""
    pa, pb = harness.free_port(), harness.free_port()
    a = t.start_gomirror(upstream=f"http://127.0.0.1:{pb}", port=pa, region="a",
                         storage="fs")
    b = t.start_gomirror(upstream=f"http://127.0.0.1:{pa}", port=pb, region="b",
                         storage="fs")
    t0 = time.time()
    r = a.get("/example.com/loop/@v/v1.0.0.info")
    took = time.time() - t0
    eq(r.status, 508, f"loop answer: {r.text!r}")
    check("loop detected" in r.text, f"reason: {r.text!r}")
    check(took < 3, f"loop took {took:.1f}s")
    time.sleep(0.5)  # access lines are written after the answer
    eq(access_lines([b], "/example.com/loop/@v/v1.0.0.info"), 1, "requests B saw")
    eq(access_lines([a], "/example.com/loop/@v/v1.0.0.info"), 2, "requests A saw")
    # A header naming the region, or too many hops, is refused at once.
    r = a.get("/example.com/x/@v/list", headers={"Gomirror-Via": "z, A"})
    eq(r.status, 508, "own region (any case) in Gomirror-Via")
    hops = ", ".join(f"r{i}" for i in range(8))
    eq(a.get("/example.com/x/@v/list", headers={"Gomirror-Via": hops}).status, 508,
       "8 hops")


def test_private_modules_come_from_the_home_region(t):
    """Region A has the git credentials for git.corp.example; region B has
    none and asks A for private paths (private_upstream). The go client in
    B builds with a private and a public module; the private path reaches A
    only, never B's public upstream or the checksum database, and A fetched
    it from git."""
    pm = private_fixtures.ensure(t.runner.args.fixtures or os.path.join(
        os.path.dirname(t.binary), "fixtures"), log=None)
    sdb = t.start_sumdb(name="sumdb.test")
    public_a, public_b = t.start_upstream(), t.start_upstream()
    gg = t.start_gogetproxy(roots=[], hosts=[pm["host"]], depth=2)
    a = t.start_gomirror(upstream=public_a, sumdb=sdb, storage="fs", region="a",
                         private=pm["private"], vcs_gitconfig=pm["gitconfig"],
                         vcs_insecure=pm["insecure"], vcs_http_proxy=gg.url)
    b = t.start_gomirror(upstream=public_b, sumdb=sdb, storage="fs", region="b",
                         private=pm["private"], private_upstream=a.url)
    # What a developer in B sets (test_private.py): GOPROXY, GOSUMDB found
    # through gomirror, the private pattern in GONOSUMDB only (GOPRIVATE
    # would send the go command to git itself).
    env = t.go_env(b.url, gosumdb=sdb.key, GONOSUMDB="git.corp.example", GOPRIVATE=None,
                   GONOPROXY=None, GOINSECURE=None)
    src = t.scratch_module("example.com/app3", {
        "main.go": ('package main\n\nimport (\n\t"fmt"\n\n\t"example.com/hello"\n'
                    '\talpha "git.corp.example/team/alpha"\n)\n\n'
                    'func main() { fmt.Println(hello.Hello(), alpha.Version) }\n'),
    })
    run_go(["get", f"{PRIVATE}@v1.1.0", "example.com/hello@v1.1.0"], env, cwd=src)
    out = os.path.join(t.tmp, "app3")
    run_go(["build", "-o", out, "."], env, cwd=src)
    got = subprocess.run([out], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    check("v1.1.0" in got, f"app output: {got!r}")
    versions = run_go(["list", "-m", "-versions", PRIVATE], env).out.split()[1:]
    eq(versions, pm["modules"][PRIVATE]["versions"], "private tags listed through B")

    # B sent the private path to A only, and stored what A answered.
    leaked = [p for p in public_b.requests() + public_a.requests() + sdb.requests()
              if "corp.example" in p]
    eq(leaked, [], "private paths seen by a public upstream or the checksum database")
    check(any("lookup/example.com/hello@" in p for p in sdb.requests()),
          f"the public module was not verified: {sdb.requests()}")
    check(f"/{PRIVATE}/@v/v1.1.0.zip" not in public_b.paths(), "B asked its upstream")
    eq(access_lines([a], f"/{PRIVATE}/@v/v1.1.0.zip"), 1, "B's zip requests to A")
    check(f"{PRIVATE}/@v/v1.1.0.zip" in b.stored_keys(), "B did not store the zip")
    # A fetched it from git: the discovery proxy saw A's go command; B has
    # no go command for private paths (no credentials, no discovery proxy).
    with open(gg.log) as f:
        discovery = f.read()
    check("git.corp.example/team/alpha" in discovery, f"discovery log: {discovery!r}")
    check(f"{PRIVATE}/@v/v1.1.0.zip" in a.stored_keys(), "A did not store the zip")
    with open(b.log) as f:
        blog = f.read()
    check("private modules come from" in blog, "B's start-up line")
    check("from version control" not in blog, "B runs the go command for private paths")


def test_private_upstream_refuses_public_proxy(t):
    """private_upstream must name another gomirror, never a public proxy."""
    for bad in ("https://proxy.golang.org", "https://goproxy.io|https://x.corp", "direct"):
        r = subprocess.run([t.binary, "--check-config", f"--private_upstream={bad}"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
        check(r.returncode != 0, f"private_upstream={bad} accepted")
        check(b"private_upstream" in r.stderr, f"reason: {r.stderr!r}")


if __name__ == "__main__":
    harness.main()
