"""The organisation checksum database (docs/sumdb.md) with the real go
client: GOPROXY=<gomirror> and GOSUMDB=<the org verifier key>, nothing else
(no GONOSUMDB, GOPRIVATE or -insecure), a fresh module cache. Private modules
(local git behind the go-get trick) and public ones download and build and
`go mod verify` passes; the client's cached tree head survives a restart and
later appends; three replicas on one RGW bucket and one Redis log different
versions at once into one consistent log; a replica killed with SIGKILL
mid-append leaves a log the client accepts; Redis down refuses appends; a
tampered zip or .mod in storage is refused with 502 and a SECURITY line;
lookups are authorized like the module; `gomirror sumdb keygen`; export
and import bundles carry the log (site B, with the same key and no route to
git, serves the go client what site A logged)."""

import hashlib
import io
import json
import os
import re
import stat
import subprocess
import struct
import tarfile
import threading
import time
import zipfile

import harness
import private_fixtures
from harness import Failure, check, eq, run_go

NEEDS_RGW = True
ORG = "sum.corp.example"
ALPHA = "git.corp.example/team/alpha"
BETA = "git.corp.example/team/beta"
BETA2 = "git.corp.example/team/beta/v2"
LEGACY = "git.corp.example/team/legacy"
LEDGER = "git.corp.example/payments/ledger"
HELLO = "example.com/hello"
PAUSE_ENV = "ORGSUMDB_TEST_APPEND_PAUSE_MS"


def pfx(t):
    return private_fixtures.ensure(t.runner.args.fixtures or os.path.join(
        os.path.dirname(t.binary), "fixtures"), log=None)


