"""Bundles for air-gapped sites: `gomirror export` on site A (fs storage,
warmed through the static upstream and a real checksum database by the real
go client), `gomirror import` into site B (S3 on a real Ceph RGW), then B
with the upstream and the checksum database gone serves the real go client
with GOSUMDB on: download, `go mod verify` and build. A bundle with one
flipped byte is refused naming the file, with nothing stored; an interrupted
import finishes on rerun and a repeated one writes nothing; with Redis, an
import records what it commits in the committed index; a 1 GiB bundle
exports and imports in bounded memory (sampled RSS)."""

import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import threading
import time
import zipfile

import harness  # noqa: I001  (puts tests/tools on sys.path)
import fixtures
from harness import Failure, check, eq, run_go

NEEDS_RGW = True
SUMDB = "sumdb.test"
MANIFEST = "gomirror-bundle.json"
# Set once per run: site A warmed and exported (built by the first test that
# needs it, reused by the others so the file stays within its time budget).
SITE_A = {}


def escape(path):
    return "".join("!" + c.lower() if c.isupper() else c for c in path)


def app_module(t):
    req = "".join(f"\t{m} {v}\n" for m, v in fixtures.APP_DEPS)
    main = fixtures.APP_MAIN.replace('"example.com/hello/v2"', 'hello2 "example.com/hello/v2"')
    return t.scratch_module("example.com/app", {
        "go.mod": f"module example.com/app\n\ngo 1.19\n\nrequire (\n{req})\n",
        "main.go": main,
    })


def build_app(t, env, src):
    out = os.path.join(t.mkdtemp("bin"), "app")
    run_go(["build", "-o", out, "."], env, cwd=src)
    got = subprocess.run([out], stdout=subprocess.PIPE, timeout=30).stdout.decode().split("\n")
    eq([l for l in got if l], t.fx["app"]["output"], "app output")


def cli(t, *args, timeout=300, env=None):
    """gomirror with a subcommand; a CompletedProcess with text output."""
    e = harness.clean_env(t.mkdtemp("home"))
    e["TMPDIR"] = t.mkdtemp("spool")
    e.update(env or {})
    r = subprocess.run([t.binary, *[str(a) for a in args]], env=e, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout, cwd=t.tmp, text=True)
    no_sanitizer_report(r, args[0])
    return r


def no_sanitizer_report(r, what):
    """The sanitizer build reports leaks and undefined behaviour on stderr;
    an error exit must not hide one."""
    for line in r.stderr.splitlines():
        if "Sanitizer" in line or "runtime error:" in line:
            raise Failure(f"gomirror {what}: sanitizer report:\n{r.stderr[-4000:]}")


def ok(r, what):
    if r.returncode != 0:
        raise Failure(f"{what}: exit {r.returncode}\nstdout: {r.stdout[-2000:]}\n"
                      f"stderr: {r.stderr[-3000:]}")
    return r


def refusal(r, what, *words):
    """A non-zero exit whose error is one line (the last of stderr, which
    may hold log lines before it) with every word in it."""
    check(r.returncode != 0, f"{what}: exit 0\nstdout: {r.stdout}")
    lines = [l for l in r.stderr.splitlines() if l.startswith("gomirror: ")]
    eq(len(lines), 1, f"{what}: one error line in {r.stderr!r}")
    for w in words:
        check(w in lines[0], f"{what}: {w!r} not in {lines[0]!r}")
    return lines[0]


def s3_flags(t, prefix):
    g = t.runner.rgw
    return [f"--storage=s3://{g.bucket}/{prefix}", f"--s3_endpoint={g.endpoint}",
            f"--s3_region={g.region}", f"--s3_access_key={g.access_key}",
            f"--s3_secret_key={g.secret_key}"]


def s3_objects(t, prefix):
    """{key relative to prefix: (size, etag, last modified)} of an S3 prefix."""
    r = t.runner.rgw.aws("s3api", "list-objects-v2", "--bucket", t.runner.rgw.bucket,
                         "--prefix", prefix, "--output", "json")
    if r.returncode != 0:
        raise Failure(f"aws s3api list-objects-v2: {r.stderr.strip()}")
    objs = json.loads(r.stdout or "{}").get("Contents", [])
    return {o["Key"][len(prefix):]: (o["Size"], o["ETag"], o["LastModified"]) for o in objs}


