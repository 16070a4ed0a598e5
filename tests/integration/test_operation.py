"""Operating gomirror: health and readiness, configuration precedence across
flag, environment and file, --check-config and --help, graceful SIGTERM, the
access log, and the protocol's headers (content types, caching, ETag,
Range/If-Range) and escaping equivalences."""

import os
import re
import signal
import subprocess
import threading
import time

import harness
from harness import check, eq

MOD = "example.com/hello"


def run_binary(t, args, env=None, timeout=20):
    e = harness.clean_env(t.mkdtemp("home"))
    e.update(env or {})
    return subprocess.run([t.binary, *args], env=e, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, timeout=timeout, cwd=t.tmp)


def effective(out):
    return dict(l.split(" = ", 1) for l in out.decode().splitlines() if " = " in l)


def test_config_precedence(t):
    cfg = t.path("gomirror.conf")
    with open(cfg, "w") as f:
        f.write("# a comment\nlist_ttl = 11\nnegative_ttl = 12\nupstream = https://file.example\n"
                "log_level = warn\n")
    env = {"GOMIRROR_CONFIG": cfg, "GOMIRROR_NEGATIVE_TTL": "22", "GOMIRROR_UPSTREAM": "https://env.example"}
    r = run_binary(t, ["--check-config", "--upstream=https://flag.example"], env)
    eq(r.returncode, 0, f"--check-config exit ({r.stderr.decode()})")
    got = effective(r.stdout)
    eq(got.get("list_ttl"), "11", "list_ttl from the file")
    eq(got.get("negative_ttl"), "22", "negative_ttl: env over file")
    eq(got.get("upstream"), "https://flag.example", "upstream: flag over env over file")
    eq(got.get("log_level"), "warn", "log_level from the file")
    eq(got.get("storage"), "fs://./data", "storage default")
    eq(got.get("listen"), "0.0.0.0:3000", "listen default")


def test_bad_config_is_one_clear_line(t):
    r = run_binary(t, ["--list_ttl=soon"])
    eq(r.returncode, 2, "exit status")
    err = r.stderr.decode()
    check("list_ttl" in err and err.count("\n") == 1, f"error: {err!r}")
    r = run_binary(t, ["--no-such-key=1"])
    eq(r.returncode, 2, "unknown flag exit status")
    check("no-such-key" in r.stderr.decode(), f"error: {r.stderr!r}")
    r = run_binary(t, ["--upstream=ftp://x"])
    eq(r.returncode, 2, "bad upstream exit status")
    # Private modules need the go command: without it, no start.
    r = run_binary(t, ["--private=corp.example/*", "--go_binary=/nonexistent/go",
                       "--listen=127.0.0.1:%d" % harness.free_port()])
    eq(r.returncode, 2, "private without go: exit status")
    err = r.stderr.decode()
    check("go" in err and err.count("\n") == 1, f"error: {err!r}")


def test_help(t):
    r = run_binary(t, ["--help"])
    eq(r.returncode, 0, "--help exit")
    out = r.stdout.decode()
    for key in ("listen", "upstream", "storage", "meta", "sumdb", "list_ttl", "negative_ttl",
                "GOMIRROR_UPSTREAM", "--check-config"):
        check(key in out, f"--help does not mention {key}")


def test_embedded_default_starts(t):
    """No configuration at all: fs ./data in the working directory."""
    d = t.mkdtemp("default")
    port = harness.free_port()
    # Only the port differs from the embedded default (3000 may be taken).
    p = harness.Gomirror("gomirror", [t.binary, f"--listen=127.0.0.1:{port}"],
                         os.path.join(d, "out.log"), env=harness.clean_env(d), cwd=d,
                         ready_url=f"http://127.0.0.1:{port}/readyz")
    t._start(p)
    check(os.path.isdir(os.path.join(d, "data")), "./data was not created")
    eq(harness.http_get(f"http://127.0.0.1:{port}/healthz").status, 200, "healthz")
    eq(harness.http_get(f"http://127.0.0.1:{port}/sumdb/sum.golang.org/supported").status, 200,
       "sum.golang.org is proxied by default")