def keygen(t, name=ORG):
    """`gomirror sumdb keygen NAME --out FILE`: (key file, verifier key)."""
    path = t.path("keys", name + ".key")
    p = subprocess.run([t.binary, "sumdb", "keygen", name, "--out", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    eq(p.returncode, 0, f"sumdb keygen: {p.stderr.decode()}")
    lines = [l for l in p.stdout.decode().splitlines() if l and not l.startswith("#")]
    eq(len(lines), 1, f"keygen printed {p.stdout.decode()!r}")
    return path, lines[0]


def start(t, pm, gg, keyfile, extra_env=None, **keys):
    """gomirror with the private fixtures and the organisation database;
    extra_env reaches its environment (the test-only pause hook)."""
    flags = dict(private=pm["private"], vcs_gitconfig=pm["gitconfig"],
                 vcs_insecure=pm["insecure"], vcs_http_proxy=gg.url,
                 org_sumdb_name=ORG, org_sumdb_key=keyfile)
    flags.update(keys)
    if not extra_env:
        return t.start_gomirror(**flags)
    real = harness.clean_env

    def with_extra(home):
        env = real(home)
        env.update(extra_env)
        return env
    harness.clean_env = with_extra
    try:
        return t.start_gomirror(**flags)
    finally:
        harness.clean_env = real


def client(t, gm, vkey, **extra):
    """What a developer sets: GOPROXY and GOSUMDB, nothing else."""
    return t.go_env(gm.url, gosumdb=vkey, GONOSUMDB=None, GOPRIVATE=None,
                    GONOPROXY=None, GOINSECURE=None, **extra)


def go(env, *args, cwd=None, timeout=180):
    r = run_go(list(args), env, cwd=cwd, timeout=timeout, check=False)
    check("SECURITY ERROR" not in r.out + r.err, f"the go command saw a forked log:\n{r}")
    if not r.ok:
        raise Failure(str(r))
    return r


def tree_size(note_text):
    lines = note_text.split("\n")
    eq(lines[0], "go.sum database tree", "head note")
    return int(lines[1])


def latest(gm):
    r = gm.get(f"/sumdb/{ORG}/latest")
    eq(r.status, 200, f"/latest: {r.text}")
    return tree_size(r.text)


def logged(gm, n):
    """The (module, version) of every record of a log of n records, from its
    data tiles, and checks each record is the two go.sum lines."""
    out = []
    for k in range(0, n, 256):
        w = min(256, n - k)
        tile = f"{k // 256:03d}" + ("" if w == 256 else f".p/{w}")
        r = gm.get(f"/sumdb/{ORG}/tile/8/data/{tile}")
        eq(r.status, 200, f"data tile {tile}: {r.text}")
        recs = r.text.split("\n\n")
        eq(recs[-1], "", "data tile ends in a blank line")
        for i, rec in enumerate(recs[:-1]):
            lines = rec.split("\n")
            eq(lines[0], str(k + i), "record id")
            m, v, h = lines[1].split(" ")
            eq(lines[2].split(" ")[:2], [m, v + "/go.mod"], f"record {k + i}")
            check(h.startswith("h1:"), f"record {rec!r}")
            out.append((m, v))
    eq(len(out), n, "records in the data tiles")
    return out


def client_head(env):
    """The tree size of the head the go client has cached for the log."""
    with open(os.path.join(env["GOPATH"], "pkg", "sumdb", ORG, "latest")) as f:
        return tree_size(f.read())


def wait_log(gm, pattern, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        with open(gm.log, errors="replace") as f:
            if re.search(pattern, f.read()):
                return
        time.sleep(0.1)
    raise Failure(f"no log line matching {pattern!r}:\n{harness.tail(gm.log)}")


def content_offset(path):
    """The offset of the middle byte of the first file's (compressed)
    content in the zip at path: a change there changes what the go command
    would build, unlike a timestamp's."""
    with zipfile.ZipFile(path) as z:
        info = next(i for i in z.infolist() if i.compress_size > 0)
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        head = f.read(30)
    name_len, extra_len = struct.unpack("<HH", head[26:30])
    return info.header_offset + 30 + name_len + extra_len + info.compress_size // 2


def zip_key(module, version):
    return f"{module}/@v/{version}.zip"


# ------------------------------------------------------------------ tests

def test_keygen(t):
    path, vkey = keygen(t)
    eq(stat.S_IMODE(os.stat(path).st_mode), 0o600, "key file mode")
    with open(path) as f:
        skey = f.read()
    check(re.fullmatch(r"PRIVATE\+KEY\+sum\.corp\.example\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}\n",
                       skey), "signer key shape")
    check(re.fullmatch(r"sum\.corp\.example\+[0-9a-f]{8}\+[A-Za-z0-9+/]{44}", vkey),
          f"verifier key shape: {vkey}")
    eq(vkey.split("+")[1], skey.split("+")[3], "the two keys' hash")
    # Never over an existing file.
    p = subprocess.run([t.binary, "sumdb", "keygen", ORG, "--out", path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    check(p.returncode != 0 and b"not overwritten" in p.stderr, f"overwrite: {p.stderr!r}")
    with open(path) as f:
        eq(f.read(), skey, "key file after a refused keygen")
    # --check-config takes the pair, and refuses a key of another name, a
    # name without a key, and a name also proxied as a public database; the
    # key itself never appears in what it prints.
    data = f"fs://{t.path('data')}"
    ok = subprocess.run([t.binary, "--check-config", f"--storage={data}",
                         f"--org_sumdb_name={ORG}", f"--org_sumdb_key={path}"],
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    eq(ok.returncode, 0, f"--check-config: {ok.stderr.decode()}")
    secret = skey.strip().split("+")[-1]
    check(secret not in (ok.stdout + ok.stderr).decode(), "the key printed")
    for flags, want in [([f"--org_sumdb_name=sum.other", f"--org_sumdb_key={path}"],
                         "is for 'sum.corp.example'"),
                        ([f"--org_sumdb_name={ORG}"], "together"),
                        ([f"--org_sumdb_name={ORG}", f"--org_sumdb_key={path}",
                          f"--sumdb={ORG}=https://{ORG}"], "also a `sumdb` entry"),
                        ([f"--org_sumdb_name={ORG}", f"--org_sumdb_key={path}",
                          "--org_sumdb_public", "--sumdb_verify=warn"],
                         "needs sumdb_verify=strict")]:
        bad = subprocess.run([t.binary, "--check-config", f"--storage={data}", *flags],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
        check(bad.returncode != 0 and want in bad.stderr.decode(),
              f"{flags}: {bad.returncode} {bad.stderr.decode()!r}")
        check(secret not in bad.stderr.decode(), "the key in an error")
    # Without --out the signer key goes to stdout; the printed verifier key
    # is the go command's to parse (used as GOSUMDB in every test below).
    p = subprocess.run([t.binary, "sumdb", "keygen", "sum.two.example"],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    keys = [l for l in p.stdout.decode().splitlines() if l and not l.startswith("#")]
    eq(len(keys), 2, f"keygen to stdout: {p.stdout!r}")
    check(keys[0].startswith("PRIVATE+KEY+sum.two.example+"), "signer key first")


def test_private_and_public_modules_verified(t):
    pm = pfx(t)
    keyfile, vkey = keygen(t)
    up = t.start_upstream()
    sdb = t.start_sumdb(name="sumdb.test")
    gg = t.start_gogetproxy(roots=[], hosts=[pm["host"]], depth=2)
    data = t.mkdtemp("shared-data")
    gm = start(t, pm, gg, keyfile, upstream=up, sumdb=sdb, org_sumdb_public="true",
               data_dir=data)
    env = client(t, gm, vkey)
    src = t.scratch_module("example.com/orgapp", {
        "main.go": ('package main\n\nimport (\n\t"fmt"\n\n\t"example.com/hello"\n'
                    '\talpha "git.corp.example/team/alpha"\n'
                    '\tbeta "git.corp.example/team/beta/v2"\n'
                    '\t_ "git.corp.example/team/legacy"\n)\n\n'
                    'func main() { fmt.Println(hello.Hello(), alpha.Version, beta.Version) }\n'),
    })
    go(env, "get", f"{ALPHA}@v1.1.0", f"{BETA2}@v2.0.0", f"{LEGACY}@v2.0.0+incompatible",
       f"{HELLO}@v1.1.0", cwd=src)
    out = os.path.join(t.tmp, "orgapp")
    go(env, "build", "-o", out, ".", cwd=src)
    got = subprocess.run([out], stdout=subprocess.PIPE, timeout=30).stdout.decode()
    check("v1.1.0" in got and "v2.0.0" in got, f"app output: {got!r}")
    go(env, "mod", "verify", cwd=src)
    with open(os.path.join(src, "go.sum")) as f:
        gosum = f.read()
    want = t.fx["modules"][HELLO]["sums"]["v1.1.0"]
    check(f"{HELLO} v1.1.0 {want['Sum']}" in gosum, f"public go.sum line: {gosum}")
    check(f"{ALPHA} v1.1.0 h1:" in gosum, f"private go.sum line: {gosum}")
    # The log holds exactly the versions the client verified, each once, and
    # the public one only after it was proven against sumdb.test.
    n = latest(gm)
    recs = logged(gm, n)
    eq(len(set(recs)), n, f"a version logged twice: {recs}")
    for mv in [(ALPHA, "v1.1.0"), (BETA2, "v2.0.0"), (LEGACY, "v2.0.0+incompatible"),
               (HELLO, "v1.1.0")]:
        check(mv in recs, f"{mv} not logged: {recs}")
    check(any(f"lookup/{HELLO}@v1.1.0" in p for p in sdb.requests()), "hello not proven")
    check(not any("corp.example" in p for p in up.requests() + sdb.requests()),
          "a private path reached the public upstream or database")
    eq(client_head(env), n, "the client's cached head")
    with open(gm.log) as f:
        served = f.read()
    for what in (f"GET /sumdb/{ORG}/supported 200", f"GET /sumdb/{ORG}/lookup/{ALPHA}@v1.1.0 200",
                 f"GET /sumdb/{ORG}/lookup/{HELLO}@v1.1.0 200", f"GET /sumdb/{ORG}/tile/8/0/"):
        check(what in served, f"the client never asked {what}")
    # The cached head survives a restart and later appends: the client
    # checks each new head against it (tiles of the new tree).
    gm.stop()
    gm2 = start(t, pm, gg, keyfile, upstream=up, sumdb=sdb, org_sumdb_public="true",
                data_dir=data)
    eq(latest(gm2), n, "head after a restart")
    env["GOPROXY"] = gm2.url
    more = [f"{ALPHA}@v1.0.0", f"{BETA}@v1.0.0", f"{HELLO}@v1.0.0", f"{LEDGER}@v1.0.0"]
    go(env, "mod", "download", "-json", *more)
    n2 = latest(gm2)
    check(n2 >= n + 4, f"head {n2} after 4 more versions on {n}")
    eq(client_head(env), n2, "the client's cached head after the appends")
    eq(len(set(logged(gm2, n2))), n2, "a version logged twice")


def test_tampered_artifacts_refused(t):
    pm = pfx(t)
    keyfile, vkey = keygen(t)
    up = t.start_upstream()
    gg = t.start_gogetproxy(roots=[], hosts=[pm["host"]], depth=2)
    data = t.mkdtemp("tamper-data")
    gm = start(t, pm, gg, keyfile, upstream=up, data_dir=data, sumdb="")
    # The first lookup of a version commits it with its zip and logs it.
    r = gm.get(f"/sumdb/{ORG}/lookup/{ALPHA}@v1.0.0")
    eq(r.status, 200, f"lookup: {r.text}")
    m = re.match(r"(\d+)\n(\S+ v1\.0\.0 h1:\S+)\n(\S+ v1\.0\.0/go\.mod h1:\S+)\n\n"
                 r"go\.sum database tree\n(\d+)\n", r.text)
    check(m and m.group(1) == "0" and m.group(4) == "1", f"lookup body: {r.text!r}")
    eq(gm.get(f"/{ALPHA}/@v/v1.0.0.zip").status, 200, "zip before tampering")
    # A public module is not logged with org_sumdb_public off: a clear 404.
    r = gm.get(f"/sumdb/{ORG}/lookup/{HELLO}@v1.0.0")
    check(r.status == 404 and "org_sumdb_public" in r.text, f"public lookup: {r.status} {r.text}")
    gm.stop()
    path = os.path.join(data, zip_key(ALPHA, "v1.0.0"))
    with open(path, "rb") as f:
        orig = bytearray(f.read())
    bad = bytearray(orig)
    bad[content_offset(path)] ^= 0x01  # a byte of a file in it, not metadata
    with open(path, "wb") as f:
        f.write(bad)
    gm2 = start(t, pm, gg, keyfile, upstream=up, data_dir=data, sumdb="")
    r = gm2.get(f"/{ALPHA}/@v/v1.0.0.zip")
    eq(r.status, 502, f"tampered zip: {r.text[:200]}")
    eq(r.text.count("\n"), 1, "one-line reason")
    wait_log(gm2, r"SECURITY: organisation checksum database .*alpha@v1\.0\.0")
    check(re.search(r"^gomirror_orgsumdb_refused_total [1-9]", gm2.get("/metrics").text,
                    re.M), "the refusal is not counted in /metrics")
    eq(gm2.get(f"/{ALPHA}/@v/v1.0.0.mod").status, 200, ".mod still served")
    env = client(t, gm2, vkey)
    res = run_go(["mod", "download", "-json", f"{ALPHA}@v1.0.0"], env, check=False)
    check(not res.ok and "502" in res.out + res.err, f"go client got the zip:\n{res}")
    # A valid zip with other code in it (what an attacker would write).
    with open(path + ".orig", "wb") as f:
        f.write(orig)
    with zipfile.ZipFile(path + ".orig") as z, zipfile.ZipFile(path + ".x", "w") as alt:
        for i in z.infolist():
            body = z.read(i)
            if i.filename.endswith("alpha.go"):
                body = body.replace(b"v1.0.0", b"v6.6.6")
            alt.writestr(i, body)
    os.replace(path + ".x", path)
    r = gm2.get(f"/{ALPHA}/@v/v1.0.0.zip")
    eq(r.status, 502, f"re-packed zip: {r.text[:200]}")
    wait_log(gm2, r"SECURITY: .*stored zip of .*alpha@v1\.0\.0 has h1:\S+ but the log says")
    # Restored, it is served; a .mod changed afterwards is refused too.
    os.replace(path + ".orig", path)
    eq(gm2.get(f"/{ALPHA}/@v/v1.0.0.zip").body, bytes(orig), "restored zip")
    gm2.stop()
    mpath = os.path.join(data, f"{ALPHA}/@v/v1.0.0.mod")
    with open(mpath, "a") as f:
        f.write("// changed\n")
    gm3 = start(t, pm, gg, keyfile, upstream=up, data_dir=data, sumdb="")
    r = gm3.get(f"/{ALPHA}/@v/v1.0.0.mod")
    eq(r.status, 502, f"tampered .mod: {r.text}")
    eq(gm3.get(f"/{ALPHA}/@v/v1.0.0.info").status, 200, ".info")


def test_lookup_authorized_like_the_module(t):
    pm = pfx(t)
    keyfile, _vkey = keygen(t)
    up = t.start_upstream()
    gg = t.start_gogetproxy(roots=[], hosts=[pm["host"]], depth=2)
    d = t.mkdtemp("auth")
    p = subprocess.run([t.binary, "token", "new", "--name", "dev", "--groups", "team"],
                       stdout=subprocess.PIPE, timeout=10)
    token, line = [l for l in p.stdout.decode().splitlines() if l and not l.startswith("#")]
    with open(os.path.join(d, "tokens"), "w") as f:
        f.write(line + "\n")
    with open(os.path.join(d, "rules"), "w") as f:
        f.write("allow group:team git.corp.example/team/*\n")
    gm = start(t, pm, gg, keyfile, upstream=up, sumdb="",
               auth_tokens=os.path.join(d, "tokens"), auth_rules=os.path.join(d, "rules"),
               audit_log="off")
    auth = {"Authorization": f"Bearer {token}"}
    for headers in (auth, {}):
        mod = gm.get(f"/{LEDGER}/@v/v1.0.0.info", headers=headers)
        look = gm.get(f"/sumdb/{ORG}/lookup/{LEDGER}@v1.0.0", headers=headers)
        eq((look.status, look.text), (mod.status, mod.text), "lookup vs module endpoint")
        check(mod.status in (401, 403), f"ledger: {mod.status}")
    eq(gm.get(f"/sumdb/{ORG}/latest").status, 401, "anonymous /latest")
    eq(latest_with(gm, auth), 0, "nothing logged for a refused lookup")
    with open(gm.log) as f:
        check("ledger" not in "".join(l for l in f if "committed" in l), "ledger fetched")
    eq(gm.get(f"/sumdb/{ORG}/lookup/{ALPHA}@v1.0.0", headers=auth).status, 200, "allowed")
    eq(latest_with(gm, auth), 1, "logged on an allowed lookup")


def latest_with(gm, headers):
    r = gm.get(f"/sumdb/{ORG}/latest", headers=headers)
    eq(r.status, 200, f"/latest: {r.text}")
    return tree_size(r.text)


def test_sigkill_mid_append(t):
    pm = pfx(t)
    keyfile, vkey = keygen(t)
    up = t.start_upstream()
    gg = t.start_gogetproxy(roots=[], hosts=[pm["host"]], depth=2)
    data = t.mkdtemp("kill-data")
    gm = start(t, pm, gg, keyfile, upstream=up, data_dir=data, sumdb="")
    env = client(t, gm, vkey)
    go(env, "mod", "download", "-json", f"{ALPHA}@v1.0.0")
    eq(client_head(env), 1, "client head")
    gm.stop()
    # An append that pauses between its tiles and its head, killed there.
    gm2 = start(t, pm, gg, keyfile, extra_env={PAUSE_ENV: "60000"}, upstream=up,
                data_dir=data, sumdb="")
    def fetch():
        try:
            harness.http_get(f"{gm2.url}/{ALPHA}/@v/v1.1.0.zip", timeout=90)
        except OSError:
            pass  # the replica is killed mid-request
    th = threading.Thread(target=fetch, daemon=True)
    th.start()
    wait_log(gm2, re.escape(PAUSE_ENV) + r": pausing")
    gm2.kill()
    root = os.path.join(data, "sumdb", ORG)
    with open(os.path.join(root, "latest")) as f:
        eq(tree_size(f.read()), 1, "head after the kill")
    check(os.path.exists(os.path.join(root, "record", "1")), "the killed append's record")
    check(os.path.exists(os.path.join(root, "tile/8/0/000.p/2")), "its tile")
    check(os.path.exists(os.path.join(root, "index", f"{ALPHA}@v1.1.0")), "its index entry")
    check(not os.path.exists(os.path.join(data, f"{ALPHA}/@v/v1.1.0.info")),
          "the version was committed without its record")
    # The next replica serves the old head, appends over the leftovers, and
    # the client (with its cached head) accepts every new head.
    gm3 = start(t, pm, gg, keyfile, upstream=up, data_dir=data, sumdb="")
    eq(latest(gm3), 1, "head served after the kill")
    r = gm3.get(f"/sumdb/{ORG}/lookup/{ALPHA}@v1.1.0")
    eq(r.status, 200, f"lookup after the kill: {r.text}")
    check(r.text.startswith("1\n"), f"record id reused: {r.text!r}")
    env["GOPROXY"] = gm3.url
    go(env, "mod", "download", "-json", f"{ALPHA}@v1.1.0", f"{BETA}@v1.0.0")
    eq(latest(gm3), 3, "head after two more appends")
    eq(client_head(env), 3, "client head")
    eq(sorted(logged(gm3, 3)), sorted([(ALPHA, "v1.0.0"), (ALPHA, "v1.1.0"), (BETA, "v1.0.0")]),
       "records")


def test_three_replicas_one_log(t):
    pm = pfx(t)
    keyfile, vkey = keygen(t)
    up = t.start_upstream()
    gg = t.start_gogetproxy(roots=[], hosts=[pm["host"]], depth=2)
    redis = t.start_redis()
    prefix = f"{t.name}/shared/"
    reps = [start(t, pm, gg, keyfile, upstream=up, sumdb="", storage="s3", s3_prefix=prefix,
                  meta=redis.url, vcs_workers=8) for _ in range(3)]
    a = pm["modules"][ALPHA]
    versions = [(ALPHA, "v1.0.0"), (ALPHA, "v1.1.0"), (ALPHA, a["pseudo"]["master"]),
                (ALPHA, a["pseudo"]["feature"]), (BETA, "v1.0.0"), (BETA2, "v2.0.0"),
                (LEGACY, "v1.0.0"), (LEGACY, "v2.0.0+incompatible")]
    # Each version asked of two replicas at once: different versions commit
    # on different replicas at the same time, and some the same version.
    urls = [f"{reps[(i + k) % 3].url}/{m}/@v/{v}.zip"
            for i, (m, v) in enumerate(versions) for k in (0, 1)]
    out = [None] * len(urls)
    barrier = threading.Barrier(len(urls))

    def one(i):
        barrier.wait()
        out[i] = harness.http_get(urls[i], timeout=120)
    ths = [threading.Thread(target=one, args=(i,)) for i in range(len(urls))]
    for th in ths:
        th.start()
    for th in ths:
        th.join(150)
    bad = [(u, r and r.status, r and r.text[:200]) for u, r in zip(urls, out)
           if r is None or r.status != 200]
    check(not bad, f"zips failed: {bad}")
    time.sleep(1.1)  # past every replica's head cache
    for gm in reps:
        eq(latest(gm), len(versions), f"log size at {gm.url}")
    eq(sorted(logged(reps[0], len(versions))), sorted(versions), "the records")
    heads = {gm.get(f"/sumdb/{ORG}/latest").text for gm in reps}
    eq(len(heads), 1, "replicas serve one head")
    # The go client through each replica in turn, one cached head.
    env = client(t, reps[0], vkey)
    for i, gm in enumerate(reps):
        env["GOPROXY"] = gm.url
        go(env, "mod", "download", "-json", *[f"{m}@{v}" for m, v in versions[i::3]])
    eq(client_head(env), len(versions), "the client's head")
    # Redis down: no replica may append on its own, so nothing is committed.
    redis.stop()
    r = reps[1].get(f"/{LEDGER}/@v/v1.0.0.zip", timeout=60)
    eq(r.status, 503, f"append with Redis down: {r.text}")
    check("lock" in r.text, f"reason: {r.text}")
    keys = reps[1].stored_keys()
    check(f"{LEDGER}/@v/v1.0.0.info" not in keys, "committed without its record")
    eq(latest(reps[2]), len(versions), "log size with Redis down")


# ------------------------------------------------------- bundles (docs/bundles.md)

def gm_cli(t, *args):
    """gomirror with a subcommand: (exit status, stdout, stderr)."""
    env = harness.clean_env(t.mkdtemp("home"))
    env["TMPDIR"] = t.mkdtemp("spool")
    r = subprocess.run([t.binary, *args], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120, cwd=t.tmp, text=True)
    check("Sanitizer" not in r.stderr and "runtime error:" not in r.stderr,
          f"gomirror {args[0]}: sanitizer report:\n{r.stderr[-4000:]}")
    return r.returncode, r.stdout, r.stderr


def gm_ok(t, *args):
    rc, out, err = gm_cli(t, *args)
    if rc != 0:
        raise Failure(f"gomirror {args[0]}: exit {rc}\n{out}\n{err[-3000:]}")
    return out, err


def bundle_read(path):
    """[(name, bytes)] of a bundle, in archive order."""
    p = subprocess.run(["zstd", "-d", "-c", "-q", path], stdout=subprocess.PIPE, timeout=60)
    eq(p.returncode, 0, "zstd -d")
    with tarfile.open(fileobj=io.BytesIO(p.stdout)) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers()]


def bundle_write(members, path, manifest=True):
    """A bundle of members (the last one the manifest); manifest=True
    rewrites the manifest's sizes and SHA-256s to match, as a forger would."""
    if manifest:
        man = json.loads(members[-1][1])
        by = dict(members)
        for f in man["files"]:
            f["size"] = len(by[f["path"]])
            f["sha256"] = hashlib.sha256(by[f["path"]]).hexdigest()
        members = members[:-1] + [(members[-1][0], json.dumps(man).encode())]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data))
    p = subprocess.run(["zstd", "-q", "-c", "-"], input=raw.getvalue(),
                       stdout=subprocess.PIPE, timeout=60)
    eq(p.returncode, 0, "zstd")
    with open(path, "wb") as f:
        f.write(p.stdout)


def stored_files(root):
    out = set()
    for d, _dirs, files in os.walk(root):
        out |= {os.path.relpath(os.path.join(d, f), root) for f in files}
    return out


def test_bundle_carries_the_log(t):
    """Site A logs private versions and exports them; site B (same name and
    key, upstream off, no git) imports the bundle and the go client with
    GOSUMDB=<org key> verifies them through B; a repeated import changes
    nothing; a later bundle extends B's log and the client's cached head
    follows; a forged record or zip is refused; another key or a diverged
    log leaves the log out with one warning and imports the versions."""
    pm = pfx(t)
    keyfile, vkey = keygen(t)
    up = t.start_upstream()
    gg = t.start_gogetproxy(roots=[], hosts=[pm["host"]], depth=2)
    data_a = t.mkdtemp("site-a")
    gm_a = start(t, pm, gg, keyfile, upstream=up, data_dir=data_a, sumdb="")
    first = [(ALPHA, "v1.0.0"), (ALPHA, "v1.1.0"), (BETA, "v1.0.0")]
    go(client(t, gm_a, vkey), "mod", "download", "-json", *[f"{m}@{v}" for m, v in first])
    eq(latest(gm_a), 3, "A's log")
    org = [f"--org_sumdb_name={ORG}", f"--org_sumdb_key={keyfile}",
           f"--private={pm['private']}", "--sumdb="]
    bundle = t.path("org.gmb")
    out, _ = gm_ok(t, "export", "--out", bundle, f"--storage=fs://{data_a}", *org)
    check(f"organisation checksum database {ORG}: 3 records, its head of 3 records" in out,
          f"export summary: {out!r}")
    members = bundle_read(bundle)
    names = [n for n, _ in members]
    man = json.loads(members[-1][1])
    eq((man["org_sumdb"]["name"], man["org_sumdb"]["vkey"], man["org_sumdb"]["tree"]),
       (ORG, vkey, 3), "the manifest's organisation log")
    for n in ("latest", "record/0", "record/1", "record/2", "tile/8/0/000.p/3",
              f"index/{ALPHA}@v1.0.0", f"index/{BETA}@v1.0.0"):
        check(f"sumdb/{ORG}/{n}" in names, f"the bundle lacks sumdb/{ORG}/{n}: {names}")
    with open(os.path.join(data_a, "sumdb", ORG, "latest"), "rb") as f:
        head_a = f.read()
    eq(dict(members)[f"sumdb/{ORG}/latest"], head_a, "the bundled head")

    # B: same name and key, no upstream, no git.
    data_b = t.mkdtemp("site-b")
    out, _ = gm_ok(t, "import", bundle, f"--storage=fs://{data_b}", *org)
    check(f"organisation checksum database {ORG}: 3 records, head of 3 records: imported"
          in out, f"import summary: {out!r}")
    root_b = os.path.join(data_b, "sumdb", ORG)
    with open(os.path.join(root_b, "latest"), "rb") as f:
        eq(f.read(), head_a, "B's head")
    before = {k: os.stat(os.path.join(data_b, k)).st_mtime_ns for k in stored_files(data_b)}
    out, _ = gm_ok(t, "import", bundle, f"--storage=fs://{data_b}", *org)
    check(" 0 written" in out and "(0 newly committed)" in out and ": already here" in out,
          f"a repeated import changed something: {out!r}")
    eq({k: os.stat(os.path.join(data_b, k)).st_mtime_ns for k in stored_files(data_b)},
       before, "B's files after a repeated import")
    gm_b = t.start_gomirror(upstream="off", sumdb="", data_dir=data_b, private=pm["private"],
                            org_sumdb_name=ORG, org_sumdb_key=keyfile)
    env = client(t, gm_b, vkey)
    go(env, "mod", "download", "-json", *[f"{m}@{v}" for m, v in first])
    eq(client_head(env), 3, "the client's head from B")
    eq(latest(gm_b), 3, "B appended to the log")

    # A logs one more version; its next bundles extend B's log (B's head is
    # a prefix), and the client's cached head checks the new one. What an
    # append killed at B left past its head (a record, its index entry, a
    # tile of no committed tree) is removed, or replaced by A's.
    eq(gm_a.get(f"/{BETA2}/@v/v2.0.0.zip", timeout=60).status, 200, "beta/v2 at A")
    gm_b.stop()
    left = {"record/3": f"{LEDGER} v1.0.0 h1:x=\n{LEDGER} v1.0.0/go.mod h1:y=\n",
            f"index/{LEDGER}@v1.0.0": "3\n", "tile/8/0/000.p/4": "x" * 128,
            "tile/8/0/000.p/5": "x" * 160}
    for k, v in left.items():
        os.makedirs(os.path.dirname(os.path.join(root_b, k)), exist_ok=True)
        with open(os.path.join(root_b, k), "w") as f:
            f.write(v)
    alpha_only, bundle2 = t.path("alpha.gmb"), t.path("org2.gmb")
    gm_ok(t, "export", "--out", alpha_only, "--modules", ALPHA, f"--storage=fs://{data_a}", *org)
    out, _ = gm_ok(t, "import", alpha_only, f"--storage=fs://{data_b}", *org)
    check("2 records, head of 4 records: imported" in out, f"alpha's bundle: {out!r}")
    for k in ("record/3", f"index/{LEDGER}@v1.0.0", "tile/8/0/000.p/5"):
        check(not os.path.exists(os.path.join(root_b, k)), f"B's leftover {k} is still there")
    with open(os.path.join(root_b, "tile/8/0/000.p/4"), "rb") as f, \
            open(os.path.join(data_a, "sumdb", ORG, "tile/8/0/000.p/4"), "rb") as g:
        eq(f.read(), g.read(), "B's tile 000.p/4")
    # The whole bundle under the same head: the records B lacks, not the head.
    gm_ok(t, "export", "--out", bundle2, f"--storage=fs://{data_a}", *org)
    out, _ = gm_ok(t, "import", bundle2, f"--storage=fs://{data_b}", *org)
    check("head of 4 records: already here" in out and " 0 written" not in out,
          f"second bundle: {out!r}")
    for k in ("record/3", f"index/{BETA2}@v2.0.0"):
        with open(os.path.join(root_b, k), "rb") as f, \
                open(os.path.join(data_a, "sumdb", ORG, k), "rb") as g:
            eq(f.read(), g.read(), f"B's {k}")
    gm_b = t.start_gomirror(upstream="off", sumdb="", data_dir=data_b, private=pm["private"],
                            org_sumdb_name=ORG, org_sumdb_key=keyfile)
    env["GOPROXY"] = gm_b.url
    go(env, "mod", "download", "-json", f"{BETA2}@v2.0.0")
    eq(client_head(env), 4, "the client's head after the second bundle")
    eq(latest(gm_b), 4, "B's log")

    # The same imports into S3 (a first copy kept by put, replaced by the
    # log's writes), with a killed append's leftovers planted there too.
    g = t.runner.rgw
    prefix = f"{t.name}/s3-b/"
    s3 = [f"--storage=s3://{g.bucket}/{prefix}", f"--s3_endpoint={g.endpoint}",
          f"--s3_region={g.region}", f"--s3_access_key={g.access_key}",
          f"--s3_secret_key={g.secret_key}", *org]
    gm_ok(t, "import", bundle, *s3)
    for k in ("record/3", f"index/{LEDGER}@v1.0.0", "tile/8/0/000.p/5"):
        body = t.path("planted")
        with open(body, "w") as f:
            f.write(left[k])
        r = g.aws("s3api", "put-object", "--bucket", g.bucket, "--key",
                  f"{prefix}sumdb/{ORG}/{k}", "--body", body)
        eq(r.returncode, 0, f"planting {k}: {r.stderr}")
    for b in (alpha_only, bundle2):
        gm_ok(t, "import", b, *s3)
    out, _ = gm_ok(t, "import", bundle2, *s3)
    check(" 0 written" in out and "head of 4 records: already here" in out,
          f"a repeated import into S3: {out!r}")
    gm_s3 = t.start_gomirror(upstream="off", sumdb="", storage="s3", s3_prefix=prefix,
                             private=pm["private"], org_sumdb_name=ORG, org_sumdb_key=keyfile)
    keys = gm_s3.stored_keys()
    check(f"sumdb/{ORG}/index/{LEDGER}@v1.0.0" not in keys and
          f"sumdb/{ORG}/tile/8/0/000.p/5" not in keys, f"S3 leftovers: {keys}")
    eq(gm_s3.read_key(f"sumdb/{ORG}/record/3"),
       open(os.path.join(data_a, "sumdb", ORG, "record/3"), "rb").read(), "S3 record/3")
    env_s3 = client(t, gm_s3, vkey)
    go(env_s3, "mod", "download", "-json", *[f"{m}@{v}" for m, v in first + [(BETA2, "v2.0.0")]])
    eq(client_head(env_s3), 4, "the client's head from S3")

    # Forged bundles (manifest rebuilt to match) are refused, nothing stored.
    members = bundle_read(bundle)
    by = dict(members)
    rec = f"sumdb/{ORG}/record/1"
    l0, l1 = by[rec].split(b"\n")[:2]  # the zip's h1 swapped for the .mod's
    forged_rec = b" ".join(l0.split(b" ")[:2] + l1.split(b" ")[2:]) + b"\n" + l1 + b"\n"
    check(forged_rec != by[rec] and len(forged_rec) == len(by[rec]), "forged record")
    zip_name = f"{ALPHA}/@v/v1.0.0.zip"
    with zipfile.ZipFile(io.BytesIO(by[zip_name])) as z, io.BytesIO() as alt:
        with zipfile.ZipFile(alt, "w") as w:
            for i in z.infolist():
                body = z.read(i)
                if i.filename.endswith("alpha.go"):
                    body = body.replace(b"v1.0.0", b"v6.6.6")
                w.writestr(i, body)
        forged_zip = alt.getvalue()
    for what, name, data, words in (
            ("a forged record", rec, forged_rec, [rec, "signed tree"]),
            ("a repacked zip", zip_name, forged_zip, [zip_name, "organisation checksum database record says"])):
        bad = t.path("forged.gmb")
        bundle_write([(n, data if n == name else d) for n, d in members], bad)
        store = t.mkdtemp("forged")
        rc, out, err = gm_cli(t, "import", bad, f"--storage=fs://{store}", *org)
        lines = [l for l in err.splitlines() if l.startswith("gomirror: ")]
        check(rc != 0 and len(lines) == 1, f"{what}: exit {rc}\n{err}")
        for w in words:
            check(w in lines[0], f"{what}: {w!r} not in {lines[0]!r}")
        eq(stored_files(store), set(), f"{what}: files stored")
    # A flipped byte without a forged manifest: the manifest check.
    bad = t.path("flipped.gmb")
    bundle_write([(n, forged_rec if n == rec else d) for n, d in members], bad, manifest=False)
    rc, _, err = gm_cli(t, "import", bad, f"--storage=fs://{t.mkdtemp('flipped')}", *org)
    check(rc != 0 and "SHA-256" in err and rec in err, f"flipped record: {rc} {err}")

    # Another key under the same name: the versions, not the log, one warning.
    other = t.path("keys", "other.key")
    p = subprocess.run([t.binary, "sumdb", "keygen", ORG, "--out", other],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    eq(p.returncode, 0, f"keygen: {p.stderr!r}")
    data_c = t.mkdtemp("site-c")
    out, err = gm_ok(t, "import", bundle, f"--storage=fs://{data_c}", f"--org_sumdb_name={ORG}",
                     f"--org_sumdb_key={other}", f"--private={pm['private']}", "--sumdb=")
    warns = [l for l in err.splitlines() if "without its log" in l]
    eq(len(warns), 1, f"one warning line: {err}")
    check("not imported (another name or key here)" in out and "(3 newly committed)" in out,
          f"other key: {out!r}")
    check(not os.path.exists(os.path.join(data_c, "sumdb")), "the log imported under another key")
    check(os.path.exists(os.path.join(data_c, f"{ALPHA}/@v/v1.1.0.info")), "versions not imported")

    # A log of its own that diverged (another record 0): left as it is.
    data_d = t.mkdtemp("site-d")
    gm_d = start(t, pm, gg, keyfile, upstream=up, data_dir=data_d, sumdb="")
    eq(gm_d.get(f"/{LEDGER}/@v/v1.0.0.zip", timeout=60).status, 200, "ledger at D")
    gm_d.stop()
    with open(os.path.join(data_d, "sumdb", ORG, "latest"), "rb") as f:
        head_d = f.read()
    out, err = gm_ok(t, "import", bundle, f"--storage=fs://{data_d}", *org)
    warns = [l for l in err.splitlines() if "its log is not imported" in l]
    eq(len(warns), 1, f"one warning line: {err}")
    check("diverged" in warns[0], f"warning: {warns[0]}")
    check("not imported (this site's log has diverged)" in out and "(3 newly committed)" in out,
          f"diverged: {out!r}")
    with open(os.path.join(data_d, "sumdb", ORG, "latest"), "rb") as f:
        eq(f.read(), head_d, "D's head after the refused log")


if __name__ == "__main__":
    harness.main()