def s3_delete(t, prefix, keys):
    objs = {"Objects": [{"Key": prefix + k} for k in keys], "Quiet": True}
    r = t.runner.rgw.aws("s3api", "delete-objects", "--bucket", t.runner.rgw.bucket,
                         "--delete", json.dumps(objs))
    if r.returncode != 0:
        raise Failure(f"aws s3api delete-objects: {r.stderr.strip()}")


def read_bundle(path):
    """The bundle's tar bytes (decompressed with the zstd command)."""
    p = subprocess.run(["zstd", "-d", "-c", "-q", path], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        raise Failure(f"zstd -d {path}: {p.stderr.decode()[-500:]}")
    return p.stdout


def bundle_members(path):
    """[(name, bytes)] of a bundle, in archive order."""
    with tarfile.open(fileobj=io.BytesIO(read_bundle(path))) as tf:
        return [(m.name, tf.extractfile(m).read()) for m in tf.getmembers()]


def write_bundle(tar_bytes, path):
    p = subprocess.run(["zstd", "-q", "-c", "-"], input=tar_bytes, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=120)
    if p.returncode != 0:
        raise Failure(f"zstd: {p.stderr.decode()[-500:]}")
    with open(path, "wb") as f:
        f.write(p.stdout)


def site_a(t):
    """Site A warmed by the go client building the app with GOSUMDB on
    (through A), then exported. Returns SITE_A's dict."""
    if SITE_A:
        return SITE_A
    sdb = t.start_sumdb(name=SUMDB)
    up = t.start_upstream()
    store = os.path.join(t.runner.tmp, "site-a")
    # The database's entry names its verifier key, as sum.golang.org's does
    # by default: gomirror proves what it answers (sumdb_verify=strict).
    sumdb = f"{sdb.key}={sdb.url}"
    gm = t.start_gomirror(upstream=up, sumdb=sumdb, data_dir=store)
    env = t.go_env(gm.url, gosumdb=sdb.key, GONOSUMDB=None, GOPRIVATE=None, GOINSECURE=None)
    build_app(t, env, app_module(t))
    check(any(l.startswith("GET /tile/") for l in sdb.requests()),
          "warming A fetched no tile from the checksum database")
    bundle = os.path.join(t.runner.tmp, "site-a.gmb")
    flags = [f"--storage=fs://{store}", f"--sumdb={sumdb}"]
    r = ok(cli(t, "export", "--out", bundle, *flags), "export A")
    check("exported" in r.stdout, f"export summary: {r.stdout!r}")
    # A outlives this test (the harness stops it at exit): the next tests
    # export from it again, and test_air_gapped_site stops it.
    for p in (sdb, up, gm):
        t.procs.remove(p)
    SITE_A.update(sdb=sdb, up=up, gm=gm, store=store, bundle=bundle, flags=flags,
                  sumdb=sumdb, key=sdb.key)
    return SITE_A


def test_export_bundle_layout(t):
    """The bundle holds each committed version's .mod, .zip and .info under
    its storage key (.info last), its lookup, /latest, hash tiles, and the
    manifest last, with the right size and SHA-256 of every other entry."""
    a = site_a(t)
    members = bundle_members(a["bundle"])
    names = [n for n, _ in members]
    eq(names[-1], MANIFEST, "the manifest is the last entry")
    man = json.loads(members[-1][1])
    eq((man["format"], man["format_version"], man["sumdb"]), ("gomirror-bundle", 1, SUMDB),
       "manifest header")
    listed = {f["path"]: f for f in man["files"]}
    eq(sorted(listed), sorted(names[:-1]), "the manifest lists every other entry")
    for n, data in members[:-1]:
        eq((len(data), hashlib.sha256(data).hexdigest()),
           (listed[n]["size"], listed[n]["sha256"]), f"manifest entry of {n}")
    stored = set()
    for dirpath, _dirs, files in os.walk(a["store"]):
        stored |= {os.path.relpath(os.path.join(dirpath, f), a["store"]) for f in files}
    for m, v in fixtures.APP_DEPS:
        base = f"{escape(m)}/@v/{escape(v)}"
        for ext in (".mod", ".zip", ".info"):
            check(base + ext in names, f"bundle lacks {base + ext}")
        check(names.index(base + ".info") > names.index(base + ".zip") >
              names.index(base + ".mod"), f"{base}: .mod, .zip, then .info")
        look = f"sumdb/{SUMDB}/lookup/{escape(m)}@{escape(v)}"
        check(look in names, f"bundle lacks {look}")
    # Every version committed at A is in the bundle, and nothing else of A's.
    infos = sorted(k for k in stored if k.endswith(".info") and not k.startswith("sumdb/"))
    eq(sorted(n for n in names if n.endswith(".info")), infos, "versions exported")
    eq(len(man["versions"]), len(infos), "manifest versions")
    check(f"sumdb/{SUMDB}/latest" in names, "bundle lacks /latest")
    tiles = [n for n in names if n.startswith(f"sumdb/{SUMDB}/tile/8/0/")]
    check(tiles, f"bundle has no hash tiles: {names}")
    check(not any("/tile/8/data/" in n for n in names), "data tiles are not needed")


def test_export_selection(t):
    """--modules keeps only matching modules (and their lookups); --since
    compares the time a version was committed here (its .info's mtime)."""
    a = site_a(t)
    out = t.path("hello.gmb")
    ok(cli(t, "export", "--out", out, "--modules", "example.com/hello", *a["flags"]),
       "export --modules")
    names = [n for n, _ in bundle_members(out)]
    mods = {n.split("/@v/")[0] for n in names if "/@v/" in n}
    # GOPRIVATE syntax: a pattern matches path prefixes, /v2 included.
    eq(mods, {"example.com/hello", "example.com/hello/v2"},
       "modules exported with --modules example.com/hello")
    check(any(n.startswith(f"sumdb/{SUMDB}/lookup/example.com/hello@") for n in names),
          "the lookups come with the selection")
    check(not any("lookup/example.com/legacy" in n for n in names), "other modules' lookups")
    r = ok(cli(t, "export", "--out", t.path("future.gmb"), "--since", "2999-01-01T00:00:00Z",
               *a["flags"]), "export --since future")
    check("exported 0 versions" in r.stdout, f"--since in the future: {r.stdout!r}")
    r = ok(cli(t, "export", "--out", t.path("recent.gmb"), "--since", "1h", *a["flags"]),
           "export --since 1h")
    check("exported 0 versions" not in r.stdout, f"--since 1h exported nothing: {r.stdout!r}")
    for bad, word in (("--since=yesterday", "--since"), ("--modules=[", "--modules")):
        refusal(cli(t, "export", "--out", t.path("x.gmb"), bad, *a["flags"]), bad, word)
    refusal(cli(t, "export", *a["flags"]), "export without --out", "--out")
    check(not os.path.exists(t.path("x.gmb")), "a refused export left a file")


def test_air_gapped_site(t):
    """Import into B (S3), stop the upstream and the checksum database, and
    build with the real go client through B alone, GOSUMDB on."""
    a = site_a(t)
    prefix = f"{t.name}/b/"
    r = ok(cli(t, "import", a["bundle"], *s3_flags(t, prefix), f"--sumdb={a['sumdb']}"),
           "import into B")
    check("imported" in r.stdout, f"import summary: {r.stdout!r}")
    objs = s3_objects(t, prefix)
    for m, v in fixtures.APP_DEPS:
        base = f"{escape(m)}/@v/{escape(v)}"
        for ext in (".mod", ".zip", ".info"):
            check(base + ext in objs, f"B lacks {base + ext}")
    check(f"sumdb/{SUMDB}/latest" in objs, "B lacks the checksum database's /latest")
    a["sdb"].stop()
    a["up"].stop()
    a["gm"].stop()
    check(not harness.port_open(a["sdb"].port), "the checksum database still answers")
    # B names the database with its key and the default sumdb_verify=strict:
    # gomirror proves every bundled lookup and tile itself (against the
    # bundled /latest and tiles, the database being out of reach), and the
    # go command verifies every answer again on its side.
    b = t.start_gomirror(upstream="off", sumdb=a["sumdb"], storage="s3",
                         s3_prefix=prefix, sumdb_verify="strict")
    env = t.go_env(b.url, gosumdb=a["key"], GONOSUMDB=None, GOPRIVATE=None, GOINSECURE=None)
    src = app_module(t)
    build_app(t, env, src)
    run_go(["mod", "verify"], env, cwd=src)
    with open(os.path.join(src, "go.sum")) as f:
        gosum = f.read()
    for m, v in fixtures.APP_DEPS:
        check(f"{m} {v} h1:" in gosum, f"go.sum lacks {m} {v}: {gosum}")
    # The go command really checked the database's answers (it keeps the
    # tree head it verified), and got them from B.
    check(os.path.exists(os.path.join(env["GOPATH"], "pkg", "sumdb", SUMDB, "latest")),
          "the go command kept no verified tree head")
    with open(b.log, errors="replace") as f:
        log = f.read()
    check(f"/sumdb/{SUMDB}/lookup/" in log and f"/sumdb/{SUMDB}/tile/" in log,
          "B served no checksum-database lookup or tile")
    # A module the bundle does not hold is a clean failure, not a hang.
    r = b.get("/example.com/notags/@v/list")
    check(r.status in (404, 410, 502), f"unbundled module: {r.status}")


def corrupt(t, bundle, pick):
    """A copy of bundle with one byte flipped in the middle of the first
    entry whose name satisfies pick; returns (path, entry name)."""
    raw = bytearray(read_bundle(bundle))
    with tarfile.open(fileobj=io.BytesIO(bytes(raw))) as tf:
        m = next(m for m in tf.getmembers() if pick(m.name))
    pos = m.offset_data + m.size // 2
    raw[pos] ^= 0x01
    out = t.path(f"bad-{os.path.basename(m.name)}.gmb")
    write_bundle(bytes(raw), out)
    return out, m.name


def test_corrupted_bundle_refused(t):
    """One flipped byte in a zip's payload: refused with one line naming
    the zip, and nothing stored (an empty store stays empty; a store with
    the good bundle stays byte for byte the same)."""
    a = site_a(t)
    bad, name = corrupt(t, a["bundle"], lambda n: n.endswith(".zip"))
    flags = [f"--sumdb={a['sumdb']}"]
    empty = f"{t.name}/empty/"
    line = refusal(cli(t, "import", bad, *s3_flags(t, empty), *flags), "corrupted zip",
                   name, "refused")
    check("SHA-256" in line or "CRC" in line or "checksum" in line, f"reason: {line}")
    eq(s3_objects(t, empty), {}, "objects stored from a refused bundle")
    # Into a store that already holds the good bundle: nothing changes.
    full = f"{t.name}/full/"
    ok(cli(t, "import", a["bundle"], *s3_flags(t, full), *flags), "good import")
    before = s3_objects(t, full)
    refusal(cli(t, "import", bad, *s3_flags(t, full), *flags), "corrupted zip again", name)
    eq(s3_objects(t, full), before, "the store after a refused import")
    # A flipped byte in a .mod, in a checksum-database answer, and a bundle
    # cut short are refused too.
    fs_store = t.mkdtemp("fs")
    for pick in (lambda n: n.endswith(".mod"), lambda n: "/lookup/" in n):
        bad, name = corrupt(t, a["bundle"], pick)
        refusal(cli(t, "import", bad, f"--storage=fs://{fs_store}", *flags), name, name)
    with open(a["bundle"], "rb") as f:
        data = f.read()
    cut = t.path("cut.gmb")
    with open(cut, "wb") as f:
        f.write(data[: len(data) * 2 // 3])
    refusal(cli(t, "import", cut, f"--storage=fs://{fs_store}", *flags), "cut bundle")
    eq(os.listdir(fs_store), [], "files stored from refused bundles")


def test_interrupted_import_resumes(t):
    """An import killed while committing leaves each version committed or
    without .info; a rerun completes it, and a third run writes nothing."""
    a = site_a(t)
    manifest = json.loads(bundle_members(a["bundle"])[-1][1])
    want = {f["path"]: f["size"] for f in manifest["files"]}
    prefix = f"{t.name}/c/"
    argv = [t.binary, "import", a["bundle"], *s3_flags(t, prefix),
            f"--sumdb={a['sumdb']}", "--log_level=info"]
    env = harness.clean_env(t.mkdtemp("home"))
    env["TMPDIR"] = t.mkdtemp("spool")
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    killed = False
    try:
        for line in p.stderr:
            if "import: committed" in line:
                os.killpg(p.pid, signal.SIGKILL)
                killed = True
                break
    finally:
        p.wait(60)
    objs = s3_objects(t, prefix)
    if p.returncode == 0 or len(objs) == len(want):
        # It finished before the kill landed: take the state a kill leaves
        # (versions without .info, one without its zip) by hand.
        infos = sorted(k for k in objs if k.endswith(".info"))[:2]
        s3_delete(t, prefix, infos + [infos[0][: -len(".info")] + ".zip"])
        objs = s3_objects(t, prefix)
        harness._log(f"  (import finished before SIGKILL; deleted {len(infos)} .info files)")
    else:
        check(killed and p.returncode == -signal.SIGKILL, f"import exit {p.returncode}")
    check(len(objs) < len(want), "nothing is missing after the interruption")
    for k in objs:
        eq(objs[k][0], want[k], f"size of {k} after the interruption")
        if k.endswith(".info"):
            base = k[: -len(".info")]
            for ext in (".mod", ".zip"):
                if base + ext in want:
                    check(base + ext in objs, f"{k} is stored without {base + ext}")
    r = ok(cli(t, "import", a["bundle"], *s3_flags(t, prefix),
               f"--sumdb={a['sumdb']}"), "rerun")
    check(" 0 written" not in r.stdout, f"the rerun wrote nothing: {r.stdout!r}")
    objs = s3_objects(t, prefix)
    eq({k: v[0] for k, v in objs.items()}, want, "store after the rerun (keys and sizes)")
    r = ok(cli(t, "import", a["bundle"], *s3_flags(t, prefix),
               f"--sumdb={a['sumdb']}"), "third import")
    check("(0 newly committed)" in r.stdout and " 0 written" in r.stdout,
          f"a repeated import changed something: {r.stdout!r}")
    eq(s3_objects(t, prefix), objs, "store after a repeated import (ETags, times)")
    r = ok(cli(t, "import", "--check", a["bundle"], *s3_flags(t, prefix),
               f"--sumdb={a['sumdb']}"), "import --check")
    check("nothing written" in r.stdout, f"--check: {r.stdout!r}")


def test_import_records_metadata(t):
    """With Redis metadata, an import records each version it commits in
    the committed index, as a fetch does (so replicas list it without a
    storage round trip); a repeated import leaves the index as it was."""
    a = site_a(t)
    redis = t.start_redis()
    store = t.mkdtemp("store")
    flags = [f"--storage=fs://{store}", f"--sumdb={a['sumdb']}", f"--meta={redis.url}"]
    ok(cli(t, "import", a["bundle"], *flags), "import with Redis")
    keys = redis.cli("--scan", "--pattern", "*:idx").split()
    for m, v in fixtures.APP_DEPS:
        key = next((k for k in keys if "{" + m + "}" in k), None)
        check(key, f"no committed index for {m} in Redis: {keys}")
        fields = redis.cli("hkeys", key).split()
        for kind in ("info", "mod", "zip"):
            check(f"{v}.{kind}" in fields, f"{m}'s index lacks {v}.{kind}: {fields}")
    before = {k: redis.cli("hgetall", k) for k in keys}
    ok(cli(t, "import", a["bundle"], *flags), "second import with Redis")
    eq({k: redis.cli("hgetall", k) for k in keys}, before, "index after a repeated import")


# --- a 1 GiB bundle in bounded memory ----------------------------------------

BIG_MODULES = 4
BIG_MIB = 260  # per zip: 4 x 260 MiB > 1 GiB, each under Go's 500 MiB limit
RSS_LIMIT_MIB = 64


def write_big_version(root, module, version, mib):
    """A valid .info/.mod/.zip written straight into an fs store."""
    d = os.path.join(root, module, "@v")
    os.makedirs(d, exist_ok=True)
    mod = f"module {module}\n\ngo 1.19\n".encode()
    with open(os.path.join(d, version + ".mod"), "wb") as f:
        f.write(mod)
    with zipfile.ZipFile(os.path.join(d, version + ".zip"), "w", zipfile.ZIP_STORED) as z:
        z.writestr(f"{module}@{version}/go.mod", mod)
        info = zipfile.ZipInfo(f"{module}@{version}/data.bin", (2024, 1, 1, 0, 0, 0))
        with z.open(info, "w", force_zip64=True) as w:
            for _ in range(mib):
                w.write(os.urandom(1 << 20))
    with open(os.path.join(d, version + ".info"), "w") as f:
        f.write(json.dumps({"Version": version, "Time": "2024-01-01T00:00:00Z"}))


def sanitized(binary):
    with open(binary, "rb") as f:
        return b"AddressSanitizer" in f.read()


def run_sampled(argv, env, timeout=600):
    """Runs argv, sampling VmRSS every 50 ms; (CompletedProcess-like, first
    sample MiB, peak MiB)."""
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, start_new_session=True)
    samples = []

    def sample():
        while p.poll() is None:
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    for line in f:
                        if line.startswith("VmRSS:"):
                            samples.append(int(line.split()[1]) / 1024)
            except OSError:
                pass
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        raise Failure(f"{' '.join(argv[:3])} timed out after {timeout}s")
    th.join()
    r = subprocess.CompletedProcess(argv, p.returncode, out, err)
    no_sanitizer_report(r, argv[1])
    check(samples, "no RSS sample taken")
    return r, samples[0], max(samples)


def test_one_gib_bundle_bounded_memory(t):
    """Private modules (no checksum-database records) with 260 MiB zips,
    1 GiB in all, export and import with the RSS sampled: it stays within
    RSS_LIMIT_MIB of where it started."""
    root = t.mkdtemp("big-a")
    private = "big.corp.example"
    for i in range(BIG_MODULES):
        write_big_version(root, f"{private}/m{i}", "v1.0.0", BIG_MIB)
    flags = [f"--private={private}", f"--sumdb={SUMDB}=http://127.0.0.1:9",
             "--sumdb_verify=warn"]
    env = harness.clean_env(t.mkdtemp("home"))
    env["TMPDIR"] = t.mkdtemp("spool")
    limit = RSS_LIMIT_MIB * (4 if sanitized(t.binary) else 1)
    bundle = t.path("big.gmb")
    root_b = t.mkdtemp("big-b")
    try:
        r, start, peak = run_sampled([t.binary, "export", "--out", bundle,
                                      f"--storage=fs://{root}", *flags], env)
        ok(r, "export of 1 GiB")
        harness._log(f"  export: RSS {start:.1f} -> peak {peak:.1f} MiB")
        check(peak - start < limit, f"export RSS grew {peak - start:.1f} MiB (limit {limit})")
        size = os.path.getsize(bundle)
        check(size >= 1 << 30, f"bundle is {size} bytes, not 1 GiB")
        # Read only the tail: the manifest is the last entry, small.
        man = json.loads(subprocess.run(
            f"zstd -d -c -q {bundle} | tar -xOf - {MANIFEST}", shell=True,
            stdout=subprocess.PIPE, timeout=120).stdout)
        eq(sorted(v["private"] for v in man["versions"]), [True] * BIG_MODULES,
           "manifest marks the versions private")
        check(any("private" in n and "without checksum-database lookups" in n
                  for n in man["notes"]), f"manifest notes: {man['notes']}")
        check(not any(f["path"].startswith("sumdb/") for f in man["files"]),
              "a private-only bundle has checksum-database files")
        r, start, peak = run_sampled([t.binary, "import", bundle,
                                      f"--storage=fs://{root_b}", *flags], env)
        ok(r, "import of 1 GiB")
        harness._log(f"  import: RSS {start:.1f} -> peak {peak:.1f} MiB")
        check(peak - start < limit, f"import RSS grew {peak - start:.1f} MiB (limit {limit})")
        for i in range(BIG_MODULES):
            for ext in (".info", ".mod", ".zip"):
                rel = os.path.join(f"{private}/m{i}", "@v", "v1.0.0" + ext)
                eq(os.path.getsize(os.path.join(root_b, rel)),
                   os.path.getsize(os.path.join(root, rel)), f"size of imported {rel}")
        rel = os.path.join(f"{private}/m0", "@v", "v1.0.0.zip")
        eq(file_sha256(os.path.join(root_b, rel)), file_sha256(os.path.join(root, rel)),
           "imported zip's bytes")
    finally:
        # 3 GiB of files: not kept for the rest of the run.
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(root_b, ignore_errors=True)
        if os.path.exists(bundle):
            os.remove(bundle)


def file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


if __name__ == "__main__":
    harness.main()