def test_headers_and_ranges(t):
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up)
    v = t.fx["modules"][MOD]["versions"][0]
    base = f"/{MOD}/@v/{v}"
    info = gm.get(base + ".info")
    eq(info.status, 200, ".info")
    eq(info.headers["Content-Type"], "application/json", ".info type")
    eq(info.headers["Cache-Control"], "public, max-age=31536000, immutable", ".info caching")
    mod = gm.get(base + ".mod")
    eq(mod.headers["Content-Type"], "text/plain; charset=utf-8", ".mod type")
    lst = gm.get(f"/{MOD}/@v/list")
    check("max-age=60" in lst.headers["Cache-Control"], "list caching")
    z = gm.get(base + ".zip")
    eq(z.headers["Content-Type"], "application/zip", ".zip type")
    etag = z.headers["ETag"]
    check(re.fullmatch(r'"[^"]+"', etag or ""), f"strong ETag: {etag!r}")
    size = len(z.body)
    r = gm.get(base + ".zip", headers={"Range": "bytes=10-"})
    eq(r.status, 206, "Range status")
    eq(r.body, z.body[10:], "Range body")
    eq(r.headers["Content-Range"], f"bytes 10-{size - 1}/{size}", "Content-Range")
    r = gm.get(base + ".zip", headers={"Range": "bytes=10-", "If-Range": etag})
    eq(r.status, 206, "If-Range matching")
    r = gm.get(base + ".zip", headers={"Range": "bytes=10-", "If-Range": '"other"'})
    eq(r.status, 200, "If-Range not matching")
    eq(r.body, z.body, "If-Range not matching body")
    r = gm.get(base + ".zip", headers={"Range": f"bytes={size + 5}-"})
    eq(r.status, 416, "unsatisfiable range")
    r = gm.get(base + ".zip", headers={"If-None-Match": etag})
    eq(r.status, 304, "If-None-Match")
    check("Content-Encoding" not in z.headers, "a zip is never compressed")


def test_escaping_equivalence(t):
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up)
    ent = t.fx["modules"]["example.com/Upper/Lib"]
    v = ent["versions"][0]
    a = gm.get(f"/example.com/%21upper/%21lib/@v/{v}.info")
    b = gm.get(f"/example.com/!upper/!lib/@v/{v}.info")
    eq(a.status, 200, "%21 form")
    eq(b.status, 200, "literal ! form")
    eq(a.body, b.body, "same resource")
    eq(gm.get(f"/example.com/Upper/Lib/@v/{v}.info").status, 404, "raw upper case")
    inc = t.fx["modules"]["example.com/legacy"]["versions"]
    inc = [x for x in inc if x.endswith("+incompatible")][0]
    p1 = gm.get(f"/example.com/legacy/@v/{inc}.info")
    p2 = gm.get(f"/example.com/legacy/@v/{inc.replace('+', '%2B')}.info")
    eq(p1.status, 200, "literal +")
    eq(p2.body, p1.body, "%2B is +")
    files = gm.stored_keys()
    check(any("+incompatible" in f for f in files), f"no +incompatible key: {files}")
    check(not any(" " in f for f in files), f"a '+' became a space: {files}")


def test_sigterm_drains(t):
    v = t.fx["modules"][MOD]["versions"][1]
    up = t.start_upstream(delay=2)
    gm = t.start_gomirror(upstream=up, drain_delay=1)
    result = {}

    def slow():
        result["r"] = gm.get(f"/{MOD}/@v/{v}.zip", timeout=30)

    th = threading.Thread(target=slow)
    th.start()
    time.sleep(0.5)  # the request is now in flight, waiting on the upstream
    os.kill(gm.popen.pid, signal.SIGTERM)
    time.sleep(0.3)
    r = gm.get("/readyz")
    eq(r.status, 503, "readyz while draining")
    th.join(30)
    eq(result["r"].status, 200, "in-flight request completed")
    code = gm.popen.wait(15)
    eq(code, 0, "exit status after SIGTERM")
    with open(gm.log) as f:
        log = f.read()
    check("draining" in log, "no drain message in the log")


