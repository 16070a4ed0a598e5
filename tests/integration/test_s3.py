"""S3 storage on a real object store (Ceph RGW, which verifies SigV4):
object layout checked with Debian's aws cli, credentials errors, a 200 MiB
zip streamed with bounded memory, ListObjectsV2 pagination, RGW stopped
mid-run, and zip offload through pre-signed redirects."""

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.parse
import zipfile

import harness
from harness import check, eq, run_go

NEEDS_RGW = True
MOD = "example.com/hello"


def module_files(root, path, version, files):
    """Writes .info, .mod and .zip of a module version into a layout."""
    esc = "".join("!" + c.lower() if c.isupper() else c for c in path)
    d = os.path.join(root, esc, "@v")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, version + ".info"), "w") as f:
        json.dump({"Version": version, "Time": "2024-01-02T03:04:05Z"}, f)
    gomod = f"module {path}\n"
    with open(os.path.join(d, version + ".mod"), "w") as f:
        f.write(gomod)
    with zipfile.ZipFile(os.path.join(d, version + ".zip"), "w", zipfile.ZIP_STORED,
                         allowZip64=True) as z:
        z.writestr(f"{path}@{version}/go.mod", gomod)
        for name, writer in files.items():
            with z.open(f"{path}@{version}/{name}", "w", force_zip64=True) as w:
                writer(w)
    with open(os.path.join(d, "list"), "a") as f:
        f.write(version + "\n")
    return os.path.join(d, version)


def upstream_root(t):
    """The fixtures' layout plus modules made here: one with '~' in its
    path and a 200 MiB one."""
    root = t.mkdtemp("layout")
    shutil.copytree(t.fx["upstream"], root, dirs_exist_ok=True)
    module_files(root, "example.com/tilde~x", "v1.0.0",
                 {"x.go": lambda w: w.write(b"package x\n")})
    return root


def stored(t, gm):
    return gm.stored_keys()


def s3_flags(rgw, **over):
    flags = {"storage": f"s3://{rgw.bucket}/cli/", "s3_endpoint": rgw.endpoint,
             "s3_region": rgw.region, "s3_access_key": rgw.access_key,
             "s3_secret_key": rgw.secret_key, "listen": f"127.0.0.1:{harness.free_port()}"}
    flags.update(over)
    return [f"--{k}={v}" for k, v in flags.items()]


def test_objects_layout(t):
    root = upstream_root(t)
    up = t.start_upstream(root=root)
    gm = t.start_gomirror(upstream=up, storage="s3")
    wanted = [("example.com/hello", "v1.0.0"), ("example.com/Upper/Lib", "v1.0.1"),
              ("example.com/legacy", "v2.0.0+incompatible"), ("example.com/tilde~x", "v1.0.0")]
    env = t.go_env(gm.url)
    run_go(["mod", "download", "-json"] + [f"{m}@{v}" for m, v in wanted], env)
    keys = set(stored(t, gm))
    for want in ("example.com/!upper/!lib/@v/v1.0.1.zip",
                 "example.com/legacy/@v/v2.0.0+incompatible.info",
                 "example.com/legacy/@v/v2.0.0+incompatible.zip",
                 "example.com/tilde~x/@v/v1.0.0.mod",
                 "example.com/hello/@v/v1.0.0.zip"):
        check(want in keys, f"bucket lacks {want}: {sorted(keys)}")
    for k in ("example.com/!upper/!lib/@v/v1.0.1.zip",
              "example.com/legacy/@v/v2.0.0+incompatible.mod"):
        with open(os.path.join(root, k), "rb") as f:
            eq(gm.read_key(k), f.read(), f"object {k} (read back with aws s3api)")


