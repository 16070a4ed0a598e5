"""The catalog (GET /catalog, Athens' format) over 1,000 versions written
straight into an fs store: pagination with continuation tokens, the page
size's default and bounds, filtering by what the caller may read
(htpasswd users and auth_rules), and `gomirror catalog` with sizes and last
use."""

import json
import os
import subprocess
import urllib.parse

import harness  # noqa: I001  (puts tests/tools on sys.path)
import govmodules
from harness import check, eq

MANY = "example.com/many"
SECRET = "git.corp.example/secret"
UPPER = "example.com/Upper/Lib"

RULES = """deny user:bob git.corp.example/*
allow authenticated *
"""


def store(t):
    """An fs store: MANY v1.0.0..v1.0.999 (a .info each), two SECRET
    versions, one UPPER version, and what is not a committed version."""
    d = t.mkdtemp("data")
    want = []

    def put(module, version, mod=True):
        vd = os.path.join(d, govmodules.escape(module), "@v")
        os.makedirs(vd, exist_ok=True)
        with open(os.path.join(vd, govmodules.escape(version) + ".info"), "w") as f:
            json.dump({"Version": version, "Time": "2024-01-02T03:04:05Z"}, f)
        if mod:
            with open(os.path.join(vd, govmodules.escape(version) + ".mod"), "w") as f:
                f.write(f"module {module}\n")
        want.append((module, version))

    for i in range(1000):
        put(MANY, f"v1.0.{i}", mod=i < 10)
    put(SECRET, "v1.0.0")
    put(SECRET, "v1.1.0")
    put(UPPER, "v1.0.0")
    # Not committed versions, and keys of other kinds.
    vd = os.path.join(d, "example.com", "half", "@v")
    os.makedirs(vd)
    with open(os.path.join(vd, "v1.0.0.mod"), "w") as f:
        f.write("module example.com/half\n")
    os.makedirs(os.path.join(d, "sumdb", "sum.golang.org", "lookup"))
    with open(os.path.join(d, "sumdb", "sum.golang.org", "lookup", "x@v1.0.0"), "w") as f:
        f.write("x")
    os.makedirs(os.path.join(d, "_gomirror", "lastuse", "example.com", "many", "@v"))
    with open(os.path.join(d, "_gomirror", "lastuse", "example.com", "many", "@v",
                           "v1.0.1"), "w") as f:
        f.write("1700000000\n")
    # Committed long ago (the .info's modification time is the commit).
    for v in ("v1.0.1", "v1.0.2"):
        os.utime(os.path.join(d, MANY, "@v", v + ".info"), (1672531200, 1672531200))
    return d, want


def basic(user, pw):
    import base64
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{pw}".encode()).decode()}


def pages(gm, headers, size=None):
    got, token, n = [], None, 0
    while True:
        q = {}
        if size is not None:
            q["pagesize"] = size
        if token is not None:
            q["token"] = token
        r = harness.http_get(f"{gm.url}/catalog?{urllib.parse.urlencode(q)}", headers=headers)
        eq(r.status, 200, f"/catalog page {n}: {r.text[:200]}")
        body = r.json()
        got += [(m["module"], m["version"]) for m in body["modules"]]
        n += 1
        check(n < 100, "the pages never end")
        token = body.get("next")
        if not token:
            return got, n


def test_catalog_pages_and_access(t):
    data, want = store(t)
    d = t.mkdtemp("auth")
    hp = os.path.join(d, "htpasswd")
    for i, (user, pw) in enumerate((("alice", "alice-pw"), ("bob", "bob-pw"))):
        p = subprocess.run(["htpasswd", "-b"] + (["-c"] if i == 0 else []) +
                           ["-B", hp, user, pw], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        check(p.returncode == 0, f"htpasswd: {p.stdout!r}")
    rules = os.path.join(d, "rules")
    with open(rules, "w") as f:
        f.write(RULES)
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, data_dir=data, auth_htpasswd=hp, auth_rules=rules)
    alice, bob = basic("alice", "alice-pw"), basic("bob", "bob-pw")

    got, n = pages(gm, alice, size=300)
    eq(n, 4, "pages of 300 over 1,003 versions")
    eq(len(got), len(set(got)), "a version listed twice")
    eq(sorted(got), sorted(want), "alice's catalog")
    got, n = pages(gm, alice)
    eq((n, len(got)), (2, 1003), "the default page size (1000)")
    r = harness.http_get(f"{gm.url}/catalog", headers=alice).json()
    eq(len(r["modules"]), 1000, "the first default page")
    got, n = pages(gm, alice, size=20000)
    eq((n, len(got)), (1, 1003), "a page size above 10000 is cut to 10000")
    for bad in ("0", "-1", "abc"):
        eq(harness.http_get(f"{gm.url}/catalog?pagesize={bad}", headers=alice).status, 400,
           f"pagesize={bad}")

    got, _ = pages(gm, bob, size=100)
    eq(sorted(got), sorted(w for w in want if w[0] != SECRET), "bob's catalog")
    eq(harness.http_get(f"{gm.url}/catalog").status, 401, "anonymous")
    eq(harness.http_get(f"{gm.url}/{MANY}/@v/v1.0.5.info", headers=alice).status, 200,
       "a catalogued version is served")

    # The command line: every committed version with its size and last use.
    p = subprocess.run([t.binary, "catalog", f"--storage=fs://{data}", "--log_level=error"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60, cwd=t.tmp)
    eq(p.returncode, 0, f"gomirror catalog: {p.stderr}")
    lines = [l.split() for l in p.stdout.splitlines() if not l.startswith("#")]
    eq(sorted((l[0], l[1]) for l in lines), sorted(want), "gomirror catalog's versions")
    row = {(l[0], l[1]): l for l in lines}
    info = os.path.getsize(os.path.join(data, MANY, "@v", "v1.0.3.info"))
    mod = os.path.getsize(os.path.join(data, MANY, "@v", "v1.0.3.mod"))
    eq(int(row[(MANY, "v1.0.3")][2]), info + mod, "the size of v1.0.3 (.info and .mod)")
    # Last use: the access record when there is one, else the commit.
    eq(row[(MANY, "v1.0.1")][3], "2023-11-14T22:13:20Z", "last use from the access record")
    eq(row[(MANY, "v1.0.2")][3], "2023-01-01T00:00:00Z", "last use from the commit")
    check(p.stdout.splitlines()[-1].startswith("# 1003 versions, "),
          f"the summary line: {p.stdout.splitlines()[-1]}")
    p = subprocess.run([t.binary, "catalog", "--json", f"--modules={SECRET}",
                        f"--storage=fs://{data}", "--log_level=error"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=60, cwd=t.tmp)
    eq([(e["module"], e["version"]) for e in json.loads(p.stdout)],
       [(SECRET, "v1.0.0"), (SECRET, "v1.1.0")], "--modules with --json")


if __name__ == "__main__":
    harness.main()