def test_access_log(t):
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up)
    v = t.fx["modules"][MOD]["versions"][0]
    gm.get(f"/{MOD}/@v/{v}.mod")
    gm.get(f"/{MOD}/@v/{v}.mod")
    gm.get("/example.com/Nope/@v/list")
    # The line is written just after the response leaves: wait for it.
    deadline = time.time() + 5
    while True:
        with open(gm.log) as f:
            lines = [l for l in f.read().splitlines() if " access " in l]
        # Each line is written after its own response has left, in any
        # order across workers: wait for all three, not for the last one.
        mods = [l for l in lines if f"/{MOD}/@v/{v}.mod" in l]
        if (len(mods) >= 2 and any("Nope" in l for l in lines)) or time.time() > deadline:
            break
        time.sleep(0.05)
    mods = [l for l in lines if f"/{MOD}/@v/{v}.mod" in l]
    eq(len(mods), 2, "access lines for .mod")
    # A line is written after its response has left, so the second request
    # can be logged before the first: match the lines, not their order.
    outcomes = sorted(re.search(r"access GET \S+ 200 \d+ [\d.]+ms (\w+)$", l).group(1)
                      for l in mods if re.search(r"access GET \S+ 200 \d+ [\d.]+ms \w+$", l))
    eq(outcomes, ["hit", "miss"], f"cache outcomes of the two .mod requests: {mods}")
    check(any(" 404 " in l and "Nope" in l for l in lines), "404 not logged")



def metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


def test_metrics(t):
    up = t.start_upstream()
    # No checksum database: every upstream request is then in up's log.
    gm = t.start_gomirror(upstream=up, sumdb="")
    v = t.fx["modules"][MOD]["versions"][0]
    eq(gm.get(f"/{MOD}/@v/{v}.info").status, 200, "miss")
    for _ in range(3):
        eq(gm.get(f"/{MOD}/@v/{v}.info").status, 200, "hit")
    eq(gm.get("/example.com/nope/@v/list").status, 404, "404")
    # Counters move just after a response has left: wait for the last one.
    deadline = time.time() + 3
    while True:
        r = gm.get("/metrics")
        settled = (metric(r.text, 'gomirror_requests_total{endpoint="list",code="404"}') == 1
                   and metric(r.text, "gomirror_in_flight_requests") == 1)
        if settled or time.time() > deadline:
            break
        time.sleep(0.05)
    eq(r.status, 200, "/metrics")
    check(r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), "content type")
    m = r.text
    eq(metric(m, 'gomirror_requests_total{endpoint="info",code="200"}'), 4, "info 200s")
    eq(metric(m, 'gomirror_requests_total{endpoint="list",code="404"}'), 1, "list 404s")
    eq(metric(m, 'gomirror_cache_lookups_total{layer="hot",result="hit"}'), 3, "hot hits")
    eq(metric(m, 'gomirror_cache_lookups_total{layer="hot",result="miss"}'), 1, "hot misses")
    eq(metric(m, 'gomirror_cache_lookups_total{layer="storage",result="miss"}'), 1,
       "storage misses")
    eq(metric(m, "gomirror_upstream_fetches_total"), len(up.requests()), "upstream fetches")
    eq(metric(m, "gomirror_upstream_request_seconds_count"), len(up.requests()),
       "histogram count")
    eq(metric(m, 'gomirror_upstream_request_seconds_bucket{le="+Inf"}'), len(up.requests()),
       "+Inf bucket")
    check(metric(m, "gomirror_bytes_served_total") > 0, "bytes served")
    eq(metric(m, "gomirror_in_flight_requests"), 1, "in flight (this request)")
    for name in ("gomirror_storage_errors_total", "gomirror_redis_errors_total",
                 "gomirror_hot_cache_bytes"):
        check(re.search(rf"^{name} \d+$", m, re.M), f"{name} missing")


def test_zip_from_disk_without_hot_cache(t):
    """hot_cache_mb=0: whole zips go out with sendfile, ranges by reading."""
    up = t.start_upstream()
    gm = t.start_gomirror(upstream=up, hot_cache_mb=0)
    v = t.fx["modules"][MOD]["versions"][0]
    with open(os.path.join(t.fx["upstream"], MOD, "@v", v + ".zip"), "rb") as f:
        want = f.read()
    for _ in range(2):
        z = gm.get(f"/{MOD}/@v/{v}.zip")
        eq(z.status, 200, "zip")
        eq(z.body, want, "zip bytes")
    r = gm.get(f"/{MOD}/@v/{v}.zip", headers={"Range": "bytes=5-20"})
    eq(r.status, 206, "range")
    eq(r.body, want[5:21], "range bytes")
    eq(gm.get(f"/{MOD}/@v/{v}.info").status, 200, ".info without the hot cache")


if __name__ == "__main__":
    harness.main()