def test_wrong_secret_is_a_clear_startup_error(t):
    rgw = t.runner.rgw
    r = subprocess.run([t.binary, *s3_flags(rgw, s3_secret_key="not-the-secret")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    err = r.stderr.decode()
    eq(r.returncode, 2, f"exit status ({err})")
    check("SignatureDoesNotMatch" in err, f"error does not name the S3 code: {err!r}")
    r = subprocess.run([t.binary, *s3_flags(rgw, storage="s3://no-such-bucket/")],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    err = r.stderr.decode()
    eq(r.returncode, 2, f"exit status ({err})")
    check("NoSuchBucket" in err, f"error does not name the S3 code: {err!r}")
    # Credentials from the standard AWS variables work too.
    env = harness.clean_env(t.mkdtemp("home"))
    env.update(AWS_ACCESS_KEY_ID=rgw.access_key, AWS_SECRET_ACCESS_KEY=rgw.secret_key)
    port = harness.free_port()
    p = harness.Gomirror("gomirror", [t.binary, f"--listen=127.0.0.1:{port}",
                                      "--drain_delay=0",
                                      f"--storage=s3://{rgw.bucket}/envcreds/",
                                      f"--s3_endpoint={rgw.endpoint}"],
                         os.path.join(t.tmp, "envcreds.log"), env=env,
                         ready_url=f"http://127.0.0.1:{port}/readyz")
    t._start(p)


def rss_kb(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise harness.Failure(f"no {field} for {pid}")


def download_digest(url):
    u = urllib.parse.urlsplit(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=300)
    c.request("GET", u.path)
    r = c.getresponse()
    h = hashlib.sha256()
    n = 0
    while True:
        chunk = r.read(1 << 20)
        if not chunk:
            break
        h.update(chunk)
        n += len(chunk)
    c.close()
    return r.status, n, h.hexdigest()


def test_big_zip_streams_in_bounded_memory(t):
    root = t.mkdtemp("biglayout")
    size = 200 << 20

    def blob(w):
        left = size
        while left:
            n = min(left, 4 << 20)
            w.write(os.urandom(n))
            left -= n

    base = module_files(root, "example.com/big", "v1.0.0", {"blob.bin": blob})
    with open(base + ".zip", "rb") as f:
        want = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            want.update(chunk)
    zip_size = os.path.getsize(base + ".zip")
    up = t.start_upstream(root=root)
    gm = t.start_gomirror(upstream=up, storage="s3")
    eq(gm.get("/example.com/big/@v/v1.0.0.info").status, 200, ".info")
    pid = gm.popen.pid
    results = []
    for label in ("first download (upstream -> S3 -> client)", "second (S3 -> client)"):
        before = rss_kb(pid)
        peak = [before]
        done = threading.Event()

        def sample():
            while not done.is_set():
                peak[0] = max(peak[0], rss_kb(pid))
                time.sleep(0.01)

        sampler = threading.Thread(target=sample)
        sampler.start()
        try:
            status, n, digest = download_digest(gm.url + "/example.com/big/@v/v1.0.0.zip")
        finally:
            done.set()
            sampler.join()
        grew = peak[0] - before
        eq(status, 200, label)
        eq(n, zip_size, f"{label}: bytes")
        eq(digest, want.hexdigest(), f"{label}: sha256")
        results.append(f"{label}: peak RSS grew {grew / 1024:.1f} MiB")
        check(grew < 32 * 1024, f"{label}: peak RSS grew {grew / 1024:.1f} MiB (limit 32)")
    harness._log("  " + "; ".join(results))
    keys = stored(t, gm)
    check("example.com/big/@v/v1.0.0.zip" in keys, f"zip not stored: {keys}")


def test_list_pagination_over_1000_versions(t):
    rgw = t.runner.rgw
    gm = t.start_gomirror(upstream="off", storage="s3")
    versions = [f"v1.{i // 100}.{i % 100}" for i in range(1100)]

    def put(chunk):
        for v in chunk:
            key = f"/{rgw.bucket}/{gm.s3_prefix}example.com/many/@v/{v}.info"
            st, _, body = rgw.s3("PUT", key, body=json.dumps({"Version": v}).encode())
            if st != 200:
                raise harness.Failure(f"PUT {key}: {st} {body[:200]!r}")

    threads = [threading.Thread(target=put, args=(versions[i::8],)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    r = gm.get("/example.com/many/@v/list", timeout=60)
    eq(r.status, 200, "list status")
    got = r.text.split()
    eq(len(got), 1100, "versions listed")
    eq(got[0], "v1.0.0", "lowest")
    eq(got[-1], "v1.10.99", "highest (semver order, not string order)")
    eq(got, sorted(got, key=lambda v: tuple(int(x) for x in v[1:].split("."))), "order")


def test_rgw_stopped_mid_run(t):
    rgw = t.runner.rgw
    vs = t.fx["modules"][MOD]["versions"]
    v0, v1 = vs[0], vs[1]
    up = t.start_upstream(delay=0.5)
    gm = t.start_gomirror(upstream=up, storage="s3", negative_ttl=0)
    warm = {ext: gm.get(f"/{MOD}/@v/{v0}{ext}") for ext in (".info", ".mod", ".zip")}
    for ext, r in warm.items():
        eq(r.status, 200, f"warming {ext}")
    # A fetch in flight when the store goes away must commit nothing.
    result = {}
    th = threading.Thread(target=lambda: result.update(
        r=gm.get(f"/{MOD}/@v/{v1}.zip", timeout=60)))
    th.start()
    time.sleep(0.3)
    rgw.stop_gateway()
    try:
        th.join(60)
        eq(result["r"].status, 503, f"in-flight miss with RGW down ({result['r'].text!r})")
        for ext, r in warm.items():
            again = gm.get(f"/{MOD}/@v/{v0}{ext}")
            eq(again.status, 200, f"{ext} held by the replica, RGW down")
            eq(again.body, r.body, f"{ext} bytes, RGW down")
        miss = gm.get(f"/{MOD}/@v/{vs[2] if len(vs) > 2 else v1}.info", timeout=60)
        eq(miss.status, 503, "a miss with RGW down")
        check("storage" in miss.text and miss.text.count("\n") == 1,
              f"503 reason: {miss.text!r}")
        ready = gm.get("/readyz")
        eq(ready.status, 200, "readyz while degraded (it still serves its cache)")
        check("degraded" in ready.text, f"readyz: {ready.text!r}")
    finally:
        rgw.start_gateway()
    keys = stored(t, gm)
    for k in keys:
        if k.endswith(".info"):
            check(k[:-5] + ".mod" in keys, f"{k} committed without its .mod")
    check(not any(f"/{v1}." in k for k in keys), f"partial {v1} committed: {keys}")
    eq(gm.get(f"/{MOD}/@v/{v1}.zip", timeout=60).status, 200, "the miss after RGW is back")
    eq(gm.get("/readyz").text, "ready\n", "readyz after RGW is back")


def test_zip_redirect_to_presigned_url(t):
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, storage="s3", zip_redirect="true")
    v = t.fx["modules"][MOD]["versions"][0]
    eq(gm.get(f"/{MOD}/@v/{v}.info").status, 200, ".info")
    c = http.client.HTTPConnection("127.0.0.1", gm.port, timeout=30)
    c.request("GET", f"/{MOD}/@v/{v}.zip")
    r = c.getresponse()
    r.read()
    eq(r.status, 302, "zip status")
    loc = r.getheader("Location")
    check(loc and loc.startswith(t.runner.rgw.endpoint) and "X-Amz-Signature=" in loc,
          f"Location: {loc!r}")
    got = harness.http_get(loc)
    eq(got.status, 200, "GET of the pre-signed URL")
    with open(os.path.join(t.fx["upstream"], "example.com/hello/@v", v + ".zip"), "rb") as f:
        eq(got.body, f.read(), "bytes from the object store")
    # The real go client follows the redirect and verifies what it gets.
    env = t.go_env(gm.url)
    out = run_go(["mod", "download", "-json", f"{MOD}@{v}"], env).out
    eq(json.loads(out)["Sum"], t.fx["modules"][MOD]["sums"][v]["Sum"], "h1 via redirect")


if __name__ == "__main__":
    harness.main()
